# Cycle-exact RP2040 PIO execution engine for the simulation (common subset of CPython 3.11 and
# MicroPython 1.29). The MicroPython-facing API is in rp2.py; read its header for the world
# interface used here.
#
# Time model
#   Everything is counted in system-clock cycles. A state machine (SM) runs on "ticks": with a
#   clock divider D = INT + FRAC/256 (kept as D256 = INT*256 + FRAC) its n-th tick after it was
#   enabled at cycle `base` falls on cycle base + floor(n * D256 / 256). This is the first-order
#   fractional divider of the RP2040 (INT cycles per tick, plus one extra cycle whenever the 8-bit
#   fractional accumulator carries), with the accumulator at 0 when the SM is enabled. Average
#   period D, every interval INT or INT+1 cycles.
#   One instruction executes in one tick; its delay adds ticks after it completes. A stalled
#   instruction is re-evaluated every tick; its delay follows completion; its side-set is applied at
#   the first tick only.
#   run_until(c) executes every SM step whose start cycle is < c, stepping always the SM with the
#   smallest (cycle, global SM index) first. After it, the state is "at the start of cycle c": a CPU
#   action at world.now = c (put, exec, external pin change) is seen by SM instructions at cycles
#   >= c.
#   Visibility between SMs: what an SM writes at cycle t (pin level, IRQ flag) is seen by every SM
#   from cycle t + 1 (never in the same cycle, whatever the SM order). The GPIO input synchroniser
#   (2 cycles of extra latency on real pins unless INPUT_SYNC_BYPASS is set) is NOT modelled: a
#   pin level is seen one cycle after it changes.
#   Blocked SMs (WAIT, blocking PULL/PUSH, IRQ WAIT, autopull/autopush stalls) sleep until an event
#   that could wake them (pin change, IRQ flag change, CPU put/get), then re-evaluate on their next
#   tick at or after the moment the event becomes visible. A stalled WAIT whose own side-set moved
#   a pin looks again at the next tick (the change it may wait for came before it slept).
#   A self-loop `jmp x_dec/y_dec` to its own address runs in closed form: (X+1)*(delay+1) ticks.
#
# Periodic-orbit fast-forward (PioSystem.fastforward, on unless FASTFORWARD is False)
#   Each PIO block's enabled SMs form one group. Every time the group's anchor (its lowest
#   enabled SM) comes back to its wrap_bottom, the group's whole state is recorded relative to
#   that cycle T: every SM's registers, shift counts, FIFO contents, stall/sleep/EXEC state, its
#   next tick and any closed-form loop in flight (all relative to T), the block's IRQ flags and
#   out/oe registers, the levels of the pins the group reads or drives, and the IRQ-flag and
#   pin-change stamps that a later read can still see. The pin-level changes the group makes and
#   its writes of the block's pin registers are logged. A state recorded at T1 that comes back
#   at T2 means the group runs periodically with P = T2 - T1, provided nothing outside took
#   part in between. The premise ("nothing outside"): no CPU access to an SM, a FIFO or the
#   block (every CPU entry point calls PioSystem.touch() or sync()); no change of any pin's
#   function, nor of the external drive or pull of the group's pins, nor of the level of a pin
#   the group only reads (an SIO output the firmware writes, say): checked at every run_until;
#   no other block reads or drives the group's pins, and neither block has a machine that can
#   sleep on a pin while the other runs; divider 1 only; no CPU IRQ handler on the block; no pin
#   listener or pin IRQ on its pins. What follows a confirmed period depends on the group:
#   - Orbit (no SM of the group can sleep on a pin: the usual case, the pulse engine): the group
#     is frozen at T2 (PioBlock.orbit; its SMs leave the scheduler) and every run_until(c) - a
#     look of the world: a sleep, a callback, a pin or ADC read - writes the recorded pin
#     changes of the following periods with a cycle < c (every one, to the cycle, in stepping's
#     order, with the pin levels and the GPIO bank's copy of the pin registers) and keeps the
#     orbit, however often the world looks. When the premise breaks (a CPU access: touch() or
#     sync(); a change found at a run_until) the exact state at the last run_until limit W is
#     materialised first: the state of the last period start whose SMs are all due at or before
#     W (T2's state, stamps moved by whole periods), then the rest of the way stepped with the
#     world as it was during the orbit and the edges it makes kept aside (they are written
#     already). So an SmCore's fields of a group in an orbit hold T2's state: look at them after
#     PioSystem.sync() or materialise().
#   - Whole-period jumps (an SM can sleep on a pin: each look of the world wakes it to look at
#     its pin again, so looks take part): the group jumps ahead by k whole periods, with every
#     SM's next tick still at or before the run_until limit c; the logged edges of one period
#     are written k times shifted by P and the stamps written in the period move by k * P. When
#     the world looks again within every period, no jump fits: after three such periods the
#     recording pauses for 64 periods.
#   Either way the edges, the pin levels at every look and the state the CPU sees are the ones
#   of the step-by-step run (PioSystem.steps, a statistic, counts fewer instructions);
#   tests/test_sim_fastforward.py compares the two edge for edge, look for look.

_INF = 1 << 60
FASTFORWARD = True  # default of PioSystem.fastforward for new systems
_FF_MAX_SNAPS = 256  # states kept per history before it starts over
_FF_MAX_LOG = 1 << 16  # pin changes kept per history before it starts over
_M32 = 0xFFFFFFFF

WAKE_PIN = 1
WAKE_IRQ = 2
WAKE_TX = 4
WAKE_RX = 8

_DRIVERS = ("pio0", "pio1")
_PIN_OF_BIT = {}
for _i in range(32):
    _PIN_OF_BIT[1 << _i] = _i


def system_for(world):
    """The PioSystem of a world (created and attached on first use)."""
    ps = getattr(world, "pio_system", None)
    if ps is None:
        ps = PioSystem(world)
        world.pio_system = ps
        try:
            world.pio = ps.blocks
        except AttributeError:
            pass
    return ps


# SmCore._decode_all's cache: (instruction words, side-set count/opt/base, SET count/base) ->
# decoded program. DECODE_CACHE = False decodes every time (tests/test_sim_batched.py compares).
DECODE_CACHE = True
_DECODED = {}


def _periods(lst, off, P, k):
    """k whole periods of one pin's edges, [(cyc + off + q * P, lvl) for q in range(k) for cyc,
    lvl in lst], made by C loops (the orbit's bulk write; 1.6-2.3x faster than that comprehension
    on CPython; tests/test_sim_batched.py compares the two): each edge's cycles as a range, merged
    by a sort into time order, which is that order because the orbit writes whole periods only
    when a pin's changes in one period are strictly increasing and span less than P."""
    times = []
    for cyc, _ in lst:
        times.extend(range(cyc + off, cyc + off + k * P, P))
    if len(lst) > 1:
        times.sort()
    # (zip without strict=: MicroPython has none; both are k * len(lst) long)
    return zip(times, [lvl for _, lvl in lst] * k)  # noqa: B905


def _rotl(v, n):
    n &= 31
    v &= _M32
    if n == 0:
        return v
    return ((v << n) | (v >> (32 - n))) & _M32


def _rev32(v):
    r = 0
    for _ in range(32):
        r = (r << 1) | (v & 1)
        v >>= 1
    return r


def _pin_count(init):
    if init is None:
        return 0
    if isinstance(init, int):
        return 1
    return len(init)


def _pin_modes(init):
    if init is None:
        return ()
    if isinstance(init, int):
        return (init,)
    return tuple(init)


