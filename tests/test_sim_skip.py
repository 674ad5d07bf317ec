"""Leaving quiet loop ticks out changes nothing.

The scenario runner leaves a loop tick out when the firmware said, after the last tick it ran,
that the ticks up to some time would only repeat it (App.quiet_ms: each owner answers for its own
state) and nothing the firmware reads changed since: no scheduled callback other than the
observer fired (button contacts, scenario steps, timers, the watchdog) and every ADC the last tick
read reads the same now (host_tools/scenario_core.py, Run._skip_hook). The loop still sleeps as it
would, so the clock and the pulse engine run exactly as before; App.skipped() catches the
firmware's clocks up before it runs again.

Proof: recorded scenarios run twice, ticks left out and every tick run, must give the same run:
every edge of every GPIO over every boot, every DAC (PWM) write with its cycle, every OLED frame
with its time, the trace (events, screens, pulse statistics), and the same flash (files and raw
image). The steady ones must also leave most ticks out (so the comparison is not of two slow runs).
Broken variants of the skipping (kept below as mutants) each make a scenario differ.
"""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_tools import scenario, scenario_core
from host_tools.sim import flash as flash_mod
from tests import scenario_harness as sh
from tests import test_firmware_fuzz as fuzz
from tests.test_scenario_stream import _demo_head, _session_with_resets

TENS_ACU = 10  # 2 Hz: the current sense reads a pulse, then nothing, between ticks
TENS_BURST = 11  # bursts at 2 Hz
QUAD_ACL = 0  # 60 s warm-up at 5 Hz, then 8 s on / 32 s off at 40 Hz
ENDURANCE = 3  # 25 Hz: a 40 ms period, longer than the sense hold


def _run(spec, skip, cls=scenario_core.Run):
    run = cls(json.loads(json.dumps(spec)), ocr=scenario.ocr, flash_factory=flash_mod.SimFlash,
              skip=skip)
    trace = run.run()
    return run, trace


def _record(run, trace):
    """Everything a user or a scope could see of the run."""
    n_pins = trace.boots[0][2].gpio.n_pins
    edges = {}
    for pin in range(n_pins):
        e = scenario_core.merged_edges(trace, pin)
        if len(e) > 1 or (e and e[0][1]):
            edges[pin] = e
    pwm = []
    for start, end, w, _board in trace.boots:
        pwm.append((start, end, {p: list(v) for p, v in w.pwm_log.items()}))
    return {"trace": json.loads(json.dumps(scenario_core.trace_dict(trace))),
            "edges": edges, "pwm": pwm, "frames": list(trace.frames),
            "files": run.flash.read_all(), "image": bytes(run.flash.image())}


def _compare(spec, cls=scenario_core.Run):
    slow_run, slow = _run(spec, False)
    fast_run, fast = _run(spec, True, cls)
    a = _record(slow_run, slow)
    b = _record(fast_run, fast)
    assert slow_run.ticks_left_out == 0
    diff = [k for k in a if a[k] != b[k]]
    return a, fast_run, diff


def _steady():
    """TENS 100 Hz on both channels, levels raised and lowered, a pause and a resume, a
    channel switch, then STOP: long quiet stretches between inputs."""
    s = sh.Steps()
    s.start_program(sh.TENS_CONV).raise_level(6)
    s.wait(6000).press("ok").raise_level(3)            # channel 2 up
    s.wait(5000).press("down", hold_ms=60)
    s.wait(4000).press("back")                          # pause
    s.wait(2000).press("ok", gap_ms=3000)               # resume (levels start at 0 again)
    s.raise_level(2)
    s.wait(5000).press("stop")
    return sh.spec(s, s.t + 2000)


def _slow_trains():
    """2 Hz TENS, then 2 Hz bursts, with an electrode pulled mid-session and put back (the
    channel stops with a fault, UP re-arms it): the sense readings change between ticks."""
    s = sh.Steps()
    s.start_program(TENS_ACU).raise_level(5)
    s.wait(4000).add(electrode={"channel": 1, "connected": False})
    s.wait(3000).add(electrode={"channel": 1, "connected": True})
    s.press("ok").press("up")                            # (channel 2 is selected by OK)
    s.wait(3000).press("stop").press("ok").press("back").press("back")
    s.wait(1000).start_program(TENS_BURST).raise_level(4)
    s.wait(6000).press("stop")
    return sh.spec(s, s.t + 1500)


def _cycles_and_battery():
    """Warm-up, on/off cycles at 40 Hz and 25 Hz, the battery sagging to the warning level and
    then below the cut-off while stimulating."""
    s = sh.Steps()
    s.start_program(QUAD_ACL).raise_level(8)
    s.wait(9000).add(battery_mv=3450)
    s.wait(4000).press("stop").press("ok").press("back").press("back")
    s.wait(800).start_program(ENDURANCE).raise_level(5)
    s.wait(3000).add(battery_mv=3000)
    s.wait(3000)
    return sh.spec(s, s.t + 1000, files={"settings.json": json.dumps(
        {"first_sessions_half": False})})


def _idle_menus():
    """The unit left alone on its menu: the screen dims after 30 s, auto-off after a minute,
    a key wakes it."""
    s = sh.Steps()
    s.wait(75000).press("down")
    s.wait(3000).press("up")
    return sh.spec(s, s.t + 2000, files={"settings.json": json.dumps({"auto_off_min": 1})})


def _esp32_steady():
    s = sh.Steps()
    s.start_program(sh.TENS_CONV).raise_level(4)
    s.wait(8000).press("up", hold_ms=60)
    s.wait(4000).press("stop")
    return sh.spec(s, s.t + 1500, board="esp32")


