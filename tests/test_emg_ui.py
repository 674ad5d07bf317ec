"""The EMG menu and screens (firmware/emg_ui.py, firmware/emg_screens.py) with a stand-in EMG
input: what the screen says and draws, what is stored, and how an EMG-triggered program is
driven (the trigger only asks the Session; the ramp is the session's)."""
import json

from host_tools.sim import framebuf_mod, install

emg_ui = install.load("emg_ui")  # with its device imports (buttons needs machine)
B = emg_ui.B
es = emg_ui.es
programs = install.load("programs")
session_mod = install.load("session")


class FakeEmg:
    def __init__(self):
        self.envelope_uv = 5
        self.fault = 0
        self.running = False
        self.starts = 0
        self.processed = 0

    def start(self):
        self.running = True
        self.starts += 1

    def stop(self):
        self.running = False

    def reset_envelope(self):
        pass

    def process(self):
        self.processed += 1
        return 10


def _fb():
    buf = bytearray(128 * 64 // 8)
    return framebuf_mod.FrameBuffer(buf, 128, 64, framebuf_mod.MONO_VLSB)


def _px(fb, x, y):
    return fb.pixel(x, y)


def _ctl(tmp_path, cal=None):
    if cal is not None:
        (tmp_path / "emg.json").write_text(json.dumps(cal))
    e = FakeEmg()
    return emg_ui.EmgControl(e, str(tmp_path)), e


def _run(ctl, e, t, until, env, session=None):
    while t < until:
        e.envelope_uv = env(t) if callable(env) else env
        ctl.tick(t, session)
        if session is not None:
            session.tick(t)
        t += 10
    return t


def test_menu_without_calibration(tmp_path):
    ctl, e = _ctl(tmp_path)
    ctl.open()
    assert ctl.lines()[:4] == ["EMG", ">Calibrate", " Biofeedback", " Threshold 30%"]
    assert "not calibrated" in ctl.lines()
    assert ctl.handle(B.DOWN, 0) is False and ctl.lines()[2] == ">Biofeedback"
    ctl.handle(B.DOWN, 0)
    ctl.handle(B.OK, 0)
    assert ctl.lines()[3] == ">Threshold 35%"
    assert ctl.handle(B.BACK, 0) is True and not ctl.open_


def test_calibration_guided_and_saved(tmp_path):
    ctl, e = _ctl(tmp_path)
    ctl.open()
    ctl.handle(B.OK, 0)  # Calibrate
    assert ctl.lines()[0] == "Calibrate EMG" and ctl.lines()[-1] == "ok:start bk"
    t = _run(ctl, e, 0, 200, 5)
    assert not e.running  # sampling only while it is needed
    ctl.handle(B.OK, t)
    prompts = []

    def env(t):
        ph = ctl.cal.phase
        return 150 if ph in (es.CAL_SQUEEZE, es.CAL_SQUEEZE2) else 6

    while not ctl.cal.done:
        t = _run(ctl, e, t, t + 10, env)
        if ctl.lines()[1] not in prompts:
            prompts.append(ctl.lines()[1])
    assert e.running or e.starts == 1
    assert prompts == ["Relax the muscle", "Squeeze hard!", "Relax", "Squeeze again!", "Done"]
    assert ctl.lines()[2:4] == ["rest 6 uV", "max  150 uV"]
    ctl.handle(B.OK, t)
    assert ctl.calibrated and json.loads((tmp_path / "emg.json").read_text()) == {
        "rest_uv": 6, "max_uv": 150, "pct": 30}
    t = _run(ctl, e, t, t + 20, 6)
    assert not e.running
    ctl2, _ = _ctl(tmp_path)
    assert ctl2.calibrated and ctl2.max_uv == 150


def test_bad_calibration_file_means_not_calibrated(tmp_path):
    for bad in ({"rest_uv": 5, "max_uv": 12}, {"rest_uv": "5", "max_uv": 100}, [1, 2]):
        ctl, _ = _ctl(tmp_path, bad)
        assert not ctl.calibrated
    (tmp_path / "emg.json").write_text("{broken")
    ctl, _ = _ctl(tmp_path)
    assert not ctl.calibrated


def test_biofeedback_screen_bar_threshold_and_marks(tmp_path):
    ctl, e = _ctl(tmp_path, {"rest_uv": 5, "max_uv": 205, "pct": 30})
    ctl.open()
    ctl.handle(B.DOWN, 0)
    ctl.handle(B.OK, 0)
    assert ctl.screen == emg_ui.FEEDBACK
    t = _run(ctl, e, 0, 1000, 5)
    t = _run(ctl, e, t, 1500, 120)
    t = _run(ctl, e, t, 2000, 5)
    lines = ctl.lines()
    assert lines[1] == "now    5 uV" and lines[2] == "thr   65 uV 30%"
    assert lines[3].startswith("pk 120 mean ") and lines[4] == "marks 1 0s"
    fb = _fb()
    e.envelope_uv = 120
    ctl.draw(fb)
    full = ctl.full_uv()  # 256: 205 at 80 %
    thr_x = 1 + 126 * 65 // full
    assert _px(fb, thr_x, 40) == 1  # threshold line above the bar
    # the text rows 0-4 and 7 keep their pixels: the graphics stay in rows 5-6 (y 40-55)
    assert not any(_px(fb, x, y) for x in range(128) for y in list(range(40)) + [56, 63])
    assert _px(fb, 1 + 126 * 120 // full - 1, 46) == 1  # filled up to the envelope
    assert _px(fb, 1 + 126 * 120 // full + 2, 46) == 0
    ctl.handle(B.UP, t)
    assert ctl.lines()[2] == "thr   75 uV 35%"
    mean = ctl.feedback.stats.mean_uv
    ctl.handle(B.BACK, t)
    assert ctl.screen == emg_ui.MENU
    assert json.loads((tmp_path / "emg_history.json").read_text()) == [
        {"n": 0, "program": "emg_feedback", "attempts": 1, "triggered": 0, "emg_peak_uv": 120,
         "emg_mean_uv": mean}]


def test_fault_is_shown_on_the_biofeedback_screen(tmp_path):
    ctl, e = _ctl(tmp_path, {"rest_uv": 5, "max_uv": 205, "pct": 30})
    ctl.open()
    ctl.handle(B.DOWN, 0)
    ctl.handle(B.OK, 0)
    e.fault = 1
    _run(ctl, e, 0, 100, 0)
    assert ctl.lines()[1] == "! EMG flat"
    e.fault = 2
    _run(ctl, e, 100, 200, 0)
    assert ctl.lines()[1] == "! EMG saturated"


def _emg_prog():
    return programs.Program("emg_test", "EMG test", 35, 300, on_s=3, off_s=5, ramp_up_s=1,
                            ramp_down_s=1, session_min=30, triggered=True)


def test_emg_program_is_triggered_by_effort_and_records_history(tmp_path):
    ctl, e = _ctl(tmp_path, {"rest_uv": 5, "max_uv": 205, "pct": 30})
    s = session_mod.Session(_emg_prog(), channels=1)
    s.start(0)
    t = _run(ctl, e, 0, 500, 5, s)
    assert e.running and ctl.run_line() == "try   30%"
    t = _run(ctl, e, t, 600, 100, s)
    assert ctl.trigger.stats.triggered == 1 and ctl.run_line() == "assist30%"
    fb = _fb()
    ctl.draw_run(fb)
    assert _px(fb, 73, 44) == 1  # the run screen's envelope bar
    # inside text row 5 only (rows 4 and 6 are the channel 2 and factor rows)
    assert not any(_px(fb, x, y) for x in range(128) for y in list(range(40)) + list(range(48, 64)))
    s.stop(t)
    t = _run(ctl, e, t, t + 20, 5, s)
    assert not e.running
    h = ctl.history()
    assert h["triggered"] == 1 and h["attempts"] == 1 and h["emg_peak_uv"] == 100
    for n in range(1, 60):
        rec = ctl.record_history(n, "emg_test")
        ctl._last_history = h
    assert rec == dict(h, n=59, program="emg_test")
    stored = json.loads((tmp_path / "emg_history.json").read_text())
    assert len(stored) == emg_ui.HISTORY_MAX and stored[-1] == rec and stored[0]["n"] == 10


def test_emg_program_without_calibration_never_triggers(tmp_path):
    ctl, e = _ctl(tmp_path)
    s = session_mod.Session(_emg_prog(), channels=1)
    s.start(0)
    env_log = []
    t = 0
    while t < 30000:
        e.envelope_uv = 500
        ctl.tick(t, s)
        env_log.append(s.tick(t).envelope[1])
        t += 10
    assert max(env_log) == 0 and ctl.run_line() == "calibrate"


def test_adapted_threshold_is_kept_for_the_next_session(tmp_path):
    ctl, e = _ctl(tmp_path, {"rest_uv": 5, "max_uv": 205, "pct": 30})
    s = session_mod.Session(_emg_prog(), channels=1)
    s.start(0)
    t = 0
    for _ in range(3):
        t = _run(ctl, e, t, t + 200, 5, s)
        t = _run(ctl, e, t, t + 100, 150, s)
        t = _run(ctl, e, t, t + 11000, 5, s)  # burst (5 s) and rest (5 s)
    assert ctl.trigger.pct == 35
    s.stop(t)
    _run(ctl, e, t, t + 20, 5, s)
    assert json.loads((tmp_path / "emg.json").read_text())["pct"] == 35


def test_redraw_is_rate_limited(tmp_path):
    ctl, e = _ctl(tmp_path, {"rest_uv": 5, "max_uv": 205, "pct": 30})
    ctl.open()
    ctl.handle(B.DOWN, 0)
    ctl.handle(B.OK, 0)
    draws = 0
    t = 0
    while t < 1000:
        e.envelope_uv = 5 + (t // 10) % 50 * 3  # moves every tick
        ctl.tick(t, None)
        if ctl.changed():
            ctl.draw(_fb())
            draws += 1
        t += 10
    assert 8 <= draws <= 12  # about every 100 ms, not every tick


def test_menu_lists_the_emg_programs_and_opens_them(tmp_path):
    e = FakeEmg()
    progs = [_emg_prog(), programs.Program("emg_q", "EMG quadriceps", 50, 250, on_s=15, off_s=45,
                                           ramp_up_s=3, ramp_down_s=2, triggered=True)]
    ctl = emg_ui.EmgControl(e, str(tmp_path), progs)
    ctl.open()
    lines = ctl.lines()
    assert lines[4:6] == [" EMG test", " EMG quadriceps"] and len(lines) == 8
    for _ in range(4):
        ctl.handle(B.DOWN, 0)
    assert ctl.lines()[5] == ">EMG quadriceps"
    assert ctl.handle(B.OK, 0) is progs[1] and not ctl.open_
    e.fault = 2
    ctl.open()
    assert ctl.lines()[6] == "EMG saturated"


def test_on_record_files_the_emg_fields_under_the_history_number(tmp_path):
    ctl, e = _ctl(tmp_path, {"rest_uv": 5, "max_uv": 205, "pct": 30})
    s = session_mod.Session(_emg_prog(), channels=1)
    s.start(0)
    t = _run(ctl, e, 0, 300, 5, s)
    t = _run(ctl, e, t, 400, 100, s)
    ctl.on_record({"n": 7, "program": "quad_acl"})  # not an EMG program: nothing
    assert not (tmp_path / "emg_history.json").exists()
    ctl.on_record({"n": 8, "program": "emg_test"})
    rec = json.loads((tmp_path / "emg_history.json").read_text())
    assert rec == [{"n": 8, "program": "emg_test", "attempts": 1, "triggered": 1,
                    "emg_peak_uv": 100, "emg_mean_uv": rec[0]["emg_mean_uv"]}]


def test_calibration_graphics_leave_the_text_rows_alone(tmp_path):
    ctl, e = _ctl(tmp_path)
    ctl.open()
    ctl.handle(B.OK, 0)
    ctl.handle(B.OK, 0)  # start
    _run(ctl, e, 0, 6000, 120)  # into the first squeeze
    assert ctl.cal.phase == es.CAL_SQUEEZE
    fb = _fb()
    ctl.draw(fb)
    # rows 0-3 and 7 are text; the countdown bar is on row 4, the live bar on rows 5-6
    assert not any(_px(fb, x, y) for x in range(128) for y in list(range(32)) + list(range(56, 64)))
    assert _px(fb, 0, 33) == 1 and _px(fb, 0, 43) == 1
