"""Switch-driven programs (firmware/session.py, firmware/app.py): gait FES (heel-off to heel-strike
plus extension, rise/fall ramps, the maximum on-time guard, the switch polarity) and
hold-to-stimulate; session-level tests first, then the whole firmware on both boards."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import json

import pytest

from tests import device_path  # noqa: F401
from tests.portable.fake_output import FakeBoard, FakeOutputStage

import programs
import safety
import session
from host_tools import scenario_core
from tests.scenario_harness import Steps, amplitude, enabled, events, level_at, run, screen_at, spec

TICK = 10


def _gait(rise=0.2, fall=0.2, ext=150, max_on=2, minutes=5):
    return programs.Program("g", "Gait", 30, 400, on_s=max_on, off_s=0, ramp_up_s=rise,
                            ramp_down_s=fall, session_min=minutes, trigger="gait",
                            extend_ms=ext)


def _hold(rise=1, fall=1, max_on=10):
    return programs.Program("h", "Hold", 35, 300, on_s=max_on, off_s=0, ramp_up_s=rise,
                            ramp_down_s=fall, session_min=5, trigger="hold")


def _play(s, heel_down, t0, t1):
    """Tick s from t0 to t1 with the switch given by heel_down(t); [(t, envelope ch1, state)]."""
    out = []
    for t in range(t0, t1, TICK):
        s.set_input(t, heel_down(t))
        o = s.tick(t)
        out.append((t, o.envelope[1], o.state))
    return out


def _cadence(period=1000, off_at=0, off_ms=400):
    """Heel switch at a cadence: the heel is off the ground for off_ms of every period."""
    return lambda t: not (off_at <= t % period < off_at + off_ms)


def test_gait_stimulates_from_heel_off_to_heel_strike_plus_extension_with_ramps():
    s = session.Session(_gait(rise=0.2, fall=0.2, ext=150))
    s.start(0)
    rec = _play(s, _cadence(off_at=500, off_ms=400), 0, 5000)  # heel off 500-900 ms each second
    for t, env, st in rec:
        if t < 500:
            assert env == 0.0
            continue
        k = (t - 500) % 1000                             # ms since the last heel-off
        if 400 + 150 + 200 <= k:                         # stance after the fall
            assert env == 0.0, (t, env, st)
        elif k < 200:                                    # rise 0.2 s from heel-off
            assert env == pytest.approx(k / 200), t
            assert st == "ramp_up" or k == 0 and env == 0
        elif k < 400 + 150:                              # swing + extension after heel strike
            assert env == 1.0 and st == "on", t
        else:                                            # the fall starts at strike + extension
            assert env == pytest.approx(1 - (k - 550) / 200), t
            assert st == "ramp_down"
    assert s.contractions == 5


@pytest.mark.parametrize("ext", [0, 250, 500])
def test_gait_extension_is_adjustable(ext):
    s = session.Session(_gait(rise=0, fall=0, ext=ext))
    s.start(0)
    rec = _play(s, _cadence(off_at=200, off_ms=300), 0, 2000)
    on = [t for t, env, _ in rec if env > 0 and t < 1000]
    assert on[0] == 200 and on[-1] == 500 + ext - TICK   # rise/fall 0: steps at the edges


def test_gait_max_on_time_guard_ramps_down_and_waits_for_the_next_heel_contact():
    s = session.Session(_gait(rise=0.2, fall=0.2, ext=150, max_on=2))
    s.start(0)
    # heel off at 1000 ms and never lands until 6000 ms; then a normal step at 7000 ms
    rec = _play(s, lambda t: not (1000 <= t < 6000 or 7000 <= t < 7400), 0, 9000)
    env = dict((t, e) for t, e, _ in rec)
    assert env[2900] == 1.0                      # on through a long swing ...
    assert env[3000] == 1.0                      # ... until the 2 s guard (heel-off + 2 s)
    assert 0 < env[3100] < 1.0                   # ramp down (0.2 s)
    assert all(env[t] == 0.0 for t in range(3200, 7000, TICK))  # waits, heel still off; no
    #                                            # extension when the heel finally lands at 6 s
    assert env[7100] > 0 and env[7300] == 1.0    # the next heel-off stimulates again
    assert s.contractions == 2


def test_gait_heel_lift_during_the_fall_rises_from_where_the_fall_was():
    s = session.Session(_gait(rise=1, fall=1, ext=0))
    s.start(0)
    # heel off 0-2000, strike at 2000, lifts again at 2500 (half way down the 1 s fall)
    rec = _play(s, lambda t: 2000 <= t < 2500, 0, 3500)
    env = dict((t, e) for t, e, _ in rec)
    assert env[2490] == pytest.approx(0.51, abs=0.011)
    assert env[2500] == pytest.approx(0.5, abs=0.011)     # no jump to 0 or 1
    assert env[2700] == pytest.approx(0.7, abs=0.011) and env[3000] == 1.0


def test_hold_follows_the_switch_with_ramps_and_a_max_hold():
    s = session.Session(_hold(rise=1, fall=1, max_on=3))
    s.start(0)
    held = lambda t: 1000 <= t < 2500 or 4000 <= t < 9000   # noqa: E731
    rec = _play(s, held, 0, 10000)
    env = dict((t, e) for t, e, _ in rec)
    assert env[990] == 0.0 and env[1500] == pytest.approx(0.5) and env[2400] == 1.0
    assert env[3000] == pytest.approx(0.5) and env[3500] == 0.0      # released at 2.5 s
    assert env[6990] == 1.0 and env[7500] == pytest.approx(0.5)     # max hold 3 s from 4 s
    assert env[8500] == 0.0 and env[9500] == 0.0                     # still held: waits
    assert s.contractions == 2


def test_switch_programs_restart_from_zero_after_pause():
    s = session.Session(_hold(rise=1, fall=1))
    s.start(0)
    _play(s, lambda t: True, 0, 1500)
    s.pause(1500)
    s.resume(3000)
    rec = _play(s, lambda t: True, 3000, 3600)
    assert rec[0][1] == 0.0 and rec[-1][1] == pytest.approx(0.59, abs=0.011)


# --- the supervisor while a switch-driven session waits (firmware/safety.py park_on_wait) -------

class _StopPin:
    IRQ_FALLING = 2

    def __init__(self):
        self.level = 1

    def value(self):
        return self.level

    def irq(self, handler=None, trigger=0, hard=False):
        self.handler = handler


class _Out:
    def __init__(self, state, env):
        self.state = state
        self.envelope = [0.0, env, env]
        self.pulse = [None] + [{"phase_us": 400, "gap_us": 50, "rate_hz": 30, "burst_count": 1,
                                "burst_rate_hz": None, "alternate": False} for _ in (1, 2)]


def _parked_sup(stage=None):
    o = stage or FakeOutputStage()
    sup = safety.SafetySupervisor(o, FakeBoard())
    pin = _StopPin()
    sup.attach_stop(pin)
    sup.park_on_wait = True
    wait = _Out("waiting_trigger", 0.0)
    assert sup.start(wait.pulse, 0) is None
    sup.set_user_level(1, 1, 0)
    return o, sup, pin, wait


def test_supervisor_parks_while_waiting_and_keeps_the_level():
    o, sup, _, wait = _parked_sup()
    assert sup.state == "running" and sup.waiting
    assert not o.enabled and o.pulsing == {1: False, 2: False}  # a parked start enables nothing
    sup.apply(_Out("ramp_up", 0.5), 10)
    assert o.enabled and o.pulsing == {1: True, 2: True} and o.amp[1] == 0.5
    sup.apply(wait, 20)
    assert (sup.state, sup.waiting, o.enabled, o.pulsing, o.amp) == (
        "running", True, False, {1: False, 2: False}, {1: 0, 2: 0})
    assert sup.user_level(1) == 1.0                         # the next step plays it again
    assert sup.tick(30) == ()                               # parked: nothing to fault on
    sup.apply(_Out("on", 1.0), 40)
    assert o.enabled and o.amp[1] == 1.0


def test_supervisor_a_stop_that_comes_while_enabling_wins():
    class StopWhileEnabling(FakeOutputStage):
        def enable(self, on):
            FakeOutputStage.enable(self, on)
            if on:
                pin.level = 0                               # STOP pressed right then
    o, sup, pin, _ = _parked_sup(StopWhileEnabling())
    sup.apply(_Out("ramp_up", 0.5), 10)
    assert (sup.state, sup.stop_reason, o.enabled, o.pulsing, o.amp) == (
        "idle", "stop_button", False, {1: False, 2: False}, {1: 0, 2: 0})


def test_supervisor_leaving_the_wait_checks_usb_and_battery_as_a_start_does():
    o, sup, _, _ = _parked_sup()
    o.usb = True
    sup.apply(_Out("ramp_up", 0.5), 10)
    assert sup.state == "fault" and sup.faults[-1].kind == "usb_power"
    o2, sup2, _, _ = _parked_sup()
    o2.mv = 3000                                            # below the cut-off
    sup2.apply(_Out("ramp_up", 0.5), 10)
    assert sup2.state == "fault" and sup2.faults[-1].kind == "low_battery"
    assert ("enable", 0, True) not in o.log + o2.log        # never enabled, not for a moment


# --- the whole firmware: the foot switch on board.TRIGGER (closed = heel on the ground) ---------

FULL = {"settings.json": json.dumps({"first_sessions_half": False})}
GAIT = [p.key for p in programs.PRESETS].index("gait_fes")
SIT_STAND = [p.key for p in programs.PRESETS].index("sit_stand")
G = programs.preset("gait_fes")
RISE, FALL, EXT = int(G.ramp_up_s * 1000), int(G.ramp_down_s * 1000), G.extend_ms
DEBOUNCE = 40   # the app's switch debounce (2 ticks of 10 ms) plus a tick of sampling


def _edges(result, pin):
    return [(t, v) for t, v in result["pins"][str(pin)]] if "pins" in result else None


@pytest.fixture(params=["pico", "esp32"])
def board(request):
    return request.param


def _walk(board, nc=False, steps=6, stance=None, tail_ms=500):
    """Gait FES at 12 mA, then a heel switch at 1 Hz: heel off 400 ms of every second.
    stance(s, t_off): adds steps during a stance (at t_off + 850 ms: the fall is over and the
    session waits for the next heel-off). Returns (trace dict, heel-off times, the run)."""
    files = dict(FULL)
    if nc:
        files["settings.json"] = json.dumps({"first_sessions_half": False, "switch_nc": True})
    heel_down = not nc                 # normally open: the heel closes the switch (pin low)
    s = Steps().add(trigger=heel_down, gap_ms=100).start_program(GAIT).raise_level(12).wait(1000)
    offs = []
    for i in range(steps):
        t_off = s.t
        offs.append(t_off)
        s.add(trigger=not heel_down, gap_ms=400).add(trigger=heel_down, gap_ms=600)
        if stance is not None:
            stance(s, i, t_off)
    run_obj, r = run(spec(s, s.t + tail_ms, files, board=board))
    return r, offs, run_obj


def _window_check(r, offs):
    a = amplitude(r, 1)
    for t, ma in a:
        if ma > 0:
            k = [o for o in offs if o <= t]
            assert k, t
            o = k[-1]                   # stimulation only from heel-off to strike + ext + fall
            assert o <= t <= o + 400 + EXT + FALL + DEBOUNCE, (t, ma, o)
    for o in offs:
        # sampled every 10 ms (the record holds changes only)
        for t in range(o + RISE + DEBOUNCE, o + 400 + EXT + 1, 10):
            assert level_at(a, t) >= 11.9, (o, t)    # the user's level, swing + extension
        for t in range(o + 400 + EXT + FALL + DEBOUNCE, o + 1000, 10):
            assert level_at(a, t) == 0.0, (o, t)     # stance: nothing
        rise = [level_at(a, t) for t in range(o, o + RISE + DEBOUNCE, 5)]
        assert any(0 < ma < 11.9 for ma in rise), "no rise ramp after heel-off at %d" % o
        fall = [level_at(a, t) for t in range(o + 400 + EXT, o + 400 + EXT + FALL + DEBOUNCE, 5)]
        assert any(0 < ma < 11.9 for ma in fall), "no fall ramp after strike + ext at %d" % o
        assert any(0 < ma < 6 for ma in fall) and any(6 <= ma < 11.9 for ma in fall)  # a ramp
    return a


def test_gait_scenario_1hz_heel_switch_stimulates_only_from_heel_off_to_strike_plus_ext(board):
    r, offs, _ = _walk(board)
    _window_check(r, offs)
    # the pulses played are the program's (400 us) and none broke the pulse rules
    p = r["channels"]["1"]["pulses"]
    assert p["phase_ns"] == [400_000] and p["violations"] == []
    assert events(r, "fault") == []    # each new rise starts its electrode checks afresh


def test_gait_switch_polarity_setting_normally_closed(board):
    r, offs, run_obj = _walk(board, nc=True, steps=3)
    _window_check(r, offs)
    _enable_window_check(r, offs, run_obj)


# --- the output stage is off while the session waits for the switch ---------------------------

def _pin_ms(run_obj, pin):
    """[[t_ms, level]] of one GPIO over the whole run."""
    hz = run_obj.trace.boots[0][2].sys_hz
    return [[c * 1000 / hz, bool(v)] for c, v in scenario_core.merged_edges(run_obj.trace, pin)]


def _leg_rises(run_obj, ch):
    """Times (ms) of the rising edges of both legs of a channel: the pulses played."""
    legs = run_obj.board.CHANNELS[ch]
    return sorted(t for pin in (legs["leg_a"], legs["leg_b"])
                  for t, v in _pin_ms(run_obj, pin)[1:] if v)


def _output_mark(run_obj, t_ms):
    """The run screen's output-active mark (screens.output_mark at x 100, y 0) lit at t_ms."""
    px = [f for t, f in run_obj.trace.frames if t <= t_ms][-1]
    return px[3][103] == 1 and px[0][103] == 1