class PioSystem:
    """Both PIO blocks of one world, scheduled together in global time order."""

    def __init__(self, world):
        self.world = world
        self.blocks = [PioBlock(self, 0), PioBlock(self, 1)]
        self.sms = self.blocks[0].sms + self.blocks[1].sms
        self.synced = getattr(world, "now", 0)
        self.resched = False
        self.runnable = []
        self.runnable_dirty = True
        self.sleepers = []
        self.pin_chg = {}  # pin -> (cycle, level before that cycle) for PIO-driven changes
        self._running = False
        self._levels = None
        self.steps = 0  # instructions executed (statistics)
        # periodic-orbit fast-forward (see the header)
        self.fastforward = FASTFORWARD
        self.gen = 0  # bumped by every CPU access that can change a state machine or block
        self.cp = None  # the anchor SM run() stopped at its wrap_bottom
        self.ff_jumps = 0  # statistics: jumps made, cycles and edges they covered
        self.ff_cycles = 0
        self.ff_edges = 0
        self.ff_orbits = 0  # orbits entered, and materialised again (statistics)
        self.ff_materialised = 0
        self.ff_looks = 0  # looks of the world (run_until) that an orbit went on through
        self._anchor_gen = -1
        self._orbits = 0  # blocks whose group is in an orbit (PioBlock.orbit)

    def sys_hz(self):
        return getattr(self.world, "sys_hz", 125000000)

    def now(self):
        return self.world.now

    def sync(self):
        """Bring all SMs up to world.now (through world.sync() when the world has one) and make
        their state concrete: the CPU is about to look at or change a state machine, a FIFO or
        a block (every rp2 entry point calls this first)."""
        w = self.world
        s = getattr(w, "sync", None)
        if s is not None:
            s()
        self.run_until(w.now)
        if self._orbits and not self._running:
            self.materialise()

    def touch(self):
        """The CPU changes a state machine or a block: end every orbit (at the last cycle the
        world synced to) and start every fast-forward history over."""
        if self._orbits:
            self.materialise()
        self.gen += 1

    def materialise(self):
        """Every group in an orbit gets its exact state at the last run_until limit."""
        for b in self.blocks:
            if b.orbit is not None:
                self._materialise(b)

    # pins ---------------------------------------------------------------------------------
    def read_pin(self, pin, t):
        pin &= 31
        ch = self.pin_chg.get(pin)
        if ch is not None and ch[0] >= t:
            return ch[1]
        gpio = self.world.gpio
        levels = getattr(gpio, "levels", None)
        if levels is not None:
            return levels[pin] & 1 if pin < len(levels) else 0
        return gpio.level(pin) & 1

    def pins_written(self, outchg, oechg, newout, newoe, t, driver):
        """A PIO block changed its output value / direction registers at cycle t: hand every
        changed pin to the GPIO bank (it decides whether the pin's level changes)."""
        gpio = self.world.gpio
        levels = self._levels
        if levels is None:
            levels = self._levels = getattr(gpio, "levels", None)
        npins = len(levels) if levels is not None else 30
        changed = (outchg | oechg) & ((1 << npins) - 1)
        woke = False
        pin_of = _PIN_OF_BIT
        while changed:
            bit = changed & -changed  # the lowest changed pin only: no walk over the others
            changed ^= bit
            pin = pin_of[bit]
            prev = levels[pin] if levels is not None else gpio.level(pin)
            if outchg & bit:
                gpio.set_level(pin, 1 if newout & bit else 0, t, driver)
            if oechg & bit:
                gpio.set_dir(pin, 1 if newoe & bit else 0, t, driver)
            new = levels[pin] if levels is not None else gpio.level(pin)
            if new != prev:
                ch = self.pin_chg.get(pin)
                if ch is None or ch[0] != t:
                    self.pin_chg[pin] = (t, prev)
                woke = True
                h = self.blocks[0 if driver == "pio0" else 1].ffh
                if h is not None and h.log is not None:
                    h.log.append((pin, t, new))
        h = self.blocks[0 if driver == "pio0" else 1].ffh
        if h is not None and h.log is not None:
            h.rlog.append((t, newout, newoe, len(h.log)))
        if woke and self.sleepers:
            self.notify(WAKE_PIN, t + 1, None)
        return woke

    # sleeping -----------------------------------------------------------------------------
    def notify(self, reason, visible, block):
        for sm in list(self.sleepers):
            if sm.sleep & reason and (block is None or sm.block is block):
                sm.wake(visible)

    def _rebuild(self):
        # the machines of a group in an orbit are frozen at the orbit's start (PioBlock.orbit)
        self.runnable = [sm for sm in self.sms if sm.enabled and not sm.sleep and
                         sm.block.orbit is None]
        self.sleepers = [sm for sm in self.sms if sm.enabled and sm.sleep and
                         sm.block.orbit is None]
        self.runnable_dirty = False
        if self._anchor_gen != self.gen:
            self._anchor_gen = self.gen
            for b in self.blocks:
                first = True
                for sm in b.sms:
                    if first and sm.enabled and self.fastforward:
                        sm.brk = sm.wrap_bottom
                        first = False
                    else:
                        sm.brk = -1

    # scheduler ----------------------------------------------------------------------------
    def run_until(self, c):
        if self._running:
            return
        if c <= self.synced and not self.runnable_dirty:
            # nothing new can happen before c, except SMs the CPU just woke at cycle >= c
            return
        if self._orbits and not self.runnable and not self.sleepers and \
                not self.runnable_dirty:
            # every enabled machine is in an orbit (the whole firmware's steady state): a look
            # writes the changes due before c, unless the outside touched a group
            for b in self.blocks:
                if b.orbit is not None and not self._orbit_holds(b):
                    break
            else:
                for b in self.blocks:
                    if b.orbit is not None:
                        self._orbit_advance(b, c)
                if c > self.synced:
                    self.synced = c
                return
        self._running = True
        try:
            self._run(c)
        finally:
            self._running = False
        if c > self.synced:
            self.synced = c
        for b in self.blocks:
            if b.pending_handlers:
                b.fire_handlers()

    def _run(self, c):
        if self._orbits:
            for b in self.blocks:
                if b.orbit is not None:
                    if self._orbit_holds(b):
                        # (the group is apart from everything else: its changes up to c can be
                        # written before the other machines run)
                        self._orbit_advance(b, c)
                    else:
                        self._materialise(b)  # the outside touched the group: exact state
        if self.runnable_dirty:
            self._rebuild()
        for b in self.blocks:
            h = b.ffh
            if h is not None and (h.gen != self.gen or (
                    h.off_until is None and not _ff_outside_same(self.world.gpio, h))):
                b.ffh = None  # the CPU or the outside touched the group: start over
        # external pin changes may have happened at self.synced: re-evaluate pin sleepers
        if self.sleepers:
            for sm in list(self.sleepers):
                if sm.sleep & WAKE_PIN:
                    sm.wake(self.synced)
                    sm.block.ffh = None  # a look from outside the group: start over
        self._step_to(c, True)
        if self._orbits:
            for b in self.blocks:
                o = b.orbit
                if o is not None and o.w is None:
                    self._orbit_advance(b, c)  # entered in this run

    # periodic-orbit fast-forward (see the header) ----------------------------------------
    def _ff_checkpoint(self, sm, c):
        """The anchor `sm` has just come back to its wrap_bottom: record the group's state, or
        jump ahead by whole periods if this state was seen before."""
        blk = sm.block
        h = blk.ffh
        T = sm.t
        if h is not None and h.off_until is not None:
            if T < h.off_until:
                return
            h = None
        if h is None:
            h = self._ff_start(blk)
            blk.ffh = h
            if h.off_until is not None:
                return
        key, raw = _ff_key(blk, h, T)
        hit = h.snaps.get(key)
        if hit is None:
            if len(h.snaps) >= _FF_MAX_SNAPS or len(h.log) >= _FF_MAX_LOG:
                # no period in a whole history: pause the recording for as long again
                h.off_until = T + (T - h.t0) + 1
                h.snaps = None
                h.log = None
                return
            h.snaps[key] = (T, len(h.log), len(h.rlog), raw)
            return
        T1, i1, r1, raw1 = hit
        P = T - T1
        gpio = self.world.gpio
        if P <= 0 or gpio.listeners:
            return
        maxt = T
        for s in blk.sms:
            if s.enabled and s.t > maxt:
                maxt = s.t
        if h.orbit_ok:
            irqs = gpio.irq
            for p in h.pins:
                if irqs[p] is not None:
                    return
            self._orbit_start(blk, h, i1, h.rlog[r1:], raw1, raw, P, T, maxt)
            return
        k = (c - maxt) // P
        if k < 1:
            # the world looks again within a period (the firmware syncs every few ms): after a
            # few such misses stop recording for a while, it only costs time
            h.misses += 1
            if h.misses >= 3:
                h.off_until = T + 64 * P
                h.snaps = None
                h.log = None
            return
        seg = h.log[i1:]
        irqs = gpio.irq
        for e in seg:
            if irqs[e[0]] is not None:
                return
        self._ff_jump(blk, h, seg, raw1, raw, k, P)
        # start a new history here (the log does not hold the replayed periods)
        h2 = self._ff_start(blk)
        blk.ffh = h2
        if h2.off_until is None:
            key, raw = _ff_key(blk, h2, sm.t)
            h2.snaps[key] = (sm.t, 0, 0, raw)

    def _ff_start(self, blk):
        """A new history for `blk`'s group (paused for good, until the CPU or the outside
        changes something, when the group cannot be fast-forwarded)."""
        gpio = self.world.gpio
        h = _FfHistory(self.gen, _ff_sig(gpio), [])
        h.off_until = _INF
        h.orbit_ok = True
        if not self.fastforward or blk.sm_handlers.count(None) != 4 or \
                blk.pio_handler is not None:
            return h
        func = gpio.func
        npins = len(func)
        other = self.blocks[1 - blk.index]
        other_on = False
        for s in other.sms:
            if s.enabled:
                other_on = True
        mine = set()
        for s in blk.sms:
            if s.enabled:
                if s.d256 != 256 or (other_on and s.may_wait_pin()):
                    return h  # (the other block's pin changes would wake it: see below)
                if s.may_wait_pin():
                    h.orbit_ok = False  # every look of the world wakes it: whole jumps only
                mine |= s.read_pins(npins)
        for p in mine:
            if other_on and func[p] == other.driver:
                return h
        if other_on:
            theirs = set()
            for s in other.sms:
                if s.enabled:
                    theirs |= s.read_pins(npins)
                    if s.may_wait_pin():
                        # every pin change of this group would wake it to look again (and
                        # sleep on): its next tick follows them, which a jump does not replay
                        return h
            for p in theirs:
                if func[p] == blk.driver:
                    return h
        for p in range(npins):
            if func[p] == blk.driver:
                mine.add(p)
        h.pins = sorted(mine)
        levels = gpio.levels
        h.ro = [(p, levels[p]) for p in h.pins if func[p] != blk.driver]
        h.off_until = None
        return h

    def _ff_jump(self, blk, h, seg, raw1, raw2, k, P):
        """Replay `seg` (one period of pin changes) k times, shifted by P each, then move the
        group's state k periods on."""
        sh = k * P
        gpio = self.world.gpio
        edges = gpio.edges
        # fast path: on every pin the period's changes are strictly later than the one before
        # (the first one than the pin's last recorded edge, the last one than the first one of
        # the next period): no two changes share a cycle, so each one is a plain new edge
        by_pin = {}
        for pin, cyc, lvl in seg:
            lst = by_pin.get(pin)
            if lst is None:
                lst = by_pin[pin] = []
            lst.append((cyc, lvl))
        fast = True
        for pin in by_pin:
            lst = by_pin[pin]
            prevc = edges[pin][-1][0] - P
            for cyc, _lvl in lst:
                if cyc <= prevc:
                    fast = False
                    break
                prevc = cyc
            if lst[-1][0] >= lst[0][0] + P:
                fast = False
        if fast:
            for pin in by_pin:
                lst = by_pin[pin]
                edges[pin].extend([(cyc + j * P, lvl) for j in range(1, k + 1)
                                   for cyc, lvl in lst])
            k_slow = 0
        else:
            k_slow = k
        for j in range(1, k_slow + 1):
            off = j * P
            for pin, cyc, lvl in seg:
                rec = edges[pin]
                cc = cyc + off
                if rec[-1][0] == cc:
                    if len(rec) > 1 and rec[-2][1] == lvl:
                        rec.pop()
                    else:
                        rec[-1] = (cc, lvl)
                else:
                    rec.append((cc, lvl))
        self._ff_shift(blk, raw1, raw2, sh)
        self.ff_jumps += 1
        self.ff_cycles += sh
        self.ff_edges += k * len(seg)

    def _ff_shift(self, blk, raw1, raw2, sh):
        """Move the group's state, recorded at raw2 one period after raw1, on by sh cycles (a
        whole number of periods): every SM's next tick (a sleeping one's only when it moved in
        the period), closed-form loops in flight, IRQ flag and pin change stamps written in the
        period."""
        t1, chg1, pc1 = raw1
        t2, chg2, pc2 = raw2
        for i in range(4):
            s = blk.sms[i]
            if not s.enabled:
                continue
            if s.sleep and t1[i] == t2[i]:
                continue
            s.n += sh
            s.t += sh
            ff = s.ff
            if ff is not None:
                s.ff = (ff[0], ff[1] + sh, ff[2], ff[3], ff[4])
        ic = blk.irq_chg
        for i in range(8):
            if chg1[i] != chg2[i]:
                ic[i] += sh
        pcg = self.pin_chg
        for pin in pc2:
            v = pc2[pin]
            if v is not None and pc1.get(pin) != v:
                pcg[pin] = (v[0] + sh, v[1])

    # orbits: the group keeps its period while the world only looks ---------------------
    def _orbit_start(self, blk, h, i1, rseg, raw1, raw2, P, T, maxt):
        """The state at the checkpoint (the cut) came back after one period P with nothing
        outside taking part: freeze the group there; from now on each run_until writes the
        recorded pin changes of the following periods up to its limit (_orbit_advance)."""
        gpio = self.world.gpio
        o = _Orbit()
        o.P = P
        # the first period after the cut: every write of the block's pin registers, with the
        # pin level changes it made
        log = h.log
        ev = []
        k = i1
        for cyc, out, oe, k2 in rseg:
            ev.append((cyc + P, out, oe, tuple([(e[0], e[2]) for e in log[k:k2]])))
            k = k2
        o.ev = ev
        # each pin's changes in one period; `bulk`: on every pin they are strictly later than
        # the one before, also across the period boundary (no two in one cycle), so whole
        # periods can be written as plain new edges
        by_pin = {}
        for cyc, _out, _oe, chg in ev:
            for pin, lvl in chg:
                lst = by_pin.get(pin)
                if lst is None:
                    lst = by_pin[pin] = []
                lst.append((cyc, lvl))
        bulk = True
        for lst in by_pin.values():
            for k in range(1, len(lst)):
                if lst[k][0] <= lst[k - 1][0]:
                    bulk = False
            if lst[-1][0] >= lst[0][0] + P:
                bulk = False
        o.by_pin = by_pin if bulk and ev else None
        o.maxt = maxt
        o.tcut = T
        o.raw1 = raw1
        o.raw2 = raw2
        o.gen = self.gen
        # every pin's function (a pin handed to the block joins the group's pins); the
        # external drive and pull of the group's pins
        o.conf = (list(gpio.func), [gpio.ext[p] for p in h.pins], [gpio.pull[p] for p in h.pins])
        o.pins = h.pins
        levels = gpio.levels
        o.levels = [levels[p] for p in h.pins]
        func = gpio.func
        drv = blk.driver
        o.ro = [(p, levels[p]) for p in h.pins if func[p] != drv]
        o.cur_out = blk.out
        o.cur_oe = blk.oe
        o.nxt = ev[0][0] if ev else _INF
        blk.orbit = o
        blk.ffh = None
        self._orbits += 1
        self.ff_orbits += 1
        self.runnable_dirty = True
        self.resched = True

    def _orbit_holds(self, blk):
        """Is the orbit's premise still true at this look (no CPU access, no change of a pin's
        function, pull or external drive, no change of a pin the group only reads, no pin
        listener or pin IRQ)?"""
        o = blk.orbit
        if o.gen != self.gen:
            return False
        gpio = self.world.gpio
        conf = o.conf
        if gpio.listeners or gpio.func != conf[0]:
            return False
        levels = gpio.levels
        for p, lvl in o.ro:
            if levels[p] != lvl:
                return False
        ext = gpio.ext
        pull = gpio.pull
        irq = gpio.irq
        ext0 = conf[1]
        pull0 = conf[2]
        k = 0
        for p in o.pins:
            if ext[p] != ext0[k] or pull[p] != pull0[k] or irq[p] is not None:
                return False
            k += 1
        return True

    def _orbit_advance(self, blk, c):
        """Write the orbit's pin changes with a cycle < c (every one, to the cycle, in the order
        stepping makes them), the pin levels and the block's pin registers as seen by the GPIO
        bank at c."""
        o = blk.orbit
        w0 = o.w
        if w0 is not None and c <= w0:
            return
        if w0 is None:
            if c > o.tcut:
                self.ff_cycles += c - o.tcut
        else:
            self.ff_cycles += c - w0
            self.ff_looks += 1
        o.w = c
        if c <= o.nxt:
            return  # nothing due before c
        P = o.P
        ev = o.ev
        n = len(ev)
        gpio = self.world.gpio
        edges = gpio.edges
        levels = gpio.levels
        i = o.i
        off = o.j * P
        e = None
        written = 0
        while True:
            e2 = ev[i]
            cc = e2[0] + off
            if cc >= c:
                break
            e = e2
            for pin, lvl in e[3]:
                rec = edges[pin]
                if rec[-1][0] == cc:  # two changes in one cycle: as GpioBank._update
                    if len(rec) > 1 and rec[-2][1] == lvl:
                        rec.pop()
                    else:
                        rec[-1] = (cc, lvl)
                else:
                    rec.append((cc, lvl))
                levels[pin] = lvl
                written += 1
            i += 1
            if i == n:
                i = 0
                off += P
                if o.by_pin is not None and off >= 2 * P and ev[-1][0] + off + P < c:
                    # two or more whole periods, each one strictly after the one before on
                    # every pin (the one before, written already, comes from the orbit)
                    k = (c - 1 - ev[-1][0] - off) // P + 1
                    for pin, lst in o.by_pin.items():
                        edges[pin].extend(_periods(lst, off, P, k))
                        levels[pin] = lst[-1][1]
                        written += k * len(lst)
                    off += k * P
        o.i = i
        o.j = off // P
        o.nxt = cc
        self.ff_edges += written
        self._mirror(blk, o.cur_out, o.cur_oe, e[1], e[2])
        o.cur_out = e[1]
        o.cur_oe = e[2]

    def _mirror(self, blk, out0, oe0, out, oe):
        """The GPIO bank's copy of the block's pin registers (GpioBank.pio_out / pio_oe)."""
        gpio = self.world.gpio
        po = gpio.pio_out[blk.driver]
        poe = gpio.pio_oe[blk.driver]
        npins = len(po)
        chg = (out ^ out0) & ((1 << npins) - 1)
        while chg:
            bit = chg & -chg
            chg ^= bit
            p = _PIN_OF_BIT[bit]
            po[p] = 1 if out & bit else 0
        chg = (oe ^ oe0) & ((1 << npins) - 1)
        while chg:
            bit = chg & -chg
            chg ^= bit
            p = _PIN_OF_BIT[bit]
            poe[p] = bool(oe & bit)

    def _materialise(self, blk):
        """End `blk`'s orbit with the group's exact state at the last run_until limit W: the
        state of the last period start whose machines are all due at or before W, then the
        partial period stepped with the world as it was during the orbit (function, pull and
        external drive of every pin, the levels of the group's pins) and the edges it makes
        kept aside (the orbit wrote them already)."""
        o = blk.orbit
        blk.orbit = None
        blk.ffh = None
        self._orbits -= 1
        self.ff_materialised += 1
        self.runnable_dirty = True
        self.resched = True
        W = o.w
        if W is None:
            return
        P = o.P
        m = (W - o.maxt) // P if W > o.maxt else 0
        if m > 0:
            self._ff_shift(blk, o.raw1, o.raw2, m * P)
        gpio = self.world.gpio
        drv = blk.driver
        func0, ext0, pull0 = o.conf
        driven = [p for p in o.pins if func0[p] == drv]
        saved = (gpio.func, gpio.ext[:], gpio.pull[:], gpio.listeners, gpio.irq,
                 getattr(gpio, "_drained_to", 0), [gpio.edges[p] for p in driven],
                 [gpio.levels[p] for p in o.pins], gpio.pio_out[drv][:], gpio.pio_oe[drv][:])
        levels = gpio.levels
        for k in range(len(o.pins)):
            levels[o.pins[k]] = o.levels[k]
        for p in driven:
            gpio.edges[p] = [(-1, levels[p])]
        gpio.func = list(func0)
        for k in range(len(o.pins)):
            gpio.ext[o.pins[k]] = ext0[k]
            gpio.pull[o.pins[k]] = pull0[k]
        gpio.listeners = []
        gpio.irq = [None] * len(saved[4])
        gpio._drained_to = 0
        self._mirror(blk, o.cur_out, o.cur_oe, blk.out, blk.oe)
        running = self._running
        self._running = True
        try:
            self._step_to(W)
        finally:
            self._running = running
            gpio.func, gpio.ext[:], gpio.pull[:], gpio.listeners, gpio.irq = saved[:5]
            gpio._drained_to = saved[5]
            for k in range(len(driven)):
                gpio.edges[driven[k]] = saved[6][k]
            for k in range(len(o.pins)):
                levels[o.pins[k]] = saved[7][k]
            gpio.pio_out[drv][:] = saved[8]
            gpio.pio_oe[drv][:] = saved[9]

    def _step_to(self, c, checkpoints=False):
        """Step every runnable machine up to cycle c, always the one with the smallest local
        time; checkpoints: the fast-forward's checkpoint when an anchor comes back to its wrap
        target (off: a materialisation)."""
        while True:
            if self.runnable_dirty:
                self._rebuild()
            self.resched = False
            best = None
            bk = _INF
            sk = _INF
            for sm in self.runnable:
                k = sm.t * 8 + sm.gidx
                if k < bk:
                    sk = bk
                    bk = k
                    best = sm
                elif k < sk:
                    sk = k
            if best is None or best.t >= c:
                break
            best.run(sk, c)
            sm = self.cp
            if sm is not None:
                self.cp = None
                if checkpoints:
                    self._ff_checkpoint(sm, c)


