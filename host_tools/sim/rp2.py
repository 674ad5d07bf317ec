# Stand-in for MicroPython's `rp2` module (RP2040 PIO) on top of the simulated world.
#
# Runs unchanged on CPython 3.11 and on the MicroPython 1.29 unix port (no dataclasses, typing,
# f-strings with '=', match, ...).
#
# What lives where
#   rp2.py        the MicroPython-facing API: the asm_pio DSL (assembles to real RP2040 instruction
#                 words, same program list layout as MicroPython), PIO, StateMachine, constants.
#   pio_core.py   the cycle-exact execution engine: PioSystem (schedules all 8 state machines of
#                 both PIO blocks in global time order), PioBlock (instruction memory, IRQ flags,
#                 pin output registers), SmCore (one state machine).
#
# What this module needs from the world (host_tools/sim/world.py, gpio.py; a test may pass a fake):
#   world.current()            -> the current World (looked up lazily, at call time)
#   w.now                      int, current system-clock cycle
#   w.sys_hz                   int, system clock in Hz (125_000_000 when absent)
#   w.sync()                   runs w.pio_system.run_until(w.now) (lazy catch-up)
#   w.schedule(cycle, fn)      used to run StateMachine.irq / PIO.irq handlers from the event queue
#   w.gpio.set_level(pin, level, cycle, driver)   PIO output value of a pin changed ("pio0"/"pio1")
#   w.gpio.set_dir(pin, output, cycle, driver)    PIO pindir of a pin changed
#   w.gpio.set_function(pin, driver)              StateMachine init hands *_init pins to the block
#   w.gpio.levels[pin] (or w.gpio.level(pin))     resulting level of a pin, read as PIO input
# pio_core.system_for(w) creates the PioSystem on first use, stores it as w.pio_system and sets
# w.pio = [block0, block1].
#
# Exact semantics chosen where the datasheet leaves room (details in pio_core.py's header):
#   - run_until(c) runs every SM step starting before cycle c; CPU actions at w.now = c (put, exec,
#     active, external pin drive) are seen by SM instructions from cycle c on.
#   - a pin level or IRQ flag written by an SM in cycle t is seen by every SM from cycle t + 1;
#     the 2-cycle GPIO input synchroniser is not modelled.
#   - fractional divider: tick n of an SM enabled at cycle b falls on b + floor(n * D256 / 256).
#   - IRQ flags 0-3 with a CPU handler: the handler is scheduled at (raise cycle + 1) on the world
#     queue (the world clamps it to now, so it runs at the next advance/run_due after the sync
#     that saw the flag); the flag is cleared when the handler runs.

# Program list layout (as the MicroPython version this module stands for builds it; checked on
# the real firmware images on the emulated RP2040, tests/test_chip_pulse.py):
#   v1.26 and later: [array('H') words, offset_pio0, offset_pio1, offset_pio2, execctrl,
#                     shiftctrl, out_init, set_init, sideset_init]            (9 entries)
#   up to v1.25:     the same without offset_pio2                              (8 entries)
# MICROPYTHON_VERSION (set_micropython_version()) picks the layout for programs assembled after
# the call; the default is the current release line. pio_core reads execctrl, shiftctrl and the
# *_init entries from the end of the list, so both layouts run.
# execctrl from the decorator holds side_pindir (bit 29), the side-set enable/opt bit (bit 30), the
# program-relative wrap top (bits 16:12) and wrap bottom (bits 11:7); the user may OR STATUS_SEL
# (bit 4) and STATUS_N (bits 3:0) into it. The program offset is added at StateMachine init.

from array import array

from host_tools.sim import pio_core
from host_tools.sim import world as _world

_PROG_DATA = 0
_PROG_OFFSET_PIO0 = 1
_PROG_OFFSET_PIO1 = 2

MICROPYTHON_VERSION = (1, 28, 0)


def set_micropython_version(version):
    """Assemble later programs with the list layout of MicroPython `version` (a tuple)."""
    global MICROPYTHON_VERSION
    MICROPYTHON_VERSION = tuple(version)


def program_offset_slots():
    """How many per-block offset entries the program list has: 3 since v1.26 (PIO2), else 2."""
    return 3 if MICROPYTHON_VERSION >= (1, 26, 0) else 2


def _execctrl_index(prog):
    return len(prog) - 5


