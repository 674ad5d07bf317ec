"""Cycle-exact PIO for the emulated Pico (rp2040py), with pads that read their own output back.

    from host_tools.emuchip.pio_exact import install
    xp = install(mcu)       # mcu: rp2040py RP2040 (chip.py calls this before the firmware boots)
    xp.cyc                  # clk_sys cycles since power-on: floor(emulated ns / 8), the PIO's clock
    xp.now                  # cycle of what is happening now (inside a PIO step: that step's cycle)
    xp.sync()               # bring the PIO up to xp.cyc (before touching PIO or pad state by hand)
    xp.set_input(pin, lvl)  # drive a GPIO input from outside, at the current cycle
    xp.steps, xp.skipped    # PIO instructions stepped one by one / skipped in closed form
    xp.fast_forward = True  # False: step countdown loops one by one too (same result, slower)
    xp.readback = True      # False: pads do not read their own output (rp2040py as shipped)
    xp.writes = []          # when a list: (cycle, block, offset, value) of every register write

Why this design (option b of issue 8: rp2040py's own PIO, stepped exactly)
  rp2040py's PIO (native RPPIO / StateMachine) implements the registers exactly as MicroPython's rp2
  module and the pico-sdk write them, and its instruction semantics are the ones a real-firmware
  test needs anyway. What is wrong is only *when* it runs: `execute_batch` calls
  `RPPIO.advance(cycles)` once per CPU instruction and that runs at most one instruction per state
  machine per call, so a state machine owed 5 cycles runs 1 instruction (a 4,002-cycle phase came
  out as 46,928 to 64,440 ns). Replacing the blocks by an adapter onto host_tools/sim/pio_core.py
  (option a) would mean re-implementing the whole register file (INSTR_MEM, SMx_*, CTRL, FSTAT,
  FDEBUG, FLEVEL, IRQ, INTE/INTF/INTS, FIFO joins, DREQs) on a core built around MicroPython's rp2
  API objects, with a second instruction decoder to keep in step with the first. Here, instead:

  * Both PIO blocks are wrapped by one ExactPio: two thin `BlockProxy` objects take the blocks'
    places in `mcu.pio` (where execute_batch and GPIOPin look) and in the bus map at 0x50200000 /
    0x50300000. Every register access goes to rp2040py's own block after the PIO has been brought
    up to the current cycle, so a CPU write (a FIFO put, an exec, an enable) lands on the cycle the
    CPU instruction that made it started.
  * `advance(cycles)` only counts cycles; whenever the earliest cycle on which any state machine
    is due has been reached, the state machines are stepped on exactly the cycles they are owed:
    each state machine's own `next_due_fp` (16.8 fixed point, honouring SM_CLKDIV and [delay]) is
    the cycle of its next instruction, every due state machine runs one instruction per due cycle,
    both blocks move together, the block's `cycle_fp` is that cycle. GPIO listeners called from a
    step see `now` = the cycle of that instruction: edges carry the PIO's own cycle count.
  * Countdown loops (`label L; jmp x--/y--, L` on its own address, any delay and side-set) are
    fast-forwarded: once the loop instruction has run once (its side-set applied), the remaining
    X (or Y) taken iterations are skipped in closed form (X := 0, next due += X * (1 + delay) *
    divider), leaving the final, falling-through iteration to run normally. Nothing but a CPU
    register access can change such a loop, and every register access first rewinds a skipped loop
    to the state it would have on that cycle. So stepping costs per instruction outside countdown
    loops only.
  * Timed mode (set_timed(True), what Chip.run uses): the blocks are not advanced after every CPU
    instruction; a clock alarm fires when the clock reaches cycle `next` + 1 - the instruction
    boundary at which advance() would have found that step due - and runs it. Same steps on the
    same cycles without a Python call per CPU instruction (the chip scenario of
    tests/test_chip_firmware.py: 65 s of CPU instead of 77-80 s, identical trace and edges).
  * Pad read-back: a pad whose output is enabled reads its own output level back at its input
    through the input synchroniser: an output changed by the instruction (or CPU write) of cycle t
    is seen by `jmp pin`, `wait pin`, `in pins` and the SIO from cycle t + 3 (1 cycle to the pad +
    2 synchroniser stages), or t + 1 when INPUT_SYNC_BYPASS has the pin's bit set in either block.
    A pad whose output is disabled again goes back to what drives it from outside / its pulls.
  * IRQ flag visibility: rp2040py wakes a state machine blocked on `wait irq` in the very cycle the
    flag is set; on the RP2040 the flag is seen one cycle later. A state machine woken during a
    step cycle by another's `irq` is therefore delayed by one of its own clock periods.

  Measured (docs/emulated_chip.md): exact edges for MicroPython-built programs at about 5 x 10^6
  emulated PIO cycles per wall second on the project's pulse trains (most cycles spent in countdown
  loops), versus minutes per 25 ms for a pure-Python step-every-cycle PIO.

What is not modelled (stated in docs/emulated_chip.md too)
  * A PIO interrupt to the CPU (IRQ0/IRQ1 of a block) raised while the CPU sleeps through a long
    idle jump is delivered at the end of that jump, not on its cycle (rp2040py's idle loop).
  * A GPIO input driven from outside with GPIOPin.set_input_value() directly is seen by a waiting
    state machine on the next step, not necessarily on its cycle; use ExactPio.set_input().
  * Everything rp2040py's state machine itself does not model (e.g. OUT_STICKY, FIFO DMA pacing
    beyond its own DREQs); a CPU FIFO write that unblocks a stalled `pull` is seen in the same cycle
    (one cycle early).
"""
import heapq

