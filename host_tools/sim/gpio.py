# GPIO bank of the simulated chip: who owns each pin, what drives it, its level, and the edge
# record (the ground truth for tests, VCD export and plots).
#
# Resulting level of a pin, in priority order:
#   1. a driven output wins: the owner's output enable is set (SIO: Pin.OUT, or OPEN_DRAIN while
#      pulling low; PIO: the state machine's pindir) -> the owner's output value;
#   2. otherwise an external drive (drive_external: buttons, foot switch, external signals);
#   3. otherwise the pull resistor (up -> 1, down -> 0);
#   4. otherwise (floating) the pin keeps its last level (like a bus keeper), 0 at start.
# Pins owned by 'pwm' or 'i2c' are not driven in the edge record (their waveforms are recorded
# elsewhere: world.pwm_log, I2C device models), so they show the undriven level.
#
# Edges: edges[pin] is a list of (cycle, level), first entry (0, initial level). Only real changes
# are recorded; two changes at the same cycle collapse into one entry (a zero-width glitch is
# dropped). Edges must arrive in non-decreasing cycle order (ValueError otherwise).
#
# Long runs: drain(cutoff) hands every edge older than cutoff to the caller and keeps only the
# entry in force at cutoff (and the newer ones) in edges[pin], so the record stays bounded while
# readers of recent history (the current-sense model, level_at) still see it. After a drain,
# edges[pin][0] is the level in force from its cycle on (no longer cycle 0).
#
# Common subset of CPython 3.11 and MicroPython 1.29.

SIO = "sio"
PIO0 = "pio0"
PIO1 = "pio1"
PWM = "pwm"
I2C = "i2c"
RMT = "rmt"  # ESP32 RMT TX (host_tools/sim/esp32.py): driven like a PIO block, through set_level

PULL_UP = 1
PULL_DOWN = 2

IRQ_FALLING = 4
IRQ_RISING = 8

SET_LEVELS_BATCHED = True  # False: set_levels() is one set_level() per entry (for the tests)


