# Debounced buttons with bouncing inputs, on CPython (pytest) and on the MicroPython unix port
# (tests/mp_run.py). Plain functions with assert; fake pins are objects with .value().
from tests.prng import Rng

from host_tools.sim import install, world

_mod = []


def buttons_mod():
    if not _mod:
        world.new_world()
        _mod.append(install.load("buttons"))
        install.restore_time()
    return _mod[0]


def diffs(seq):
    """Gaps between successive values (zip(strict=...) does not exist on MicroPython)."""
    return [seq[k + 1] - seq[k] for k in range(len(seq) - 1)]


class FakePin:
    """Active-low button with scripted bounces: level(t) from a list of (t_ms, level) steps."""

    IRQ_FALLING = 4

    def __init__(self):
        self.steps = [(0, 1)]
        self.now = 0
        self.irq_args = None

    def at(self, t, level):
        self.steps.append((t, level))

    def value(self):
        v = 1
        for t, lv in self.steps:
            if t <= self.now:
                v = lv
            else:
                break
        return v

    def irq(self, handler=None, trigger=0, hard=False):
        self.irq_args = (handler, trigger)


def bounce(pin, rng, t, level):
    """A clean edge at t to `level`, with 0-5 ms of random chatter before it settles."""
    chatter = rng.randint(0, 5)
    s = t
    while s < t + chatter:
        pin.at(s, level)
        s += rng.randint(1, 2)
        if s < t + chatter:
            pin.at(s, 1 - level)
            s += 1
    pin.at(t + chatter, level)
    return t + chatter


class Rig:
    def __init__(self, **kw):
        B = buttons_mod()
        self.B = B
        self.pins = {}
        for n in ("up", "down", "ok", "back", "stop"):
            self.pins[n] = FakePin()
        self.b = B.Buttons(self.pins, **kw)
        self.t = 0
        self.log = []  # (t, event)

    def run_to(self, t_end, poll_ms=5):
        while self.t <= t_end:
            for p in self.pins.values():
                p.now = self.t
            self.b.poll(self.t)
            while True:
                ev = self.b.get()
                if ev == 0:
                    break
                self.log.append((self.t, ev))
            self.t += poll_ms

    def kinds(self, name, kind):
        B = self.B
        i = B.NAMES.index(name)
        return [t for t, ev in self.log if B.button_of(ev) == i and B.kind_of(ev) == kind]


def test_each_bouncing_press_gives_one_event():
    rng = Rng(7)
    for poll_ms in (1, 5, 10):
        r = Rig()
        B = r.B
        presses = 0
        t = 50
        for _ in range(40):
            name = rng.choice(("up", "down", "ok", "back"))
            hold = rng.randint(60, 400)
            bounce(r.pins[name], rng, t, 0)
            bounce(r.pins[name], rng, t + hold, 1)
            t += hold + rng.randint(150, 400)
            presses += 1
        r.run_to(t + 200, poll_ms)
        downs = [ev for _, ev in r.log if B.kind_of(ev) == B.K_DOWN]
        shorts = [ev for _, ev in r.log if B.kind_of(ev) == B.K_PRESS]
        ups = [ev for _, ev in r.log if B.kind_of(ev) == B.K_RELEASE]
        assert len(downs) == presses, (poll_ms, len(downs))
        assert len(shorts) == presses, (poll_ms, len(shorts))
        assert len(ups) == presses
        for k in range(presses):
            assert B.button_of(downs[k]) == B.button_of(shorts[k])


def test_long_press_once_and_no_short_after():
    r = Rig()
    B = r.B
    rng = Rng(3)
    t0 = bounce(r.pins["ok"], rng, 100, 0)
    bounce(r.pins["ok"], rng, 2500, 1)
    r.run_to(3000, 5)
    longs = r.kinds("ok", B.K_LONG)
    assert len(longs) == 1
    assert 800 <= longs[0] - t0 <= 800 + 20 + 10
    assert r.kinds("ok", B.K_PRESS) == []
    assert len(r.kinds("ok", B.K_RELEASE)) == 1