NEVER = 1 << 62
SYNC_STAGES = 2  # input synchroniser flip-flops between a pad and the PIO/SIO input


class BlockProxy:
    """Stands in for one rp2040py RPPIO block in mcu.pio and in the bus map."""

    def __init__(self, xp, index, block):
        self._xp = xp
        self.index = index
        self.block = block
        self.name = block.name
        # execute_batch calls advance() on every non-stopped entry of mcu.pio: block 0's proxy
        # drives both blocks, block 1's is skipped. In timed mode (ExactPio.set_timed) neither
        # proxy is called: a clock alarm wakes the PIO when its next step is due.
        self.stopped = index != 0

    # what GPIOPin and others read
    @property
    def pin_values(self):
        return self.block.pin_values

    @property
    def pin_directions(self):
        return self.block.pin_directions

    @property
    def machines(self):
        return self.block.machines

    @property
    def instructions(self):
        return self.block.instructions

    @property
    def irq(self):
        return self.block.irq

    # the clock
    def advance(self, cycles):
        # The cycle count is the clock's (floor(nanos / 8)), not the sum of `cycles`: execute_batch
        # truncates an idle jump to whole cycles and counts at least 1 for it, which drifts from
        # the clock (measured: 5,000 cycles by the end of a boot).
        xp = self._xp
        c = int(xp.clock.nanos) >> 3
        if c <= xp.cyc:
            return
        xp.cyc = c
        xp.now = c
        if xp.next < c:
            xp.run_to(c)

    def step(self):
        self.advance(1)

    # the bus
    def read_uint32(self, offset):
        xp = self._xp
        xp.sync()
        v = self.block.read_uint32(offset)
        xp.after_access(self.block)
        return v

    def write_uint32(self, offset, value):
        self.write_uint32_atomic(offset, value, 0)

    def write_uint32_atomic(self, offset, value, atomic_type):
        xp = self._xp
        xp.sync()
        if xp.writes is not None:
            xp.writes.append((xp.cyc, self.index, offset, value))
        self.block.write_uint32_atomic(offset, value, atomic_type)
        xp.after_access(self.block)

    def reset(self):
        xp = self._xp
        self.block.reset()
        self.block.cycle_fp = xp.cyc << 8
        xp.ff = {k: v for k, v in xp.ff.items() if k[0] is not self.block}
        xp.refresh_pads()
        xp.after_access(self.block)

    def check_interrupts(self):
        self.block.check_interrupts()

    def __getattr__(self, name):  # anything else rp2040py may ask of a block
        return getattr(self.block, name)


