# The one simulated world: a virtual clock counted in system-clock cycles, a queue of scheduled
# callbacks, the GPIO bank, and the records every test reads (edges, PWM duty log, events).
#
# Common subset of CPython 3.11 and MicroPython 1.29: no dataclasses, typing, heapq, bisect.

from host_tools.sim.gpio import GpioBank

DEFAULT_SYS_HZ = 125_000_000
NS_PER_S = 1_000_000_000


class SimReset(BaseException):
    """Raised by the default World.on_reset hook: the simulated chip reset (watchdog, soft, ...).
    A BaseException, like SystemExit: a chip reset cannot be caught, so no firmware
    `except Exception` handler may swallow it (and every firmware handler is `except Exception`)."""

    def __init__(self, reason):
        super().__init__("simulated reset: " + str(reason))
        self.reason = reason


class Handle:
    """What World.schedule returns; cancel() removes the callback if it has not fired yet."""

    def __init__(self, world, cycle, seq, fn, quiet=False):
        self.world = world
        self.cycle = cycle
        self.seq = seq
        self.fn = fn
        self.quiet = quiet  # touches nothing the firmware reads (an observer): not counted
        self.cancelled = False
        self.fired = False

    def cancel(self):
        if not self.cancelled and not self.fired:
            self.cancelled = True
            self.world._remove(self)

    def pending(self):
        return not (self.cancelled or self.fired)


