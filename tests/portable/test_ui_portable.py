# The UI navigator and its run screen on MicroPython itself (tests/mp_run.py on the unix port,
# and pytest on CPython): a steady run screen (the current flowing, the level set, a factor, a
# stopped channel) draws nothing and allocates nothing per loop tick; a moving current redraws
# at most every REDRAW_MS.
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


class _Out:
    def __init__(self):
        self.state = "warmup"
        self.countdown_ms = 40000
        self.remaining_ms = 600000
        self.pulse = {1: {}, 2: {}}


class _Session:
    def __init__(self, program):
        self.program = program
        self.out = _Out()
        self.scale = 0.5

    def start(self, t):
        pass

    def stop(self, t):
        pass

    def tick(self, t):
        return self.out


class _Sup:
    def __init__(self):
        self.faults = []
        self.state = "idle"
        self.waiting = False  # as SafetySupervisor: True while a switch-driven session waits
        self.levels = [0.0, 12.0, 0.0]
        self.played = [0.0, 3.0, 0.0]
        self.chf = [None, None, None]

    def user_level(self, ch):
        return self.levels[ch]

    def played_ma(self, ch):
        return self.played[ch]

    def channel_fault(self, ch):
        return self.chf[ch]

    def start(self, plans, t):
        self.state = "running"
        return None

    def stop(self, reason):
        self.state = "idle"

    def acknowledge(self):
        pass


class _Store:
    notices = []

    def load_settings(self):
        return {"keypad_lock": False, "auto_off_min": 0}


class _Fb:
    def __init__(self):
        self.rows = {}

    def fill(self, c):
        self.rows = {}

    def text(self, s, x, y, c=1):
        self.rows[y // 8] = s

    def fill_rect(self, *a):
        pass

    def rect(self, *a):
        pass

    def hline(self, *a):
        pass


def _press(u, btn, t):
    B = ui_mod().B
    for k in (B.K_DOWN, B.K_PRESS, B.K_RELEASE):
        u.handle(B.event(btn, k), t)


def _alloc_ticks(u, fb, t, n):
    if not _MP:
        for i in range(n):
            u.update(t + i * 10)
            u.render(fb)
        return 0
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    for i in range(n):
        u.update(t + i * 10)
        u.render(fb)
    m1 = gc.mem_alloc()
    gc.enable()
    return m1 - m0


def test_run_screen_steady_ticks_allocate_nothing():
    ui = ui_mod()
    B = ui.B
    sup = _Sup()
    u = ui.UI(_Session, sup, _Store(), list(ui.progmod.PRESETS))
    u.update(2000)
    for _ in range(3):
        _press(u, B.OK, 2000)  # Quad ACL: detail, check, start
    assert u.screen == ui.RUN
    fb = _Fb()
    u.update(2010)
    assert u.render(fb)
    assert fb.rows[3] == ">1  3.0mA of  12" and fb.rows[6] == "warm+1st x0.25", fb.rows
    # the same countdown second, the same current objects: nothing drawn, nothing allocated
    assert _alloc_ticks(u, fb, 2020, 20) == 0
    # a channel stopped by a fault: drawn once, then steady again
    sup.chf[2] = "open_circuit"
    u.update(2300)
    assert u.render(fb) and fb.rows[4] == " 2 no electrode"
    assert _alloc_ticks(u, fb, 2310, 20) == 0
    # a moving current (a ramp): at most one redraw per REDRAW_MS
    draws = 0
    for i in range(50):
        sup.played[1] = sup.played[1] + 0.01
        u.update(2600 + i * 10)
        draws += 1 if u.render(fb) else 0
    assert 2 <= draws <= 3, draws
