"""Custom programs edited on the unit: the EDIT and DELETE screens of the UI with the fakes of
test_ui.py, then one whole-firmware scenario (edit a preset on the simulated unit, save to flash,
power cut, power on: the program is still there)."""
import json

from tests import scenario_harness
from tests.scenario_harness import Steps, run, screen_at, spec
from tests.test_ui import B, FakeDisplay, FakeFb, FakeSession, FakeStore, FakeSup, ui_mod

P = ui_mod.progmod  # the firmware's programs module (the same Program class the UI uses)
N_PRESETS = len(P.PRESETS)


class EditorStore(FakeStore):
    """FakeStore that keeps custom programs the way settings.Store does (validated dicts)."""

    def __init__(self):
        super().__init__()
        self.programs = []  # dicts, as they would be in programs.json
        self.saves = 0
        self.deletes = []

    def load_programs(self):
        return [P.Program.from_dict(d) for d in self.programs]

    def save_program(self, p):
        p.validate()
        assert P.preset(p.key) is None, "a preset key must never be saved"
        self.programs = [d for d in self.programs if d["key"] != p.key] + [p.to_dict()]
        self.saves += 1

    def delete_program(self, key):
        self.deletes.append(key)
        n = len(self.programs)
        self.programs = [d for d in self.programs if d["key"] != key]
        return len(self.programs) != n


class Rig:
    def __init__(self, locked=False):
        self.log = []
        self.sup = FakeSup(self.log)
        self.store = EditorStore()
        if locked:
            base = self.store.load_settings()
            self.store.load_settings = lambda: dict(base, keypad_lock=True)
        self.display = FakeDisplay()
        self.progs = list(P.PRESETS) + self.store.load_programs()
        self.ui = ui_mod.UI(lambda p: FakeSession(p, self.log), self.sup, self.store, self.progs,
                            display=self.display)
        self.t = 0
        self.ui.update(0)
        self.wait(2000)  # splash ends

    def press(self, name, kind="press"):
        i = B.NAMES.index(name)
        self.t += 50
        if kind == "press":
            ks = (B.K_DOWN, B.K_PRESS, B.K_RELEASE)
        elif kind == "long":
            ks = (B.K_DOWN, B.K_LONG, B.K_RELEASE)
        else:
            ks = ({"down": B.K_DOWN, "repeat": B.K_REPEAT}[kind],)
        for k in ks:
            self.ui.handle(B.event(i, k), self.t)
        self.ui.update(self.t)

    def wait(self, ms):
        self.t += ms
        self.ui.update(self.t)

    def text(self):
        return "\n".join(self.ui.lines())

    def open_detail(self, index):
        for _ in range(index):
            self.press("down")
        self.press("ok")
        assert self.ui.screen == ui_mod.DETAIL

    def edit(self, index):
        self.open_detail(index)
        self.press("ok", "long")
        assert self.ui.screen == ui_mod.EDIT


def _lines_fit(r):
    for line in r.ui.lines():
        assert len(line) <= 16, line
    assert len(r.ui.lines()) <= 8


def test_edit_preset_change_rate_and_phase_save_shows_in_list():
    r = Rig()
    r.edit(0)  # Quad ACL: 40 Hz, 300 us
    assert r.ui.editor.prog.key == "c1" and r.ui.editor.prog.name == "My Quad ACL"
    assert ">Rate  40 Hz" in r.text() and "My Quad ACL" in r.text()
    _lines_fit(r)
    r.press("up")  # 45
    r.press("up", "repeat")  # 50
    assert ">Rate  50 Hz" in r.text()
    r.press("ok")
    assert ">Width 300 us" in r.text()
    r.press("down")
    r.press("down")  # 280
    for _ in range(len(ui_mod.EDIT_FIELDS) - 2):
        assert r.store.saves == 0 and r.ui.screen == ui_mod.EDIT
        r.press("ok")
    assert "ok:save" in r.text()
    _lines_fit(r)
    r.press("ok")  # save
    assert r.store.saves == 1 and r.ui.screen == ui_mod.LIST
    d = r.store.programs[0]
    p = P.Program.from_dict(d)  # valid
    assert (p.key, p.name, p.rate_hz, p.phase_us) == ("c1", "My Quad ACL", 50, 280)
    assert (p.on_s, p.off_s, p.session_min) == (8, 32, 12)  # the rest as the preset
    assert P.PRESETS[0].rate_hz == 40 and P.PRESETS[0].phase_us == 300  # preset untouched
    assert ">My Quad ACL" in r.text()  # after the presets, selected
    assert r.progs[N_PRESETS].key == "c1" and len(r.progs) == N_PRESETS + 1
    assert not [e for e in r.log if e[0] in ("session.start", "sup.start", "level")]
    # a second copy of the same preset gets the next key and a distinct name
    r.press("up")  # back to the presets: Massage/recov is the last one
    for _ in range(N_PRESETS - 1):
        r.press("up")
    r.press("ok")
    r.press("ok", "long")
    assert r.ui.editor.prog.key == "c2" and r.ui.editor.prog.name != "My Quad ACL"