class _Orbit:
    """A group in an orbit: frozen at the cut (a period start), with one period of recorded pin
    changes and register writes, replayed up to each run_until limit."""

    def __init__(self):
        self.P = 0
        # (cycle, out, oe, ((pin, level), ...)) of every write of the block's pin registers in
        # the first period after the cut, with the pin level changes it made
        self.ev = []
        self.i = 0  # next write to replay: ev[i] shifted by j periods
        self.j = 0
        self.nxt = _INF  # its cycle
        self.by_pin = None  # {pin: [(cycle, level), ...]} of one period, if whole ones can go
        self.w = None  # the last run_until limit: every change before it is written
        self.tcut = 0  # the cut: the anchor's next tick
        self.maxt = 0  # the latest next tick of the group's machines at the cut
        self.raw1 = None  # raw stamps one period before the cut and at the cut (_ff_shift)
        self.raw2 = None
        self.gen = 0
        self.conf = None  # (every pin's function, external drive and pull of self.pins)
        self.pins = []  # pins the group reads or drives, their levels at the cut
        self.levels = []
        self.ro = []  # (pin, level) of the pins the group only reads: must not change
        self.cur_out = 0  # the block's pin registers as last handed to the GPIO bank
        self.cur_oe = 0


class _FfHistory:
    """Recorded states of one block's group since the last time it was touched."""

    def __init__(self, gen, sig, pins):
        self.gen = gen
        self.sig = sig
        self.pins = pins  # pins the group reads or drives
        self.snaps = {}  # relative state -> (T, log index, raw stamps)
        self.log = []  # (pin, cycle, level) of every pin change the group made
        # (cycle, out, oe, len(log) after it) of every write of the block's pin registers
        self.rlog = []
        self.orbit_ok = False  # no machine can sleep on a pin: a confirmed period is an orbit
        self.ro = []  # (pin, level) of the pins the group only reads (driven from outside)
        self.t0 = None
        self.off_until = None  # recording paused until this cycle (_INF: until the CPU acts)
        self.misses = 0  # periods found too close to the end of a run_until to jump