def _running_from(r):
    return [e["t_ms"] for e in events(r, "output") if e["state"] == "running"][0]


def _enable_window_check(r, offs, run_obj):
    """Enable and the output LED high from heel-off (+ the switch debounce) through swing,
    extension and fall; low, with no pulse on either channel, from the end of the fall until
    the next heel-off and before the first one."""
    en = enabled(r)
    led = _pin_ms(run_obj, run_obj.board.OUTPUT_LED)
    pulses = _leg_rises(run_obj, 1) + _leg_rises(run_obj, 2)
    stance = [(_running_from(r), offs[0])]
    for o in offs:
        for t in range(o + DEBOUNCE, o + 400 + EXT + FALL, 10):
            assert level_at(en, t) is True and level_at(led, t) is True, (o, t)
        stance.append((o + 400 + EXT + FALL + DEBOUNCE, o + 1000))
    for t0, t1 in stance:
        for t in range(t0, t1, 10):
            assert level_at(en, t) is False and level_at(led, t) is False, (t0, t)
        assert [t for t in pulses if t0 <= t < t1] == [], (t0, t1)
    assert any(o < t < o + 400 for o in offs for t in pulses)      # swing: pulses play


def test_gait_enable_and_led_are_low_from_strike_plus_ext_plus_fall_to_the_next_heel_off(board):
    r, offs, run_obj = _walk(board)
    _enable_window_check(r, offs, run_obj)
    # the run screen says the session waits (not that it stopped), with 0 mA flowing of 12, and
    # shows the output mark (a diamond at x 100-106 of row 0) only while the output is enabled
    for o in offs:
        rows = screen_at(r, o + 950)
        assert rows[1].startswith("waiting") and "0.0mA of  12" in rows[3], rows
        assert _output_mark(run_obj, o + 300) and not _output_mark(run_obj, o + 950), o
    assert [e["state"] for e in events(r, "output")][-1] == "running"