def _file(name, until_ms=None):
    def make():
        with open("host_tools/scenarios/%s.json" % name) as f:
            spec = json.load(f)
        if until_ms is not None:
            spec["duration_ms"] = until_ms
            spec["steps"] = [x for x in spec["steps"] if x["at_ms"] < until_ms]
        return spec
    return make


# (name, scenario, least fraction of ticks left out: a floor under the measured share, which
# moves with the phase of the 10 ms tick grid against the pulses - steady: 81.8 %, then 79.8 %
# once the boot's display probe moved the grid by about 1 ms)
CASES = [
    ("steady", _steady, 0.75),
    ("slow_trains", _slow_trains, 0.3),
    ("cycles_battery", _cycles_and_battery, 0.3),
    ("idle_menus", _idle_menus, 0.6),
    ("esp32", _esp32_steady, 0.6),
    ("resets", _session_with_resets, 0.2),
    ("demo_head", _demo_head, 0.0),
    ("gait", _file("gait"), 0.0),
    ("hold", _file("hold"), 0.0),
]


@pytest.mark.parametrize("make,min_left_out", [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_leaving_quiet_ticks_out_changes_nothing(make, min_left_out):
    spec = make()
    a, fast_run, diff = _compare(spec)
    assert diff == [], "ticks left out changed: %s" % diff
    ticks = spec["duration_ms"] // 10
    assert fast_run.ticks_left_out >= min_left_out * ticks, (fast_run.ticks_left_out, ticks)
    # the runs did something: pulses, frames
    assert len(a["frames"]) > 3


# -- mutants: broken variants of the skipping, each caught by a scenario above -------------------

class _NoCatchUp(scenario_core.Run):
    """The firmware is not told which ticks were left out (App.skipped not called)."""

    def _sk_end(self, app):
        self._sk_n = 0
        self._sk_fired = self.world.fired
        self._sk_from = self.world.now
        return False


class _InputsNotWatched(scenario_core.Run):
    """Callbacks that fire during a span (button contacts, steps) do not end it."""

    def _skip_hook(self, app, half):
        self._sk_fired = self.world.fired
        return scenario_core.Run._skip_hook(self, app, half)


class _NoHorizon(scenario_core.Run):
    """The firmware's horizon is ignored: any tick it calls quiet starts an endless span."""

    def _skip_hook(self, app, half):
        r = scenario_core.Run._skip_hook(self, app, half)
        self._sk_until = 1 << 60
        return r


class _HalfTicksToo(scenario_core.Run):
    """The half tick of a left-out tick is left out even when a button contact came."""

    def _skip_hook(self, app, half):
        if half:
            return True
        return scenario_core.Run._skip_hook(self, app, half)


class _AdcNotChecked(scenario_core.Run):
    """The ADC readings are not compared: a pulse the current sense would see goes unseen."""

    def _skip_hook(self, app, half):
        self._sk_reads = []
        r = scenario_core.Run._skip_hook(self, app, half)
        self._sk_reads = []
        return r


@pytest.mark.parametrize("cls,make", [(_NoCatchUp, _steady), (_InputsNotWatched, _steady),
                                      (_NoHorizon, _steady), (_HalfTicksToo, _steady),
                                      (_AdcNotChecked, _cycles_and_battery)],
                         ids=["no_catch_up", "inputs_not_watched", "no_horizon", "half_ticks",
                              "adc_not_checked"])
def test_mutants_of_the_skipping_are_caught(cls, make):
    _a, _run_, diff = _compare(make(), cls)
    assert diff, "%s gave the same run" % cls.__name__


# -- random sequences: button mashing and fault injections with quiet stretches between ---------

SKIP_FUZZ = int(os.environ.get("SIM_SKIP_SEQUENCES", "30"))
_quiet_gap = st.tuples(st.integers(min_value=800, max_value=4000),
                       st.tuples(st.just("press"), st.sampled_from(("up", "down", "ok")),
                                 st.just(60)))


@settings(max_examples=SKIP_FUZZ, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seq=st.lists(st.one_of(fuzz.action, _quiet_gap), min_size=3, max_size=18),
       start=st.one_of(st.none(), st.sampled_from([0, 2, 3, 4, 9, 10, 11, 18])),
       board=st.sampled_from(["pico", "pico", "esp32"]))
def test_random_sequences_give_the_same_run_both_ways(seq, start, board):
    steps, t = fuzz._steps(seq, start)
    spec = {"board": board, "duration_ms": t + 1500, "steps": steps,
            "files": {"settings.json": json.dumps({"first_sessions_half": False})}}
    _a, _fast, diff = _compare(spec)
    assert diff == [], "ticks left out changed: %s" % diff


@pytest.mark.parametrize("make", [_demo_head, _session_with_resets], ids=["demo", "resets"])
def test_the_streamed_outputs_are_the_same_bytes_both_ways(make, tmp_path):
    """The scenario runner's files (python -m host_tools.scenario, and with --every-tick):
    trace.json, pins.vcd and every OLED PNG are the same bytes."""
    import os

    spec = make()
    for name, skip in (("fast", True), ("every_tick", False)):
        scenario.run_spec(json.loads(json.dumps(spec)), str(tmp_path / name), skip=skip)
    a, b = tmp_path / "fast", tmp_path / "every_tick"
    assert (a / "trace.json").read_bytes() == (b / "trace.json").read_bytes()
    assert (a / "pins.vcd").read_bytes() == (b / "pins.vcd").read_bytes()
    pngs = sorted(os.listdir(a / "oled"))
    assert pngs == sorted(os.listdir(b / "oled")) and len(pngs) > 5
    for f in pngs:
        assert (a / "oled" / f).read_bytes() == (b / "oled" / f).read_bytes(), f
