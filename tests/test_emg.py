"""EMG (issue 10): the sampling, blanking, envelope and faults of lib/emg.py on the simulated boards
(the muscle of host_tools/sim/muscle.py on the EMG ADC input, the board's real pulse engine), and
the mode logic of firmware/emg_session.py (calibration, EMG-triggered stimulation with its
adaptive threshold, biofeedback)."""
import pytest

from tests.emg_harness import EmgRig, import_device

programs = import_device("programs")
session_mod = import_device("session")
es = import_device("emg_session")

BOARDS = ("pico", "esp32")


# ---- lib/emg.py on the simulated boards ---------------------------------------------------------
@pytest.mark.parametrize("board", BOARDS)
def test_samples_at_1khz_on_the_modelled_adc(board):
    r = EmgRig(board)
    r.emg.start()
    r.run_ms(2000)
    reads = r.muscle.read_cycles
    assert r.muscle.reads == 2000 and r.emg.samples == 2000
    ms = r.w.sys_hz // 1000
    gaps = {reads[i + 1] - reads[i] for i in range(len(reads) - 1)}
    assert max(gaps) <= ms + 1 and min(gaps) >= ms - 1  # 1 kHz, every sample on its cycle
    assert r.emg.overruns == 0 and r.emg.late == 0


@pytest.mark.parametrize("board", BOARDS)
def test_envelope_follows_the_muscle_in_uv(board):
    r = EmgRig(board)
    r.emg.start()
    r.run_ms(1000)
    assert r.emg.envelope_uv <= 6  # rest: 3 uV
    for uv in (40, 80, 300, 1000):
        r.muscle.effort(uv, 1000)
        r.run_ms(300)
        envs = []
        r.run_ms(500, lambda rig, envs=envs: envs.append(rig.emg.envelope_uv))
        got = sum(envs) / len(envs)  # the envelope's mean over 50 ticks
        assert abs(got - (uv + 3)) <= 0.06 * uv + 2, (uv, got)
        r.run_ms(1000)
        assert r.emg.envelope_uv <= 8


# every preset's pulse shape (rate, width, bursts) with artefact at each pulse, no effort
def _preset_shapes():
    seen = []
    for p in programs.PRESETS:
        k = (p.rate_hz, p.phase_us, p.gap_us, p.burst_count, p.burst_rate_hz, p.alternate)
        if k not in seen:
            seen.append(k)
    return seen


@pytest.mark.parametrize("board", BOARDS)
def test_stimulation_artefact_is_blanked_at_every_preset_shape(board):
    for rate, phase, gap, bc, brate, alt in _preset_shapes():
        r = EmgRig(board)
        r.emg.start()
        ch = r.channel(1)
        ch.set(phase, gap, rate, bc, brate, alt)
        r.enable.value(1)
        ch.start()
        ch2 = r.channel(2)
        ch2.set(phase, gap, rate, bc, brate, alt)
        r.run_ms(7)  # channel 2 starts 7 ms later: two trains, two phases
        ch2.start()
        peak = r.run_ms(3000)
        assert r.muscle.artefact_reads > 0, "no artefact reached the ADC: the test tests nothing"
        assert peak <= 8, ((rate, phase, bc, brate), peak)
        assert r.emg.fault == 0


@pytest.mark.parametrize("board", BOARDS)
def test_without_blanking_the_artefact_reads_as_activity(board):
    """The mutant the test above guards against: the same train, not watched."""
    r = EmgRig(board)
    r.emg.start()
    ch = r.channel(1, watch=False)
    ch.set(300, 50, 30)
    r.enable.value(1)
    ch.start()
    assert r.run_ms(2000) > 100


def test_blanking_survives_a_width_change_and_blanks_all_after_a_rate_change():
    r = EmgRig("pico")
    r.emg.start()
    ch = r.channel(1)
    ch.set(200, 50, 50)
    r.enable.value(1)
    ch.start()
    r.run_ms(500)
    ch.set(400, 50, 50)  # same period: the phase is kept
    assert r.run_ms(1000) <= 8
    b0, s0 = r.emg.blanked, r.emg.samples
    r.run_ms(200)
    assert (r.emg.blanked - b0) < (r.emg.samples - s0)  # samples still used
    ch.set(400, 50, 35)  # a live rate change: phase unknown here
    assert r.run_ms(1000) <= 8
    b0, s0 = r.emg.blanked, r.emg.samples
    r.run_ms(200)
    assert r.emg.blanked - b0 == r.emg.samples - s0  # all blanked
    ch.stop()
    r.run_ms(100)
    b0 = r.emg.blanked
    r.run_ms(200)
    assert r.emg.blanked == b0  # stopped: nothing blanked