def test_repeat_timing_and_rate_bound():
    r = Rig(repeat_ms=20)  # asks for 50/s: clamped to 10/s
    B = r.B
    assert r.b.repeat_ms == 100
    rng = Rng(5)
    t0 = bounce(r.pins["up"], rng, 100, 0)
    bounce(r.pins["up"], rng, 100 + 3000, 1)
    r.run_to(3500, 5)
    reps = r.kinds("up", B.K_REPEAT)
    presses = r.kinds("up", B.K_PRESS)
    assert len(presses) == 1  # the step at the press itself (debounce + one poll)
    assert 0 < presses[0] - t0 <= 20 + 10
    assert 500 <= reps[0] - t0 <= 500 + 20 + 10
    gaps = diffs(reps)
    assert min(gaps) >= 100 and max(gaps) <= 105
    assert 24 <= len(reps) <= 27
    # at most 10 steps (the press and its repeats) in any 1 s window
    steps = sorted(presses + reps)
    for i in range(len(steps)):
        assert len([x for x in steps if steps[i] <= x < steps[i] + 1000]) <= 10


def taps(r, name, n, period_ms):
    t = 100
    for _ in range(n):
        r.pins[name].at(t, 0)
        r.pins[name].at(t + period_ms // 2, 1)
        t += period_ms
    return t


def test_tapping_below_10_per_s_keeps_every_press():
    r = Rig(debounce_ms=10)
    B = r.B
    t = taps(r, "down", 20, 120)  # 8.3 taps per second
    r.run_to(t + 500, 1)
    steps = r.kinds("down", B.K_PRESS)
    assert len(steps) == 20
    assert min(diffs(steps)) >= 100


def test_fast_tapping_is_rate_bounded():
    r = Rig(debounce_ms=10)
    B = r.B
    t = taps(r, "up", 20, 40)  # 25 taps per second
    r.run_to(t + 1500, 1)
    steps = r.kinds("up", B.K_PRESS)
    assert min(diffs(steps)) >= 100
    assert steps[-1] <= t + 100  # nothing plays out after the taps stop
    assert len(steps) + r.b.rate_limited == 20


def test_back_ok_combo_gives_lock_only():
    r = Rig()
    B = r.B
    r.pins["back"].at(100, 0)
    r.pins["ok"].at(130, 0)
    r.pins["back"].at(1500, 1)
    r.pins["ok"].at(1520, 1)
    r.run_to(2000, 5)
    lock = [ev for _, ev in r.log if B.button_of(ev) == B.LOCK]
    assert len(lock) == 1 and B.kind_of(lock[0]) == B.K_LONG
    for name in ("back", "ok"):
        assert r.kinds(name, B.K_LONG) == [] and r.kinds(name, B.K_PRESS) == []


def test_pressed_state_and_held_at_startup():
    B = buttons_mod()
    pins = {"up": FakePin(), "ok": FakePin()}
    pins["ok"].steps = [(0, 0)]  # held at power-on
    b = B.Buttons(pins)
    assert b.pressed("ok") and not b.pressed("up")
    for t in range(0, 2000, 10):
        pins["up"].now = pins["ok"].now = t
        b.poll(t)
    assert b.get() == 0  # nothing for a button held since start-up


def test_stop_held_at_startup_is_a_press_at_once():
    # issue 9: a STOP that is down is never ignored, whatever its history
    B = buttons_mod()
    pins = {"up": FakePin(), "stop": FakePin()}
    pins["stop"].steps = [(0, 0)]  # held at power-on
    b = B.Buttons(pins)
    evs = []
    for t in range(0, 100, 10):
        pins["up"].now = pins["stop"].now = t
        b.poll(t)
        ev = b.get()
        while ev:
            evs.append((t, B.describe(ev)))
            ev = b.get()
    assert evs and evs[0][1] == "stop.down" and evs[0][0] <= 30, evs
    assert b.pressed("stop")


def test_stop_irq_calls_handler_without_polling():
    B = buttons_mod()
    pin = FakePin()
    b = B.Buttons({"stop": pin})
    calls = []
    b.attach_stop_irq(pin, lambda: calls.append(1))
    handler, trigger = pin.irq_args
    assert trigger == 4  # falling edge
    handler(pin)
    handler(pin)
    assert len(calls) == 2 and b.stop_irq_count == 2


def test_stop_event_survives_full_ring():
    r = Rig()
    B = r.B
    for _i in range(40):
        r.b._put(B.event(B.UP, B.K_PRESS))
    r.b._put(B.event(B.STOP, B.K_DOWN))
    evs = []
    while True:
        ev = r.b.get()
        if ev == 0:
            break
        evs.append(ev)
    assert evs[-1] == B.event(B.STOP, B.K_DOWN)
    assert B.describe(evs[-1]) == "stop.down"
