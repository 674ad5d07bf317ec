# RP2040 pulse engine: charge-balanced biphasic pulses timed by PIO, one state machine per channel.
#
#   import pulse_pio
#   ch = pulse_pio.channel(1)                       # pins from board_config
#   ch.set(phase_us=300, gap_us=50, rate_hz=50)      # -> PulsePlan: what will be played, in ns
#   ch.start(); ch.stop()
#
# Assumptions of the programs (stated once, checked by tests/test_pulse_pio.py):
# - The state machine runs at the system clock (divider 1): one cycle = 8 ns at 125 MHz is the
#   timing quantum for phase, gap and period alike.
# - Legs A and B are two adjacent GPIOs driven by side-set only (2 side-set bits, no opt):
#   side 0 = both low, 1 = A high, 2 = B high. The value 3 appears in no instruction and no
#   `set`, `out` or `mov` targets a pin, so both legs high is impossible by construction.
# - Registers hold the parameters while the train runs: Y = phase, ISR = gap, OSR = rest (in
#   cycles minus fixed overheads); X counts. So the train needs no CPU work per pulse.
# - New parameters arrive as a block of 3 words in the TX FIFO (joined: 8 deep). At each pulse
#   boundary `mov(x, status)` (EXECCTRL STATUS_SEL=TX, STATUS_N=3: all ones while fewer than 3 words
#   wait) tells whether a whole block is there; only then is it loaded, with no stall. Both
#   branches of that check take 8 cycles, so an update never shifts a pulse by a cycle.
# - Bursts: a second state machine (the gate) counts pulse slots on IRQ flag 4 and drives the gate
#   GPIO, which the pulse machine samples with `jmp(pin)` at each slot start: gate high plays the
#   pulse, gate low spends the slot with both legs low, cycle for cycle the same length.
from array import array

from micropython import const
import machine
import rp2
from machine import Pin

import pulse_plan

# The asm_pio DSL names (jmp, mov, x, osr, ...) are injected by the assembler while a program body
# runs; type checkers see them through the stubs' declaration of that DSL. TYPE_CHECKING is a
# const False on the device, so this block is compiled out there.
TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    from rp2.asm_pio import *

_STATUS_TX_LT_3 = const(3)  # STATUS_SEL = 0 (TX level), STATUS_N = 3
_SHIFTCTRL_FJOIN_TX = const(1 << 30)
_SLOT_IRQ = const(4)  # IRQ flag the pulse machine raises after each slot (PIO-internal)

# Fixed overheads (cycles) of the programs below; the register values are counts minus these.
PHASE_OVERHEAD = const(2)  # mov + loop exit
GAP_OVERHEAD = const(2)
REST_OVERHEAD_TRAIN = const(13)  # jmp/nop + irq + mov + loop exit + 8 (check) + 1 (jmp pin)
REST_OVERHEAD_ALT = const(10)  # mov[8] or mov + wrap check (8) ... see biphasic_alternating
MIN_REST_CYCLES = const(13)

# Words executed by the CPU with sm.exec() (side-set count 2 for the pulse machine, 1 for the
# gate); tests compare them with what adafruit_pioasm assembles.
_EXEC_NOP_LEGS_LOW = const(0xA042)  # nop side 0 (2 side-set bits): both legs low
_EXEC_GATE_LOW = const(0xA042)  # nop side 0 (1 side-set bit): gate low
_EXEC_GATE_HIGH = const(0xB042)  # nop side 1 (1 side-set bit): gate high
_EXEC_IRQ_CLEAR_SLOT = const(0xC044)  # irq clear 4


# fmt: off
# (The stubs declare sideset_init as a list; MicroPython's documentation asks for a tuple and the
# firmware stores it as given: a tuple, as printed by the real image.)
@rp2.asm_pio(sideset_init=(rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW),  # pyright: ignore[reportArgumentType]
             fifo_join=rp2.PIO.JOIN_TX)