@pytest.mark.parametrize("board", BOARDS)
def test_flat_input_is_its_own_fault(board):
    r = EmgRig(board)
    r.emg.start()
    r.run_ms(600)
    assert r.emg.fault == 0
    r.muscle.connected(False)
    r.run_ms(760)  # two whole 250-sample windows after the one the change fell in
    assert r.emg.fault == r.emg_mod.FAULT_FLAT
    r.muscle.connected(True)
    r.run_ms(510)
    assert r.emg.fault == 0


@pytest.mark.parametrize("board", BOARDS)
def test_saturated_input_is_its_own_fault(board):
    r = EmgRig(board)
    r.emg.start()
    r.run_ms(600)
    r.muscle.saturate(True)
    r.run_ms(510)
    assert r.emg.fault == r.emg_mod.FAULT_SATURATED
    r.muscle.saturate(False)
    r.run_ms(510)
    assert r.emg.fault == 0


def test_a_huge_effort_that_clips_is_saturation_not_activity():
    r = EmgRig("pico")
    r.emg.start()
    r.run_ms(500)
    r.muscle.effort(20_000, 1000)  # 20 mV: far beyond the +-3.3 mV range
    r.run_ms(600)
    assert r.emg.fault == r.emg_mod.FAULT_SATURATED


# ---- firmware/emg_session.py ---------------------------------------------------------------------
def _prog(**kw):
    d = dict(on_s=3, off_s=5, ramp_up_s=1, ramp_down_s=1, session_min=30, triggered=True)
    d.update(kw)
    return programs.Program("t", "EMG test", 35, 300, **d)


def test_calibration_guides_rest_then_two_maximum_efforts():
    c = es.EmgCalibration()
    c.start(0)
    seen = []
    t = 0
    while not c.done:
        ph = c.phase
        env = 5 if ph in (es.CAL_RELAX, es.CAL_RELAX2) else (200 if ph == es.CAL_SQUEEZE else 240)
        c.tick(t, env)
        if not seen or seen[-1][0] != c.phase:
            seen.append((c.phase, t))
        t += 10
    assert [p for p, _ in seen] == [es.CAL_RELAX, es.CAL_SQUEEZE, es.CAL_RELAX2,
                                    es.CAL_SQUEEZE2, es.CAL_DONE]
    assert [t for _, t in seen][1:] == [5000, 8000, 12000, 15000]
    assert c.ok and c.rest_uv == 5 and c.max_uv == 240


def test_calibration_fails_without_a_real_effort():
    c = es.EmgCalibration()
    c.start(0)
    t = 0
    while not c.done:
        c.tick(t, 6)
        t += 10
    assert c.phase == es.CAL_FAILED and not c.ok


def _trigger(prog=None, **kw):
    s = session_mod.Session(prog or _prog(), channels=1)
    trig = es.EmgTrigger(s, 5, 205, **kw)  # threshold 30 %: 5 + 60 = 65 uV
    trig.start(0)
    return s, trig


def _run(s, trig, t, until, env_at):
    """Loop order of the app: EMG trigger logic, then Session.tick. Returns (t, envelope log)."""
    log = []
    while t < until:
        trig.tick(t, env_at(t), 0)
        out = s.tick(t)
        log.append((t, out.envelope[1], trig.state))
        t += 10
    return t, log


def test_an_effort_above_threshold_starts_the_ramp_in_the_same_tick():
    s, trig = _trigger()
    assert trig.threshold_uv == 65
    t, log = _run(s, trig, 0, 2000, lambda t: 5)
    assert trig.state == es.T_WAIT and all(e == 0 for _, e, _ in log)
    t, log = _run(s, trig, t, 3000, lambda t: 70)
    assert trig.last_trigger_ms == 2000  # the tick of the crossing: the ramp starts there
    first = [x for x in log if x[1] > 0][0]
    assert first[0] == 2010  # and is above 0 from the next tick
    assert trig.stats.triggered == 1 and trig.stats.attempts == 1


def test_below_threshold_never_triggers_until_the_time_out_helps():
    s, trig = _trigger(timeout_ms=10000)
    # 60 uV: under the threshold (65) but above the relax level (45): the attempt starts after
    # RELAX_MAX_MS (3 s) of relaxing, then its 10 s time-out runs
    t, log = _run(s, trig, 0, 12990, lambda t: 60)
    assert all(e == 0 for _, e, _ in log)
    t, log = _run(s, trig, t, 13500, lambda t: 60)
    assert any(e > 0 for _, e, _ in log)
    assert trig.stats.timeouts == 1 and trig.stats.triggered == 0 and trig.last_timed_out


