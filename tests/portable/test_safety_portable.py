# Portable tests of firmware/safety.py: run by pytest (CPython) and by tests/mp_run.py on the
# MicroPython unix port. Plain functions with assert; no pytest features.
import sys

from tests import device_path  # noqa: F401  (firmware/ and lib/ on sys.path)
from tests.portable.fake_output import FakeBoard, FakeOutputStage, FakePin

import programs
import safety
import session

_IS_MPY = sys.implementation.name == "micropython"
TICK = 10


def _pulse(phase_us=300, rate_hz=50, burst_count=1, burst_rate_hz=None, gap_us=50):
    return {"phase_us": phase_us, "gap_us": gap_us, "rate_hz": rate_hz,
            "burst_count": burst_count, "burst_rate_hz": burst_rate_hz, "alternate": False}


class _Out:
    """A hand-made SessionOutput: fixed envelope and pulse."""

    def __init__(self, env=1.0, pulse=None, state="on"):
        self.state = state
        p = pulse or _pulse()
        self.envelope = [0.0, env, env]
        self.pulse = [None, p, dict(p)]


def _rig(caps=None, **kw):
    o = FakeOutputStage(**kw)
    sup = safety.SafetySupervisor(o, FakeBoard(), caps)
    return o, sup


def _raise_level(sup, ch, ma, t, out=None):
    """Press + every 100 ms until the level is ma, the loop ticking every 10 ms (apply and
    tick with a steady envelope of 1); returns the time."""
    out = out or _Out(1.0)
    for _ in range(200):
        if sup.user_level(ch) >= ma or sup.state != "running" or sup.channel_fault(ch):
            break
        for _ in range(10):
            t += TICK
            sup.apply(out, t)
            sup.tick(t)
        sup.set_user_level(ch, sup.user_level(ch) + 1, t)
    return t


def _run(sup, out, t, ms):
    end = t + ms
    faults = []
    while t < end:
        t += TICK
        sup.apply(out, t)
        faults.extend(sup.tick(t))
    return t, faults


def test_rule2_output_starts_at_zero_after_start():
    o, sup = _rig()
    sup.set_user_level(1, 1, 0)           # a press before start does not carry over
    assert sup.start(_Out().pulse, 0) is None
    assert sup.state == "running"
    assert sup.user_level(1) == 0 and sup.user_level(2) == 0
    assert o.amp[1] == 0 and o.amp[2] == 0
    sup.apply(_Out(1.0), 10)
    assert o.amp[1] == 0 and o.max_amp[1] == 0


def test_rule3_rise_limited_to_one_ma_per_step():
    o, sup = _rig()
    sup.start(_Out().pulse, 0)
    assert sup.set_user_level(1, 50, 100) == 1      # asked for 50, got one step
    assert sup.set_user_level(1, 50, 200) == 2
    sup.apply(_Out(1.0), 210)
    assert o.amp[1] == 2


def test_rule3_rise_rate_limited_to_ten_steps_per_second():
    o, sup = _rig()
    sup.start(_Out().pulse, 0)
    t = 0
    for _ in range(100):                 # 100 presses in one second (every 10 ms)
        t += 10
        sup.set_user_level(1, sup.user_level(1) + 1, t)
    assert sup.user_level(1) <= 10


def test_rule3_decrease_immediate():
    o, sup = _rig()
    sup.start(_Out().pulse, 0)
    t = _raise_level(sup, 1, 20, 0)
    sup.apply(_Out(1.0), t)
    assert o.amp[1] == 20
    assert sup.set_user_level(1, 3, t + 1) == 3     # 1 ms later: not rate limited
    sup.apply(_Out(1.0), t + 2)
    assert o.amp[1] == 3


def test_rule3_ramp_never_exceeds_user_level():
    o, sup = _rig()
    sup.start(_Out().pulse, 0)
    t = _raise_level(sup, 1, 12, 0)
    for env in (0.0, 0.5, 1.0, 1.5, 7.0, -1.0):     # a broken envelope above 1 is clamped
        sup.apply(_Out(env), t)
        assert 0 <= o.amp[1] <= 12
    assert o.max_amp[1] == 12


def test_caps_charge_and_rms_limit_delivered_amplitude():
    # 1000 us phases: 50 uC / 1000 us = 50 mA; 200 Hz: 50 / sqrt(2*1e-3*200) = 79 mA
    o, sup = _rig()
    out = _Out(1.0, _pulse(phase_us=1000, rate_hz=200, gap_us=50))
    out.pulse[2]["rate_hz"] = 5
    assert sup.start(out.pulse, 0) is None
    t = _raise_level(sup, 1, 90, 0, out)
    sup.apply(out, t)
    assert abs(o.amp[1] - 50.0) < 1e-6
    assert safety.charge_uc(o.amp[1], 1000) <= 50.0 + 1e-9