def biphasic():
    # Cycles per slot: 8 (check) + 1 (jmp pin) + (Y+2) + (ISR+2) + (Y+2) + 1 + 1 + 1 + (OSR+1)
    wrap_target()
    mov(x, status)        .side(0)       # all ones: no complete block waiting
    jmp(x_dec, "keep")    .side(0)       # taken when X != 0
    pull()                .side(0)       # a block of 3 words is there: no stall
    mov(y, osr)           .side(0)       # Y = phase - 2
    pull()                .side(0)
    mov(isr, osr)         .side(0)       # ISR = gap - 2
    pull()                .side(0)       # OSR = rest - 13
    jmp("slot")           .side(0)       # load path: 8 cycles
    label("keep")
    nop()                 .side(0) [5]   # keep path: 2 + 6 = 8 cycles
    label("slot")
    jmp(pin, "play")      .side(0)       # gate high: play the pulse
    mov(x, y)             .side(0) [1]   # silent slot, as long as a pulse (the extra cycle
    label("s1")                          #   stands for the play path's final jmp)
    jmp(x_dec, "s1")      .side(0)
    mov(x, isr)           .side(0)
    label("s2")
    jmp(x_dec, "s2")      .side(0)
    mov(x, y)             .side(0)
    label("s3")
    jmp(x_dec, "s3")      .side(0)
    label("tail")
    irq(4)                .side(0)       # slot done: the gate machine counts it
    mov(x, osr)           .side(0)
    label("rest")
    jmp(x_dec, "rest")    .side(0)
    wrap()
    label("play")
    mov(x, y)             .side(1)       # phase A: Y + 2 cycles
    label("a")
    jmp(x_dec, "a")       .side(1)
    mov(x, isr)           .side(0)       # inter-phase gap: ISR + 2 cycles
    label("g")
    jmp(x_dec, "g")       .side(0)
    mov(x, y)             .side(2)       # phase B: Y + 2 cycles, same as A
    label("b")
    jmp(x_dec, "b")       .side(2)
    jmp("tail")           .side(0)       # first rest cycle


@rp2.asm_pio(sideset_init=(rp2.PIO.OUT_LOW, rp2.PIO.OUT_LOW),  # pyright: ignore[reportArgumentType]
             fifo_join=rp2.PIO.JOIN_TX)
def biphasic_alternating():
    # Pulse pairs: A-then-B, rest, B-then-A, rest. Updates at pair boundaries.
    wrap_target()
    mov(x, status)        .side(0)
    jmp(x_dec, "keep")    .side(0)
    pull()                .side(0)
    mov(y, osr)           .side(0)
    pull()                .side(0)
    mov(isr, osr)         .side(0)
    pull()                .side(0)
    jmp("go")             .side(0)
    label("keep")
    nop()                 .side(0) [5]
    label("go")
    mov(x, y)             .side(1)       # A first
    label("a1")
    jmp(x_dec, "a1")      .side(1)
    mov(x, isr)           .side(0)
    label("g1")
    jmp(x_dec, "g1")      .side(0)
    mov(x, y)             .side(2)
    label("b1")
    jmp(x_dec, "b1")      .side(2)
    nop()                 .side(0)       # rest: 1 + 8 + OSR + 1 = OSR + 10, the same as the
    mov(x, osr)           .side(0) [7]   #   second rest, which has the 8-cycle check after it
    label("r1")
    jmp(x_dec, "r1")      .side(0)
    mov(x, y)             .side(2)       # B first
    label("b2")
    jmp(x_dec, "b2")      .side(2)
    mov(x, isr)           .side(0)
    label("g2")
    jmp(x_dec, "g2")      .side(0)
    mov(x, y)             .side(1)
    label("a2")
    jmp(x_dec, "a2")      .side(1)
    mov(x, osr)           .side(0)       # rest: 1 + OSR + 1 + 8 (check) = OSR + 10
    label("r2")
    jmp(x_dec, "r2")      .side(0)
    wrap()


@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW)
def burst_gate():
    # ISR = pulses per burst - 1, OSR = silent slots - 1. Reacts 3 cycles after the slot IRQ,
    # at least 10 cycles before the pulse machine samples the gate again. (`irq` as the wait
    # source is the DSL's; the stubs type that argument as an int.)
    wrap_target()
    mov(x, isr)           .side(1)
    label("on")
    wait(1, irq, 4)       .side(1)  # pyright: ignore[reportArgumentType]
    jmp(x_dec, "on")      .side(1)
    mov(x, osr)           .side(0)
    label("off")
    wait(1, irq, 4)       .side(0)  # pyright: ignore[reportArgumentType]
    jmp(x_dec, "off")     .side(0)
    wrap()
