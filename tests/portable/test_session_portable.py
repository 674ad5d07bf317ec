# Portable tests of firmware/session.py (and programs.py): run by pytest (CPython) and by
# tests/mp_run.py on the MicroPython unix port. Plain functions with assert; no pytest features.
from tests import device_path  # noqa: F401  (firmware/ and lib/ on sys.path)

import programs
import session

TICK = 10


def _burst_prog():
    """A burst-triggered program (the EMG-triggered kind): 1 s up, 2.5 s on, 1 s down."""
    return programs.Program("burst", "Burst", 30, 400, on_s=2.5, off_s=2.5, ramp_up_s=1,
                            ramp_down_s=1, session_min=30, triggered=True)


def _prog(**kw):
    args = dict(on_s=4, off_s=6, ramp_up_s=2, ramp_down_s=2, session_min=5)
    args.update(kw)
    return programs.Program("t", "Test", 50, 300, **args)


def _walk(s, t0, t1, step=TICK):
    """Yield (t, state, env1, env2) every step ms."""
    t = t0
    while t <= t1:
        o = s.tick(t)
        yield t, o.state, o.envelope[1], o.envelope[2]
        t += step


def test_all_presets_valid():
    keys = []
    for p in programs.PRESETS:
        p.validate(preset=True)
        assert p.source and len(p.name) <= 16
        keys.append(p.key)
    assert len(keys) == len(set(keys))
    for k in ("tens_burst", "russian", "tens_mod", "foot_drop", "shoulder"):
        assert programs.preset(k) is not None


def test_work_cycle_ramp_on_ramp_down_off():
    s = session.Session(_prog())
    s.start(0)
    seen = {}
    for t, st, e1, e2 in _walk(s, 0, 13999):
        seen.setdefault(st, t)
        assert e1 == e2                                  # sync
    assert seen["ramp_up"] == 0 and seen["on"] == 2000
    assert seen["ramp_down"] == 6000 and seen["off"] == 8000
    assert abs(s.tick(1000).envelope[1] - 0.5) < 1e-9
    assert s.tick(14000).state == "ramp_up"              # the next cycle


def test_rule8_session_ends_by_itself_with_ramp_down():
    s = session.Session(_prog(on_s=60, off_s=10, session_min=1))   # on at the end of the timer
    s.start(0)
    o = s.tick(57000)
    assert o.state == "on" and o.envelope[1] == 1.0
    o = s.tick(59000)
    assert o.state == "ramp_down" and abs(o.envelope[1] - 0.5) < 1e-9
    assert o.remaining_ms == 1000
    o = s.tick(60000)
    assert o.state == "done" and o.envelope[1] == 0.0 and o.remaining_ms == 0
    assert s.tick(70000).state == "done"                 # and stays done


def test_envelope_never_jumps_up():
    # every preset, with pauses and resumes: a rise per 10 ms tick is never more than a ramp step
    for p in programs.PRESETS:
        s = session.Session(p)
        s.start(0)
        prev = [0.0, 0.0, 0.0]
        max_rise = TICK / (min(p.ramp_up_s, p.ramp_down_s) * 1000.0) + 1e-9
        t = 0
        n = 0
        while t < 200000:
            if n % 1500 == 700:
                s.pause(t)
            if n % 1500 == 900:
                s.resume(t)
            if p.triggered and n % 400 == 1:
                s.trigger(t)
            o = s.tick(t)
            for ch in (1, 2):
                e = o.envelope[ch]
                assert 0.0 <= e <= 1.0, (p.key, t, e)
                assert e - prev[ch] <= max_rise, (p.key, t, o.state, prev[ch], e)
                prev[ch] = e
            t += TICK
            n += 1