def test_gait_stop_pressed_while_waiting_keeps_everything_off(board):
    def stance(s, i, t_off):
        if i == 1:
            s.at(t_off + 850).press("stop", gap_ms=150).at(t_off + 1000)
    r, offs, run_obj = _walk(board, steps=5, stance=stance)
    t_stop = offs[1] + 850
    assert level_at(enabled(r), t_stop - 10) is False           # it was waiting
    assert max(level_at(amplitude(r, 1), t) for t in range(offs[1], t_stop, 10)) >= 11.9
    # after STOP: three more heel-offs, nothing at all
    assert [v for t, v in enabled(r) if t >= t_stop] in ([], [False])
    assert [ma for t, ma in amplitude(r, 1) if t >= t_stop] in ([], [0.0])
    assert [t for t in _leg_rises(run_obj, 1) + _leg_rises(run_obj, 2) if t >= t_stop] == []
    idle = [e["t_ms"] for e in events(r, "output") if e["state"] == "idle"]
    assert idle and t_stop <= idle[-1] <= t_stop + 60
    assert "Stopped" in screen_at(r, offs[2] + 200)


def test_gait_electrode_pulled_while_waiting_is_found_at_the_next_rise_within_the_bound(board):
    """Pulled in stance (output off: nothing can see it), found by the first pulses of the next
    swing within the bound of docs/safety.md counted from the first pulse commanded (the first
    non-zero DAC step of the rise): electrode_detect_bound_ms (30 Hz: 74 ms)."""
    def stance(s, i, t_off):
        if i == 1:
            s.at(t_off + 850).add(electrode={"channel": 1, "connected": False}, gap_ms=0)
            s.at(t_off + 1000)
    r, offs, _ = _walk(board, steps=4, stance=stance)
    t_pull = offs[1] + 850
    faults = events(r, "fault")
    assert [(f["fault"], f["channel"]) for f in faults] == [("open_circuit", 1)]
    a = amplitude(r, 1)
    t_first = min(t for t, ma in a if t > t_pull and ma > 0)    # the next rise's first step
    assert offs[2] < t_first < offs[2] + DEBOUNCE + 20
    bound = safety.electrode_detect_bound_ms({"phase_us": G.phase_us, "rate_hz": G.rate_hz})
    assert bound == 74
    assert 0 < faults[0]["t_ms"] - t_first <= bound, (faults[0]["t_ms"] - t_first, bound)
    assert level_at(a, faults[0]["t_ms"] + 10) == 0.0           # channel 1 stopped ...
    assert [ma for t, ma in a if t > faults[0]["t_ms"] + 10] in ([], [0.0])   # ... and stays
    rows = screen_at(r, offs[3] + 200)
    assert rows[1:3] == ["Electrode off", "channel 1"], rows         # the alert says which