# fmt: on



def execctrl_index(prog):
    """Index of EXECCTRL in an assembled program list. MicroPython's layout is
    [words, one offset per PIO block..., execctrl, shiftctrl, out_init, set_init, sideset_init]:
    8 entries up to v1.25 (PIO0, PIO1), 9 since v1.26 (a PIO2 offset slot). Counted from the end,
    so both work; anything else is refused here, at import, rather than playing a wrong program
    (a STATUS_N written into an offset slot leaves `mov x, status` reading 0: one pulse, then a
    stall on `pull`)."""
    n = len(prog)
    i = n - 5
    if n not in (8, 9):
        raise RuntimeError("unknown rp2 program layout: %d entries" % n)
    for k in range(1, i):
        if prog[k] != -1:  # offsets are -1 until the program is loaded
            raise RuntimeError("unknown rp2 program layout: entry %d is not an offset" % k)
    if not isinstance(prog[i], int) or not isinstance(prog[i + 1], int):
        raise RuntimeError("unknown rp2 program layout: no EXECCTRL/SHIFTCTRL")
    return i


def _set_status_tx_lt_3(prog):
    i = execctrl_index(prog)
    # The pulse programs join the FIFOs to TX (SHIFTCTRL bit 30) and use no STATUS bits yet:
    # both must hold in the entries found, or the layout is not what this code believes.
    if not prog[i + 1] & _SHIFTCTRL_FJOIN_TX or prog[i] & 0x1F:
        raise RuntimeError("unknown rp2 program layout: EXECCTRL/SHIFTCTRL do not match")
    prog[i] |= _STATUS_TX_LT_3


_set_status_tx_lt_3(biphasic)
_set_status_tx_lt_3(biphasic_alternating)

PROGRAMS = (biphasic, biphasic_alternating, burst_gate)


def plan_words(plan):
    """The 3-word parameter block for `plan` (Y, ISR, OSR as the program expects them)."""
    if plan.alternate:
        rest = plan.rest_cycles - REST_OVERHEAD_ALT
    else:
        rest = plan.rest_cycles - REST_OVERHEAD_TRAIN
    return (plan.phase_cycles - PHASE_OVERHEAD, plan.gap_cycles - GAP_OVERHEAD, rest)


