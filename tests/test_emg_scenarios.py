"""EMG (issue 10) through the whole firmware from power-on, on both simulated boards: the muscle
(host_tools/sim/muscle.py) on the board's EMG ADC input, scripted by "emg" scenario steps; what
is asserted is what a user notices: the DAC (the stimulation current), the screen."""
import copy
import json

import pytest

from tests import scenario_harness as sh
from tests.scenario_harness import Steps

BOARDS = ("pico", "esp32")
CAL = {"rest_uv": 3, "max_uv": 200, "pct": 30}  # threshold 3 + 30 % of 197 = 62 uV
EMG_WRIST = 3  # in the EMG menu: Calibrate, Biofeedback, Threshold, EMG wrist/finger, ...
EMG_QUAD = 4


def _run(steps, duration_ms, board, files=None):
    spec = sh.spec(steps, duration_ms, files=files, board=board)
    return sh.run(copy.deepcopy(spec))


def _start_emg_program(st, index, level_ma=10):
    # from the list's first row: UP wraps to its last row, EMG; OK opens the EMG menu
    st.press("up", gap_ms=150).press("ok", gap_ms=300)
    for _ in range(index):
        st.press("down", gap_ms=120)
    st.press("ok", gap_ms=400).press("ok", gap_ms=400)  # the program's detail, then the check
    st.started_ms = st.t  # the press that starts the session
    st.press("ok", gap_ms=500)
    st.raise_level(level_ma, gap_ms=120)
    return st


def _emg_row(tr, t_ms):
    """The EMG row of the run screen (row 5: 9 characters of text, then the envelope bar)."""
    return sh.screen_at(tr, t_ms)[5][:9]


def _rises(amp, after_ms=0):
    """Times at which the channel's DAC leaves 0 (each a contraction's ramp start)."""
    out = []
    prev = 0.0
    for t, ma in amp:
        if prev == 0 and ma > 0 and t >= after_ms:
            out.append(t)
        prev = ma
    return out


def _falls(amp):
    out = []
    prev = 0.0
    for t, ma in amp:
        if prev > 0 and ma == 0:
            out.append(t)
        prev = ma
    return out


@pytest.mark.parametrize("board", BOARDS)
def test_effort_above_threshold_starts_the_contraction_within_100_ms(board):
    st = _start_emg_program(Steps(1800), EMG_WRIST)
    efforts = [st.t + 1000, st.t + 19000]  # each after the rest of the previous contraction
    st.at(efforts[0]).add(0, emg={"uv": 100, "ms": 1500})
    st.at(efforts[1]).add(0, emg={"uv": 100, "ms": 1500})
    r, tr = _run(st, efforts[1] + 3000, board, {"emg.json": json.dumps(CAL)})
    amp = sh.amplitude(tr, 1)
    rises = _rises(amp)
    assert len(rises) == 2, rises
    for x, t in zip(efforts, rises, strict=True):
        assert 0 < t - x <= 100, (x, t)
    # before the effort: nothing (the time-out is 10 s away)
    assert sh.level_at(amp, efforts[0] - 1) == 0
    # the run screen says what the unit waits for, then that it assists
    assert sh.screen_at(tr, efforts[0] - 10)[5].startswith("try   30%")
    assert sh.screen_at(tr, efforts[0] + 500)[5].startswith("assist")
    assert r.muscle.reads > 0.99 * (efforts[1] + 3000 - 9000)  # 1 kHz while the program runs


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("index", (EMG_WRIST, EMG_QUAD))
def test_stimulation_artefact_alone_never_triggers(board, index):
    """No effort at all. While the unit waits for an attempt its pulse trains run (at 0 mA: the
    muscle model puts the full artefact on the EMG input whenever the output is enabled and a leg
    is high, 30 / 50 Hz on both channels): every contraction is the time-out's help, 10 s after
    the attempt began, never a trigger by the artefact."""
    st = _start_emg_program(Steps(1800), index)
    start = st.started_ms
    # wrist: help, 1+5+1 s, 10 s rest, help again; quadriceps: help, 3+15+2 s, into the 45 s rest
    length = 42_000 if index == EMG_WRIST else 40_000
    r, tr = _run(st, start + length, board, {"emg.json": json.dumps(CAL)})
    amp = sh.amplitude(tr, 1)
    rises = _rises(amp, start)
    falls = _falls(amp)
    assert r.muscle.artefact_reads > 600  # the artefact did reach the ADC, while waiting too
    assert len(rises) == (2 if index == EMG_WRIST else 1), rises
    assert 10_000 <= rises[0] - start <= 10_300  # the time-out, from the start press
    if index == EMG_WRIST:
        assert 20_000 - 20 <= rises[1] - falls[0] <= 20_000 + 100  # rest, then a whole time-out