class World:
    """Virtual clock in integer system-clock cycles plus everything stamped with it.

    now          current cycle (int)
    sys_hz       system clock (cycles per second); set_sys_hz() changes it keeping time continuous
    gpio         GpioBank
    pio_system   object with run_until(cycle) (host_tools.sim.rp2 puts its scheduler here), or None
    pio          list of PIO blocks (filled by host_tools.sim.rp2)
    peripherals  list of other lazily-run peripherals (objects with run_until(cycle), e.g. the
                 ESP32 RMT of host_tools.sim.esp32); sync() runs them after the PIO system
    chip         "rp2040" (default) or "esp32": which flavour machine.ADC/freq stand-ins model
    cpu_hz       what machine.freq() reports; None: sys_hz (on the ESP32 world the cycle counts
                 the 80 MHz APB/RMT source clock while the CPU runs at 240 MHz)
    events       list of dicts {"cycle": c, "kind": ...}; anyone may append (see event())
    pwm_log      dict pin -> list of (cycle, duty_u16)
    adc_source   dict pin (26..29, 4 = temperature sensor) -> callable(cycle) -> volts
    i2c_devices  dict addr -> object with write(bytes, cycle) and read(n, cycle) -> bytes
    on_reset     callable(reason); default raises SimReset(reason)
    reset_cause  machine.reset_cause() value of the boot being simulated
    """

    def __init__(self, sys_hz=DEFAULT_SYS_HZ, n_pins=30):
        self.sys_hz = int(sys_hz)
        self.now = 0
        # time base for ns/us/ms conversions (rebased when sys_hz changes)
        self._base_cycle = 0
        self._base_ns = 0
        self._queue = []  # sorted list of Handle by (cycle, seq)
        self._seq = 0
        self._in_sync = False
        self._advancing = 0
        self.pio_system = None
        self.pio = []
        self.peripherals = []
        self.chip = "rp2040"
        self.cpu_hz = None
        self.events = []
        self.pwm_log = {}
        self.adc_source = {}
        self.adc_reads = {}  # pin -> (ADC, 0 read_u16 / 1 read_uv, value, cycle) of its last read
        self.fired = 0  # scheduled callbacks fired that were not quiet (see schedule)
        self.i2c_devices = {}
        self.on_reset = self._default_reset
        self.reset_cause = 1  # machine.PWRON_RESET
        self.irq_enabled = True
        self._held_irqs = []  # IRQs raised while machine.disable_irq() was in force
        self.pwm_slices = {}  # used by machine.PWM: slice -> [div16, top]
        self.epoch_s = 1704067200  # time.time() at cycle 0: 2024-01-01 00:00:00 UTC
        self.gpio = GpioBank(self, n_pins)

    # ---- reset hook ---------------------------------------------------------------------
    def _default_reset(self, reason):
        raise SimReset(reason)

    # ---- records ------------------------------------------------------------------------
    def event(self, kind, **fields):
        """Append {"cycle": now, "kind": kind, **fields} to events and return it."""
        e = {"cycle": self.now, "kind": kind}
        for k in fields:
            e[k] = fields[k]
        self.events.append(e)
        return e

    # ---- time conversions ---------------------------------------------------------------
    def ns(self, cycle=None):
        """Virtual time in ns at cycle (default now), floored."""
        if cycle is None:
            cycle = self.now
        return self._base_ns + (cycle - self._base_cycle) * NS_PER_S // self.sys_hz

    def us(self, cycle=None):
        return self.ns(cycle) // 1000

    def ms(self, cycle=None):
        return self.ns(cycle) // 1_000_000

    def cycles(self, ns):
        """Number of cycles lasting at least ns nanoseconds (rounded up)."""
        return (ns * self.sys_hz + NS_PER_S - 1) // NS_PER_S

    def cycle_at_ns(self, ns):
        """First cycle whose virtual time is >= ns."""
        return self._base_cycle + ((ns - self._base_ns) * self.sys_hz + NS_PER_S - 1) // NS_PER_S

    def set_sys_hz(self, hz):
        """Change the system clock at now; time in ns stays continuous."""
        self.sync()
        self._base_ns = self.ns()
        self._base_cycle = self.now
        self.sys_hz = int(hz)

    # ---- PIO catch-up -------------------------------------------------------------------
    def sync(self):
        """Run every PIO state machine and every other lazily-run peripheral up to now (no-op
        without any)."""
        ps = self.pio_system
        if (ps is None and not self.peripherals) or self._in_sync:
            return
        self._in_sync = True
        try:
            if ps is not None:
                ps.run_until(self.now)
            for p in self.peripherals:
                p.run_until(self.now)
        finally:
            self._in_sync = False

    # ---- scheduling ---------------------------------------------------------------------
    def schedule(self, cycle, fn, quiet=False):
        """Call fn() when the clock reaches cycle (clamped to now). Equal cycles fire in the
        order they were scheduled. Returns a Handle (handle.cancel()). quiet: fn changes
        nothing the firmware could read (an observer); every other firing counts in
        `fired`, which the tick skipping of the scenario runner watches. The PIO is synced
        before a callback fires, except a quiet one (it calls sync() itself if it reads pins
        or edges)."""
        cycle = int(cycle)
        if cycle < self.now:
            cycle = self.now
        self._seq += 1
        h = Handle(self, cycle, self._seq, fn, quiet)
        q = self._queue
        lo, hi = 0, len(q)
        while lo < hi:  # insert after every entry with cycle <= new cycle (stable)
            mid = (lo + hi) // 2
            if q[mid].cycle <= cycle:
                lo = mid + 1
            else:
                hi = mid
        q.insert(lo, h)
        return h

    def schedule_in(self, cycles, fn):
        return self.schedule(self.now + cycles, fn)

    def _remove(self, h):
        q = self._queue
        lo, hi = 0, len(q)
        while lo < hi:
            mid = (lo + hi) // 2
            m = q[mid]
            if (m.cycle, m.seq) < (h.cycle, h.seq):
                lo = mid + 1
            else:
                hi = mid
        if lo < len(q) and q[lo] is h:
            q.pop(lo)

    def next_event_cycle(self):
        """Cycle of the earliest pending callback, or None."""
        if self._queue:
            return self._queue[0].cycle
        return None

    def pending(self):
        return len(self._queue)

    def advance_to(self, cycle):
        """Move time forward to cycle, firing due callbacks in time order with now set to each
        callback's cycle. PIO is synced before time moves and before each callback fires.
        A target in the past only fires callbacks already due (time never goes back).
        Callbacks may themselves sleep (nested advance_to)."""
        cycle = int(cycle)
        if cycle < self.now:
            cycle = self.now
        q = self._queue
        self._advancing += 1
        try:
            self.sync()
            while q and q[0].cycle <= cycle:
                h = q.pop(0)
                if h.cycle > self.now:
                    self.now = h.cycle
                    if not h.quiet:  # (a quiet callback syncs itself if it reads the pins)
                        self.sync()
                h.fired = True
                if not h.quiet:
                    self.fired += 1
                h.fn()
            if cycle > self.now:
                self.now = cycle
        finally:
            self._advancing -= 1

    def advance(self, cycles):
        self.advance_to(self.now + cycles)

    def advance_ns(self, ns):
        self.advance_to(self.cycle_at_ns(self.ns() + ns))

    def run_due(self):
        """Fire callbacks already due at now (e.g. micropython.schedule)."""
        self.advance_to(self.now)


_current = None


def new_world(sys_hz=DEFAULT_SYS_HZ, n_pins=30):
    """Create a fresh world; it becomes current()."""
    global _current
    _current = World(sys_hz, n_pins)
    return _current


def current():
    """The current world (created on first use)."""
    global _current
    if _current is None:
        _current = World()
    return _current


def set_current(w):
    global _current
    _current = w
    return w