class PIOASMError(Exception):
    pass


def _current_world():
    return _world.current()


# ---------------------------------------------------------------------------------------------
# Assembler (DSL). Two passes over the decorated function: pass 0 counts instructions, records
# labels and counts .side() uses (to decide whether side-set is optional); pass 1 emits words.


class _Emitter:
    def __init__(
        self,
        out_init=None,
        set_init=None,
        sideset_init=None,
        side_pindir=False,
        in_shiftdir=0,
        out_shiftdir=0,
        autopush=False,
        autopull=False,
        push_thresh=32,
        pull_thresh=32,
        fifo_join=0,
    ):
        execctrl = int(bool(side_pindir)) << 29
        shiftctrl = (
            (fifo_join & 3) << 30
            | (pull_thresh & 0x1F) << 25
            | (push_thresh & 0x1F) << 20
            | (out_shiftdir & 1) << 19
            | (in_shiftdir & 1) << 18
            | int(bool(autopull)) << 17
            | int(bool(autopush)) << 16
        )
        self.prog = [array("H")] + [-1] * program_offset_slots()
        self.prog += [execctrl, shiftctrl, out_init, set_init, sideset_init]
        self.labels = {}
        self.wrap_used = False
        self.num_instr = 0
        self.num_sideset = 0
        self.pass_ = 0
        self.sideset_opt = False
        self.delay_max = 31
        if sideset_init is None:
            self.sideset_count = 0
        elif isinstance(sideset_init, int):
            self.sideset_count = 1
        else:
            self.sideset_count = len(sideset_init)

    def start_pass(self, pass_):
        if pass_ == 1:
            if not self.wrap_used and self.num_instr:
                self.wrap()
            self.delay_max = 31
            if self.sideset_count:
                self.sideset_opt = self.num_sideset != self.num_instr
                if self.sideset_opt:
                    self.prog[_execctrl_index(self.prog)] |= 1 << 30
                    self.sideset_count += 1
                self.delay_max >>= self.sideset_count
        self.pass_ = pass_
        self.num_instr = 0
        self.num_sideset = 0

    # chained modifiers ------------------------------------------------------------------------
    def __getitem__(self, delay):
        return self.delay(delay)

    def delay(self, delay):
        if self.pass_ > 0:
            if delay < 0 or delay > self.delay_max:
                raise PIOASMError("delay too large")
            self.prog[_PROG_DATA][-1] |= delay << 8
        return self

    def side(self, value):
        self.num_sideset += 1
        if self.pass_ > 0:
            if self.sideset_count == 0:
                raise PIOASMError("no sideset")
            if value < 0 or value >= (1 << self.sideset_count):
                raise PIOASMError("sideset too large")
            set_bit = 13 - self.sideset_count
            self.prog[_PROG_DATA][-1] |= int(self.sideset_opt) << 12 | value << set_bit
        return self

    # directives -------------------------------------------------------------------------------
    def wrap_target(self):
        self.prog[_execctrl_index(self.prog)] |= self.num_instr << 7

    def wrap(self):
        if not self.num_instr:
            raise PIOASMError("wrap before any instruction")
        self.prog[_execctrl_index(self.prog)] |= (self.num_instr - 1) << 12
        self.wrap_used = True

    def label(self, name):
        if self.pass_ == 0:
            if name in self.labels:
                raise PIOASMError("duplicate label {}".format(name))
            self.labels[name] = self.num_instr

    def word(self, instr, label=None):
        if self.pass_ != 1:
            self.num_instr += 1
            return self
        if label is None:
            target = 0
        else:
            if label not in self.labels:
                raise PIOASMError("unknown label {}".format(label))
            target = self.labels[label]
        self.prog[_PROG_DATA].append((instr | target) & 0xFFFF)
        self.num_instr += 1
        if self.num_instr > 32:
            raise PIOASMError("program too long")
        return self

    # instructions -----------------------------------------------------------------------------
    def nop(self):
        return self.word(0xA042)  # mov y, y

    def jmp(self, cond, label=None):
        if label is None:
            label = cond
            cond = 0
        return self.word(0x0000 | cond << 5, label)

    def wait(self, polarity, src, index):
        if src == 6:  # the name `pin` (jmp condition value 6) used as a wait source
            src = 1
        elif src != 0:  # anything else that is not `gpio` is the `irq` function itself
            src = 2
        return self.word(0x2000 | (polarity & 1) << 7 | src << 5 | (index & 0x1F))

    def in_(self, src, data):
        if not 0 < data <= 32:
            raise PIOASMError("invalid bit count {}".format(data))
        return self.word(0x4000 | src << 5 | data & 0x1F)

    def out(self, dest, data):
        if dest == 8:  # exec
            dest = 7
        if not 0 < data <= 32:
            raise PIOASMError("invalid bit count {}".format(data))
        return self.word(0x6000 | dest << 5 | data & 0x1F)

    def push(self, value=0, value2=0):
        value |= value2
        if not value & 1:
            value |= 0x20  # block by default
        return self.word(0x8000 | (value & 0x60))

    def pull(self, value=0, value2=0):
        value |= value2
        if not value & 1:
            value |= 0x20  # block by default
        return self.word(0x8080 | (value & 0x60))

    def mov(self, dest, src):
        if dest == 8:  # exec
            dest = 4
        return self.word(0xA000 | dest << 5 | src)

    def irq(self, mod, index=None):
        if index is None:
            index = mod
            mod = 0
        return self.word(0xC000 | (mod & 0x60) | (index & 0x1F))

    def set(self, dest, data):
        if not 0 <= data <= 31:
            raise PIOASMError("invalid set value {}".format(data))
        return self.word(0xE000 | dest << 5 | data)


