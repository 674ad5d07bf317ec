"""Programs on the whole firmware: triggered FES (foot drop), reciprocal two-channel program."""
import json

from tests.scenario_harness import Steps, amplitude, run, spec

FULL = {"settings.json": json.dumps({"first_sessions_half": False})}
FOOT_DROP = 7  # programs.PRESETS index: triggered, 30 Hz, 400 us, 1 s ramp, 2.5 s on
SHOULDER = 5  # reciprocal: channel 2 ramps up while channel 1 ramps down


def test_foot_drop_fes_stimulates_only_on_a_trigger_with_a_ramped_burst():
    s = Steps().start_program(FOOT_DROP).raise_level(12).wait(3000)
    t_trigger = s.t
    s.add(trigger=True, gap_ms=200).add(trigger=False, gap_ms=8000)
    _, r = run(spec(s, s.t, FULL))
    a = amplitude(r, 1)
    before = [ma for t, ma in a if t < t_trigger]
    assert max(before) == 0.0  # waiting for the foot switch: level set, nothing delivered
    burst = [(t, ma) for t, ma in a if t_trigger <= t < t_trigger + 7000]
    peak = max(ma for _, ma in burst)
    assert 11.9 <= peak <= 12.1  # the level the user set, reached by the ramp
    t_peak = min(t for t, ma in burst if ma == peak)
    assert t_peak - t_trigger >= 900  # ramped up over the program's 1 s, not a jump
    rises = [b[1] - a_[1] for a_, b in zip(burst, burst[1:], strict=False) if b[1] > a_[1]]
    assert max(rises) < 3.0
    assert burst[-1][1] == 0.0  # and back to zero after the burst
    p = r["channels"]["1"]["pulses"]
    assert p["phase_ns"] == [400_000] and p["violations"] == []


def test_reciprocal_program_overlaps_the_two_channels():
    s = Steps().start_program(SHOULDER).raise_level(10)
    s.press("ok", gap_ms=300)  # select channel 2
    s.raise_level(10).wait(30000)
    _, r = run(spec(s, s.t, FULL))
    a1, a2 = amplitude(r, 1), amplitude(r, 2)
    assert max(ma for _, ma in a1) > 9 and max(ma for _, ma in a2) > 9
    # somewhere channel 2 is rising while channel 1 is falling (overlapping ramps)
    def slope(rec, t):
        before = [ma for tt, ma in rec if t - 300 <= tt < t]
        after = [ma for tt, ma in rec if t <= tt < t + 300]
        if not before or not after:
            return 0
        return after[-1] - before[0]
    overlap = [t for t in range(8000, s.t, 100) if slope(a1, t) < -0.5 and slope(a2, t) > 0.5]
    assert overlap, "no moment with channel 1 ramping down while channel 2 ramps up"