class ExactPio:
    def __init__(self, mcu):
        self.mcu = mcu
        self.clock = mcu.clock
        self.blocks = [mcu.pio[0], mcu.pio[1]]
        for b in self.blocks:
            if isinstance(b, BlockProxy):
                raise RuntimeError("pio_exact is already installed on this RP2040")
        self.proxies = [BlockProxy(self, i, b) for i, b in enumerate(self.blocks)]
        self.cyc = 0
        self.now = 0
        self.done = 0  # steps of every cycle < done have run
        self.next = NEVER  # earliest cycle something is due (state machine step or pad event)
        self.events = []  # heap of (cycle, seq, pin, level or None = release)
        self._seq = 0
        self.ff = {}  # (block, machine index) -> (start due fp, iterations skipped, period fp, reg)
        self.driven = set()  # pins whose input we drive with their own output level
        self.steps = 0
        self.skipped = 0
        self.fast_forward = True
        self.readback = True
        self.writes = None
        self._running = 0  # run_to() depth: inside it, `now` is the cycle being stepped
        self.timed = False  # set_timed()
        self._alarm = self.clock.create_alarm(self._wake)
        self._wake_ns = None  # when the alarm is due (None: not scheduled)
        for b in self.blocks:
            b.cycle_fp = 0
        for n, pin in enumerate(mcu.gpio):
            pin.add_listener(self._pad_listener(n))

    def install(self):
        mcu = self.mcu
        mcu.pio[0], mcu.pio[1] = self.proxies
        mcu.peripherals[0x50200] = self.proxies[0]
        mcu.peripherals[0x50300] = self.proxies[1]
        self._renext()
        return self

    # -- scheduling --------------------------------------------------------------------------
    def _renext(self):
        n = NEVER
        for b in self.blocks:
            fp = b.next_due_fp
            if fp < NEVER:
                c = (fp + 255) >> 8
                if c < n:
                    n = c
        if self.events and self.events[0][0] < n:
            n = self.events[0][0]
        if n < self.done:
            n = self.done
        self.next = n
        if not self.timed:
            # Nothing due and no pad event pending: execute_batch need not call advance() at all
            # (a fifth of the emulator's time while MicroPython runs without a state machine).
            # Whatever can make something due again (a register access, a pad change, set_input)
            # catches up first (current()).
            self.proxies[0].stopped = n >= NEVER
        elif not self._running:
            self.arm()

    def set_timed(self, on):
        """Timed mode (Chip.run turns it on while it lets emulated time pass): instead of an
        advance() call after every CPU instruction, a clock alarm runs the steps due on cycle
        `next` when the clock reaches cycle next + 1 - which is when the per-instruction advance()
        would have run them: after the instruction (or idle jump) that crossed into that cycle.
        So the same steps run on the same cycles, and between two due cycles the emulator calls
        no Python for the PIO at all (that advance() call, a no-op almost every time since the
        countdown loops are skipped in closed form, took about a fifth of the CPU time of a
        whole-firmware scenario on the chip). Only while time is run for a fixed span: the alarm
        ends a CPU idle jump on its cycle, and with nothing else scheduled (the REPL waiting
        for the host in exec()) rp2040py's clock would otherwise not move at all."""
        if on == self.timed:
            return
        self.timed = on
        if on:
            self.proxies[0].stopped = True
            self.current()
            self.arm()
        else:
            if self._wake_ns is not None:
                self._alarm.cancel()
                self._wake_ns = None
            self.proxies[0].stopped = self.next >= NEVER

    def arm(self):
        """(Re)schedule the timed mode's alarm for cycle next + 1 (see set_timed)."""
        n = self.next
        if n >= NEVER:
            if self._wake_ns is not None:
                self._alarm.cancel()
                self._wake_ns = None
            return
        at = (n + 1) << 3  # ns: cycle n + 1 starts
        if at == self._wake_ns:
            return
        self._wake_ns = at
        d = at - self.clock.nanos
        self._alarm.schedule(d if d > 0 else 0)

    def _wake(self):
        self._wake_ns = None
        c = int(self.clock.nanos) >> 3
        if c > self.cyc:
            self.cyc = self.now = c
        if self.next < self.cyc:
            self.run_to(self.cyc)
        else:
            self.arm()

    def current(self):
        """The current cycle (cyc and now brought up to the clock while advance() is not called;
        inside a PIO step: that step's cycle)."""
        if self.proxies[0].stopped and not self._running:
            c = int(self.clock.nanos) >> 3
            if c > self.cyc:
                self.cyc = self.now = c
                if self.done < c <= self.next:  # (timed mode: a step due before c is not run yet)
                    self.done = c
        return self.now

    def sync(self):
        """Run every PIO step of the cycles before self.cyc and rewind skipped loops to their state
        at self.cyc (before a register access or a change of pad state from outside)."""
        self.current()
        if self.next < self.cyc:
            self.run_to(self.cyc)
        c = self.cyc
        for b in self.blocks:
            if b.cycle_fp < (c << 8):
                b.cycle_fp = c << 8
        self.done = max(self.done, c)
        if self.ff:
            self._unskip(c)

    def after_access(self, block):
        block.check_changed_pins()
        self._renext()

    def refresh_pads(self):
        """After a chip reset (GPIOs reset without telling their listeners): every pad reads
        its output again if it still drives one, else what drives it from outside."""
        self.events = [e for e in self.events if int(self.mcu.gpio[e[2]].value) < 2]
        heapq.heapify(self.events)
        for n in list(self.driven):
            g = self.mcu.gpio[n]
            st = int(g.value)
            if st < 2:
                g.set_input_value(bool(st))
            else:
                self.driven.discard(n)
                g.release_input()

    def set_input(self, pin, level):
        """Drive GPIO `pin` from outside, from the current cycle."""
        self.sync()
        self.mcu.gpio[pin].set_input_value(bool(level))
        self._renext()

    def run_to(self, c):
        """Execute every step due on a cycle < c."""
        blocks = self.blocks
        b0, b1 = blocks
        events = self.events
        hp = heapq.heappop
        self._running += 1
        try:
            while True:
                d = self.next
                if d >= c:
                    break
                fp = d << 8
                self.now = d
                b0.cycle_fp = fp
                b1.cycle_fp = fp
                while events and events[0][0] <= d:
                    _, _, pin, level = hp(events)
                    g = self.mcu.gpio[pin]
                    if level is None:
                        g.release_input()
                    else:
                        g.set_input_value(level)
                for b in blocks:
                    if b.next_due_fp <= fp:
                        self._step_block(b, fp)
                self.done = d + 1
                self._renext()
        finally:
            self._running -= 1
        self.done = max(self.done, c)
        self.now = self.cyc
        if self.timed and not self._running:
            self.arm()

    def _step_block(self, b, fp):
        ms = b.machines
        waiting_before = [m.waiting for m in ms]
        stepped = []
        ff = self.ff
        for m in ms:
            if m.next_due_fp <= fp and m.enabled and not m.waiting:
                pc0 = m.pc
                if ff:
                    ff.pop((b, m.index), None)
                m.step()
                stepped.append(m)
                if m.pc == pc0 and self.fast_forward and not m.waiting and not m.exec_valid:
                    self._skip_loop(b, m, pc0)
        self.steps += len(stepped)
        for m, w in zip(ms, waiting_before, strict=True):
            if w and not m.waiting and m.enabled and m not in stepped:
                # woken by an IRQ flag another state machine set in this cycle: seen next cycle
                m.next_due_fp += m.div_fp
        b.recompute_due()
        b.check_changed_pins()

    def _skip_loop(self, b, m, pc):
        """m has just run the instruction at pc and jumped back to it: if that is a countdown
        loop (`jmp x--`/`jmp y--` to its own address), skip its remaining taken iterations."""
        w = b.instructions[pc]
        # JMP (000), condition x-- (010) or y-- (100), target = its own address
        if (w & 0xE0FF) not in (0x0040 | pc, 0x0080 | pc):
            return
        reg = "x" if w & 0x40 else "y"
        k = m.x if reg == "x" else m.y
        if k <= 0:
            return
        delay = ((w >> 8) & 0x1F) & ((1 << (5 - m.sideset_count)) - 1)
        period = (1 + delay) * m.div_fp
        start = m.next_due_fp
        if reg == "x":
            m.x = 0
        else:
            m.y = 0
        m.next_due_fp = start + k * period
        self.ff[(b, m.index)] = (start, k, period, reg)
        self.skipped += k

    def _unskip(self, c):
        """Rewind fast-forwarded countdown loops to their state at the start of cycle c."""
        for (b, i), (start, k, period, reg) in list(self.ff.items()):
            m = b.machines[i]
            if m.next_due_fp != start + k * period:
                del self.ff[(b, i)]
                continue
            lim = (c - 1) << 8
            j = 0 if lim < start else min(k, (lim - start) // period + 1)
            if reg == "x":
                m.x = k - j
            else:
                m.y = k - j
            m.next_due_fp = start + j * period
            self.skipped -= k - j
            del self.ff[(b, i)]
        for b in self.blocks:
            b.recompute_due()
        self._renext()

    # -- pads --------------------------------------------------------------------------------
    def _pad_listener(self, n):
        bit = 1 << n

        def cb(value, last):
            if not self.readback:
                return
            self.current()
            st = int(value)
            if st < 2:
                byp = (self.blocks[0].input_sync_bypass | self.blocks[1].input_sync_bypass) & bit
                at = self.now + 1 + (0 if byp else SYNC_STAGES)
                self._event(at, n, bool(st))
            elif n in self.driven:
                self._event(self.now + 1, n, None)
        return cb

    def _event(self, at, pin, level):
        if level is None:
            self.driven.discard(pin)
        else:
            self.driven.add(pin)
        self._seq += 1
        heapq.heappush(self.events, (at, self._seq, pin, level))
        if at < self.next:
            self.next = max(at, self.done)
            if not self.timed:
                self.proxies[0].stopped = False
            elif not self._running:
                self.arm()


def install(mcu):
    """Make mcu's PIO cycle-exact (see the module docstring); returns the ExactPio."""
    return ExactPio(mcu).install()