def test_after_the_burst_rest_then_a_new_attempt_needs_relaxing_first():
    s, trig = _trigger()
    t, _ = _run(s, trig, 0, 100, lambda t: 5)
    t, log = _run(s, trig, t, 5200, lambda t: 100)  # held contraction: one burst, 5 s long
    assert trig.stats.triggered == 1
    assert trig.state in (es.T_REST, es.T_RELAX)
    t, log = _run(s, trig, t, 20000, lambda t: 100)  # still held: no second burst
    assert trig.stats.triggered == 1 and trig.state == es.T_RELAX
    t, log = _run(s, trig, t, 20100, lambda t: 5)
    assert trig.state == es.T_WAIT
    t, log = _run(s, trig, t, 20200, lambda t: 100)
    assert trig.stats.triggered == 2


def _attempt(s, trig, t, env):
    """Relax until WAIT, then hold env until a burst starts and ends and the rest is over."""
    t, _ = _run(s, trig, t, t + 100, lambda t: 5)
    assert trig.state == es.T_WAIT
    n0 = trig.stats.attempts
    while trig.stats.attempts == n0:
        t, _ = _run(s, trig, t, t + 10, lambda t: env)
    while trig.state != es.T_RELAX:
        t, _ = _run(s, trig, t, t + 10, lambda t: 5)
    return t


def test_threshold_rises_after_three_successes_and_falls_after_two_misses():
    s, trig = _trigger(timeout_ms=3000)
    t = 0
    pcts = []
    for _ in range(3):
        t = _attempt(s, trig, t, 150)
        pcts.append(trig.pct)
    assert pcts == [30, 30, 35] and trig.threshold_uv == 5 + 200 * 35 // 100
    for _ in range(2):
        t = _attempt(s, trig, t, 20)  # never reaches: each attempt times out
        pcts.append(trig.pct)
    assert pcts[3:] == [35, 30]
    assert trig.stats.timeouts == 2 and trig.stats.triggered == 3 and trig.stats.attempts == 5


def test_threshold_stays_within_its_bounds():
    s, trig = _trigger(timeout_ms=1000, threshold_pct=15)
    t = 0
    for _ in range(6):
        t = _attempt(s, trig, t, 0)
    assert trig.pct == 10
    s, trig = _trigger(threshold_pct=75)
    t = 0
    for _ in range(9):
        t = _attempt(s, trig, t, 300)
    assert trig.pct == 80


def test_an_emg_fault_stops_attempts_and_time_out_help():
    s, trig = _trigger(timeout_ms=1000)
    t, _ = _run(s, trig, 0, 100, lambda t: 5)
    log = []
    while t < 5000:
        trig.tick(t, 300, 1)  # flat line fault (whatever the envelope says)
        log.append(s.tick(t).envelope[1])
        t += 10
    assert trig.state == es.T_FAULT and max(log) == 0 and trig.stats.attempts == 0


def test_paused_session_freezes_the_time_out():
    s, trig = _trigger(timeout_ms=2000)
    t, _ = _run(s, trig, 0, 1000, lambda t: 5)
    s.pause(t)
    t, _ = _run(s, trig, t, 10000, lambda t: 5)
    assert trig.stats.attempts == 0
    s.resume(t)
    t, _ = _run(s, trig, t, 11200, lambda t: 5)
    assert trig.stats.attempts == 1


def test_biofeedback_marks_crossings_peak_and_mean():
    fb = es.EmgFeedback(5, 205, 30)
    fb.start(0)
    beeps = 0
    t = 0
    env = [5] * 100 + [100] * 50 + [60] * 10 + [100] * 10 + [30] * 30 + [100] * 20
    for e in env:
        fb.tick(t, e)
        beeps += fb.beep
        t += 10
    # 60 is below 65 but above the 20 % hysteresis (52): no new mark; 30 re-arms it
    assert fb.crossings == 2 and beeps == 2
    assert fb.stats.peak_uv == 100
    assert fb.stats.mean_uv == sum(env) // len(env)
    assert fb.above_ms == (49 + 10 + 19) * 10
    assert fb.stats.history() == {"attempts": 2, "triggered": 0, "emg_peak_uv": 100,
                                  "emg_mean_uv": sum(env) // len(env)}
