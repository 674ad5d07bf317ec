"""firmware/session.py: the program engine, with property tests over random control sequences."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import device_path  # noqa: F401

import programs
import session

TICK = 10
PRESETS = programs.PRESETS



def _burst_prog():
    """A burst-triggered program (the EMG-triggered kind): 1 s up, 2.5 s on, 1 s down."""
    return programs.Program("burst", "Burst", 30, 400, on_s=2.5, off_s=2.5, ramp_up_s=1,
                            ramp_down_s=1, session_min=30, triggered=True)

def _short(p, minutes=2):
    """A copy of a preset with a short timer (keeps warm-up/cool-down when they fit)."""
    d = p.to_dict()
    d["session_min"] = minutes
    d["warmup_s"] = min(d["warmup_s"], 20)
    d["cooldown_s"] = min(d["cooldown_s"], 20)
    return programs.Program.from_dict(d)


@pytest.mark.parametrize("p", PRESETS, ids=lambda p: p.key)
def test_rule8_every_preset_ends_by_itself_with_its_ramp_down(p):
    q = _short(p)
    s = session.Session(q)
    s.start(0)
    total = int(q.session_min * 60000)
    work_end = total - int(q.cooldown_s * 1000)
    if q.triggered:
        s.trigger(work_end - 1500)
    last = None
    for t in range(0, total + 1000, TICK):
        o = s.tick(t)
        if work_end - 1 <= t < work_end + 1 and q.cooldown_s == 0:
            assert o.envelope[1] <= TICK / (q.ramp_down_s * 1000) + 1e-9
        last = o
    assert last.state == "done" and last.envelope[1] == 0 and last.envelope[2] == 0
    assert last.remaining_ms == 0


@pytest.mark.parametrize("p", PRESETS, ids=lambda p: p.key)
def test_modulated_and_burst_pulse_params_within_safety_limits(p):
    s = session.Session(_short(p))
    s.start(0)
    for t in range(0, 120000, 50):
        d = s.tick(t).pulse[1]
        assert 20 <= d["phase_us"] <= 1000
        if d["burst_count"] > 1:
            assert d["rate_hz"] <= 2500 and 0.5 <= d["burst_rate_hz"] <= 200
        else:
            assert 0.5 <= d["rate_hz"] <= 200
        assert d["phase_us"] <= p.phase_us and d["rate_hz"] <= p.rate_hz


@pytest.mark.parametrize("p", PRESETS, ids=lambda p: p.key)
def test_warmup_and_cooldown_use_the_low_rate(p):
    q = _short(p)
    s = session.Session(q)
    s.start(0)
    if q.warmup_s:
        o = s.tick(5000)
        assert o.state == "warmup" and o.pulse[1]["rate_hz"] <= session.WARMUP_RATE_HZ
        assert o.pulse[1]["burst_count"] == 1
        assert o.envelope[1] <= session.WARMUP_ENVELOPE


events = st.lists(
    st.tuples(st.integers(min_value=1, max_value=20000),
              st.sampled_from(["pause", "resume", "trigger", "none"])),
    max_size=25)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(PRESETS), events, st.sampled_from([0.5, 1.0]))
def test_property_envelope_bounded_never_jumps_and_pause_is_zero(p, evs, scale):
    q = _short(p, minutes=1)
    s = session.Session(q, intensity_scale=scale)
    s.start(0)
    max_rise = scale * TICK / (min(q.ramp_up_s, q.ramp_down_s) * 1000.0) + 1e-9
    prev = [0.0, 0.0, 0.0]
    t = 0
    remaining = None
    total = int(q.session_min * 60000)
    for dt, ev in evs + [(0, "resume"), (total + 60000, "none")]:
        end = t + dt
        while t < end:
            t += TICK
            o = s.tick(t)
            for ch in (1, 2):
                e = o.envelope[ch]
                assert 0.0 <= e <= scale + 1e-12
                assert e - prev[ch] <= max_rise, (q.key, t, o.state, prev[ch], e)
                prev[ch] = e
            if o.state in ("paused", "done", "waiting_trigger"):
                assert o.envelope[1] == 0 and o.envelope[2] == 0
            if remaining is not None:
                assert o.remaining_ms <= remaining
            remaining = o.remaining_ms
            if o.state == "done":
                break
        if ev == "pause":
            s.pause(t)
        elif ev == "resume":
            s.resume(t)
        elif ev == "trigger":
            s.trigger(t)
    assert s.tick(t + 10).state == "done"


def test_stop_ends_the_session_at_once():
    s = session.Session(programs.preset("quad_acl"))
    s.start(0)
    assert s.tick(70000).envelope[1] > 0
    s.stop(70000)
    o = s.tick(70010)
    assert o.state == "done" and o.envelope[1] == 0


def test_resume_in_warmup_ramps_in_again():
    s = session.Session(programs.preset("quad_acl"))    # 60 s warm-up, ramp up 2 s
    s.start(0)
    assert s.tick(30000).envelope[1] == session.WARMUP_ENVELOPE
    s.pause(30000)
    s.resume(40000)
    assert s.tick(40000).envelope[1] == 0.0
    assert s.tick(41000).envelope[1] == pytest.approx(session.WARMUP_ENVELOPE / 2)
    assert s.tick(42000).envelope[1] == session.WARMUP_ENVELOPE


def test_triggered_pause_cancels_the_burst():
    s = session.Session(_burst_prog())
    s.start(0)
    s.trigger(100)
    assert s.tick(2000).state == "on"
    s.pause(2000)
    s.resume(3000)
    o = s.tick(3000)
    assert o.state == "waiting_trigger" and o.envelope[1] == 0


def test_continuous_program_stays_on_until_final_ramp():
    p = _short(programs.preset("tens_conv"), minutes=1)
    s = session.Session(p)
    s.start(0)
    assert s.tick(1000).state == "ramp_up"
    o = s.tick(30000)
    assert o.state == "on" and o.envelope[1] == 1.0
    assert o.countdown_ms == 60000 - 2000 - 30000        # until the final ramp starts
    assert s.tick(59000).state == "ramp_down"


def test_session_rejects_bad_arguments():
    with pytest.raises(ValueError):
        session.Session(programs.preset("quad_acl"), intensity_scale=1.5)
    with pytest.raises(ValueError):
        session.Session(programs.preset("quad_acl"), channels=3)
    bad = programs.custom_default()
    bad.phase_us = 5
    with pytest.raises(ValueError):
        session.Session(bad)


def test_idle_before_start():
    s = session.Session(programs.preset("quad_acl"))
    o = s.tick(1234)
    assert o.state == "idle" and o.envelope[1] == 0