def test_gait_history_counts_the_swings_not_the_stance(board):
    """Ten steps (0.75 s of stimulation each), then 60 s standing still, then STOP: the record
    holds the ~8 s stimulated (0.1 min), not the ~70 s the session ran."""
    def stance(s, i, t_off):
        if i == 9:
            s.wait(60000).press("stop")
    _, _, run_obj = _walk(board, steps=10, stance=stance)
    hist = json.loads(run_obj.flash.read_all().get("/history.json", b"[]"))
    assert [(h["program"], h["end"], h["minutes"]) for h in hist] == [("gait_fes", "stop", 0.1)]
    assert hist[0]["max_ma"] == [12.0, 0.0] and hist[0]["contractions"] == 10


SS = programs.preset("sit_stand")
SS_RISE, SS_FALL = int(SS.ramp_up_s * 1000), int(SS.ramp_down_s * 1000)


def _hold_run(board):
    """Sit-to-stand at 10 mA: the switch held 3 s, let go 3 s, held 0.5 s, let go."""
    s = Steps().start_program(SIT_STAND).raise_level(10).wait(1500)
    t_hold = s.t
    s.add(trigger=True, gap_ms=3000).add(trigger=False, gap_ms=3000)
    t_release = t_hold + 3000
    s.add(trigger=True, gap_ms=500).add(trigger=False, gap_ms=2000)
    t2 = t_release + 3000
    run_obj, r = run(spec(s, s.t, FULL, board=board))
    return r, run_obj, t_hold, t_release, t2, s.t