def test_out_of_range_value_is_refused_with_a_message():
    r = Rig()
    r.edit(0)
    # rate: up to 200 Hz, then refused
    for _ in range(60):
        r.press("up", "repeat")
    assert r.ui.editor.prog.rate_hz == 200
    assert "! limit reached" in r.text() and ">Rate  200 Hz" in r.text()
    r.press("down")  # any other press clears the message
    assert "!" not in r.text() and r.ui.editor.prog.rate_hz == 190
    # ramp down (field 6): 1 s minimum
    for _ in range(5):
        r.press("ok")
    assert r.ui.sel == 5 and ">Ramp- 2 s" in r.text()
    r.press("down")
    r.press("down")
    assert r.ui.editor.prog.ramp_down_s == 1 and "! limit reached" in r.text()
    # mode: Quad ACL is 8 on / 32 off: alternating needs off >= 12 s, fits; its copy's mode
    r.press("ok")
    r.press("ok")
    assert ">Mode  sync" in r.text()
    r.press("up")
    assert r.ui.editor.prog.mode == "alternating" and ">Mode  alternate" in r.text()
    r.press("up")
    assert r.ui.editor.prog.mode == "reciprocal" and ">Mode  reciproc." in r.text()
    _lines_fit(r)


def test_mode_needing_a_rest_is_refused_for_a_continuous_program():
    r = Rig()
    r.edit(9)  # TENS conventional: continuous (off 0 s): only sync fits
    for _ in range(len(ui_mod.EDIT_FIELDS) - 1):
        r.press("ok")
    r.press("up")
    assert r.ui.editor.prog.mode == "sync" and "! mode not fit" in r.text()


def test_pulse_longer_than_period_is_refused():
    r = Rig()
    r.edit(11)  # TENS burst: 100 Hz carrier (bursts allow up to 2500 Hz), 200 us phases
    for _ in range(80):
        r.press("up", "repeat")
    # 2 x 200 us + 50 us gap = 450 us: 2200 Hz (454 us) fits, 2250 Hz (444 us) does not
    assert r.ui.editor.prog.rate_hz == 2200 and "! pulse > period" in r.text()
    r.press("ok", "long")  # a LONG OK in the editor does nothing
    assert r.ui.screen == ui_mod.EDIT and r.ui.sel == 0
    r.press("back")  # cancel
    assert r.ui.screen == ui_mod.DETAIL and r.store.saves == 0
    assert P.PRESETS[11].rate_hz == 100


def test_back_cancels_with_nothing_saved():
    r = Rig()
    r.edit(2)
    r.press("up")
    r.press("ok")
    r.press("down")
    r.press("back")
    assert r.ui.screen == ui_mod.DETAIL and r.store.saves == 0 and r.ui.editor.prog is None
    assert r.ui.program is P.PRESETS[2] and r.ui.program.rate_hz == 50
    assert len(r.progs) == N_PRESETS
    r.press("back")
    assert r.ui.screen == ui_mod.LIST and "My " not in r.text()


def test_edit_custom_program_edits_itself_and_delete_with_confirm():
    r = Rig()
    r.edit(0)
    for _ in range(len(ui_mod.EDIT_FIELDS)):
        r.press("ok")
    assert r.store.saves == 1 and r.ui.sel == N_PRESETS
    r.press("ok")  # detail of the custom program
    assert r.ui.program.key == "c1" and "hold bk: delete" in "\n".join(r.ui.top().rows)
    r.press("ok", "long")
    assert r.ui.editor.prog.key == "c1" and r.ui.editor.prog is not r.ui.program
    r.press("up")  # 45 Hz
    for _ in range(len(ui_mod.EDIT_FIELDS)):
        r.press("ok")
    assert r.store.saves == 2 and len(r.store.programs) == 1
    assert r.store.programs[0]["rate_hz"] == 45 and len(r.progs) == N_PRESETS + 1
    assert r.progs[N_PRESETS].rate_hz == 45
    # delete: long BACK asks, BACK keeps, long BACK + OK deletes
    r.press("ok")
    r.press("back", "long")
    assert r.ui.screen == ui_mod.DELETE and "Delete program?" in r.text()
    _lines_fit(r)
    r.press("back")
    assert r.ui.screen == ui_mod.DETAIL and r.store.deletes == []
    r.press("back", "long")
    r.press("ok")
    assert r.store.deletes == ["c1"] and r.store.programs == []
    assert r.ui.screen == ui_mod.LIST and len(r.progs) == N_PRESETS
    assert "My Quad ACL" not in r.text()