def _invert(x):
    return x | 0x08


def _reverse(x):
    return x | 0x10


def _rel(x):
    return x | 0x10


# Names visible inside an @asm_pio function (constants; the functions are bound per emitter).
_PIO_NAMES = {
    "gpio": 0,
    "pins": 0,
    "x": 1,
    "y": 2,
    "null": 3,
    "pindirs": 4,
    "pc": 5,
    "status": 5,
    "isr": 6,
    "osr": 7,
    "exec": 8,
    "invert": _invert,
    "reverse": _reverse,
    "not_x": 1,
    "x_dec": 2,
    "not_y": 3,
    "y_dec": 4,
    "x_not_y": 5,
    "pin": 6,
    "not_osre": 7,
    "noblock": 0x01,
    "block": 0x21,
    "iffull": 0x40,
    "ifempty": 0x40,
    "clear": 0x40,
    "rel": _rel,
}

_FUNC_NAMES = (
    "wrap_target",
    "wrap",
    "label",
    "word",
    "nop",
    "jmp",
    "wait",
    "in_",
    "out",
    "push",
    "pull",
    "mov",
    "irq",
    "set",
)


def _names_for(emit):
    gl = {}
    for k in _PIO_NAMES:
        gl[k] = _PIO_NAMES[k]
    for k in _FUNC_NAMES:
        gl[k] = getattr(emit, k)
    return gl


def asm_pio(**kw):
    emit = _Emitter(**kw)

    def dec(f):
        # Like MicroPython: while the function body runs, its globals are exactly the DSL names
        # (module-level names are NOT visible, as on the device). The dict object is kept, its
        # contents swapped and restored, which works on both CPython and MicroPython.
        g = f.__globals__
        saved = g.copy()
        g.clear()
        g.update(_names_for(emit))
        try:
            emit.start_pass(0)
            f()
            emit.start_pass(1)
            f()
        finally:
            g.clear()
            g.update(saved)
        return emit.prog

    return dec


def asm_pio_encode(instr, sideset_count, sideset_opt=False):
    """Assemble one instruction given as DSL text; sideset_count includes the opt bit."""
    emit = _Emitter()
    emit.sideset_count = sideset_count
    emit.sideset_opt = bool(sideset_opt)
    emit.delay_max = 31 >> (emit.sideset_count + int(emit.sideset_opt))
    emit.pass_ = 1
    emit.num_instr = 0
    emit.num_sideset = 0
    gl = _names_for(emit)
    exec(instr, gl)
    if len(emit.prog[_PROG_DATA]) != 1:
        raise PIOASMError("expecting exactly 1 instruction")
    return emit.prog[_PROG_DATA][0]


# ---------------------------------------------------------------------------------------------
# PIO blocks and state machines


def _system():
    return pio_core.system_for(_current_world())