def test_rule4_stop_order_amplitude_then_pulses_then_enable():
    o, sup = _rig()
    sup.start(_Out().pulse, 0)
    t = _raise_level(sup, 1, 5, 0)
    sup.apply(_Out(1.0), t)
    o.log = []
    sup.stop("user")
    ops = [e[0] for e in o.log]
    assert ops == ["amp", "amp", "stop", "stop", "enable"], ops
    assert o.amp[1] == 0 and o.amp[2] == 0 and not o.enabled
    assert sup.user_level(1) == 0 and sup.state == "idle"


def test_rule4_emergency_off_does_not_allocate():
    o, sup = _rig()
    sup.start(_Out().pulse, 0)
    t = _raise_level(sup, 1, 5, 0)
    sup.apply(_Out(1.0), t)
    o.record = False
    if _IS_MPY:
        import micropython
        micropython.heap_lock()
        try:
            sup.emergency_off()
        finally:
            micropython.heap_unlock()
    else:
        sup.emergency_off()
    assert o.amp[1] == 0 and not o.pulsing[1] and not o.enabled
    assert sup.user_level(1) == 0


def test_rule5_open_circuit_stops_channel_within_bound():
    o, sup = _rig()
    out = _Out(1.0)
    sup.start(out.pulse, 0)
    t = _raise_level(sup, 1, 20, 0)
    t = _raise_level(sup, 2, 20, t)
    t, faults = _run(sup, out, t, 200)
    assert faults == []
    o.load_ohm[1] = None                         # electrode 1 comes off
    off_at = t
    bound = safety.electrode_detect_bound_ms(out.pulse[1])
    t, faults = _run(sup, out, t, bound)
    assert len(faults) == 1 and faults[0].kind == "open_circuit" and faults[0].channel == 1
    assert faults[0].t_ms - off_at <= bound
    assert o.amp[1] == 0 and not o.pulsing[1] and sup.user_level(1) == 0
    assert o.amp[2] == 20 and o.pulsing[2] and sup.state == "running"   # ch2 carries on
    # never restarts by itself: electrode back, more presses on ch1 are refused
    o.load_ohm[1] = 1000
    t, faults = _run(sup, out, t, 500)
    assert o.amp[1] == 0 and sup.set_user_level(1, 1, t + 200) == 0
    # rule 2 after reconnection: explicit rearm, level 0
    assert sup.rearm_channel(1, t)
    assert sup.user_level(1) == 0 and o.amp[1] == 0 and o.pulsing[1]


def test_rule5_cannot_reach_current_is_distinct():
    o, sup = _rig(load_ohm=4000)                 # 80 V / 4 kohm: only 20 mA reach the load
    out = _Out(1.0)
    sup.start(out.pulse, 0)
    t = _raise_level(sup, 1, 19, 0)
    t, faults = _run(sup, out, t, 200)
    assert faults == []                          # 19 mA is reachable
    t = _raise_level(sup, 1, 40, t)
    t, faults = _run(sup, out, t, 100)
    kinds = [f.kind for f in sup.faults]
    assert "cannot_reach_current" in kinds and "open_circuit" not in kinds
    assert o.amp[1] == 0


def test_rule5_over_current_stops_all_channels():
    o, sup = _rig()
    out = _Out(1.0)
    sup.start(out.pulse, 0)
    t = _raise_level(sup, 1, 10, 0)
    t, faults = _run(sup, out, t, 100)
    o.forced_ma[2] = 30.0                        # ch2 commanded 0 mA, sense reads 30 mA
    t, faults = _run(sup, out, t, 30)
    assert [f.kind for f in faults] == ["over_current"]
    assert sup.state == "fault" and not o.enabled
    assert o.amp[1] == 0 and o.amp[2] == 0


def test_rule5_timing_missed():
    o, sup = _rig()
    out = _Out(1.0)
    sup.start(out.pulse, 0)
    t = _raise_level(sup, 1, 10, 0)
    t, faults = _run(sup, out, t, 50)
    t += safety.MAX_LOOP_GAP_MS + 1
    faults = sup.tick(t)
    assert [f.kind for f in faults] == ["timing_missed"]
    assert sup.state == "fault" and not o.enabled and o.amp[1] == 0


def test_rule7_usb_refuses_start_and_stops_running():
    o, sup = _rig(usb=True)
    f = sup.start(_Out().pulse, 0)
    assert f is not None and f.kind == "usb_power" and not o.enabled
    o.usb = False
    assert sup.start(_Out().pulse, 0) is None and o.enabled
    o.usb = True
    faults = sup.tick(10)
    assert [x.kind for x in faults] == ["usb_power"] and not o.enabled