def _ff_sig(gpio):
    """What decides how a PIO write reaches a pin and what a PIO read sees, besides the PIO
    itself: compared at every run_until while a history is kept."""
    return (tuple(gpio.func), tuple(gpio.ext), tuple(gpio.pull))


def _ff_outside_same(gpio, h):
    """Nothing outside the group changed what it reads or how its writes reach the pins since
    the history started: the pins' configuration, and the levels of the pins it only reads (an
    SIO output, say, that the firmware writes)."""
    if _ff_sig(gpio) != h.sig:
        return False
    levels = gpio.levels
    for p, lvl in h.ro:
        if levels[p] != lvl:
            return False
    return True


def _ff_key(blk, h, T):
    """(the group's state relative to cycle T, the raw stamps the jump needs)."""
    if h.t0 is None:
        h.t0 = T
    sms = blk.sms
    mint = _INF
    for s in sms:
        if s.enabled and not s.sleep and s.t < mint:
            mint = s.t
    parts = []
    traw = []
    for s in sms:
        traw.append(s.t)
        if not s.enabled:
            parts.append(None)
            continue
        if s.sleep and s.t <= mint + 1:
            rt = None  # asleep: its next tick is decided by the wake-up, not by its own count
        else:
            rt = s.t - T
        ff = s.ff
        if ff is not None:
            ff = (ff[0], s.base + ff[1] - T, ff[2], ff[3], ff[4])
        parts.append((s.pc, s.x, s.y, s.isr, s.isr_count, s.osr, s.osr_count, tuple(s.tx),
                      tuple(s.rx), s.stalled, s.irq_waiting, s.exec_word, s.sleep, rt, ff))
    chg = []
    ic = blk.irq_chg
    prev = blk.irq_prev
    for i in range(8):
        if ic[i] >= mint:
            chg.append((i, ic[i] - T, (prev >> i) & 1))
    levels = blk.system.world.gpio.levels
    pcg = blk.system.pin_chg
    pins = []
    pcraw = {}
    for p in h.pins:
        ch = pcg.get(p)
        pcraw[p] = ch
        if ch is not None and ch[0] >= mint:
            pins.append((levels[p], ch[0] - T, ch[1]))
        else:
            pins.append(levels[p])
    key = (tuple(parts), blk.irq, tuple(chg), blk.out, blk.oe, tuple(pins))
    return key, (traw, list(ic), pcraw)