def test_pause_drops_to_zero_and_resume_ramps_up():
    s = session.Session(_prog())
    s.start(0)
    assert s.tick(3000).envelope[1] == 1.0
    s.pause(3000)
    o = s.tick(3010)
    assert o.state == "paused" and o.envelope[1] == 0.0 and o.envelope[2] == 0.0
    left = o.remaining_ms
    assert s.tick(60000).remaining_ms == left            # timer frozen while paused
    s.resume(60000)
    o = s.tick(60000)
    assert o.state == "ramp_up" and o.envelope[1] == 0.0
    o = s.tick(61000)
    assert o.state == "ramp_up" and abs(o.envelope[1] - 0.5) < 1e-9


def test_warmup_low_rate_trapezoid():
    p = _prog(warmup_s=20, cooldown_s=20)
    s = session.Session(p)
    s.start(0)
    o = s.tick(0)
    assert o.state == "warmup" and o.envelope[1] == 0.0
    assert o.pulse[1]["rate_hz"] == session.WARMUP_RATE_HZ
    assert abs(s.tick(1000).envelope[1] - 0.25) < 1e-9
    assert s.tick(10000).envelope[1] == session.WARMUP_ENVELOPE
    assert s.tick(20000).state == "ramp_up" and s.tick(20000).envelope[1] == 0.0
    assert s.tick(20000).pulse[1]["rate_hz"] == 50
    o = s.tick(5 * 60000 - 10000)
    assert o.state == "cooldown" and o.pulse[1]["rate_hz"] == session.WARMUP_RATE_HZ
    assert s.tick(5 * 60000 - 10).envelope[1] < 0.01


def test_alternating_ch2_works_while_ch1_rests():
    p = _prog(mode="alternating", on_s=4, off_s=8, ramp_up_s=1, ramp_down_s=1)
    s = session.Session(p)
    s.start(0)
    for t, _st, e1, e2 in _walk(s, 0, 40000, 50):
        assert e1 == 0.0 or e2 == 0.0, (t, e1, e2)      # never both working
    o = s.tick(8000)        # ch1 resting (off from 6 s), ch2 on (starts at 6 s, on from 7 s)
    assert o.channel_state[1] == "off" and o.channel_state[2] == "on"


def test_reciprocal_ch2_ramps_up_as_ch1_ramps_down():
    p = programs.Program("recip", "Recip", 30, 250, on_s=10, off_s=10, session_min=30,
                         mode="reciprocal")
    s = session.Session(p)
    s.start(0)
    o = s.tick(13000)       # ch1: 2 s up, 10 s on, ramp down 12-14 s
    assert o.channel_state[1] == "ramp_down" and o.channel_state[2] == "ramp_up"
    assert abs(o.envelope[1] - 0.5) < 1e-9 and abs(o.envelope[2] - 0.5) < 1e-9


def test_triggered_fes_one_burst_per_trigger():
    s = session.Session(_burst_prog())   # 1 s up, 2.5 s on, 1 s down
    s.start(0)
    o = s.tick(500)
    assert o.state == "waiting_trigger" and o.envelope[1] == 0.0
    assert s.trigger(1000)
    assert s.tick(1500).state == "ramp_up"
    assert not s.trigger(2000)                           # ignored during the burst
    assert s.tick(3000).state == "on"
    assert s.tick(5000).state == "ramp_down"
    o = s.tick(5600)
    assert o.state == "waiting_trigger" and o.envelope[1] == 0.0
    assert s.trigger(6000) and s.tick(6500).envelope[1] > 0


def test_burst_tens_and_russian_pulse_params():
    s = session.Session(programs.preset("tens_burst"))
    s.start(0)
    d = s.tick(5000).pulse[1]
    assert d["rate_hz"] == 100 and d["burst_rate_hz"] == 2 and d["burst_count"] == 10
    s = session.Session(programs.preset("russian"))
    s.start(0)
    d = s.tick(61000).pulse[1]       # after the 60 s warm-up
    assert d["rate_hz"] == 2500 and d["burst_count"] == 25 and d["burst_rate_hz"] == 50
    assert d["phase_us"] == 198      # 2.5 kHz: current flows 2 x 198 of every 400 us