def test_threshold_rises_after_three_successes_and_falls_after_two_misses(board="pico"):
    """The run screen's EMG row shows the state and the threshold (% of the calibrated range).
    (The adaptation is board-independent logic; the other scenarios run both boards.)"""
    st = _start_emg_program(Steps(1800), EMG_WRIST)
    t = st.t + 500
    successes = []
    for _ in range(3):
        st.at(t).add(0, emg={"uv": 150, "ms": 1000})
        successes.append(t)
        t += 17_200  # 1 + 5 + 1 s contraction, 10 s rest
    after = t
    # then nothing: two attempts time out (10 s each, the unit helps), 10 s rest after each
    end = after + 2 * 27_000 + 1000
    r, tr = _run(st, end, board, {"emg.json": json.dumps(CAL)})
    rises = _rises(sh.amplitude(tr, 1))
    assert len(rises) == 5
    for x, t in zip(successes, rises[:3], strict=True):
        assert 0 < t - x <= 100
    assert _emg_row(tr, successes[0] - 10) == "try   30%"
    assert _emg_row(tr, successes[2] - 10) == "try   30%"
    assert _emg_row(tr, rises[2] + 17_300) == "try   35%"  # 3 in a row: raised
    assert _emg_row(tr, rises[3] + 100) == "assist35%"  # the first miss: help
    assert _emg_row(tr, rises[4] + 100) == "assist30%"  # two in a row: lowered
    falls = _falls(sh.amplitude(tr, 1))
    assert 20_000 - 20 <= rises[3] - falls[2] <= 20_000 + 100  # 10 s rest + 10 s time-out


@pytest.mark.parametrize("board", BOARDS)
def test_flat_and_saturated_inputs_are_distinct_faults_on_the_screen(board):
    st = Steps(1800)
    st.press("up").press("ok").press("down").press("ok", gap_ms=1000)  # EMG > Biofeedback
    t = st.t
    st.at(t).add(0, emg={"connected": False})
    st.at(t + 1500).add(0, emg={"connected": True})
    st.at(t + 2500).add(0, emg={"saturated": True})
    st.at(t + 4000).add(0, emg={"saturated": False})
    r, tr = _run(st, t + 5000, board, {"emg.json": json.dumps(CAL)})
    assert sh.screen_at(tr, t - 10)[0].startswith("Biofeedback")
    assert sh.screen_at(tr, t + 1400)[1] == "! EMG flat"
    assert sh.screen_at(tr, t + 2400)[1].startswith("now")
    assert sh.screen_at(tr, t + 3900)[1] == "! EMG saturated"
    assert sh.screen_at(tr, t + 4900)[1].startswith("now")


@pytest.mark.parametrize("board", BOARDS)
def test_flat_input_stops_triggering_in_an_emg_program(board):
    st = _start_emg_program(Steps(1800), EMG_WRIST)
    t = st.t
    st.at(t).add(0, emg={"connected": False})
    st.at(t + 12_000).add(0, emg={"uv": 150, "ms": 1000})  # cannot be seen: the input is off
    r, tr = _run(st, t + 14_000, board, {"emg.json": json.dumps(CAL)})
    amp = sh.amplitude(tr, 1)
    assert _rises(amp) == []  # no trigger and no time-out help without a working input
    assert sh.screen_at(tr, t + 13_000)[5].startswith("EMG flat")


def test_calibration_on_the_unit_then_biofeedback():
    st = Steps(1800)
    st.press("up").press("ok").press("ok").press("ok", gap_ms=100)  # EMG > Calibrate > start
    t0 = st.t
    st.at(t0 + 5200).add(0, emg={"uv": 150, "ms": 2800})
    st.at(t0 + 12300).add(0, emg={"uv": 180, "ms": 2800})
    st.at(t0 + 15500).press("ok")  # save
    st.press("down").press("ok", gap_ms=800)  # Biofeedback
    fb = st.t
    st.at(fb).add(0, emg={"uv": 100, "ms": 1000})
    r, tr = _run(st, fb + 2000, "pico")
    text = sh.screen_text_between(tr, t0, t0 + 15400)
    for prompt in ("Relax the muscle", "Squeeze hard!", "Relax", "Squeeze again!", "Done"):
        assert prompt in text
    done = sh.screen_at(tr, t0 + 15400)
    assert done[2] == "rest 3 uV" or done[2] == "rest 2 uV"
    # the highest envelope of the efforts: 180 uV plus the 64-ms average's noise peaks
    assert 180 <= int(done[3].split()[1]) <= 240
    menu = sh.screen_at(tr, fb - 900)
    assert menu[6].startswith("rest ") and "max" in menu[6]
    during = sh.screen_at(tr, fb + 600)
    assert during[0] == "Biofeedback !"  # the mark at threshold
    assert 80 <= int(during[1].split()[1]) <= 120
    after = sh.screen_at(tr, fb + 1900)
    assert after[0] == "Biofeedback" and after[4].startswith("marks 1")


def test_emg_presets_are_valid_triggered_presets_with_sources():
    from tests.emg_harness import import_device

    programs = import_device("programs")
    keys = [p.key for p in programs.EMG_PRESETS]
    assert keys == ["emg_wrist", "emg_quad"]
    for p in programs.EMG_PRESETS:
        p.validate(preset=True)
        assert p.triggered and p.warmup_s == 0  # a warm-up would ignore the first efforts
        assert len(p.name) <= 16 and ("Ours" in p.source or "our choice" in p.source)
        assert p not in programs.PRESETS  # the EMG menu lists them, not the program list
    w, q = programs.EMG_PRESETS
    assert (w.rate_hz, w.phase_us) == (30, 300)  # wrist/hand extensors: 20-30 Hz, 300 us
    assert (q.rate_hz, q.phase_us, q.on_s, q.off_s, q.ramp_up_s) == (50, 250, 15, 45, 3)
