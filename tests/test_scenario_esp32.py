"""The whole firmware on the ESP32 board (RMT pulse engine) through the demo scenario: the
program's 5 Hz warm-up, then 50 Hz work on both channels. Going to work gives both channels a new
rate at the same main-loop tick; a stale swap-window check in lib/pulse_rmt.py once made the
second swap busy-wait a whole 5 Hz iteration (202 ms) and the supervisor raised timing_missed
(loop gap 205 ms > 100 ms)."""
import collections
import json
import os

import pytest

from host_tools import pulse_analysis, scenario, scenario_core

DEMO = os.path.join(os.path.dirname(__file__), "..", "host_tools", "scenarios", "demo.json")


@pytest.fixture(scope="module")
def demo_esp32():
    with open(DEMO) as f:
        spec = json.load(f)
    spec["board"] = "esp32"
    spec["duration_ms"] = 70_000  # past the warm-up -> work switch (about 64.5 s)
    return scenario.run_spec(spec, None, png=False)


def test_demo_on_esp32_warmup_to_work_raises_no_fault(demo_esp32):
    run, r = demo_esp32
    assert [e for e in r["events"] if e["kind"] == "fault"] == []
    assert [e["reason"] for e in r["events"] if e["kind"] == "boot"] == ["power_on"]
    states = [e["state"] for e in r["events"] if e["kind"] == "session"]
    assert states[:3] == ["none", "warmup", "ramp_up"]
    for boot in run.trace.boots:
        assert boot[2].events == []  # no rmt_disable busy-wait long enough for the IWDT


def test_demo_on_esp32_both_channels_switch_from_5_to_50_hz_with_whole_pulses(demo_esp32):
    run, r = demo_esp32
    t_work = [e["t_ms"] for e in r["events"]
              if e["kind"] == "session" and e["state"] == "ramp_up"][0]  # end of the warm-up
    b = run.trace.board
    hz = run.trace.boots[0][2].sys_hz
    for n in (1, 2):
        c = b.CHANNELS[n]
        pulses, violations = pulse_analysis.analyse(
            scenario_core.merged_edges(run.trace, c["leg_a"]),
            scenario_core.merged_edges(run.trace, c["leg_b"]))
        assert violations == [] and all(p.balanced() for p in pulses)
        periods_ms = [(pulses[i + 1].start - pulses[i].start) * 1000 / hz
                      for i in range(len(pulses) - 1)]
        assert set(round(p) for p in periods_ms) == {200, 20}, collections.Counter(periods_ms)
        first_fast = pulses[[round(p) for p in periods_ms].index(20)].start * 1000 // hz
        # the new rate lands at a 5 Hz loop boundary: at most two old iterations after the switch
        assert t_work <= first_fast + 1 and first_fast <= t_work + 2 * 200 + 5
