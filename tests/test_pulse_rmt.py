"""The ESP32 RMT pulse engine, proven on the simulated pins (edges in 80 MHz RMT source cycles,
12.5 ns). Mirrors tests/test_pulse_pio.py; the differences are the chip's: the gap needs the dead
time plus the skew tolerance, updates land at loop boundaries with the rest stretched by the
restart, and the timing quantum grows for slow trains whose pattern would not fit the RMT memory."""
import pytest

from host_tools import pulse_analysis
from tests.prng import Rng
from tests.pulse_harness import Rig, check_train


@pytest.fixture()
def rig():
    return Rig("esp32")


def _highs(durs, levels, offset):
    out = []
    t = offset
    for i in range(len(durs)):
        d, v = durs[i], levels[i]
        if v:
            if out and out[-1][1] == t:
                out[-1] = (out[-1][0], t + d)
            else:
                out.append((t, t + d))
        t += d
    return out, t


# --- by construction ------------------------------------------------------------------------

def test_board_is_esp32_and_world_counts_rmt_source_cycles(rig):
    import machine

    assert rig.board.PULSE_ENGINE == "pulse_rmt"
    assert rig.w.sys_hz == 80_000_000 and machine.freq() == 240_000_000
    ch = rig.channel(1)
    assert ch.sys_hz == 80_000_000


