"""The streaming scenario run (records handed to a Recorder every RECORD_MS, VCD and frames
written as they come: bounded memory) gives exactly what the run that keeps its whole record
gives: the same trace.json, byte for byte the same pins.vcd, the same OLED frames."""
import json
import os

import pytest

from host_tools import scenario, scenario_core
from tests import scenario_harness as sh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _session_with_resets():
    """Start a program, raise channel 1, electrode off on 2, a hang (watchdog reset) mid-pulse,
    start again, a power cut and power on, then a stop: edges across three boots."""
    s = sh.Steps()
    s.start_program(sh.TENS_CONV).raise_level(6)
    s.wait(1500).add(electrode={"channel": 2, "connected": False})
    s.wait(700).add(hang=True)
    s.wait(2500)
    s.start_program(sh.TENS_CONV).raise_level(3)
    s.wait(900).add(power_cut=True)
    s.wait(400).add(power_on=True)
    s.wait(3000)
    s.start_program(sh.TENS_CONV).raise_level(2)
    s.wait(600).press("stop")
    return sh.spec(s, s.t + 1500)


def _demo_head():
    with open(os.path.join(ROOT, "host_tools", "scenarios", "demo.json")) as f:
        spec = json.load(f)
    spec["duration_ms"] = 9000  # the start, the level presses and the first seconds of pulses
    spec["steps"] = [s for s in spec["steps"] if s["at_ms"] < 9000]
    return spec


@pytest.mark.parametrize("make", [_demo_head, _session_with_resets], ids=["demo", "resets"])
def test_streaming_run_equals_the_whole_record(make, tmp_path, monkeypatch):
    spec = make()
    # the whole record kept in memory (what tests read), and its VCD written at the end
    run, whole = scenario.run_spec(json.loads(json.dumps(spec)), None)
    scenario.write_vcd_from_trace(run.trace, str(tmp_path / "whole.vcd"), run._end_cycle)
    frames = run.trace.frames
    # streamed in small pieces (many piece boundaries inside pulses and across resets)
    monkeypatch.setattr(scenario_core, "RECORD_MS", 50)
    monkeypatch.setattr(scenario_core, "KEEP_MS", 30)
    out = tmp_path / "stream"
    srun, streamed = scenario.run_spec(json.loads(json.dumps(spec)), str(out))
    assert json.loads(json.dumps(streamed)) == json.loads(json.dumps(whole))
    assert json.loads((out / "trace.json").read_text()) == json.loads(json.dumps(whole))
    assert (out / "pins.vcd").read_text() == (tmp_path / "whole.vcd").read_text()
    # something happened on the pins: pulses on channel 1, and (resets) more than one boot
    assert whole["channels"]["1"]["pulses"]["pulse_count"] > 20
    if make is _session_with_resets:
        assert len(run.trace.boots) >= 3
        assert [e["reason"] for e in sh.events(whole, "boot")][1:3] == ["watchdog", "power_cut"]
    # the frames: one PNG per frame the whole record holds, none kept in memory
    assert srun.trace.frames == []
    pngs = sorted(os.listdir(out / "oled"))
    assert len(pngs) == len(frames) > 5
    assert [int(p.split("_")[1][:-6]) for p in pngs] == [t for t, _px in frames]
    # the world keeps about KEEP_MS of edges, not the session
    w = srun.trace.boots[-1][2]
    assert max(len(e) for e in w.gpio.edges) < 50


def test_drained_record_refuses_an_edge_before_the_drain():
    from host_tools.sim import world

    w = world.new_world()
    g = w.gpio
    g.sio_config(5, output=True, value=0)
    w.advance_to(100)
    g.sio_write(5, 1)
    w.advance_to(200)
    assert g.drain(150, [5]) == {5: [(0, 0), (100, 1)]}
    assert g.edges[5] == [(100, 1)]
    assert g.drain(1000, [5]) == {5: []}  # clamped to now (200): an edge at now may still change
    g.sio_write(5, 0)
    assert g.edges[5] == [(100, 1), (200, 0)]
    g.set_function(7, "pio0")
    g.set_dir(7, True, 200, "pio0")
    g.drain(200, [7])
    with pytest.raises(ValueError):
        g.set_level(7, 1, cycle=120, driver="pio0")  # before the drain: refused, not lost