def test_modulated_tens_stays_within_limits():
    p = programs.preset("tens_mod")
    s = session.Session(p)
    s.start(0)
    rates = []
    for t in range(0, 3000, TICK):
        d = s.tick(t).pulse[1]
        assert 50 <= d["rate_hz"] <= 100 and 100 <= d["phase_us"] <= 200
        assert 20 <= d["phase_us"] <= 1000 and 0.5 <= d["rate_hz"] <= 200
        rates.append(d["rate_hz"])
    assert min(rates) == 50 and max(rates) == 100


def test_tick_reuses_output_object():
    s = session.Session(_prog())
    s.start(0)
    a = s.tick(0)
    env = a.envelope
    pulse1 = a.pulse[1]
    b = s.tick(5000)
    assert a is b and b.envelope is env and b.pulse[1] is pulse1


def test_intensity_scale_half_for_first_sessions():
    s = session.Session(_prog(), intensity_scale=0.5)
    s.start(0)
    assert s.tick(3000).envelope[1] == 0.5


def test_program_roundtrip_and_rejects():
    for p in programs.PRESETS:
        q = programs.Program.from_dict(p.to_dict())
        assert q.to_dict() == p.to_dict()
    bad = (dict(phase_us=10), dict(phase_us=1200), dict(rate_hz=0.2), dict(rate_hz=250),
           dict(on_s=1), dict(on_s=100), dict(off_s=-1), dict(off_s=91), dict(ramp_up_s=0.5),
           dict(ramp_down_s=9), dict(mode="random"), dict(burst_count=10, burst_rate_hz=2,
                                                         rate_hz=3000))
    for change in bad:
        d = programs.custom_default().to_dict()
        d.update(change)
        try:
            programs.Program.from_dict(d)
        except ValueError as e:
            assert str(e)
        else:
            raise AssertionError("accepted %r" % (change,))


def test_ticks_wraparound():
    import time
    if hasattr(time, "ticks_add"):       # MicroPython: the port's own ticks period
        start = time.ticks_add(0, -1000)
        later = time.ticks_add(start, 3000)
    else:                                # CPython: the device period, 2**30
        start = (1 << 30) - 1000
        later = (start + 3000) % (1 << 30)
    assert later < start
    s = session.Session(_prog())
    s.start(start)
    o = s.tick(later)
    assert o.state == "on" and o.elapsed_ms == 3000


def test_gait_and_hold_ticks_allocate_nothing_when_flat():
    # on MicroPython floats are boxed: the switch modes' flat parts (waiting, on) must allocate
    # nothing per tick (ramps may); on CPython only the behaviour half runs
    import gc
    mp = hasattr(gc, "mem_alloc")
    gait = programs.Program("g", "G", 30, 400, on_s=2, off_s=0, ramp_up_s=0.2,
                            ramp_down_s=0.2, session_min=5, trigger="gait", extend_ms=150)
    hold = programs.Program("h", "H", 35, 300, on_s=10, off_s=0, ramp_up_s=1, ramp_down_s=1,
                            session_min=5, trigger="hold")
    for prog, pressed_on in ((gait, False), (hold, True)):
        for scale in (1.0, 0.5):
            s = session.Session(prog, intensity_scale=scale)
            s.start(0)
            worst = {}
            if mp:
                # one collection, then none during the run (a 32 MB heap holds the ramps'
                # floats): each tick's own allocation is the growth of mem_alloc across it
                gc.collect()
                gc.disable()
            for t in range(0, 4000, TICK):
                on = 1000 <= t < 2500
                s.set_input(t, pressed_on if on else not pressed_on)
                m0 = gc.mem_alloc() if mp else 0
                o = s.tick(t)
                a = gc.mem_alloc() - m0 if mp else 0
                st = o.state
                if st in ("on", "waiting_trigger"):
                    worst[st] = max(worst.get(st, 0), a)
            if mp:
                gc.enable()
            assert set(worst) == {"on", "waiting_trigger"}, worst
            assert worst["on"] == 0 and worst["waiting_trigger"] == 0, (prog.key, scale, worst)