def test_presets_cannot_be_deleted():
    r = Rig()
    r.open_detail(1)
    assert "hold bk: delete" not in "\n".join(r.ui.top().rows)
    r.press("back", "long")
    assert r.ui.screen == ui_mod.DETAIL and r.store.deletes == []


def test_locked_keypad_blocks_editing_stop_still_works():
    r = Rig(locked=True)
    assert r.ui.locked
    r.press("ok")
    assert r.ui.screen == ui_mod.LIST
    # unlock, open the detail, lock again: the long OK does nothing
    r.press("lock", "long")
    r.open_detail(0)
    r.press("lock", "long")
    assert r.ui.locked
    r.press("ok", "long")
    r.press("back", "long")
    assert r.ui.screen == ui_mod.DETAIL and r.ui.editor.prog is None
    # locked inside the editor: no value changes, no save
    r.press("lock", "long")
    r.press("ok", "long")
    assert r.ui.screen == ui_mod.EDIT
    r.press("lock", "long")
    for name in ("up", "down", "ok", "back"):
        r.press(name)
        r.press(name, "long")
    assert r.ui.screen == ui_mod.EDIT and r.ui.editor.prog.rate_hz == 40 and r.ui.sel == 0
    assert r.store.saves == 0
    r.press("stop", "down")
    assert ("sup.stop", "stop_button") in r.log
    assert not [e for e in r.log if e[0] in ("session.start", "sup.start")]


def test_editor_render_draws_only_on_change():
    r = Rig()
    r.edit(0)
    fb = FakeFb()
    assert r.ui.render(fb)
    assert not r.ui.render(fb)
    r.press("up")
    assert r.ui.render(fb) and (1, ">Rate  45 Hz") in fb.texts


# --- whole firmware on the simulated unit ----------------------------------------------------

def _programs_json(run_obj):
    flash = run_obj.flash.read_all()
    raw = flash.get("programs.json") or flash.get("/programs.json")
    assert raw, sorted(flash)
    return json.loads(raw if isinstance(raw, str) else raw.decode())


def test_scenario_edit_preset_save_to_flash_survives_power_cut():
    scenario_harness.CURRENT_BOARD[0] = "pico"
    s = Steps()
    s.press("ok", gap_ms=500)  # Quad ACL detail
    s.press("ok", hold_ms=1100, gap_ms=1500)  # long OK: editor on "My Quad ACL"
    s.press("up", gap_ms=300)  # rate 40 -> 45 Hz
    t_edit = s.t
    for _ in range(len(ui_mod.EDIT_FIELDS)):
        s.press("ok", gap_ms=300)  # through the fields; the last OK saves
    t_saved = s.t + 200
    s.wait(500)
    s.add(power_cut=True, gap_ms=1000)
    s.add(power_on=True, gap_ms=2500)  # splash, then the list
    # scroll the list down to the end of the presets
    for _ in range(N_PRESETS):
        s.press("down", gap_ms=220)
    t_end = s.t + 300
    run_obj, r = run(spec(s, t_end + 200, {}))
    edit_text = "\n".join(screen_at(r, t_edit))
    assert "My Quad ACL" in edit_text and "Rate  45 Hz" in edit_text
    saved = _programs_json(run_obj)
    assert len(saved) == 1
    p = P.Program.from_dict(saved[0])
    assert (p.key, p.name, p.rate_hz, p.phase_us) == ("c1", "My Quad ACL", 45, 300)
    assert "My Quad ACL" in "\n".join(screen_at(r, t_saved))  # the list shows it at once
    assert any(e["kind"] == "power_cut" for e in r["events"])
    assert ">My Quad ACL" in "\n".join(screen_at(r, t_end))  # still there after power on
    assert all(on is False for _, on in r["channels"]["1"]["enabled"])  # never any output