def test_hold_scenario_stimulation_follows_the_switch(board):
    rise, fall = SS_RISE, SS_FALL
    r, _, t_hold, t_release, t2, end = _hold_run(board)
    a = amplitude(r, 1)

    def lv(t0, t1):
        return [level_at(a, t) for t in range(t0, t1, 10)]
    assert max(lv(0, t_hold)) == 0.0                               # level set, switch not held
    assert any(3 < ma < 7 for ma in lv(t_hold, t_hold + rise + DEBOUNCE))  # ramp up while held
    assert all(9.9 <= ma <= 10.1 for ma in lv(t_hold + rise + DEBOUNCE, t_release))
    assert any(3 < ma < 7 for ma in lv(t_release, t_release + fall + DEBOUNCE))  # ramp down
    assert all(ma == 0.0 for ma in lv(t_release + fall + DEBOUNCE, t2))
    short = lv(t2, t2 + 500 + fall + DEBOUNCE)
    assert 0 < max(short) < 10                                     # a short hold: part way up
    assert all(ma == 0.0 for ma in lv(t2 + 500 + fall + DEBOUNCE, end))


def test_hold_enable_and_led_follow_the_switch(board):
    """Enable and the output LED: low until the switch is held, high while held and through
    the fall after it is let go, low (no pulse) until the next hold."""
    r, run_obj, t_hold, t_release, t2, end = _hold_run(board)
    en = enabled(r)
    led = _pin_ms(run_obj, run_obj.board.OUTPUT_LED)
    pulses = _leg_rises(run_obj, 1) + _leg_rises(run_obj, 2)

    def on(t0, t1):
        return {(level_at(en, t), level_at(led, t)) for t in range(t0, t1, 10)}
    off = [(_running_from(r), t_hold), (t_release + SS_FALL + DEBOUNCE, t2),
           (t2 + 500 + SS_FALL + DEBOUNCE, end)]
    for t0, t1 in off:
        assert on(t0, t1) == {(False, False)}, (t0, t1)
        assert [t for t in pulses if t0 <= t < t1] == [], (t0, t1)
    assert on(t_hold + DEBOUNCE, t_release + SS_FALL) == {(True, True)}
    assert on(t2 + DEBOUNCE, t2 + 500) == {(True, True)}
