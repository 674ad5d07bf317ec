"""Switch-driven programs (firmware/session.py, firmware/app.py): gait FES (heel-off to heel-strike
plus extension, rise/fall ramps, the maximum on-time guard, the switch polarity) and
hold-to-stimulate; session-level tests first, then the whole firmware on both boards."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import json

import pytest

from tests import device_path  # noqa: F401

import programs
import session
from tests.scenario_harness import Steps, amplitude, enabled, level_at, run, spec

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


def _walk(board, nc=False, steps=6):
    """Gait FES at 12 mA, then a heel switch at 1 Hz: heel off 400 ms of every second."""
    files = dict(FULL)
    if nc:
        files["settings.json"] = json.dumps({"first_sessions_half": False, "switch_nc": True})
    heel_down = not nc                 # normally open: the heel closes the switch (pin low)
    s = Steps().add(trigger=heel_down, gap_ms=100).start_program(GAIT).raise_level(12).wait(1000)
    offs = []
    for _ in range(steps):
        t_off = s.t
        offs.append(t_off)
        s.add(trigger=not heel_down, gap_ms=400).add(trigger=heel_down, gap_ms=600)
    _, r = run(spec(s, s.t + 500, files, board=board))
    return r, offs


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
    r, offs = _walk(board)
    _window_check(r, offs)
    # the pulses played are the program's (400 us) and none broke the pulse rules
    p = r["channels"]["1"]["pulses"]
    assert p["phase_ns"] == [400_000] and p["violations"] == []
    # the output enable: up while the session runs (the supervisor keeps it on between steps,
    # DAC at 0: no current flows in stance, see docs/usage.md)
    assert any(v for _, v in enabled(r))


def test_gait_switch_polarity_setting_normally_closed(board):
    r, offs = _walk(board, nc=True, steps=3)
    _window_check(r, offs)


def test_hold_scenario_stimulation_follows_the_switch(board):
    p = programs.preset("sit_stand")
    rise = int(p.ramp_up_s * 1000)
    fall = int(p.ramp_down_s * 1000)
    s = Steps().start_program(SIT_STAND).raise_level(10).wait(1500)
    t_hold = s.t
    s.add(trigger=True, gap_ms=3000).add(trigger=False, gap_ms=3000)
    t_release = t_hold + 3000
    s.add(trigger=True, gap_ms=500).add(trigger=False, gap_ms=2000)
    t2 = t_release + 3000
    _, r = run(spec(s, s.t, FULL, board=board))
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
    assert all(ma == 0.0 for ma in lv(t2 + 500 + fall + DEBOUNCE, s.t))