class PIO:
    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2
    IRQ_SM0 = 0x100
    IRQ_SM1 = 0x200
    IRQ_SM2 = 0x400
    IRQ_SM3 = 0x800

    def __init__(self, id):
        if id not in (0, 1):
            raise ValueError("invalid PIO block {}".format(id))
        self._id = id

    def _block(self):
        return _system().blocks[self._id]

    def __eq__(self, other):
        return isinstance(other, PIO) and other._id == self._id

    def __hash__(self):
        return self._id

    def __repr__(self):
        return "PIO({})".format(self._id)

    def add_program(self, program):
        sysm = _system()
        sysm.sync()
        return self._block().add_program(program)

    def remove_program(self, program=None):
        sysm = _system()
        sysm.sync()
        self._block().remove_program(program)

    def state_machine(self, id, program=None, *args, **kw):
        if not 0 <= id <= 3:
            raise ValueError("invalid state machine {}".format(id))
        return StateMachine(self._id * 4 + id, program, *args, **kw)

    def irq(self, handler=None, trigger=0xF00, hard=False):
        return self._block().set_irq_handler(handler, trigger, hard, self)


class StateMachine:
    def __init__(self, id, program=None, *args, **kw):
        if not 0 <= id <= 7:
            raise ValueError("invalid state machine {}".format(id))
        self._id = id
        if program is not None:
            self.init(program, *args, **kw)

    def _core(self):
        return _system().blocks[self._id >> 2].sms[self._id & 3]

    def __eq__(self, other):
        return isinstance(other, StateMachine) and other._id == self._id

    def __hash__(self):
        return self._id

    def __repr__(self):
        return "StateMachine({})".format(self._id)

    def init(
        self,
        program,
        freq=-1,
        *,
        in_base=None,
        out_base=None,
        set_base=None,
        jmp_pin=None,
        sideset_base=None,
        in_shiftdir=None,
        out_shiftdir=None,
        push_thresh=None,
        pull_thresh=None
    ):
        sysm = _system()
        sysm.sync()
        core = self._core()
        core.configure(
            program,
            freq,
            _pin_num(in_base),
            _pin_num(out_base),
            _pin_num(set_base),
            _pin_num(jmp_pin),
            _pin_num(sideset_base),
            in_shiftdir,
            out_shiftdir,
            push_thresh,
            pull_thresh,
        )

    def active(self, value=None):
        sysm = _system()
        sysm.sync()
        core = self._core()
        if value is None:
            return core.enabled
        core.set_enabled(bool(value))
        return None

    def restart(self):
        _system().sync()
        self._core().restart()

    def exec(self, instr):
        _system().sync()
        core = self._core()
        if isinstance(instr, str):
            word = asm_pio_encode(instr, core.sideset_count, core.sideset_opt)
        else:
            word = instr & 0xFFFF
        core.cpu_exec(word)

    def put(self, value, shift=0):
        _system().sync()
        core = self._core()
        if isinstance(value, int):
            core.cpu_put((value << shift) & 0xFFFFFFFF)
        else:
            for v in value:
                core.cpu_put((v << shift) & 0xFFFFFFFF)

    def get(self, buf=None, shift=0):
        _system().sync()
        core = self._core()
        if buf is None:
            return core.cpu_get() >> shift
        for i in range(len(buf)):
            buf[i] = core.cpu_get() >> shift
        return None

    def tx_fifo(self):
        _system().sync()
        return len(self._core().tx)

    def rx_fifo(self):
        _system().sync()
        return len(self._core().rx)

    def irq(self, handler=None, trigger=0, hard=False):
        core = self._core()
        return core.block.set_sm_irq_handler(self._id & 3, handler, self)


def _pin_num(p):
    """Accept None, an int or a machine.Pin-like object (with .id() or a pin number attribute)."""
    if p is None or isinstance(p, int):
        return p
    for attr in ("id", "_id"):
        v = getattr(p, attr, None)
        if v is None:
            continue
        if callable(v):
            v = v()
        if isinstance(v, int):
            return v
    if hasattr(p, "pin"):
        v = p.pin
        if isinstance(v, int):
            return v
    raise TypeError("cannot get a GPIO number from {!r}".format(p))


def bootsel_button():
    """The BOOTSEL button is never pressed in the simulation."""
    return 0


class DMA:
    def __init__(self, *args, **kw):
        raise NotImplementedError("rp2.DMA is not modelled by the simulation")