class PioBlock:
    """One PIO block: 32-word instruction memory, 4 SMs, 8 IRQ flags, pin output registers."""

    def __init__(self, system, index):
        self.system = system
        self.index = index
        self.driver = _DRIVERS[index]
        self.mem = [0] * 32
        self.used = 0
        self.programs = []  # [program list, offset, length]
        self.mem_version = 0
        self.irq = 0
        self.irq_prev = 0
        self.irq_chg = [-1] * 8
        self.out = 0
        self.oe = 0
        self.sms = [SmCore(self, i) for i in range(4)]
        self.sm_handlers = [None] * 4  # (handler, arg)
        self.pio_handler = None  # (handler, trigger, arg)
        self.pending_handlers = []
        self.ffh = None  # fast-forward history of this block's group (see the header)
        self.orbit = None  # the group's orbit, when it is in one (see the header)

    # instruction memory -------------------------------------------------------------------
    def add_program(self, prog):
        self.system.touch()
        data = prog[0]
        n = len(data)
        if n == 0 or n > 32:
            raise OSError(12)  # ENOMEM
        mask = (1 << n) - 1
        offset = -1
        for i in range(32 - n, -1, -1):  # like the pico-sdk: highest free slot first
            if not (self.used & (mask << i)):
                offset = i
                break
        if offset < 0:
            raise OSError(12)  # ENOMEM
        for j in range(n):
            w = data[j] & 0xFFFF
            if (w & 0xE000) == 0:  # JMP: relocate target as pio_add_program does
                w += offset
            self.mem[offset + j] = w
        self.used |= mask << offset
        self.programs.append([prog, offset, n])
        prog[1 + self.index] = offset
        self.mem_version += 1
        return None

    def holds(self, prog):
        off = prog[1 + self.index]
        if off == -1:
            return False
        for entry in self.programs:
            if entry[0] is prog and entry[1] == off:
                return True
        return False

    def remove_program(self, prog=None):
        self.system.touch()
        keep = []
        for entry in self.programs:
            if prog is None or entry[0] is prog:
                p, offset, n = entry
                self.used &= ~(((1 << n) - 1) << offset)
                if p[1 + self.index] == offset:
                    p[1 + self.index] = -1
            else:
                keep.append(entry)
        self.programs = keep
        self.mem_version += 1

    # IRQ flags ----------------------------------------------------------------------------
    def irq_read(self, i, t):
        if self.irq_chg[i] >= t:
            return (self.irq_prev >> i) & 1
        return (self.irq >> i) & 1

    def irq_write(self, i, v, t):
        bit = 1 << i
        cur = self.irq & bit
        if bool(cur) == bool(v):
            return
        if self.irq_chg[i] != t:
            self.irq_prev = (self.irq_prev & ~bit) | cur
            self.irq_chg[i] = t
        if v:
            self.irq |= bit
            if i < 4:
                self._irq_raised(i, t)
        else:
            self.irq &= ~bit
        if self.system.sleepers:
            self.system.notify(WAKE_IRQ, t + 1, self)

    def _irq_raised(self, i, t):
        h = self.sm_handlers[i]
        if h is not None:
            self.pending_handlers.append((t, i, h[0], h[1]))
        ph = self.pio_handler
        if ph is not None and ph[1] & (0x100 << i):
            self.pending_handlers.append((t, i, ph[0], ph[2]))

    def set_sm_irq_handler(self, i, handler, arg):
        self.system.touch()
        self.sm_handlers[i] = None if handler is None else (handler, arg)
        return _IrqObj(self, 1 << i)

    def set_irq_handler(self, handler, trigger, hard, arg):
        self.system.touch()
        if trigger & ~0xF00:
            raise NotImplementedError("PIO.irq trigger other than IRQ_SM0..3 (FIFO interrupts)")
        self.pio_handler = None if handler is None else (handler, trigger, arg)
        return _IrqObj(self, 0xF)

    def fire_handlers(self):
        """Run CPU handlers for flags 0-3 raised during the last sync. Each handler is scheduled
        on the world at (raise cycle + 1) (clamped by the world to now); the flag is cleared
        (acknowledged, as MicroPython's PIO IRQ handler does) when the handler runs."""
        pend = self.pending_handlers
        self.pending_handlers = []
        w = self.system.world
        for t, i, handler, arg in pend:
            w.schedule(t + 1, _HandlerCall(self, i, handler, arg))


class _HandlerCall:
    def __init__(self, block, i, handler, arg):
        self.block = block
        self.i = i
        self.handler = handler
        self.arg = arg

    def __call__(self):
        sysm = self.block.system
        sysm.sync()
        sysm.touch()
        self.block.irq_write(self.i, 0, sysm.world.now)
        self.handler(self.arg)


class _IrqObj:
    def __init__(self, block, mask):
        self.block = block
        self.mask = mask

    def flags(self):
        self.block.system.sync()
        return self.block.irq & self.mask

    def trigger(self):
        return self.mask


