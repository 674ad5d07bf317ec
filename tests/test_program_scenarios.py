"""Programs on the whole firmware: the cyclic foot-drop exercise, shoulder subluxation (both
channels together), a reciprocal two-channel program, Russian current's bursts."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import json

from tests import device_path  # noqa: F401

import programs as _p
from tests.scenario_harness import Steps, amplitude, run, spec

FULL = {"settings.json": json.dumps({"first_sessions_half": False})}
KEYS = [p.key for p in _p.PRESETS]
FOOT_DROP = KEYS.index("foot_drop")  # cyclic exercise: 30 Hz, 400 us, 1 s ramps, 2.5/2.5 s
SHOULDER = KEYS.index("shoulder")    # sync: both channels contract together (Faghri 1994)
RECIP = json.dumps([{
    "key": "recip", "name": "Recip", "rate_hz": 30, "phase_us": 250, "on_s": 10, "off_s": 10,
    "ramp_up_s": 2, "ramp_down_s": 2, "session_min": 30, "mode": "reciprocal"}])


def test_foot_drop_exercise_is_cyclic_2_5_s_on_2_5_s_off():
    s = Steps().start_program(FOOT_DROP).raise_level(12)
    t0 = s.t
    s.wait(20000)
    _, r = run(spec(s, s.t, FULL))
    a = amplitude(r, 1)
    # full level reached in several separate contractions, 1 + 2.5 + 1 + 2.5 = 7 s apart
    starts = [t for (_, m0), (t, ma) in zip(a, a[1:], strict=False)
              if t > t0 and ma >= 11.9 > m0]
    assert len(starts) >= 2
    assert all(abs((b - a_) - 7000) <= 50 for a_, b in zip(starts, starts[1:], strict=False))
    p = r["channels"]["1"]["pulses"]
    assert p["phase_ns"] == [400_000] and p["violations"] == []


def test_shoulder_contracts_both_channels_together():
    s = Steps().start_program(SHOULDER).raise_level(10)
    s.press("ok", gap_ms=300)  # select channel 2
    s.raise_level(10).wait(30000)
    _, r = run(spec(s, s.t, FULL))
    a1, a2 = amplitude(r, 1), amplitude(r, 2)
    assert max(ma for _, ma in a1) > 9 and max(ma for _, ma in a2) > 9

    def level(rec, t):
        v = 0.0
        for tt, ma in rec:
            if tt > t:
                break
            v = ma
        return v
    t_both = s.t - 30000 + 500
    on1 = [t for t in range(t_both, s.t, 100) if level(a1, t) > 9]
    on2 = [t for t in range(t_both, s.t, 100) if level(a2, t) > 9]
    assert on1 and on1 == on2          # channel 2 is at its level exactly when channel 1 is


def test_reciprocal_program_overlaps_the_two_channels():
    files = dict(FULL, **{"programs.json": RECIP})
    s = Steps().start_program(len(KEYS)).raise_level(10)
    s.press("ok", gap_ms=300)  # select channel 2
    s.raise_level(10).wait(30000)
    _, r = run(spec(s, s.t, files))
    a1, a2 = amplitude(r, 1), amplitude(r, 2)
    assert max(ma for _, ma in a1) > 9 and max(ma for _, ma in a2) > 9

    def slope(rec, t):
        before = [ma for tt, ma in rec if t - 300 <= tt < t]
        after = [ma for tt, ma in rec if t <= tt < t + 300]
        if not before or not after:
            return 0
        return after[-1] - before[0]
    overlap = [t for t in range(8000, s.t, 100) if slope(a1, t) < -0.5 and slope(a2, t) > 0.5]
    assert overlap, "no moment with channel 1 ramping down while channel 2 ramps up"