class GpioBank:
    def __init__(self, world, n_pins=30):
        self.world = world
        self.n_pins = n_pins
        n = n_pins
        self.func = [None] * n  # None / 'sio' / 'pio0' / 'pio1' / 'pwm' / 'i2c'
        self.out = [0] * n  # SIO output value
        self.oe = [False] * n  # SIO output enable
        self.open_drain = [False] * n  # SIO open-drain emulation (oe follows out == 0)
        self.pull = [None] * n  # None / PULL_UP / PULL_DOWN
        self.ext = [None] * n  # external drive: None / 0 / 1
        # PIO-side output value and output enable, per block
        self.pio_out = {PIO0: [0] * n, PIO1: [0] * n, RMT: [0] * n}
        self.pio_oe = {PIO0: [False] * n, PIO1: [False] * n, RMT: [False] * n}
        self.levels = [0] * n
        self.edges = [[(0, 0)] for _ in range(n)]
        self._head_sent = [False] * n  # edges[pin][0] was already handed out by drain()
        self._drained_to = 0  # no edge may arrive before this cycle any more
        self.listeners = []
        self.irq = [None] * n  # (handler, trigger_mask, pin_object)

    # ---- helpers -----------------------------------------------------------------------
    def _check(self, pin):
        if not (0 <= pin < self.n_pins):
            raise ValueError("invalid pin " + str(pin))

    def _compute(self, pin):
        f = self.func[pin]
        if f == SIO:
            if self.open_drain[pin]:
                if self.out[pin] == 0:
                    return 0
            elif self.oe[pin]:
                return self.out[pin]
        elif f == PIO0 or f == PIO1 or f == RMT:
            if self.pio_oe[f][pin]:
                return self.pio_out[f][pin]
        e = self.ext[pin]
        if e is not None:
            return e
        p = self.pull[pin]
        if p == PULL_UP:
            return 1
        if p == PULL_DOWN:
            return 0
        return self.levels[pin]

    def _update(self, pin, cycle=None):
        """Recompute the level of pin; record and notify a change at cycle (default now)."""
        if cycle is None:
            cycle = self.world.now
        new = self._compute(pin)
        old = self.levels[pin]
        if new == old:
            return False
        self.levels[pin] = new
        rec = self.edges[pin]
        last = rec[-1]
        if cycle < last[0] or cycle < self._drained_to:
            raise ValueError(
                "non-causal edge on pin %d at cycle %d (last %d)" % (pin, cycle, last[0])
            )
        if last[0] == cycle:
            if len(rec) > 1 and rec[-2][1] == new:
                rec.pop()  # zero-width glitch: drop it
            else:
                rec[-1] = (cycle, new)
        else:
            rec.append((cycle, new))
        if self.listeners:
            for fn in self.listeners:
                fn(pin, new, cycle)
        if self.irq[pin] is not None:
            self._irq(pin, new, cycle)
        return True

    def _irq(self, pin, level, cycle):
        entry = self.irq[pin]
        if entry is None:
            return
        handler, trigger, pin_obj = entry
        if level:
            if not (trigger & IRQ_RISING):
                return
        elif not (trigger & IRQ_FALLING):
            return
        w = self.world
        if w._in_sync or cycle != w.now:
            # edge produced by PIO catch-up: run the handler from the event queue at its cycle
            # (or now, if that is later), never inside the PIO scheduler
            w.schedule(cycle, lambda: self._call_irq(pin, pin_obj, handler))
        else:
            self._call_irq(pin, pin_obj, handler)

    def _call_irq(self, pin, pin_obj, handler):
        if self.irq[pin] is None or self.irq[pin][0] is not handler:
            return
        if not self.world.irq_enabled:
            # machine.disable_irq(): hold the IRQ until enable_irq
            self.world._held_irqs.append((pin, pin_obj, handler))
            return
        handler(pin_obj)

    # ---- API ---------------------------------------------------------------------------
    def add_listener(self, fn):
        """fn(pin, level, cycle) is called on every change of a pin's resulting level."""
        self.listeners.append(fn)

    def remove_listener(self, fn):
        if fn in self.listeners:
            self.listeners.remove(fn)

    def level(self, pin):
        """Current level of pin (PIO synced up to now first)."""
        self.world.sync()
        return self.levels[pin]

    def level_at(self, pin, cycle):
        """Level of pin at cycle from the edge record."""
        self.world.sync()
        lvl = self.edges[pin][0][1]
        for c, v in self.edges[pin]:
            if c > cycle:
                break
            lvl = v
        return lvl

    def set_function(self, pin, owner):
        """Select the pin function: None, 'sio', 'pio0', 'pio1', 'pwm', 'i2c'."""
        self._check(pin)
        self.world.sync()
        self.func[pin] = owner
        self._update(pin)

    def set_pull(self, pin, pull):
        self._check(pin)
        self.world.sync()
        self.pull[pin] = pull
        self._update(pin)

    def sio_config(self, pin, output=None, value=None, open_drain=None):
        """CPU side (machine.Pin): claims the pin for SIO and sets direction / value."""
        self._check(pin)
        self.world.sync()
        self.func[pin] = SIO
        if open_drain is not None:
            self.open_drain[pin] = bool(open_drain)
        if output is not None:
            self.oe[pin] = bool(output)
        if value is not None:
            self.out[pin] = 1 if value else 0
        self._update(pin)

    def sio_write(self, pin, value):
        """CPU writes the SIO output register (Pin.value(x))."""
        self.world.sync()
        self.out[pin] = 1 if value else 0
        self._update(pin)

    def set_level(self, pin, level, cycle=None, driver=PIO0):
        """A PIO block (driver 'pio0'/'pio1') sets its output value for pin at cycle. It reaches
        the pin only if the pin's function is that block and its pindir is output."""
        if cycle is None:
            cycle = self.world.now
        self.pio_out[driver][pin] = 1 if level else 0
        if self.func[pin] == driver:
            self._update(pin, cycle)

    def set_levels(self, pin, run, driver):
        """set_level(pin, level, cycle, driver) for each (cycle, level) of `run` in order, in one
        call: the same levels, edge record and errors (an RMT channel's output between two looks).
        A pin with a listener or an IRQ handler, or not driven by `driver` just now, takes one
        set_level per entry (tests/test_sim_batched.py compares the two)."""
        if (self.listeners or self.irq[pin] is not None or self.func[pin] != driver
                or not self.pio_oe[driver][pin] or not SET_LEVELS_BATCHED or not run):
            for cycle, level in run:
                self.set_level(pin, level, cycle, driver)
            return
        # the pin shows the driver's value (_compute): only the edge record to keep
        rec = self.edges[pin]
        old = self.levels[pin]
        drained = self._drained_to
        last = rec[-1][0]
        new = old
        for cycle, level in run:
            new = 1 if level else 0
            if new == old:
                continue
            if cycle < last or cycle < drained:
                self.levels[pin] = new
                self.pio_out[driver][pin] = new
                raise ValueError(
                    "non-causal edge on pin %d at cycle %d (last %d)" % (pin, cycle, last))
            if last == cycle:
                if len(rec) > 1 and rec[-2][1] == new:
                    rec.pop()  # zero-width glitch: drop it
                    last = rec[-1][0]
                else:
                    rec[-1] = (cycle, new)
            else:
                rec.append((cycle, new))
                last = cycle
            old = new
        self.levels[pin] = old
        self.pio_out[driver][pin] = new

    def set_dir(self, pin, output, cycle=None, driver=PIO0):
        """A PIO block sets its pindir for pin at cycle."""
        if cycle is None:
            cycle = self.world.now
        self.pio_oe[driver][pin] = bool(output)
        if self.func[pin] == driver:
            self._update(pin, cycle)

    def drive_external(self, pin, level):
        """An external signal (button, foot switch) drives pin at world.now; None releases it.
        Fires Pin IRQ handlers synchronously if the resulting level changes."""
        self._check(pin)
        self.world.sync()
        self.ext[pin] = None if level is None else (1 if level else 0)
        self._update(pin)

    def release_external(self, pin):
        self.drive_external(pin, None)

    def set_irq(self, pin, handler, trigger, pin_obj):
        self._check(pin)
        if handler is None:
            self.irq[pin] = None
        else:
            self.irq[pin] = (handler, trigger, pin_obj)

    def drain(self, cutoff, pins=(), final=False):
        """Hand out the edges recorded before cycle `cutoff` (PIO synced to now first; cutoff is
        clamped to now: an edge at now may still change) and forget them on every pin, keeping in
        edges[pin] the entry in force at cutoff. Returns {pin: [(cycle, level), ...]} for the
        pins named in `pins`; the first drain of a pin includes its initial entry. Successive
        drains give each pin's whole record exactly once, in order. final=True: the world is
        over (no edge will come any more): no clamping."""
        self.world.sync()
        now = self.world.now
        if cutoff > now and not final:
            cutoff = now
        if cutoff > self._drained_to:
            self._drained_to = cutoff
        out = {}
        for pin in pins:
            out[pin] = []
        for pin in range(self.n_pins):
            rec = self.edges[pin]
            if rec[0][0] >= cutoff:
                continue
            k = 1
            n = len(rec)
            while k < n and rec[k][0] < cutoff:
                k += 1
            first = 1 if self._head_sent[pin] else 0
            if k > first:
                if pin in out:
                    out[pin] = rec[first:k]
                del rec[:k - 1]
                self._head_sent[pin] = True
        return out

    def edge_list(self, pin):
        """edges[pin] after syncing PIO up to now."""
        self.world.sync()
        return self.edges[pin]