class SmCore:
    """One state machine."""

    def __init__(self, block, index):
        self.block = block
        self.system = block.system
        self.index = index
        self.gidx = block.index * 4 + index
        self.enabled = False
        self.sleep = 0
        self.stalled = False
        self.irq_waiting = False
        self.exec_word = None
        self.ff = None  # closed-form self loop in flight: (pc, n0, count, ticks per iteration, reg)
        self.brk = -1  # fast-forward anchor: run() stops when the PC comes back here
        self.base = 0
        self.n = 0
        self.t = 0
        self.d256 = 256
        self.rem_ticks = 0
        self.pc = 0
        self.x = 0
        self.y = 0
        self.isr = 0
        self.isr_count = 0
        self.osr = 0
        self.osr_count = 32
        self.tx = []
        self.rx = []
        self.tx_depth = 4
        self.rx_depth = 4
        self.configured = False
        self.code = None
        self.code_version = -1
        # configuration (pinctrl / execctrl / shiftctrl)
        self.wrap_top = 31
        self.wrap_bottom = 0
        self.status_sel = 0
        self.status_n = 0
        self.jmp_pin = 0
        self.in_base = 0
        self.out_base = 0
        self.out_count = 0
        self.set_base = 0
        self.set_count = 0
        self.sideset_base = 0
        self.sideset_count = 0
        self.sideset_opt = False
        self.side_pindir = False
        self.autopush = False
        self.autopull = False
        self.in_right = True
        self.out_right = True
        self.push_thresh = 32
        self.pull_thresh = 32

    # ---- configuration --------------------------------------------------------------------
    def configure(
        self,
        prog,
        freq,
        in_base,
        out_base,
        set_base,
        jmp_pin,
        sideset_base,
        in_shiftdir,
        out_shiftdir,
        push_thresh,
        pull_thresh,
    ):
        blk = self.block
        sysm = self.system
        sysm.touch()
        now = sysm.now()
        self.set_enabled(False)
        if not blk.holds(prog):
            # not loaded in this block of this world (a program list keeps its offset fields
            # across simulated boots; a fresh world starts with empty instruction memory)
            blk.add_program(prog)
        offset = prog[1 + blk.index]
        # execctrl, shiftctrl, out/set/sideset init are the last five entries in every
        # MicroPython layout (8 entries up to v1.25, 9 since v1.26: see rp2.py)
        execctrl = prog[-5]
        unsupported = execctrl & ~(
            (1 << 30) | (1 << 29) | (0x1F << 12) | (0x1F << 7) | (1 << 4) | 0xF
        )
        if unsupported:
            raise NotImplementedError(
                "execctrl bits 0x{:08x} (OUT_STICKY/INLINE_OUT_EN/OUT_EN_SEL/...)".format(
                    unsupported
                )
            )
        shiftctrl = prog[-4]
        if in_shiftdir is not None:
            shiftctrl = (shiftctrl & ~(1 << 18)) | ((in_shiftdir & 1) << 18)
        if out_shiftdir is not None:
            shiftctrl = (shiftctrl & ~(1 << 19)) | ((out_shiftdir & 1) << 19)
        if push_thresh is not None:
            shiftctrl = (shiftctrl & ~(0x1F << 20)) | ((push_thresh & 0x1F) << 20)
        if pull_thresh is not None:
            shiftctrl = (shiftctrl & ~(0x1F << 25)) | ((pull_thresh & 0x1F) << 25)
        if freq is None or freq == -1:
            d256 = 256
        else:
            if freq <= 0:
                raise ValueError("freq out of range")
            d256 = sysm.sys_hz() * 256 // freq
            if d256 < 256 or d256 >= (1 << 24):
                raise ValueError("freq out of range")
        self.d256 = d256
        self.wrap_top = ((execctrl >> 12) & 0x1F) + offset
        self.wrap_bottom = ((execctrl >> 7) & 0x1F) + offset
        self.status_sel = (execctrl >> 4) & 1
        self.status_n = execctrl & 0xF
        self.side_pindir = bool(execctrl & (1 << 29))
        self.sideset_opt = bool(execctrl & (1 << 30))
        self.autopush = bool(shiftctrl & (1 << 16))
        self.autopull = bool(shiftctrl & (1 << 17))
        self.in_right = bool(shiftctrl & (1 << 18))
        self.out_right = bool(shiftctrl & (1 << 19))
        self.push_thresh = ((shiftctrl >> 20) & 0x1F) or 32
        self.pull_thresh = ((shiftctrl >> 25) & 0x1F) or 32
        join_tx = bool(shiftctrl & (1 << 30))
        join_rx = bool(shiftctrl & (1 << 31))
        if join_tx and join_rx:
            self.tx_depth = 0
            self.rx_depth = 0
        else:
            self.tx_depth = 8 if join_tx else (0 if join_rx else 4)
            self.rx_depth = 8 if join_rx else (0 if join_tx else 4)
        self.in_base = in_base or 0
        self.out_base = out_base or 0
        self.set_base = set_base or 0
        self.sideset_base = sideset_base or 0
        self.jmp_pin = jmp_pin or 0
        self.out_count = _pin_count(prog[-3])
        self.set_count = _pin_count(prog[-2])
        self.sideset_count = _pin_count(prog[-1]) + int(self.sideset_opt)
        if self.sideset_count > 5:
            raise ValueError("too many side-set pins")
        if self.set_count > 5:
            raise ValueError("too many set pins")
        # pio_sm_init: FIFOs cleared, SM restarted, clock divider restarted, PC = program start
        self.tx = []
        self.rx = []
        self.restart()
        self.pc = offset
        self.rem_ticks = 0
        self.configured = True
        self.code_version = -1
        # pins named in the *_init tuples: values and directions first, then the pins are
        # handed to this PIO block (asm_pio_init_gpio in MicroPython)
        gpio = sysm.world.gpio
        for init, base in ((prog[-3], out_base), (prog[-2], set_base), (prog[-1], sideset_base)):
            if base is None:
                continue
            modes = _pin_modes(init)
            newout = blk.out
            newoe = blk.oe
            for i in range(len(modes)):
                pin = (base + i) & 31
                bit = 1 << pin
                newout = (newout & ~bit) | ((modes[i] & 1) << pin)
                newoe = (newoe & ~bit) | (((modes[i] >> 1) & 1) << pin)
            self._apply(newout, newoe, now)
            for i in range(len(modes)):
                gpio.set_function((base + i) & 31, blk.driver)

    def _decode_all(self):
        """Decode the block's instruction memory for this SM. The result depends only on the
        words and the side-set/SET pin configuration, so it is kept in _DECODED (a pulse test
        configures a state machine with the same program thousands of times); the decoded
        tuples are never changed, so one list serves every SM with that key."""
        blk = self.block
        key = (tuple(blk.mem), self.sideset_count, self.sideset_opt, self.sideset_base,
               self.set_count, self.set_base)
        code = _DECODED.get(key) if DECODE_CACHE else None
        if code is None:
            code = tuple(self._decode(w) for w in blk.mem)
            if DECODE_CACHE:
                if len(_DECODED) >= 256:
                    _DECODED.clear()
                _DECODED[key] = code
        self.code = code
        self.code_version = blk.mem_version

    def _decode(self, w):
        """The instruction's fields (op, a, b, c, side-set mask, side-set bits, delay, word), then
        its step results made once: [8] the plain "next instruction" result, [9] the jump-taken
        (JMP) or pin-write (SET PINS/PINDIRS) result; the steps return these without building
        a tuple per executed instruction."""
        f = self._decode_fields(w)
        delay = f[6]
        alt = None
        if f[0] == 0:
            alt = (f[2], 0, None, None, None, delay)
        elif f[0] == 8 and f[3] is not None:
            alt = (-1, 0, f[3], None, None, delay) if f[1] == 0 else \
                (-1, 0, None, f[3], None, delay)
        return f + ((-1, 0, None, None, None, delay), alt)

    def _decode_fields(self, w):
        field = (w >> 8) & 0x1F
        sc = self.sideset_count
        dbits = 5 - sc
        delay = field & ((1 << dbits) - 1)
        smask = 0
        sbits = 0
        if sc:
            sval = field >> dbits
            use = True
            nbits = sc
            if self.sideset_opt:
                nbits = sc - 1
                use = bool((sval >> nbits) & 1)
                sval &= (1 << nbits) - 1
            if use and nbits:
                smask = _rotl((1 << nbits) - 1, self.sideset_base)
                sbits = _rotl(sval, self.sideset_base)
        op = w >> 13
        if op == 0:
            return (0, (w >> 5) & 7, w & 0x1F, 0, smask, sbits, delay, w)
        if op == 1:
            return (1, (w >> 7) & 1, (w >> 5) & 3, w & 0x1F, smask, sbits, delay, w)
        if op == 2:
            return (2, (w >> 5) & 7, (w & 0x1F) or 32, 0, smask, sbits, delay, w)
        if op == 3:
            return (3, (w >> 5) & 7, (w & 0x1F) or 32, 0, smask, sbits, delay, w)
        if op == 4:
            if w & 0x80:
                return (5, (w >> 6) & 1, (w >> 5) & 1, w & 0x1F, smask, sbits, delay, w)
            return (4, (w >> 6) & 1, (w >> 5) & 1, w & 0x1F, smask, sbits, delay, w)
        if op == 5:
            return (6, (w >> 5) & 7, (w >> 3) & 3, w & 7, smask, sbits, delay, w)
        if op == 6:
            return (7, (w >> 6) & 1, (w >> 5) & 1, w & 0x1F | (w & 0x80), smask, sbits, delay, w)
        dst = (w >> 5) & 7
        data = w & 0x1F
        pins = None  # SET PINS / PINDIRS: (mask, bits) worked out once, at decode
        if dst == 0 or dst == 4:
            m = _rotl((1 << self.set_count) - 1, self.set_base)
            pins = (m, _rotl(data, self.set_base) & m)
        return (8, dst, data, pins, smask, sbits, delay, w)

    def read_pins(self, npins):
        """The GPIOs this SM's instructions can read (JMP PIN, WAIT GPIO/PIN, IN/MOV PINS), over
        the whole instruction memory (a jump may reach any word)."""
        if self.code_version != self.block.mem_version:
            self._decode_all()
        pins = set()
        for ins in self.code:
            op = ins[0]
            if op == 0 and ins[1] == 6:
                pins.add(self.jmp_pin & 31)
            elif op == 1 and ins[2] == 0:
                pins.add(ins[3] & 31)
            elif op == 1 and ins[2] == 1:
                pins.add((self.in_base + ins[3]) & 31)
            elif (op == 2 and ins[1] == 0) or (op == 6 and ins[3] == 0) or \
                    (op == 3 and ins[1] == 7) or (op == 6 and ins[1] == 4):
                return set(range(npins))  # IN/MOV PINS, or OUT/MOV EXEC (any instruction)
        return set(p for p in pins if p < npins)

    def may_wait_pin(self):
        """Can this SM fall asleep on a pin (WAIT GPIO/PIN, or OUT/MOV EXEC of any word)?"""
        if self.code_version != self.block.mem_version:
            self._decode_all()
        for ins in self.code:
            op = ins[0]
            if (op == 1 and ins[2] < 2) or (op == 3 and ins[1] == 7) or (op == 6 and ins[1] == 4):
                return True
        return False

    # ---- time helpers ---------------------------------------------------------------------
    def _cycle_of(self, n):
        if self.d256 == 256:
            return self.base + n
        return self.base + ((n * self.d256) >> 8)

    def _ticks_before(self, c):
        """Number of ticks n >= 0 whose cycle is < c."""
        if c <= self.base:
            return 0
        return -((-(c - self.base) * 256) // self.d256)

    def wake(self, visible):
        if not self.sleep:
            return
        self.sleep = 0
        nmin = self._ticks_before(visible)
        if nmin > self.n:
            self.n = nmin
            self.t = self._cycle_of(nmin)
        sysm = self.system
        sysm.runnable_dirty = True
        sysm.resched = True

    def settle(self, c):
        """Make a closed-form loop in flight concrete up to cycle c (CPU is about to look)."""
        ff = self.ff
        if ff is None:
            return
        self.ff = None
        pc, n0, k, per, reg = ff
        nlim = self._ticks_before(c)
        m = -((n0 - nlim) // per)  # ceil((nlim - n0) / per): iterations started before c
        if m < 1:
            m = 1
        if m >= k + 1:
            return  # loop finished: state already final
        if reg == 1:
            self.x = k - m
        else:
            self.y = k - m
        self.pc = pc
        self.n = n0 + m * per
        self.t = self._cycle_of(self.n)

    # ---- CPU side -------------------------------------------------------------------------
    def set_enabled(self, on):
        sysm = self.system
        sysm.touch()
        now = sysm.now()
        if on == self.enabled:
            return
        if not on:
            self.settle(now)
            rem = self.n - self._ticks_before(now)
            self.rem_ticks = rem if rem > 0 else 0
            self.enabled = False
        else:
            if not self.configured:
                raise ValueError("state machine not initialised")
            self.enabled = True
            self.base = now
            self.n = self.rem_ticks
            self.t = self._cycle_of(self.n)
            self.sleep = 0
        sysm.runnable_dirty = True
        sysm.resched = True

    def restart(self):
        self.system.touch()
        self.settle(self.system.now())
        self.stalled = False
        self.irq_waiting = False
        self.exec_word = None
        self.isr = 0
        self.isr_count = 0
        self.osr_count = 32
        self.rem_ticks = 0
        if self.enabled:
            now = self.system.now()
            self.base = now
            self.n = 0
            self.t = now
            self.sleep = 0
            self.system.runnable_dirty = True
            self.system.resched = True

    def cpu_exec(self, word):
        sysm = self.system
        sysm.touch()
        now = sysm.now()
        self.settle(now)
        self.exec_word = word & 0xFFFF
        self.stalled = False
        self.irq_waiting = False
        if self.enabled:
            if self.sleep:
                self.sleep = 0
            nmin = self._ticks_before(now)
            if nmin > self.n:
                self.n = nmin
                self.t = self._cycle_of(nmin)
            sysm.runnable_dirty = True
            sysm.resched = True
        else:
            # executed at once while the SM is stopped (delay ignored); if it stalls it stays
            # pending and completes once the SM is enabled
            save = (self.base, self.n, self.t, self.d256)
            self.base = now
            self.n = 0
            self.t = now
            self.d256 = 256
            self.enabled = True
            try:
                self.run(_INF, now + 1, True)
            finally:
                self.enabled = False
                self.sleep = 0
                self.base, self.n, self.t, self.d256 = save
            sysm.runnable_dirty = True

    def cpu_put(self, v):
        if len(self.tx) >= self.tx_depth:
            raise RuntimeError(
                "StateMachine({}).put: TX FIFO full ({} words); on the device put() would block "
                "until the SM pulls, which cannot happen in zero simulated time: let time pass "
                "(time.sleep_*) or check tx_fifo() first".format(self.gidx, self.tx_depth)
            )
        self.system.touch()
        self.tx.append(v & _M32)
        if self.sleep & WAKE_TX:
            self.wake(self.system.now())

    def cpu_get(self):
        if not self.rx:
            raise RuntimeError(
                "StateMachine({}).get: RX FIFO empty; on the device get() would block until "
                "the SM pushes, which cannot happen in zero simulated time: let time pass "
                "(time.sleep_*) or check rx_fifo() first".format(self.gidx)
            )
        self.system.touch()
        v = self.rx.pop(0)
        if self.sleep & WAKE_RX:
            self.wake(self.system.now())
        return v

    # ---- pins -----------------------------------------------------------------------------
    def _apply(self, newout, newoe, t):
        blk = self.block
        outchg = blk.out ^ newout
        oechg = blk.oe ^ newoe
        blk.out = newout
        blk.oe = newoe
        if outchg or oechg:
            return self.system.pins_written(outchg, oechg, newout, newoe, t, blk.driver)
        return False

    def _in_pins(self, t):
        sysm = self.system
        v = 0
        base = self.in_base
        for i in range(32):
            v |= sysm.read_pin(base + i, t) << i
        return v

    # ---- execution ------------------------------------------------------------------------
    # run() is the loop; each instruction goes through four named steps:
    #   _fetch       the instruction: a pending EXEC word (CPU exec, OUT/MOV EXEC) or code[pc]
    #   _EXEC[op]    its semantics (_jmp, _wait, _in, _out, _push, _pull, _mov, _irq, _set): every
    #                one returns (newpc, stall, pout, poe, nexec, delay); pout/poe are (mask, bits)
    #                written to the pin values / directions, stall a WAKE_* reason
    #   _write_pins  the instruction's pin write, then side-set (side-set wins), to the GPIO bank
    #   _stall / _advance   time and program counter: a stalled instruction retries next tick
    #                (asleep until something can wake it); otherwise wrap / jump / next, plus
    #                the delay
    # Measured cost (python -m host_tools.sim.pio_cost: CPU time per executed instruction,
    # CPython 3.11 on the project's 2-core x86_64 machine with a load average of 4.3-6, best of
    # three runs; before -> after the split into steps with the common fetch and advance inlined
    # in run(), each step's usual result made once at decode (no tuple per instruction), the SET
    # pin masks worked out at decode, a side-set that changes nothing not handed over, and the
    # changed-pin walk over set bits only):
    #   nop (fetch, dispatch, advance)             0.35 -> 0.34 us
    #   set pins (each instruction writes an edge) 2.57 -> 1.35 us  (the pin hand-over)
    #   the biphasic pulse program, 2 x 100 Hz     2.02 -> 1.45 us
    # The 100,000-sequence property test (tests/test_pulse_property.py) spends 80 % of its time
    # here: 400 of its sequences took 1.46 s of CPU with the first split, 1.05 s now.
    # Delay loops (`jmp x--` to itself) cost one instruction whatever their length.
    # Those figures are with the periodic-orbit fast-forward off (every instruction stepped); with
    # it on (the default) the same 2 x 100 Hz pulse program costs 149-161 us of CPU per simulated
    # second (6,200-6,700x real time, load average 4.9): two periods are stepped, then the group
    # is in an orbit and the recorded edges are replayed (PioSystem._ff_checkpoint,
    # _orbit_advance). With the world looking every 5 ms, as the whole firmware does: 627-690 us
    # of CPU per simulated second in an orbit (about 3 us a look), 3,950-4,440 us stepped (load
    # 2.4-4.2).
    def run(self, limit_key, c, once=False):
        """Execute instructions while this SM is the earliest one (key < limit_key) and its
        next tick is before cycle c (once=True: exactly one, for a CPU exec while stopped)."""
        if self.code_version != self.block.mem_version:
            self._decode_all()
        sysm = self.system
        # stop before a tick t with t >= c or t * 8 + gidx >= limit_key
        tstop = (limit_key - self.gidx + 7) // 8
        if c < tstop:
            tstop = c
        ops = _EXEC
        code = self.code
        base = self.base
        d256 = self.d256
        brk = self.brk
        steps = 0
        while True:
            t = self.t
            if not once and (t >= tstop or sysm.resched):
                break
            steps += 1
            if self.ff is not None:
                self.ff = None
            ew = self.exec_word
            if ew is None:  # _fetch, inlined for the common case
                pc_here = self.pc
                ins = code[pc_here]
            else:
                ins, pc_here = self._fetch(ew)
            first = not self.stalled
            newpc, stall, pout, poe, nexec, delay = ops[ins[0]](self, ins, t, pc_here)
            moved = False
            if pout is not None or poe is not None:
                moved = self._write_pins(ins, first, pout, poe, t)
            elif first and ins[4]:
                # side-set only: nothing to hand over when the pins already hold those values
                if (self.block.oe if self.side_pindir else self.block.out) & ins[4] != ins[5]:
                    moved = self._write_pins(ins, first, pout, poe, t)
            if stall:
                self._stall(stall, t)
                if moved and stall & WAKE_PIN:
                    # this instruction's own side-set moved a pin before the SM went to sleep
                    # (nobody was asleep to be told): look again when that level is seen
                    self.wake(t + 1)
                break
            if ew is None and nexec is None and d256 == 256 and base == self.base:
                # _advance, inlined for the common case (no EXEC, divider 1)
                self.stalled = False
                if newpc >= 0:
                    self.pc = newpc
                elif pc_here == self.wrap_top:
                    self.pc = self.wrap_bottom
                else:
                    self.pc = (pc_here + 1) & 31
                n = self.n + 1 + delay
                self.n = n
                self.t = base + n
            else:
                self._advance(ew, pc_here, newpc, nexec, delay)
            if once:
                break
            if self.pc == brk:
                if self.exec_word is None:
                    sysm.cp = self  # back at the anchor PC: PioSystem._ff_checkpoint
                    break
        sysm.steps += steps

    def _fetch(self, ew):
        """(decoded instruction, its address or -1 for an EXEC word)."""
        if ew is not None:
            return self._decode(ew), -1
        pc = self.pc
        return self.code[pc], pc

    def _write_pins(self, ins, first, pout, poe, t):
        blk = self.block
        out = blk.out
        oe = blk.oe
        if pout is not None:
            out = (out & ~pout[0]) | pout[1]
        if poe is not None:
            oe = (oe & ~poe[0]) | poe[1]
        if first and ins[4]:
            if self.side_pindir:
                oe = (oe & ~ins[4]) | ins[5]
            else:
                out = (out & ~ins[4]) | ins[5]
        if out != blk.out or oe != blk.oe:
            return self._apply(out, oe, t)
        return False

    def _stall(self, reason, t):
        """The instruction could not complete: retry at the next tick, asleep until `reason`."""
        self.stalled = True
        self.n += 1
        self.t = t + 1 if self.d256 == 256 else self._cycle_of(self.n)
        self.sleep = reason
        sysm = self.system
        sysm.runnable_dirty = True
        sysm.resched = True

    def _advance(self, ew, pc_here, newpc, nexec, delay):
        """The instruction completed: next program counter, then 1 + delay ticks."""
        self.stalled = False
        if ew is not None:
            self.exec_word = None
            if pc_here < 0 and newpc < 0:
                newpc = self.pc  # an executed instruction does not advance the PC
        if nexec is not None:
            # OUT/MOV EXEC: the delay of this instruction is ignored; the executee runs next
            self.exec_word = nexec
            delay = 0
        if newpc >= 0:
            self.pc = newpc
        elif pc_here == self.wrap_top:
            self.pc = self.wrap_bottom
        else:
            self.pc = (pc_here + 1) & 31
        self.n += 1 + delay
        if self.d256 == 256:
            self.t = self.base + self.n
        else:
            self.t = self.base + ((self.n * self.d256) >> 8)

    # ---- the nine instructions: (newpc, stall, pout, poe, nexec, delay) -------------------
    def _jmp(self, ins, t, pc_here):
        cond = ins[1]
        if cond == 0:
            return ins[9]
        if cond == 2 or cond == 4:
            v = self.x if cond == 2 else self.y
            if v and ins[2] == pc_here:
                # self loop: closed form, X/Y+1 iterations; settle() makes it concrete if the
                # CPU looks in the middle
                per = ins[6] + 1
                self.ff = (pc_here, self.n, v, per, 1 if cond == 2 else 2)
                if cond == 2:
                    self.x = _M32
                else:
                    self.y = _M32
                return -1, 0, None, None, None, (v + 1) * per - 1
            if cond == 2:
                self.x = (v - 1) & _M32
            else:
                self.y = (v - 1) & _M32
            return ins[9] if v else ins[8]
        if cond == 1:
            taken = not self.x
        elif cond == 3:
            taken = not self.y
        elif cond == 5:
            taken = self.x != self.y
        elif cond == 6:
            taken = self.system.read_pin(self.jmp_pin, t)
        else:  # !OSRE
            taken = self.osr_count < self.pull_thresh
        return ins[9] if taken else ins[8]

    def _wait(self, ins, t, pc_here):
        pol = ins[1]
        src = ins[2]
        idx = ins[3]
        stall = 0
        if src == 0:
            if self.system.read_pin(idx, t) != pol:
                stall = WAKE_PIN
        elif src == 1:
            if self.system.read_pin(self.in_base + idx, t) != pol:
                stall = WAKE_PIN
        elif src == 2:
            flag = idx & 7
            if idx & 0x10:
                flag = (flag & 4) | ((flag + self.index) & 3)
            if idx & 0x08:
                raise NotImplementedError("wait irq index bit 3 (reserved on RP2040)")
            blk = self.block
            if blk.irq_read(flag, t) == pol:
                if pol:
                    blk.irq_write(flag, 0, t)
            else:
                stall = WAKE_IRQ
        else:
            raise NotImplementedError("wait source 3 (reserved on RP2040)")
        return (-1, stall, None, None, None, ins[6]) if stall else ins[8]

    def _in(self, ins, t, pc_here):
        n = ins[2]
        if self.autopush and self.isr_count + n >= self.push_thresh and \
                len(self.rx) >= self.rx_depth:
            return -1, WAKE_RX, None, None, None, ins[6]
        src = ins[1]
        if src == 0:
            v = self._in_pins(t)
        elif src == 1:
            v = self.x
        elif src == 2:
            v = self.y
        elif src == 3:
            v = 0
        elif src == 6:
            v = self.isr
        elif src == 7:
            v = self.osr
        else:
            raise NotImplementedError("in source {} (reserved)".format(src))
        if n == 32:
            self.isr = v & _M32
        else:
            v &= (1 << n) - 1
            if self.in_right:
                self.isr = (self.isr >> n) | (v << (32 - n))
            else:
                self.isr = ((self.isr << n) | v) & _M32
        cnt = self.isr_count + n
        self.isr_count = cnt if cnt < 32 else 32
        if self.autopush and self.isr_count >= self.push_thresh:
            self.rx.append(self.isr)
            self.isr = 0
            self.isr_count = 0
        return ins[8]

    def _out(self, ins, t, pc_here):
        n = ins[2]
        if self.autopull and self.osr_count >= self.pull_thresh:
            if not self.tx:
                return -1, WAKE_TX, None, None, None, ins[6]
            self.osr = self.tx.pop(0)
            self.osr_count = 0
        if n == 32:
            data = self.osr
            self.osr = 0
        elif self.out_right:
            data = self.osr & ((1 << n) - 1)
            self.osr >>= n
        else:
            data = self.osr >> (32 - n)
            self.osr = (self.osr << n) & _M32
        cnt = self.osr_count + n
        self.osr_count = cnt if cnt < 32 else 32
        newpc = -1
        pout = poe = nexec = None
        dst = ins[1]
        if dst == 1:
            self.x = data
        elif dst == 2:
            self.y = data
        elif dst == 3:
            pass
        elif dst == 0:
            m = _rotl((1 << self.out_count) - 1, self.out_base)
            pout = (m, _rotl(data, self.out_base) & m)
        elif dst == 4:
            m = _rotl((1 << self.out_count) - 1, self.out_base)
            poe = (m, _rotl(data, self.out_base) & m)
        elif dst == 5:
            newpc = data & 31
        elif dst == 6:
            self.isr = data
            self.isr_count = n
        else:
            nexec = data & 0xFFFF
        if self.autopull and self.osr_count >= self.pull_thresh and self.tx:
            self.osr = self.tx.pop(0)
            self.osr_count = 0
        return newpc, 0, pout, poe, nexec, ins[6]

    def _push(self, ins, t, pc_here):
        iffull = ins[1]
        if iffull and self.isr_count < self.push_thresh:
            pass
        elif len(self.rx) < self.rx_depth:
            self.rx.append(self.isr)
            self.isr = 0
            self.isr_count = 0
        elif ins[2]:  # blocking
            return -1, WAKE_RX, None, None, None, ins[6]
        else:
            self.isr = 0  # noblock on a full RX FIFO: data lost, ISR still cleared
            self.isr_count = 0
        return ins[8]

    def _pull(self, ins, t, pc_here):
        if ins[1] and self.osr_count < self.pull_thresh:  # ifempty, OSR not empty: no-op
            pass
        elif self.autopull and self.osr_count == 0:
            pass  # OSR full with autopull: PULL is a no-op
        elif self.tx:
            self.osr = self.tx.pop(0)
            self.osr_count = 0
        elif ins[2]:  # blocking
            return -1, WAKE_TX, None, None, None, ins[6]
        else:
            self.osr = self.x
            self.osr_count = 0
        return ins[8]

    def _mov(self, ins, t, pc_here):
        src = ins[3]
        if src == 1:
            v = self.x
        elif src == 2:
            v = self.y
        elif src == 3:
            v = 0
        elif src == 5:
            lvl = len(self.rx) if self.status_sel else len(self.tx)
            v = _M32 if lvl < self.status_n else 0
        elif src == 6:
            v = self.isr
        elif src == 7:
            v = self.osr
        elif src == 0:
            v = self._in_pins(t)
        else:
            raise NotImplementedError("mov source 4 (reserved on RP2040)")
        mop = ins[2]
        if mop == 1:
            v = ~v & _M32
        elif mop == 2:
            v = _rev32(v)
        elif mop == 3:
            raise NotImplementedError("mov operation 3 (reserved)")
        dst = ins[1]
        if dst == 1:
            self.x = v
        elif dst == 2:
            self.y = v
        elif dst == 6:
            self.isr = v
            self.isr_count = 0
        elif dst == 7:
            self.osr = v
            self.osr_count = 0
        elif dst == 5:
            return v & 31, 0, None, None, None, ins[6]
        elif dst == 4:
            return -1, 0, None, None, v & 0xFFFF, ins[6]
        elif dst == 0:
            m = _rotl((1 << self.out_count) - 1, self.out_base)
            return -1, 0, (m, _rotl(v, self.out_base) & m), None, None, ins[6]
        else:
            raise NotImplementedError("mov destination 3 (reserved on RP2040)")
        return ins[8]

    def _irq(self, ins, t, pc_here):
        idx = ins[3] & 0x1F
        flag = idx & 7
        if idx & 0x10:
            flag = (flag & 4) | ((flag + self.index) & 3)
        if ins[3] & 0x80:
            raise NotImplementedError("irq instruction with bit 7 set (reserved)")
        blk = self.block
        stall = 0
        if ins[1]:  # clear
            blk.irq_write(flag, 0, t)
        elif ins[2]:  # set and wait for clear
            if not self.irq_waiting:
                blk.irq_write(flag, 1, t)
                self.irq_waiting = True
                stall = WAKE_IRQ
            elif blk.irq_read(flag, t):
                stall = WAKE_IRQ
            else:
                self.irq_waiting = False
        else:
            blk.irq_write(flag, 1, t)
        return (-1, stall, None, None, None, ins[6]) if stall else ins[8]

    def _set(self, ins, t, pc_here):
        dst = ins[1]
        if dst == 0:
            return ins[9]
        if dst == 1:
            self.x = ins[2]
        elif dst == 2:
            self.y = ins[2]
        elif dst == 4:
            return ins[9]
        else:
            raise NotImplementedError("set destination {} (reserved)".format(dst))
        return ins[8]


# decoded op (instruction bits 15:13) -> its step; 4 is PUSH, 5 PULL (split by bit 7 at decode)
_EXEC = (SmCore._jmp, SmCore._wait, SmCore._in, SmCore._out, SmCore._push, SmCore._pull,
         SmCore._mov, SmCore._irq, SmCore._set)