class PulseChannel:
    """One stimulation channel's pulse train on one PIO state machine (plus a gate machine for
    bursts). Parameters change at pulse boundaries only; start and stop leave both legs low."""

    def __init__(self, leg_a, gate, sm_pulse, sm_gate, sys_hz=125_000_000, dead_time_ns=1000):
        self.leg_a = leg_a
        self.leg_b = leg_a + 1
        self.gate = gate
        self.sys_hz = sys_hz
        self.dead_time_ns = dead_time_ns
        self._sm_id = sm_pulse
        self._gate_id = sm_gate
        self._pin_a = Pin(leg_a, Pin.OUT, value=0)
        self._pin_b = Pin(leg_a + 1, Pin.OUT, value=0)
        self._pin_gate = Pin(gate, Pin.OUT, value=0)
        self._sm = None
        self._gate_sm = None
        self._words = array("I", (0, 0, 0))  # put() needs a buffer, not a list
        self._queued = None
        self.plan = None  # what is (or will be) played
        self.running = False

    # -- parameters --------------------------------------------------------------------------
    def quantise(self, phase_us, gap_us=50, rate_hz=50, burst_count=1, burst_rate_hz=None,
                 alternate=False):
        """The plan a set() with these values would play, without changing anything."""
        return pulse_plan.make_plan(self.sys_hz, phase_us, gap_us, rate_hz, burst_count,
                                    burst_rate_hz, alternate, self.dead_time_ns,
                                    MIN_REST_CYCLES)

    def set(self, phase_us, gap_us=50, rate_hz=50, burst_count=1, burst_rate_hz=None,
            alternate=False):
        """Validate, quantise and apply. Raises PulseParamError (a ValueError) and changes nothing
        if a value is out of range. While running, the new values start at the next pulse
        boundary; changing the burst shape or polarity alternation needs stop() first."""
        plan = self.quantise(phase_us, gap_us, rate_hz, burst_count, burst_rate_hz, alternate)
        current = self.plan
        if self.running and current is not None:
            if not current.same_shape(plan):
                raise pulse_plan.PulseParamError(
                    "burst shape or polarity alternation changes need stop() first")
            if plan != current:
                self._queued = plan
                self.service()
        self.plan = plan
        return plan

    def service(self):
        """Hand a queued update to the state machine once its FIFO has room (at most two blocks
        wait for pulse boundaries; a newer set() replaces a queued one). The app loop calls this
        every tick; returns True when nothing is left queued."""
        q = self._queued
        sm = self._sm
        if q is not None and self.running and sm is not None and sm.tx_fifo() <= 5:
            sm.put(self._block(q))
            self._queued = None
        return self._queued is None

    def _block(self, plan):
        w = self._words
        w[0], w[1], w[2] = plan_words(plan)
        return w

    # -- run control -------------------------------------------------------------------------
    def start(self):
        if self.plan is None:
            raise ValueError("set() the pulse parameters before start()")
        if self.running:
            return
        plan = self.plan
        prog = biphasic_alternating if plan.alternate else biphasic
        other = biphasic if plan.alternate else biphasic_alternating
        pio = rp2.PIO(self._sm_id // 4)
        try:
            pio.remove_program(other)  # 32 words per block: only one pulse program fits
        except Exception:  # noqa: BLE001 - not loaded
            pass
        # init() stops the machine, clears its FIFOs and points it at the program start.
        self._gate_sm = rp2.StateMachine(self._gate_id, burst_gate, freq=self.sys_hz,
                                         sideset_base=self._pin_gate)
        self._gate_sm.exec(_EXEC_IRQ_CLEAR_SLOT)
        if plan.burst_count > 1:
            self._gate_sm.put(plan.burst_count - 1)
            self._gate_sm.exec(0x80A0)  # pull block
            self._gate_sm.exec(0xA0C7)  # mov isr, osr
            self._gate_sm.put(plan.burst_slots - plan.burst_count - 1)
            self._gate_sm.exec(0x80A0)  # pull block (OSR = silent slots - 1)
            self._gate_sm.exec(_EXEC_GATE_HIGH)
        else:
            self._gate_sm.exec(_EXEC_GATE_HIGH)  # gate held high: every slot plays
        self._sm = rp2.StateMachine(self._sm_id, prog, freq=self.sys_hz,
                                    sideset_base=self._pin_a, jmp_pin=self._pin_gate)
        self._sm.exec(_EXEC_NOP_LEGS_LOW)
        self._queued = None
        self._sm.put(self._block(plan))  # loaded at the first boundary, no stall
        if plan.burst_count > 1:
            self._gate_sm.active(1)
        self._sm.active(1)
        self.running = True

    def stop(self):
        """Both legs low now (within one PIO cycle of the write), pulse train halted. A pulse in
        progress is cut short: stopping fast beats finishing the pulse."""
        if self._sm is not None:
            self._sm.active(0)
            self._sm.exec(_EXEC_NOP_LEGS_LOW)
        if self._gate_sm is not None:
            self._gate_sm.active(0)
            self._gate_sm.exec(_EXEC_GATE_LOW)
        self.running = False

    def pending_updates(self):
        return 0 if self._sm is None else self._sm.tx_fifo() // 3


def channel(n, board=None):
    """PulseChannel for channel `n` of the board (default: board_config.load())."""
    if board is None:
        import board_config

        board = board_config.load()
    c = board.CHANNELS[n]
    if c["leg_b"] != c["leg_a"] + 1:
        raise ValueError("leg B must be the GPIO after leg A (side-set drives adjacent pins)")
    # The quantum is whatever the system clock really is (board.SYS_HZ is what boot sets).
    return PulseChannel(c["leg_a"], c["gate"], c["sm_pulse"], c["sm_gate"], machine.freq(),
                        board.DEAD_TIME_NS)