def test_rule7_low_battery_refuses_stops_and_warns_first():
    o, sup = _rig(battery_mv=3200)
    f = sup.start(_Out().pulse, 0)
    assert f.kind == "low_battery" and not o.enabled
    o.mv = 3400                                  # between cut-off and warning
    assert sup.start(_Out().pulse, 0) is None
    t, faults = _run(sup, _Out(1.0), 0, 200)
    assert [x.kind for x in faults] == ["low_battery_warning"] and sup.state == "running"
    o.mv = 3250
    t, faults = _run(sup, _Out(1.0), t, 200)
    assert [x.kind for x in faults] == ["low_battery"] and not o.enabled


def test_rule9_locked_changes_nothing():
    o, sup = _rig()
    sup.start(_Out().pulse, 0)
    t = _raise_level(sup, 1, 5, 0)
    sup.locked = True
    assert sup.set_user_level(1, 6, t + 500) == 5
    assert sup.set_user_level(1, 0, t + 600) == 5
    sup.stop("user")                             # STOP still works
    assert not o.enabled and o.amp[1] == 0
    sup.on_unlock()                              # rule 2: unlock -> zero
    assert not sup.locked and sup.user_level(1) == 0


def test_session_and_supervisor_follow_ramp_and_end():
    # a whole short session: amplitude follows level x envelope, ends at 0 with output off
    p = programs.Program("t", "T", 50, 250, on_s=2, off_s=2, ramp_up_s=1, ramp_down_s=1,
                         session_min=1)
    s = session.Session(p)
    o, sup = _rig()
    s.start(0)
    sup.start(s.tick(0).pulse, 0)
    t = 0
    while t < 61000:
        t += TICK
        if t < 3000:
            sup.set_user_level(1, 20, t)
        out = s.tick(t)
        sup.apply(out, t)
        sup.tick(t)
        assert o.amp[1] <= sup.user_level(1) * out.envelope[1] + 1e-9 or out.state == "done"
    assert out.state == "done" and sup.state == "idle" and not o.enabled and o.amp[1] == 0
    assert o.max_amp[1] == 20


# --- issue 9: STOP as a hard IRQ, STOP down blocks every start ------------------------------------

def test_stop_isr_only_cuts_and_flags_without_allocating():
    o, sup = _rig()
    pin = FakePin()
    sup.attach_stop(pin, True)
    handler, trigger, hard = pin.irq_args
    assert trigger == FakePin.IRQ_FALLING and hard is True
    assert sup.start(_Out().pulse, 0) is None
    t = _raise_level(sup, 1, 5, 0)
    sup.apply(_Out(), t)
    assert o.amp[1] > 0 and o.enabled
    o.record = False
    pin.level = 0
    if _IS_MPY:
        import micropython
        micropython.heap_lock()
        try:
            handler(pin)
        finally:
            micropython.heap_unlock()
    else:
        handler(pin)
    assert not o.enabled and o.amp[1] == 0 and o.cuts == 1
    assert o.pulsing[1]  # the IRQ does nothing else: the loop stops the pulses
    o.record = True
    sup.apply(_Out(), t + TICK)
    sup.tick(t + TICK)
    assert sup.state == "idle" and not o.pulsing[1] and sup.user_level(1) == 0


def test_stop_down_refuses_start_whatever_its_history():
    o, sup = _rig()
    pin = FakePin(level=0)  # held since before the supervisor existed: no edge ever came
    sup.attach_stop(pin, True)
    f = sup.start(_Out().pulse, 0)
    assert f is not None and f.kind == "stop_held"
    assert not o.enabled and sup.state != "running"
    pin.level = 1
    assert sup.start(_Out().pulse, 10) is None and o.enabled


def _stop_in(real, handler, pin, when):
    """real(*a) with the STOP edge landing in it: before the call (when None: a STOP while the
    pulses are configured) or after it when its argument is `when` (right after enable(True))."""

    def f(*a):
        if when is None:
            handler(pin)
        r = real(*a)
        if when is not None and a[0] == when:
            handler(pin)
        return r

    return f


def test_stop_during_start_wins_before_and_after_enable():
    for where in ("configure", "enable"):
        o, sup = _rig()
        pin = FakePin()
        sup.attach_stop(pin, True)
        handler = pin.irq_args[0]
        if where == "configure":
            o.configure_pulses = _stop_in(o.configure_pulses, handler, pin, None)
        else:
            o.enable = _stop_in(o.enable, handler, pin, True)
        f = sup.start(_Out().pulse, 0)
        assert f is not None and f.kind == "stop_held", where
        assert not o.enabled and sup.state != "running" and not o.pulsing[1], where
        if where == "configure":
            assert ("enable", 0, True) not in o.log  # never enabled, not even for a moment
