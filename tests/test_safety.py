"""firmware/safety.py: one test per docs/safety.md rule the supervisor enforces, plus a hypothesis
property test: random presses, envelopes, pulse parameters and current readings never take the
commanded amplitude above any cap or start above 0."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import device_path  # noqa: F401
from tests.portable.fake_output import FakeBoard, FakeOutputStage

import programs
import safety
import session

TICK = 10


def pulse(phase_us=300, rate_hz=50, burst_count=1, burst_rate_hz=None, gap_us=50):
    return {"phase_us": phase_us, "gap_us": gap_us, "rate_hz": rate_hz,
            "burst_count": burst_count, "burst_rate_hz": burst_rate_hz, "alternate": False}


class Out:
    def __init__(self, env=1.0, p=None, state="on"):
        p = p or pulse()
        self.state = state
        self.envelope = [0.0, env, env]
        self.pulse = [None, p, dict(p)]


def rig(caps=None, **kw):
    o = FakeOutputStage(**kw)
    return o, safety.SafetySupervisor(o, FakeBoard(), caps)


def loop(sup, out, t, ms, press=None):
    """Run the app loop order (apply, tick) every 10 ms; press = (ch, target) pressed every
    100 ms. Returns (t, faults)."""
    faults = []
    end = t + ms
    while t < end:
        t += TICK
        if press and t % 100 == 0:
            ch, target = press
            sup.set_user_level(ch, min(target, sup.user_level(ch) + 1), t)
        sup.apply(out, t)
        faults += sup.tick(t)
    return t, faults


# --- output limits -----------------------------------------------------------------------------

def test_caps_peak_board_max_100ma():
    o, sup = rig()
    out = Out(1.0, pulse(phase_us=100, rate_hz=10))
    sup.start(out.pulse, 0)
    loop(sup, out, 0, 15000, press=(1, 150))
    assert sup.user_level(1) == 100 and o.max_amp[1] == 100


def test_caps_clinician_cap_per_channel():
    o, sup = rig(caps={"cap_ma": [30, 60]})
    out = Out(1.0, pulse(phase_us=100, rate_hz=10))
    sup.start(out.pulse, 0)
    t, _ = loop(sup, out, 0, 8000, press=(1, 80))
    loop(sup, out, t, 8000, press=(2, 80))
    assert o.max_amp[1] == 30 and o.max_amp[2] == 60
    sup.set_caps({"cap_ma": [20, 60]})                  # lowering a cap takes effect at once
    sup.apply(out, t + 8010)
    assert o.amp[1] == 20 and sup.user_level(1) == 20


def test_caps_charge_per_phase_default_50uc_absolute_100uc():
    assert safety.max_ma_for_charge(1000) == 50
    assert safety.max_ma_for_charge(500) == 100
    assert safety.max_ma_for_charge(1000, 400) == 100      # never above 100 uC
    o, sup = rig(caps={"charge_cap_uc": 100})
    out = Out(1.0, pulse(phase_us=1000, rate_hz=20))
    sup.start(out.pulse, 0)
    loop(sup, out, 0, 12000, press=(1, 100))
    assert safety.charge_uc(o.max_amp[1], 1000) <= 100 + 1e-9


def test_caps_rms_50ma_with_enraf_formula():
    # 1000 us, 200 Hz: I_rms = I_peak * sqrt(2 * 0.001 * 200) -> max 50 / 0.632 = 79 mA
    lim = safety.max_ma_for_rms(1000, 200)
    assert lim == pytest.approx(50 / math.sqrt(0.4))
    o, sup = rig(caps={"charge_cap_uc": 100})
    out = Out(1.0, pulse(phase_us=1000, rate_hz=200))
    sup.start(out.pulse, 0)
    loop(sup, out, 0, 12000, press=(1, 100))
    assert o.max_amp[1] == pytest.approx(lim)
    assert safety.rms_ma(o.max_amp[1], 1000, 200) == pytest.approx(50)


def test_caps_rms_uses_average_rate_of_bursts():
    russian = pulse(phase_us=100, rate_hz=2500, burst_count=25, burst_rate_hz=50)
    assert safety.average_rate_hz(russian) == 1250
    assert safety.max_ma_for_rms(100, 1250) == pytest.approx(100)
    assert safety.pulse_limit_ma(russian) == pytest.approx(100)
    wide = pulse(phase_us=200, rate_hz=2500, burst_count=25, burst_rate_hz=50)
    assert safety.pulse_limit_ma(wide) == pytest.approx(50 / math.sqrt(2 * 200e-6 * 1250))


def test_energy_per_pulse_into_500_ohm_reported_far_below_300mj():
    assert safety.energy_per_pulse_mj(100, 1000) == pytest.approx(10.0)
    for p in programs.PRESETS:
        e = safety.energy_per_pulse_mj(100, p.phase_us)
        assert e < safety.ENERGY_LIMIT_MJ / 10


@pytest.mark.parametrize("bad", [pulse(phase_us=19), pulse(phase_us=1001), pulse(rate_hz=0.4),
                                 pulse(rate_hz=201), pulse(rate_hz=2600, burst_count=10,
                                                           burst_rate_hz=2),
                                 pulse(rate_hz=100, burst_count=10, burst_rate_hz=201),
                                 pulse(phase_us="300"), pulse(rate_hz=float("nan"))])
def test_caps_phase_and_rate_ranges_refuse_start(bad):
    o, sup = rig()
    f = sup.start([None, bad, bad], 0)
    assert f.kind == "invalid_params" and not o.enabled and sup.state != "running"


def test_caps_invalid_params_mid_session_stop_output():
    o, sup = rig()
    out = Out(1.0)
    sup.start(out.pulse, 0)
    t, _ = loop(sup, out, 0, 1000, press=(1, 10))
    out.pulse[1]["phase_us"] = 5000
    sup.apply(out, t + 10)
    assert sup.state == "fault" and not o.enabled and o.amp[1] == 0


def test_every_preset_starts_and_configures_its_pulses():
    for p in programs.PRESETS:
        o, sup = rig()
        s = session.Session(p)
        s.start(0)
        assert sup.start(s.tick(0).pulse, 0) is None, p.key
        assert o.plans[1]["phase_us"] == p.phase_us


# --- behaviour rules -------------------------------------------------------------------------

def test_rule2_output_starts_at_zero_after_pause():
    o, sup = rig()
    out = Out(1.0)
    sup.start(out.pulse, 0)
    t, _ = loop(sup, out, 0, 2000, press=(1, 15))
    assert o.amp[1] == 15
    out.state = "paused"
    out.envelope[1] = out.envelope[2] = 0.0
    t, _ = loop(sup, out, t, 100)
    out.state = "ramp_up"
    out.envelope[1] = 1.0
    sup.apply(out, t + 10)
    assert sup.user_level(1) == 0 and o.amp[1] == 0


def test_rule2_output_starts_at_zero_after_program_change_fault_and_unlock():
    o, sup = rig()
    out = Out(1.0)
    sup.start(out.pulse, 0)
    t, _ = loop(sup, out, 0, 1000, press=(1, 8))
    sup.on_program_change()
    assert sup.user_level(1) == 0
    t, _ = loop(sup, out, t, 1000, press=(1, 8))
    sup.on_unlock()
    assert sup.user_level(1) == 0
    t, _ = loop(sup, out, t, 1000, press=(1, 8))
    o.forced_ma[1] = 60.0
    t, faults = loop(sup, out, t, 50)
    assert faults and sup.user_level(1) == 0 and o.amp[1] == 0
    sup.acknowledge()
    o.forced_ma[1] = None
    assert sup.start(out.pulse, t) is None and sup.user_level(1) == 0 and o.amp[1] == 0


def test_rule3_first_command_after_start_is_zero_and_rises_by_steps():
    o, sup = rig()
    out = Out(1.0)
    sup.start(out.pulse, 0)
    loop(sup, out, 0, 3000, press=(1, 20))
    amps = [v for (op, ch, v) in o.log if op == "amp" and ch == 1]
    assert amps[0] == 0
    for a, b in zip(amps, amps[1:], strict=False):
        assert b - a <= 1.0 + 1e-9


def test_rule4_stop_from_any_state_leaves_everything_off():
    for state in ("idle", "running", "fault"):
        o, sup = rig()
        if state != "idle":
            sup.start(Out().pulse, 0)
        if state == "fault":
            sup.tick(500)                        # a missed loop -> fault
        sup.stop()
        assert not o.enabled and o.amp == {1: 0, 2: 0} and o.pulsing == {1: False, 2: False}


def test_rule5_no_false_open_circuit_at_low_rate_with_peak_hold():
    # 2 Hz: the peak detector (20 ms hold) reads the current only just after each pulse
    o, sup = rig()
    out = Out(1.0, pulse(rate_hz=2))
    sup.start(out.pulse, 0)
    t = 0
    faults = []
    for _ in range(800):
        t += TICK
        if t % 100 == 0 and t < 3000:
            sup.set_user_level(1, sup.user_level(1) + 1, t)
        sup.apply(out, t)
        o.forced_ma[1] = o.amp[1] if t % 500 < 20 else 0.0
        faults += sup.tick(t)
    assert faults == [] and o.amp[1] > 5
    # now the electrode comes off: detected within the published bound
    bound = safety.electrode_detect_bound_ms(out.pulse[1])
    assert bound == 20 + 500 + 10 + 10  # hold + (one period + margin) + one tick
    off_at = t
    for _ in range(200):
        t += TICK
        sup.apply(out, t)
        o.forced_ma[1] = 0.0
        faults += sup.tick(t)
    assert [f.kind for f in faults] == ["open_circuit"]
    assert faults[0].t_ms - off_at <= bound


def test_rule5_faulted_channel_never_restarts_by_itself():
    o, sup = rig()
    out = Out(1.0)
    sup.start(out.pulse, 0)
    t, _ = loop(sup, out, 0, 1000, press=(1, 10))
    o.load_ohm[1] = None
    t, faults = loop(sup, out, t, 200)
    assert sup.channel_fault(1) == "open_circuit"
    o.load_ohm[1] = 1000
    t, faults = loop(sup, out, t, 5000, press=(1, 10))
    assert o.amp[1] == 0 and not o.pulsing[1]


def test_rule5_both_channels_off_means_fault_state_and_output_disabled():
    o, sup = rig()
    out = Out(1.0)
    sup.start(out.pulse, 0)
    t, _ = loop(sup, out, 0, 1000, press=(1, 10))
    t, _ = loop(sup, out, t, 1000, press=(2, 10))
    o.load_ohm[1] = o.load_ohm[2] = None
    t, faults = loop(sup, out, t, 200)
    assert sorted(f.channel for f in faults) == [1, 2]
    assert sup.state == "fault" and not o.enabled


def test_rule5_published_bounds():
    assert safety.electrode_detect_bound_ms(pulse(rate_hz=100)) == 50
    assert safety.electrode_detect_bound_ms(pulse(rate_hz=50)) == 50
    russian = pulse(phase_us=100, rate_hz=2500, burst_count=25, burst_rate_hz=50)
    assert safety.electrode_detect_bound_ms(russian) == 50
    # one pulse period + 50 ms at every rate, 500 ms at 4 Hz and above (issue 9)
    for hz in (0.5, 1, 2, 3, 4, 5, 10, 25, 40, 50, 67, 100, 200):
        period = math.ceil(1000 / hz)
        bound = safety.electrode_detect_bound_ms(pulse(rate_hz=hz))
        assert bound <= period + 50 and (hz < 4 or bound <= 500), hz
    assert safety.MAX_LOOP_GAP_MS == 100 and safety.DEBOUNCE_TICKS == 3


def test_rule5_brief_glitch_is_debounced():
    o, sup = rig()
    out = Out(1.0, pulse(rate_hz=100))
    sup.start(out.pulse, 0)
    t, _ = loop(sup, out, 0, 1000, press=(1, 10))
    o.forced_ma[1] = 0.0                      # two ticks of nothing, then fine again
    t, f1 = loop(sup, out, t, 20)
    o.forced_ma[1] = 40.0                     # two ticks of over current
    t, f2 = loop(sup, out, t, 20)
    o.forced_ma[1] = None
    t, f3 = loop(sup, out, t, 500)
    assert f1 == f2 == f3 == [] and sup.state == "running"


def test_rule7_usb_plugged_mid_session_stops_within_one_tick():
    o, sup = rig()
    out = Out(1.0)
    sup.start(out.pulse, 0)
    t, _ = loop(sup, out, 0, 500, press=(1, 5))
    o.usb = True
    faults = sup.tick(t + 10)
    assert [f.kind for f in faults] == ["usb_power"] and not o.enabled and o.amp[1] == 0


def test_rule7_power_checks_fall_back_to_board():
    class Board(FakeBoard):
        def usb_present(self):
            return True

    class Stage:                      # an output stage without power sensing
        def __getattr__(self, name):
            if name in ("usb_present", "battery_mv"):
                raise AttributeError(name)
            return getattr(self._o, name)

    o = Stage()
    o._o = FakeOutputStage()
    sup = safety.SafetySupervisor(o, Board())
    assert sup.start(Out().pulse, 0).kind == "usb_power"


# --- property test ---------------------------------------------------------------------------

step = st.tuples(
    st.sampled_from([1, 2]),                                  # channel pressed
    st.one_of(st.floats(min_value=-5, max_value=200), st.just(float("nan"))),  # level asked
    st.integers(min_value=1, max_value=120),                  # ms until the next loop tick
    st.one_of(st.floats(min_value=-0.5, max_value=1.5), st.just(float("nan"))),  # envelope
    st.one_of(st.none(), st.floats(min_value=0, max_value=150)),  # current-sense reading
    st.sampled_from(["on", "on", "on", "paused", "ramp_up"]),
)
pulses = st.sampled_from([pulse(), pulse(phase_us=1000, rate_hz=200), pulse(phase_us=20),
                          pulse(phase_us=100, rate_hz=2500, burst_count=25, burst_rate_hz=50),
                          pulse(phase_us=400, rate_hz=150), pulse(phase_us=800, rate_hz=2)])
caps = st.fixed_dictionaries({
    "cap_ma": st.lists(st.integers(min_value=0, max_value=150), min_size=2, max_size=2),
    "charge_cap_uc": st.floats(min_value=1, max_value=300),
    "rms_ma": st.floats(min_value=1, max_value=100)})


@settings(max_examples=150, deadline=None)
@given(caps, pulses, st.lists(step, max_size=120), st.booleans())
def test_property_commanded_amplitude_never_exceeds_any_cap(cap, p, steps, locked_midway):
    o, sup = rig(caps=cap)
    out = Out(1.0, p)
    assert sup.start(out.pulse, 0) is None
    assert o.amp == {1: 0, 2: 0}                              # never starts above 0
    ch_cap = [None, min(cap["cap_ma"][0], 100), min(cap["cap_ma"][1], 100)]
    charge = min(cap["charge_cap_uc"], 100)
    rms = min(cap["rms_ma"], 50)
    lim = min(100, charge * 1000 / p["phase_us"],
              rms / math.sqrt(2 * p["phase_us"] * 1e-6 * safety.average_rate_hz(p)))
    t = 0
    last_rise = {1: -1000, 2: -1000}
    for i, (ch, ma, dt, env, reading, state) in enumerate(steps):
        if locked_midway and i == len(steps) // 2:
            sup.locked = True
        before = sup.user_level(ch)
        kept = sup.set_user_level(ch, ma, t)
        if kept > before:                                     # rule 3
            assert kept - before <= 1.0 + 1e-9 and t - last_rise[ch] >= 100
            assert not sup.locked
            last_rise[ch] = t
        t += dt
        out.state = state
        out.envelope[1] = out.envelope[2] = env
        o.forced_ma[1] = reading
        sup.apply(out, t)
        sup.tick(t)
        for c in (1, 2):
            a = o.amp[c]
            assert 0 <= a <= ch_cap[c] + 1e-9 and a <= lim + 1e-9
            assert a <= sup.user_level(c) + 1e-9 or a == 0
            assert safety.charge_uc(a, p["phase_us"]) <= 100 + 1e-9
            assert safety.rms_ma(a, p["phase_us"], safety.average_rate_hz(p)) <= 50 + 1e-6
        if sup.state != "running":
            assert o.amp == {1: 0, 2: 0} and not o.enabled


def test_rule5_a_late_tick_that_misses_a_pulse_is_not_an_open_circuit():
    # 2 Hz: the reading shows each pulse for 20 ms. A loop tick 50 ms late (under the 100 ms
    # timing fault) can miss a whole pulse's reading: that proves nothing about the electrode.
    o, sup = rig()
    out = Out(1.0, pulse(rate_hz=2))
    sup.start(out.pulse, 0)
    t = 0
    faults = []
    while t < 3000:
        t += TICK
        if t % 100 == 0:
            sup.set_user_level(1, min(10, sup.user_level(1) + 1), t)
        sup.apply(out, t)
        o.forced_ma[1] = o.amp[1] if t % 500 < 20 else 0.0
        faults += sup.tick(t)
    assert faults == [] and o.amp[1] == 10
    for late in (3480, 3530, 4000, 4500):   # skips the reading of the pulse at 3500
        while t < late:
            t = t + TICK if t + TICK <= 3470 or t >= 3530 else late
            sup.apply(out, t)
            o.forced_ma[1] = o.amp[1] if t % 500 < 20 else 0.0
            faults += sup.tick(t)
    assert faults == [] and sup.state == "running"
    # the electrode really comes off: still found at the next pulse
    o.forced_ma[1] = 0.0
    off_at = t
    for _ in range(100):
        t += TICK
        sup.apply(out, t)
        faults += sup.tick(t)
    assert [f.kind for f in faults] == ["open_circuit"]
    assert faults[0].t_ms - off_at <= safety.electrode_detect_bound_ms(out.pulse[1])