def test_patterns_never_overlap_fit_memory_and_respect_the_halves_limit(rig):
    """For many requests: leg A's and leg B's RMT patterns, with B shifted by the modelled start
    skew, never have both legs high, keep every gap >= dead time + tolerance, and fit the memory."""
    eng = rig.engine
    ch = rig.channel(1)
    rnd = Rng(5)
    from tests.pulse_harness import random_request

    checked = 0
    while checked < 300:
        req = random_request(rnd)
        try:
            pat = ch._choose(req["phase_us"], req["gap_us"], req["rate_hz"],
                             req.get("burst_count", 1), req.get("burst_rate_hz"),
                             req.get("alternate", False))
        except ValueError:
            continue
        checked += 1
        d = pat.div
        assert d in eng.DIVIDERS
        for durs in (pat.dur_a, pat.dur_b):
            assert len(durs) % 2 == 0
            assert len(durs) // 2 + 1 <= ch.num_symbols
            assert all(1 <= x <= 32767 for x in durs)
        skew = (ch.skew_cycles + d // 2) // d
        ha, la = _highs(pat.dur_a, pat.lvl_a, 0)
        hb, lb = _highs(pat.dur_b, pat.lvl_b, skew)
        assert la == lb - skew == pat.length_ticks
        # periodic: compare against B's highs one iteration earlier/later too
        hb_all = [(s + k * la, e + k * la) for k in (-1, 0, 1) for s, e in hb]
        min_gap = (ch.min_gap_ns * 80 // 1000 + d - 1) // d
        for s, e in ha:
            assert e - s == pat.plan.phase_cycles // d
            for s2, e2 in hb_all:
                assert e <= s2 - 0 or e2 <= s, "legs overlap"
                if e <= s2:
                    assert s2 - e >= min_gap or s2 - e > pat.plan.gap_cycles // d
        assert len(ha) == len(hb)


# --- timing from captured edges --------------------------------------------------------------

TIMING_CASES = [
    (300, 50, 50),
    (20, 2, 200),  # shortest phase, smallest gap the board allows, fastest rate
    (1000, 1000, 0.5),  # longest everything, slowest rate (coarser tick)
    (250, 100, 35),
    (400, 20, 30),
    (50.0125, 3.3375, 150),  # quantised to 12.5 ns
]


@pytest.mark.parametrize("phase_us,gap_us,rate_hz", TIMING_CASES)
def test_edges_match_the_quantised_plan_to_the_cycle(rig, phase_us, gap_us, rate_hz):
    ch = rig.channel(1)
    plan = ch.set(phase_us=phase_us, gap_us=gap_us, rate_hz=rate_hz)
    q = ch._pattern.div
    assert abs(plan.phase_ns * 1000 - phase_us * 1_000_000) <= q * 12_500 // 2 + 1
    ch.start()
    n_expected = 5
    rig.run_cycles(plan.period_cycles * n_expected)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert len(pulses) == n_expected
    assert check_train(pulses, plan) == []
    assert pulses[0].first_leg == "A"
    assert rig.w.events == []  # no long rmt_disable busy-wait


def test_finest_tick_for_normal_trains_coarser_only_for_slow_ones(rig):
    ch = rig.channel(1)
    ch.set(phase_us=300, gap_us=50, rate_hz=20)
    assert ch._pattern.div == 1  # 12.5 ns
    ch.set(phase_us=300, gap_us=50, rate_hz=0.5, alternate=True)
    assert ch._pattern.div > 1


def test_legs_low_at_start_and_after_stop_and_stop_is_immediate(rig):
    ch = rig.channel(1)
    ch.set(phase_us=500, gap_us=100, rate_hz=100)
    a, b = rig.legs(1)
    assert a[-1][1] == 0 and b[-1][1] == 0
    ch.start()
    plan = ch.plan
    lead = ch._pattern.dur_a[0]
    rig.run_cycles(plan.period_cycles + lead + plan.phase_cycles // 2)
    assert rig.w.gpio.level(rig.board.CHANNELS[1]["leg_a"]) == 1
    t_stop = rig.w.now
    ch.stop()
    a, b = rig.legs(1)
    assert a[-1] == (t_stop, 0)  # low in the same cycle the stop was written
    assert b[-1][1] == 0
    rig.run_ms(50)
    a2, b2 = rig.legs(1)
    assert a2 == a and b2 == b  # nothing more happens
    assert ch._rmt_a is None and ch._rmt_b is None  # loops ended and channels released
    assert rig.w.events == []


def test_stop_inside_phase_b_and_restart_at_once(rig):
    ch = rig.channel(1)
    plan = ch.set(phase_us=800, gap_us=100, rate_hz=1)
    ch.start()
    lead = ch._pattern.dur_a[0] * ch._pattern.div
    rig.run_cycles(lead + plan.phase_cycles + plan.gap_cycles + 10)
    assert rig.w.gpio.level(rig.board.CHANNELS[1]["leg_b"]) == 1
    t_stop = rig.w.now
    ch.stop()
    ch.start()  # waits for the old loop (1 s) to end, legs low meanwhile
    rig.run_cycles(plan.period_cycles * 2)
    ch.stop()
    a, b = rig.legs(1)
    pulses, violations = pulse_analysis.analyse(a, b, cut_at=t_stop)
    assert violations == []
    assert len(pulses) == 2 and check_train(pulses, plan) == []
    assert pulses[0].start - t_stop >= plan.period_cycles - plan.phase_cycles - plan.gap_cycles
    assert rig.w.events == []


def test_out_of_range_requests_raise_and_change_nothing(rig):
    ch = rig.channel(1)
    good = ch.set(phase_us=300, gap_us=50, rate_hz=50)
    bad = [
        dict(phase_us=19.9, gap_us=50, rate_hz=50),
        dict(phase_us=1000.1, gap_us=50, rate_hz=50),
        dict(phase_us=300, gap_us=1.9, rate_hz=50),  # below dead time + skew tolerance
        dict(phase_us=300, gap_us=1001, rate_hz=50),
        dict(phase_us=300, gap_us=50, rate_hz=0.4),
        dict(phase_us=300, gap_us=50, rate_hz=201),
        dict(phase_us="300", gap_us=50, rate_hz=50),
        dict(phase_us=300, gap_us=50, rate_hz=float("nan")),
        dict(phase_us=300, gap_us=50, rate_hz=100, burst_count=10, burst_rate_hz=20),
        dict(phase_us=300, gap_us=50, rate_hz=100, burst_count=0),
        dict(phase_us=100, gap_us=50, rate_hz=2600, burst_count=5, burst_rate_hz=50),
        dict(phase_us=150, gap_us=20, rate_hz=2500, burst_count=5, burst_rate_hz=50),  # no rest
    ]
    ch.start()
    for kw in bad:
        with pytest.raises(ValueError):
            ch.set(**kw)
        assert ch.plan == good
    rig.run_ms(100)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == [] and check_train(pulses, good) == []





def test_update_takes_effect_at_a_loop_boundary_only(rig):
    ch = rig.channel(1)
    old = ch.set(phase_us=300, gap_us=50, rate_hz=50)
    ch.start()
    lead = ch._pattern.dur_a[0]
    # change in the middle of the third pulse's phase B
    rig.run_cycles(lead + 2 * old.period_cycles + old.phase_cycles + old.gap_cycles + 100)
    new = ch.set(phase_us=150, gap_us=30, rate_hz=100)
    assert ch.pending_updates() == 1
    rig.run_cycles(6 * old.period_cycles)
    assert ch.pending_updates() == 0
    t_stop = rig.w.now
    ch.stop()
    a, b = rig.legs(1)
    pulses, violations = pulse_analysis.analyse(a, b, cut_at=t_stop)
    assert violations == []
    assert check_train(pulses[:3], old) == []
    stretch = pulses[3].start - pulses[2].start - old.period_cycles
    # old rest kept whole; the restart adds the two write_pulses() calls (2 x skew)
    assert stretch == 2 * ch.skew_cycles
    assert check_train(pulses[3:], new) == []
    assert rig.w.events == []


def test_update_waits_at_most_window_busy(rig):
    """The CPU blocks in loop_count(0) only inside the swap window (bounded busy-wait)."""
    ch = rig.channel(1)
    ch.set(phase_us=300, gap_us=50, rate_hz=1)  # 1 s loop
    ch.start()
    rig.run_ms(100)
    t = rig.w.now
    ch.set(phase_us=200, gap_us=50, rate_hz=1)
    assert rig.w.now == t  # set() itself never blocks outside the window
    rig.run_ms(1200)
    pulses, violations = rig.pulses(1)
    assert violations == [] and [p.phase1 for p in pulses] == [24000, 16000]



def test_skew_calibration_error_inside_tolerance_keeps_dead_time(rig, monkeypatch):
    """The real skew differs from the board's calibration by 0.9 us (inside the 1 us tolerance):
    gaps shift by that much, never below the dead time, and phases stay balanced."""
    from host_tools.sim import esp32 as sim_esp32

    monkeypatch.setattr(sim_esp32, "WRITE_PULSES_NS", 40_000 - 900)
    ch = rig.channel(1)
    plan = ch.set(phase_us=300, gap_us=2, rate_hz=100)
    ch.start()
    rig.run_ms(50)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == [] and len(pulses) == 5
    for p in pulses:
        assert p.balanced()
        assert p.gap == plan.gap_cycles - 72  # 0.9 us early
        assert p.gap * 12.5 >= rig.board.DEAD_TIME_NS


def test_random_updates_keep_every_pulse_whole_and_balanced(rig):
    rnd = Rng(7)
    ch = rig.channel(1)
    ch.set(phase_us=300, gap_us=50, rate_hz=100)
    ch.start()
    for _ in range(200):
        phase = rnd.randint(20, 1000)
        gap = rnd.randint(2, 1000)
        rate = rnd.choice([0.5, 1, 10, 35.5, 50, 99, 150, 200])
        try:
            ch.set(phase_us=phase, gap_us=gap, rate_hz=rate)
        except ValueError:
            pass
        rig.run_cycles(rnd.randint(1, 3 * 80_000))
        ch.service()
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert all(p.balanced() for p in pulses)
    assert rig.w.events == []


def test_capture_tool_runs_the_esp32_board(tmp_path):
    from host_tools import capture

    rc = capture.main(["--board", "esp32", "--channel", "both", "--ms", "60", "--alternate",
                       "--out", str(tmp_path), "--no-png"])
    assert rc == 0
    w, board, plans = capture.run_capture(phase_us=250, gap_us=20, rate_hz=100, ms=60,
                                          channels=(1, 2), board_name="esp32")
    assert w.sys_hz == 80_000_000 and board.NAME == "esp32_devkitc"
    for n in (1, 2):
        pulses, violations = capture.measure(w, board, n)
        assert violations == [] and len(pulses) == 6
        assert check_train(pulses, plans[n]) == []
    assert (tmp_path / "pins.vcd").exists()


def test_loop_clock_stays_anchored_over_a_long_session(rig):
    """ticks_us() wraps after 2**30 us (about 18 min, ambiguous after 9): with the app calling
    service() every tick, an update after 20 minutes still lands at a loop boundary without a
    long busy-wait."""
    ch = rig.channel(1)
    plan = ch.set(phase_us=300, gap_us=50, rate_hz=200)
    ch.start()
    for _ in range(20 * 60 * 2):  # 20 minutes, service() every 500 ms
        rig.run_ms(500)
        ch.service()
    a, b = rig.legs(1)
    mark_a, mark_b = len(a), len(b)
    rig.run_cycles(123_457)
    t = rig.w.now
    new = ch.set(phase_us=200, gap_us=50, rate_hz=200)
    assert rig.w.now == t
    rig.run_ms(30)
    assert rig.w.events == []
    from tests.pulse_harness import edges_since

    pulses, violations = pulse_analysis.analyse(edges_since(a, mark_a), edges_since(b, mark_b))
    assert violations == []
    shapes = [p.phase1 for p in pulses]
    k = shapes.index(new.phase_cycles)
    assert set(shapes[:k]) == {plan.phase_cycles} and set(shapes[k:]) == {new.phase_cycles}
    assert k <= 3


def _block_log(rig, monkeypatch):
    """Wrap set()/service() of the engine: every call's CPU time (virtual cycles it held the
    caller, timer callbacks included) goes to the returned list as (cycles, leg_a, name)."""
    cls = rig.engine.PulseChannel
    log = []
    for name in ("set", "service"):
        orig = getattr(cls, name)

        def wrap(self, *a, _o=orig, _n=name, **k):
            t0 = rig.w.now
            r = _o(self, *a, **k)
            log.append((rig.w.now - t0, self.leg_a, _n))
            return r

        monkeypatch.setattr(cls, name, wrap)
    return log


def test_two_channels_updated_back_to_back_never_block_longer_than_the_window(monkeypatch):
    """A program going from its 5 Hz warm-up to 50 Hz work updates both channels at the same
    app tick. Each channel's swap (from its one-shot timer or the app's service()) busy-waits for
    its own loop end; the other channel's timer must never run its own swap in the middle of
    that one (between the window check and loop_count(0), or between the legs' loop_count(0)),
    which made a stale window check wait out a whole 200 ms iteration (timing_missed in the
    whole firmware) with leg B playing one iteration alone. At many random moments and start
    offsets: no set()/service() call, timer-driven or not, holds the CPU longer than the swap
    window (plus the two write_pulses() calls of the restart), every pulse stays whole and
    balanced, and both channels reach the new rate within two old iterations."""
    rnd = Rng(11)
    limit_ms = 3.5
    for trial in range(60):
        rig = Rig("esp32")
        log = _block_log(rig, monkeypatch)
        c1, c2 = rig.channel(1), rig.channel(2)
        old = c1.set(phase_us=300, gap_us=50, rate_hz=5)
        c2.set(phase_us=300, gap_us=50, rate_hz=5)
        c1.start()
        if trial % 3:  # the app starts both in one tick; also try other loop offsets
            rig.run_cycles(rnd.randint(0, old.period_cycles))
        c2.start()
        rig.run_cycles(rnd.randint(1, 3 * old.period_cycles))
        t_set = rig.w.now
        new1 = c1.set(phase_us=280, gap_us=50, rate_hz=50)
        new2 = c2.set(phase_us=250, gap_us=50, rate_hz=50)
        tick = rig.ms(rnd.choice([1, 5, 10, 20]))
        while rig.w.now - t_set < 3 * old.period_cycles:  # the app's loop: service every tick
            rig.run_cycles(tick)
            c1.service()
            c2.service()
        assert c1.pending_updates() == 0 and c2.pending_updates() == 0
        worst = max(log)
        assert worst[0] <= rig.ms(limit_ms), "trial %d: %s blocked %.1f ms" % (
            trial, worst[1:], worst[0] / rig.ms(1))
        assert rig.w.events == []
        c1.stop()
        c2.stop()
        for n, new in ((1, new1), (2, new2)):
            pulses, violations = rig.pulses(n)
            assert violations == [], (trial, n, violations[:3])
            assert all(p.balanced() for p in pulses)
            k = [p.phase1 for p in pulses].index(new.phase_cycles)
            assert pulses[k].start - t_set <= 2 * old.period_cycles + rig.ms(1), (trial, n)
            assert set(p.phase1 for p in pulses[:k]) == {old.phase_cycles}, (
                trial, n, k, t_set, [(p.start, p.phase1) for p in pulses[:3]])
            assert set(p.phase1 for p in pulses[k:]) == {new.phase_cycles}


def test_russian_current_uses_the_finest_tick(rig):
    plan = rig.channel(1).set(phase_us=100, gap_us=10, rate_hz=2500, burst_count=25,
                              burst_rate_hz=50)
    assert rig.channel(1)._pattern.div == 1 and plan.burst_period_ns == 20_000_000
