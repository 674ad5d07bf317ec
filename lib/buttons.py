# Debounced push buttons, polled at a fixed interval from the app loop.
#
# Buttons are active low with pull-ups. Any object with .value() works as a pin (a fake pin in a
# test, machine.Pin on the unit). poll(now_ms) samples every button once; a level counts only
# after it has been stable for debounce_ms (bounces shorter than that are ignored). Events go into
# a preallocated ring of small ints; get() takes the oldest one (0 when empty). Nothing allocates
# in poll() or get().
#
# Event = kind << 3 | button. Per physical press a button yields:
#   DOWN at the debounced press, then
#     repeat buttons (up, down): PRESS at once (at the debounced press), then REPEAT while held:
#       first at repeat_delay_ms, then every repeat_ms
#     other buttons, exactly one of: PRESS released before long_ms; LONG held for long_ms
#   and RELEASE at the debounced release.
# Step events (PRESS/REPEAT) of a repeat button are never closer than min_step_ms (100 ms: at most
# 10 per second, the intensity rule of docs/safety.md); a PRESS that comes too soon is held back
# until the interval has passed; one more too-soon PRESS while one is held back is dropped
# (counted in rate_limited), so tapping faster than 10/s never queues rises that would play out
# later.
# Holding BACK and OK together for long_ms yields one LONG event of the virtual button LOCK and
# suppresses the two buttons' own PRESS/LONG for that hold.
#
# A STOP held down at start-up gives its DOWN at the first polls (other buttons held at start-up
# give nothing until released).
# STOP fast path: the app arms it in the supervisor (SafetySupervisor.attach_stop: a hard IRQ
# that cuts the output enable and sets a flag). attach_stop_irq(pin, handler) here arms a
# falling-edge IRQ that calls handler() directly. The interrupt routine does integer work only (a
# counter, one call of a preallocated bound method): no allocation, no float, no list, so it is
# legal as a hard IRQ. The polled STOP events still arrive through the ring for the UI.
from micropython import const
import time
import machine

UP = const(0)
DOWN = const(1)
OK = const(2)
BACK = const(3)
STOP = const(4)
LOCK = const(5)  # virtual: BACK + OK held together
NAMES = ("up", "down", "ok", "back", "stop", "lock")

NONE = const(0)
K_DOWN = const(1)
K_PRESS = const(2)
K_LONG = const(3)
K_REPEAT = const(4)
K_RELEASE = const(5)
KIND_NAMES = ("none", "down", "press", "long", "repeat", "release")

_RING = const(32)  # power of two
_MIN_STEP_MS = const(100)


def event(button, kind):
    return (kind << 3) | button


def button_of(ev):
    return ev & 7


def kind_of(ev):
    return ev >> 3


def describe(ev):
    """'up.press' style text for an event (allocates: for tests and traces, not the loop)."""
    if ev == NONE:
        return "none"
    return NAMES[ev & 7] + "." + KIND_NAMES[ev >> 3]


