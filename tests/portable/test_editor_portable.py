# The program editor of ui.py on MicroPython itself (run by tests/mp_run.py on the unix port, and
# by pytest on CPython): edit a preset, a refused value, save to a store; an unchanged editor
# screen draws nothing and allocates nothing (the steady state of the loop).
import gc

from host_tools.sim import install, world

_MP = hasattr(gc, "mem_alloc")
_mod = []


def ui_mod():
    if not _mod:
        world.new_world()
        _mod.append(install.load("ui"))
        install.restore_time()
    return _mod[0]


class _Sup:
    faults = ()
    state = "idle"

    def user_level(self, ch):
        return 0

    def stop(self, reason):
        pass


class _Store:
    def __init__(self):
        self.saved = []
        self.notices = []

    def load_settings(self):
        return {"keypad_lock": False, "auto_off_min": 0}

    def save_program(self, p):
        p.validate()
        self.saved.append(p.to_dict())


class _Fb:
    def fill(self, c):
        pass

    def text(self, s, x, y, c=1):
        pass

    def fill_rect(self, *a):
        pass

    def rect(self, *a):
        pass

    def hline(self, *a):
        pass


def _press(u, btn, kind, t):
    B = ui_mod().B
    u.handle(B.event(btn, B.K_DOWN), t)
    u.handle(B.event(btn, kind), t)
    u.handle(B.event(btn, B.K_RELEASE), t)


def test_editor_on_device_python():
    ui = ui_mod()
    B = ui.B
    programs = ui.progmod
    store = _Store()
    progs = list(programs.PRESETS)
    u = ui.UI(None, _Sup(), store, progs)
    u.update(2000)
    _press(u, B.OK, B.K_PRESS, 2000)  # Quad ACL detail
    _press(u, B.OK, B.K_LONG, 2100)  # editor
    assert u.screen == ui.EDIT and u.editor.prog.key == "c1"
    for i in range(40):
        _press(u, B.UP, B.K_PRESS, 2200 + i)
    assert u.editor.prog.rate_hz == 200 and u.editor.msg == "! limit reached"
    fb = _Fb()
    assert u.render(fb)
    if _MP:
        gc.collect()
        gc.disable()
        m0 = gc.mem_alloc()
        for _ in range(20):
            u.update(3000)
            u.render(fb)
        m1 = gc.mem_alloc()
        gc.enable()
        assert m1 - m0 == 0, m1 - m0
    for line in u.lines():
        assert len(line) <= 16
    for _ in range(len(ui.EDIT_FIELDS)):
        _press(u, B.OK, B.K_PRESS, 3100)
    assert u.screen == ui.LIST and len(store.saved) == 1 and store.saved[0]["rate_hz"] == 200
    assert progs[-1].name == "My Quad ACL"