class Buttons:
    debounce_ms = 15  # switches bounce < 5 ms: 3x margin, and the screen answers in < 50 ms
    long_ms = 800
    repeat_delay_ms = 500
    repeat_ms = 100

    def __init__(self, pins, repeat=("up", "down"), debounce_ms=None, long_ms=None,
                 repeat_delay_ms=None, repeat_ms=None):
        """pins: dict name -> pin (names from NAMES[:5]); missing buttons are simply absent."""
        if debounce_ms is not None:
            self.debounce_ms = debounce_ms
        if long_ms is not None:
            self.long_ms = long_ms
        if repeat_delay_ms is not None:
            self.repeat_delay_ms = repeat_delay_ms
        if repeat_ms is not None:
            self.repeat_ms = repeat_ms
        if self.repeat_ms < _MIN_STEP_MS:
            self.repeat_ms = _MIN_STEP_MS  # rate bound: <= 10 steps per second
        n = 5
        self._pins: list = [None] * n  # a pin per button, None when absent
        for i in range(n):
            p = pins.get(NAMES[i]) if hasattr(pins, "get") else None
            self._pins[i] = p
        self._raw = bytearray(n)  # last raw sample (1 = pressed)
        self._stable = bytearray(n)  # debounced state
        self._repeat = bytearray(n)
        for name in repeat:
            self._repeat[NAMES.index(name)] = 1
        self._changed = [0] * n  # ticks_ms of the last raw change
        self._down_at = [0] * n  # ticks_ms of the debounced press
        self._next_rep = [0] * n  # ticks_ms of the next repeat
        self._last_step = [0] * n  # ticks_ms of the last PRESS/REPEAT
        self._stepped = bytearray(n)  # a step was ever emitted (so _last_step is valid)
        self._done = bytearray(n)  # LONG/REPEAT/combo already decided this hold
        self._pending = bytearray(n)  # a PRESS held back by the rate bound
        self._combo_done = False
        self._ring = bytearray(_RING)
        self._head = 0
        self._tail = 0
        self.dropped = 0
        self.rate_limited = 0
        self.stop_irq_count = 0
        self._stop_handler = None
        self._stop_isr_ref = None
        self._started = False
        self._present = tuple(p for p in self._pins if p is not None)  # the idle poll reads these
        for i in range(n):
            if self._pins[i] is not None:
                self._raw[i] = 1 if self._pins[i].value() == 0 else 0
                if i == STOP:
                    # STOP held at start-up is a press like any other (DOWN at once): it is
                    # never ignored, whatever its history
                    self._raw[i] = 0
                    continue
                self._stable[i] = self._raw[i]
                if self._stable[i]:
                    self._done[i] = 2  # held at start-up: no event until released
        self._idle = self._at_rest()

    @classmethod
    def from_board(cls, board, **kw):
        Pin = machine.Pin
        pins = {}
        for name, gpio in board.BUTTONS.items():
            pins[name] = Pin(gpio, Pin.IN, Pin.PULL_UP)
        return cls(pins, **kw)

    # -- STOP fast path ------------------------------------------------------------------------
    def attach_stop_irq(self, pin, handler):
        """Falling edge on pin -> handler() at once (integer work only, no allocation)."""
        self._stop_handler = handler
        self._stop_isr_ref = self._stop_isr  # bound method made once, here, not in the IRQ
        # the pin's own constant: IRQ_FALLING is 4 on rp2 but 2 on esp32
        trig = pin.IRQ_FALLING if hasattr(pin, "IRQ_FALLING") else machine.Pin.IRQ_FALLING
        pin.irq(handler=self._stop_isr_ref, trigger=trig)

    def _stop_isr(self, pin):
        self.stop_irq_count += 1
        h = self._stop_handler
        if h is not None:  # (always set before the IRQ is: attach_stop_irq)
            h()

    # -- ring ----------------------------------------------------------------------------------
    def _put(self, ev):
        nxt = (self._head + 1) & (_RING - 1)
        if nxt == self._tail:
            if (ev & 7) != STOP:
                self.dropped += 1
                return
            # a STOP event is never lost: it replaces the newest queued event
            self.dropped += 1
            self._ring[(self._head - 1) & (_RING - 1)] = ev
            return
        self._ring[self._head] = ev
        self._head = nxt

    def get(self):
        """Oldest queued event, or NONE (0)."""
        if self._tail == self._head:
            return NONE
        ev = self._ring[self._tail]
        self._tail = (self._tail + 1) & (_RING - 1)
        return ev

    def pending(self):
        return (self._head - self._tail) & (_RING - 1)

    def clear(self):
        self._tail = self._head

    def pressed(self, name):
        """Debounced current state of a button by name ('up', ...)."""
        i = NAMES.index(name)
        return i < 5 and self._stable[i] == 1

    def pressed_index(self, i):
        return self._stable[i] == 1

    # -- polling -------------------------------------------------------------------------------
    def _at_rest(self):
        # every button released and settled, no step held back by the rate bound: a poll that
        # finds every pin still released then does nothing
        for i in range(5):
            if self._raw[i] or self._stable[i] or self._pending[i]:
                return False
        return True

    def poll(self, now_ms):
        """Sample every button once; returns how many events are queued."""
        if self._idle:
            # At rest (the loop's usual case: about 80 % of the idle tick's button time on the
            # RP2040 before this path, docs/performance.md): only the pins are read, and the full
            # pass below runs only once one of them reads pressed.
            for p in self._present:
                if p.value() == 0:
                    break
            else:
                return (self._head - self._tail) & (_RING - 1)
        diff = time.ticks_diff
        for i in range(5):
            p = self._pins[i]
            if p is None:
                continue
            r = 1 if p.value() == 0 else 0
            if r != self._raw[i]:
                self._raw[i] = r
                self._changed[i] = now_ms
            elif r != self._stable[i] and diff(now_ms, self._changed[i]) >= self.debounce_ms:
                self._stable[i] = r
                if r:
                    self._on_down(i, now_ms)
                else:
                    self._on_up(i, now_ms)
            if self._stable[i]:
                self._held(i, now_ms)
            if self._pending[i] and self._step_ok(i, now_ms):
                self._pending[i] = 0
                self._step(i, K_PRESS, now_ms)
        self._combo(now_ms)
        self._idle = self._at_rest()
        return self.pending()

    def _step_ok(self, i, now_ms):
        return not self._stepped[i] or time.ticks_diff(now_ms, self._last_step[i]) >= _MIN_STEP_MS

    def _step(self, i, kind, now_ms):
        self._stepped[i] = 1
        self._last_step[i] = now_ms
        self._put((kind << 3) | i)

    def _on_down(self, i, now_ms):
        self._down_at[i] = now_ms
        self._done[i] = 0
        self._next_rep[i] = time.ticks_add(now_ms, self.repeat_delay_ms)
        self._put((K_DOWN << 3) | i)
        if self._repeat[i]:
            # A step button steps at the press, not at the release: the screen answers within
            # debounce + one tick. Holding it then repeats; the release adds nothing.
            self._done[i] = 1
            if self._step_ok(i, now_ms):
                self._step(i, K_PRESS, now_ms)
            elif self._pending[i]:
                self.rate_limited += 1
            else:
                self._pending[i] = 1

    def _on_up(self, i, now_ms):
        if not self._done[i]:
            if self._repeat[i]:
                if self._step_ok(i, now_ms):
                    self._step(i, K_PRESS, now_ms)
                elif self._pending[i]:
                    self.rate_limited += 1
                else:
                    self._pending[i] = 1
            else:
                self._put((K_PRESS << 3) | i)
        self._done[i] = 0
        self._put((K_RELEASE << 3) | i)
        if i == BACK or i == OK:
            if not self._stable[BACK] and not self._stable[OK]:
                self._combo_done = False

    def _held(self, i, now_ms):
        if self._done[i] == 2:
            return  # consumed by the combo, or held since start-up
        held = time.ticks_diff(now_ms, self._down_at[i])
        if self._repeat[i]:
            if time.ticks_diff(now_ms, self._next_rep[i]) >= 0 and self._step_ok(i, now_ms):
                self._done[i] = 1
                self._step(i, K_REPEAT, now_ms)
                self._next_rep[i] = time.ticks_add(now_ms, self.repeat_ms)
        elif not self._done[i] and held >= self.long_ms:
            if (i == BACK or i == OK) and self._stable[BACK] and self._stable[OK]:
                return  # the combo decides
            self._done[i] = 1
            self._put((K_LONG << 3) | i)

    def _combo(self, now_ms):
        if self._combo_done or not (self._stable[BACK] and self._stable[OK]):
            return
        diff = time.ticks_diff
        if self._done[BACK] == 2 or self._done[OK] == 2:
            return
        if diff(now_ms, self._down_at[BACK]) >= self.long_ms and \
                diff(now_ms, self._down_at[OK]) >= self.long_ms:
            self._combo_done = True
            self._done[BACK] = 2
            self._done[OK] = 2
            self._put((K_LONG << 3) | LOCK)

    # -- host simulation support -----------------------------------------------------------
    def quiet(self):
        """True when a poll with the pins as they are would do nothing: no button down or
        bouncing, no step waiting for its rate limit, no event queued (App.quiet_ms)."""
        return self._tail == self._head and self._at_rest()
