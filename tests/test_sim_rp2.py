# ruff: noqa: F821
# Tests of the rp2 stand-in (host_tools/sim/rp2.py + pio_core.py): assembler words against
# adafruit_pioasm, cycle-exact timing of small programs computed by hand, FIFOs, IRQs, clock
# dividers, error paths, a cycle-by-cycle cross-check against the rp2040-pio-emulator package
# (pioemu) and a speed check of the pulse program.
import time
from collections import deque

import adafruit_pioasm
import pytest

from host_tools.sim import pio_core, rp2, world

PIO = rp2.PIO
SYS_HZ = 125_000_000


def new_world():
    return world.new_world(sys_hz=SYS_HZ)


def edges(w, pin):
    w.sync()
    return list(w.gpio.edges[pin])


def words(prog):
    return list(prog[0])


def pioasm(text):
    return list(adafruit_pioasm.assemble(text))


# ------------------------------------------------------------------------------------------
# Assembler: words equal adafruit_pioasm's for the same program written as PIO text

ORACLE = []


def oracle(text):
    def reg(prog):
        ORACLE.append((prog, text))
        return prog

    return reg


@oracle(
    """
.side_set 2
.wrap_target
    mov x, status    side 0
    jmp !x load      side 0
slot:
    jmp pin play     side 0
    nop              side 0 [3]
play:
    mov x, y         side 1
a:
    jmp x-- a        side 1
    mov x, isr       side 0
g:
    jmp x-- g        side 0
    mov x, y         side 2
b:
    jmp x-- b        side 2
    irq 4            side 0
    mov x, osr       side 0
r:
    jmp x-- r        side 0
.wrap
load:
    pull             side 0
    mov y, osr       side 0
    pull             side 0
    mov isr, osr     side 0
    pull             side 0
    jmp slot         side 0
"""
)
@rp2.asm_pio(sideset_init=(PIO.OUT_LOW, PIO.OUT_LOW), fifo_join=PIO.JOIN_TX)
def biphasic():
    wrap_target()
    mov(x, status)        .side(0)
    jmp(not_x, "load")    .side(0)
    label("slot")
    jmp(pin, "play")      .side(0)
    nop()                 .side(0) [3]
    label("play")
    mov(x, y)             .side(1)
    label("a")
    jmp(x_dec, "a")       .side(1)
    mov(x, isr)           .side(0)
    label("g")
    jmp(x_dec, "g")       .side(0)
    mov(x, y)             .side(2)
    label("b")
    jmp(x_dec, "b")       .side(2)
    irq(4)                .side(0)
    mov(x, osr)           .side(0)
    label("r")
    jmp(x_dec, "r")       .side(0)
    wrap()
    label("load")
    pull()                .side(0)
    mov(y, osr)           .side(0)
    pull()                .side(0)
    mov(isr, osr)         .side(0)
    pull()                .side(0)
    jmp("slot")           .side(0)


@oracle(
    """
.side_set 1 opt
    set pins, 1 side 1 [7]
    set pins, 0 [7]
    nop side 0
    nop [7]
    jmp 0 side 1 [3]
"""
)
@rp2.asm_pio(set_init=PIO.OUT_LOW, sideset_init=PIO.OUT_LOW)
def side_opt():
    set(pins, 1).side(1)[7]
    set(pins, 0)[7]
    nop().side(0)
    nop()[7]
    word(0x0000).side(1).delay(3)


@oracle(
    """
.side_set 1 pindirs
    set x, 3 side 1
    set y, 4 side 0 [15]
"""
)
@rp2.asm_pio(sideset_init=PIO.OUT_LOW, side_pindir=True)
def side_dirs():
    set(x, 3).side(1)
    set(y, 4).side(0)[15]


@oracle(
    """
top:
    jmp top
    jmp !x top
    jmp x-- top
    jmp !y top
    jmp y-- top
    jmp x!=y top
    jmp pin top
    jmp !osre top
end:
    jmp end [31]
"""
)
@rp2.asm_pio()
def jumps():
    label("top")
    jmp("top")
    jmp(not_x, "top")
    jmp(x_dec, "top")
    jmp(not_y, "top")
    jmp(y_dec, "top")
    jmp(x_not_y, "top")
    jmp(pin, "top")
    jmp(not_osre, "top")
    label("end")
    jmp("end")[31]


@oracle(
    """
    wait 1 gpio 5
    wait 0 gpio 31
    wait 1 pin 3
    wait 0 pin 0
    wait 1 irq 2
    wait 1 irq 2 rel
    wait 0 irq 7
    wait 1 irq 0 rel [4]
"""
)
@rp2.asm_pio()
def waits():
    wait(1, gpio, 5)
    wait(0, gpio, 31)
    wait(1, pin, 3)
    wait(0, pin, 0)
    wait(1, irq, 2)
    wait(1, irq, rel(2))
    wait(0, irq, 7)
    wait(1, irq, rel(0))[4]


@oracle(
    """
    in pins, 1
    in x, 32
    in y, 8
    in null, 5
    in isr, 16
    in osr, 31
"""
)
@rp2.asm_pio()
def ins():
    in_(pins, 1)
    in_(x, 32)
    in_(y, 8)
    in_(null, 5)
    in_(isr, 16)
    in_(osr, 31)


@oracle(
    """
    out pins, 1
    out x, 32
    out y, 7
    out null, 3
    out pindirs, 2
    out pc, 5
    out isr, 12
    out exec, 16
"""
)
@rp2.asm_pio()
def outs():
    out(pins, 1)
    out(x, 32)
    out(y, 7)
    out(null, 3)
    out(pindirs, 2)
    out(pc, 5)
    out(isr, 12)
    out(exec, 16)


@oracle(
    """
    push
    push iffull
    push noblock
    push iffull noblock
    push block
    pull
    pull ifempty
    pull noblock
    pull ifempty noblock
    pull ifempty block
"""
)
@rp2.asm_pio()
def pushpull():
    push()
    push(iffull)
    push(noblock)
    push(iffull, noblock)
    push(block)
    pull()
    pull(ifempty)
    pull(noblock)
    pull(ifempty, noblock)
    pull(ifempty, block)


@oracle(
    """
    mov pins, x
    mov x, ~y
    mov y, ::x
    mov exec, x
    mov pc, y
    mov isr, status
    mov osr, null
    mov x, osr
    mov y, isr
    mov pins, ~pins
    mov x, ::status
    nop
"""
)
@rp2.asm_pio()
def movs():
    mov(pins, x)
    mov(x, invert(y))
    mov(y, reverse(x))
    mov(exec, x)
    mov(pc, y)
    mov(isr, status)
    mov(osr, null)
    mov(x, osr)
    mov(y, isr)
    mov(pins, invert(pins))
    mov(x, reverse(status))
    nop()


@oracle(
    """
    irq 0
    irq wait 1
    irq clear 2
    irq 3 rel
    irq wait 0 rel
    irq clear 1 rel
    irq 7
"""
)
@rp2.asm_pio()
def irqs():
    irq(0)
    irq(block, 1)
    irq(clear, 2)
    irq(rel(3))
    irq(block, rel(0))
    irq(clear, rel(1))
    irq(noblock, 7)


@oracle(
    """
    set pins, 31
    set x, 5
    set y, 0
    set pindirs, 3
    set pins, 0 [31]
"""
)
@rp2.asm_pio(set_init=(PIO.OUT_LOW,) * 5)
def sets():
    set(pins, 31)
    set(x, 5)
    set(y, 0)
    set(pindirs, 3)
    set(pins, 0)[31]


@oracle(
    """
.side_set 5
    nop side 31
    jmp 0 side 17
"""
)
@rp2.asm_pio(sideset_init=(PIO.OUT_LOW,) * 5)
def side5():
    nop().side(31)
    jmp(0).side(17) if False else word(0x0000).side(17)


@oracle(
    """
.side_set 4 opt
    nop side 15
    nop
    nop side 0 [0]
"""
)
@rp2.asm_pio(sideset_init=(PIO.OUT_LOW,) * 4)
def side4opt():
    nop().side(15)
    nop()
    nop().side(0)[0]


@oracle(
    """
    set x, 1
.wrap_target
    set y, 2
    jmp x-- 0
.wrap
    nop
"""
)
@rp2.asm_pio()
def wrapped():
    set(x, 1)
    wrap_target()
    set(y, 2)
    word(0x0000 | 2 << 5)  # jmp x-- 0 via word()
    wrap()
    nop()


@oracle(
    """
.side_set 1
loop:
    pull noblock     side 0
    mov x, osr       side 0
    out pins, 4      side 1 [3]
    jmp !osre loop   side 1
    irq wait 5       side 0
"""
)
@rp2.asm_pio(out_init=(PIO.OUT_LOW,) * 4, sideset_init=PIO.OUT_LOW, out_shiftdir=PIO.SHIFT_RIGHT)
def mixed():
    label("loop")
    pull(noblock)     .side(0)
    mov(x, osr)       .side(0)
    out(pins, 4)      .side(1)[3]
    jmp(not_osre, "loop").side(1)
    irq(block, 5)     .side(0)


@pytest.mark.parametrize("idx", range(len(ORACLE)))
def test_words_match_pioasm(idx):
    prog, text = ORACLE[idx]
    assert words(prog) == pioasm(text)


def test_at_least_15_oracle_programs():
    assert len(ORACLE) >= 15


def test_program_layout_and_execctrl():
    p = biphasic
    assert len(p) == 9 and p[1] == -1 and p[2] == -1 and p[3] == -1  # v1.26+ layout
    assert p[-3] is None and p[-2] is None and p[-1] == (PIO.OUT_LOW, PIO.OUT_LOW)
    ex = p[-5]
    assert (ex >> 7) & 31 == 0  # wrap target
    assert (ex >> 12) & 31 == 12  # wrap top: `jmp x-- r`
    assert not ex & (1 << 30)  # no opt
    assert p[-4] == 1 << 30 | 0 << 25 | 0 << 20  # JOIN_TX, thresholds 32 (encoded 0)
    prog = adafruit_pioasm.Program("set x, 1\n.wrap_target\nset y, 2\njmp x-- 0\n.wrap\nnop\n")
    assert (wrapped[-5] >> 7) & 31 == prog.pio_kwargs["wrap_target"]
    assert (wrapped[-5] >> 12) & 31 == prog.pio_kwargs["wrap"]
    assert side_opt[-5] & (1 << 30)
    assert side_dirs[-5] & (1 << 29)
    assert side4opt[-5] & (1 << 30)


# What the real firmware images print for this program on the emulated RP2040 (rp2040py 0.3.6):
#   v1.28.0: [array('H', [43074, 45122]), -1, -1, -1, 0x1000, 0x40000000, None, None, (2, 2)]
#   v1.25.0: [array('H', [43074, 45122]), -1, -1, 0x1000, 0x40000000, None, None, (2, 2)]
# (tests/test_chip_pulse.py runs the pulse engine itself on both images.)
@pytest.mark.parametrize(
    "version,expect",
    [
        ((1, 28, 0), [[43074, 45122], -1, -1, -1, 0x1000, 0x40000000, None, None, (2, 2)]),
        ((1, 25, 0), [[43074, 45122], -1, -1, 0x1000, 0x40000000, None, None, (2, 2)]),
    ],
)
def test_program_list_layout_follows_the_micropython_version(version, expect):
    rp2.set_micropython_version(version)
    try:

        @rp2.asm_pio(sideset_init=(PIO.OUT_LOW, PIO.OUT_LOW), fifo_join=PIO.JOIN_TX)
        def two():
            wrap_target()
            nop().side(1)
            nop().side(2)
            wrap()

    finally:
        rp2.set_micropython_version((1, 28, 0))
    assert [list(two[0])] + two[1:] == expect


def test_shiftctrl_fields():
    @rp2.asm_pio(
        in_shiftdir=PIO.SHIFT_RIGHT,
        out_shiftdir=PIO.SHIFT_LEFT,
        autopush=True,
        autopull=True,
        push_thresh=8,
        pull_thresh=24,
        fifo_join=PIO.JOIN_RX,
    )
    def p():
        nop()

    assert p[-4] == 2 << 30 | 24 << 25 | 8 << 20 | 0 << 19 | 1 << 18 | 1 << 17 | 1 << 16


def test_exec_string_encoding_matches_pioasm():
    assert rp2.asm_pio_encode("set(pins, 0).side(1)", 2) == pioasm(
        ".side_set 2\nset pins, 0 side 1"
    )[0]
    assert rp2.asm_pio_encode("pull(noblock)", 0) == pioasm("pull noblock")[0]
    assert rp2.asm_pio_encode("mov(x, invert(osr))", 0) == pioasm("mov x, ~osr")[0]
    # sideset_count includes the opt bit, as MicroPython's StateMachine.exec passes it
    opt_word = pioasm(".side_set 1 opt\nnop side 1 [2]")[0]
    assert rp2.asm_pio_encode("nop().side(1)[2]", 2, True) == opt_word


def test_dsl_globals_are_restored_and_isolated():
    marker = object()
    globals()["_MARKER"] = marker

    with pytest.raises(NameError):

        @rp2.asm_pio()
        def bad():
            nop()[_MARKER]

    assert globals()["_MARKER"] is marker
    assert "nop" not in globals()

    @rp2.asm_pio()
    def good():
        DELAY = 3
        nop()[DELAY]

    assert words(good) == pioasm("nop [3]")
    assert globals()["_MARKER"] is marker


def test_assembler_errors():
    with pytest.raises(rp2.PIOASMError):

        @rp2.asm_pio(sideset_init=(PIO.OUT_LOW, PIO.OUT_LOW))
        def too_long_delay():
            nop().side(0)[8]

    with pytest.raises(rp2.PIOASMError):

        @rp2.asm_pio()
        def no_sideset():
            nop().side(1)

    with pytest.raises(rp2.PIOASMError):

        @rp2.asm_pio()
        def unknown_label():
            jmp("nowhere")


# ------------------------------------------------------------------------------------------
# Cycle-exact execution


def test_delay_loop_edges_by_hand():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def prog():
        set(x, 3)                 # 1 cycle
        set(pins, 1)[2]           # 3 cycles
        label("l")
        jmp(x_dec, "l")[1]        # (3 + 1) * 2 = 8 cycles
        set(pins, 0)              # 1 cycle -> period 13

    sm = rp2.StateMachine(0, prog, set_base=7)
    w.advance_to(100)
    sm.active(1)
    w.advance_to(100 + 13 * 3 + 5)
    assert edges(w, 7) == [
        (0, 0), (101, 1), (112, 0), (114, 1), (125, 0), (127, 1), (138, 0), (140, 1)
    ]
    # the closed-form loop and the step-by-step loop agree
    assert w.pio_system.steps < 13 * 3


def test_ff_loop_matches_stepped_loop_and_settles_on_stop():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def stepped():
        pull()
        out(x, 32)
        set(pins, 1)
        label("l")
        nop()[2]
        jmp(x_dec, "l")
        set(pins, 0)

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def closed():
        pull()
        out(x, 32)
        set(pins, 1)
        label("l")
        jmp(x_dec, "l")[3]
        set(pins, 0)

    a = rp2.StateMachine(0, stepped, set_base=0)
    b = rp2.StateMachine(1, closed, set_base=1)
    for sm in (a, b):
        sm.put(50)
        sm.active(1)
    w.advance_to(1000)
    assert [c for c, _ in edges(w, 0)] == [c for c, _ in edges(w, 1)]
    assert edges(w, 1)[1:3] == [(2, 1), (3 + 51 * 4, 0)]

    # stop in the middle of a long closed-form loop: X holds the exact remaining count
    w2 = new_world()
    sm = rp2.StateMachine(0, closed, set_base=1)
    sm.put(1000)
    sm.active(1)
    w2.advance_to(3 + 4 * 10 + 1)  # iterations start at 3, 7, ...; 11 started before 44
    sm.active(0)
    sm.exec("mov(isr, x)")
    sm.exec("push()")
    assert sm.get() == 1000 - 11
    sm.active(1)
    w2.advance_to(10_000)
    # stopped and restarted in the same cycle: the timing is unchanged
    assert edges(w2, 1)[-1] == (3 + 1001 * 4, 0)


def test_side_set_on_stall_and_delay_after_completion():
    w = new_world()

    @rp2.asm_pio(sideset_init=PIO.OUT_LOW, set_init=PIO.OUT_LOW)
    def prog():
        pull().side(1)[3]      # stalls: side-set at once, delay only after the pull completes
        set(pins, 1).side(0)
        label("end")
        jmp("end").side(0)

    sm = rp2.StateMachine(0, prog, sideset_base=2, set_base=3)
    sm.active(1)
    w.advance_to(500)
    sm.put(7)  # seen by the SM at cycle 500
    w.advance_to(600)
    # pull completes in cycle 500, 3 delay cycles, next instruction in 504
    assert edges(w, 2) == [(0, 1), (504, 0)]
    assert edges(w, 3) == [(0, 0), (504, 1)]


def test_pull_noblock_copies_x():
    w = new_world()

    @rp2.asm_pio()
    def prog():
        pull(noblock)
        mov(isr, osr)
        push()
        label("end")
        jmp("end")

    sm = rp2.StateMachine(0, prog)
    sm.exec("set(x, 21)")
    sm.active(1)
    w.advance_to(10)
    assert sm.get() == 21
    sm.active(0)
    sm.restart()
    sm.exec(prog[1])  # an int is an encoded instruction: jmp to the program start
    sm.put(0xDEADBEEF)
    sm.active(1)
    w.advance_to(20)
    assert sm.get() == 0xDEADBEEF


def test_mov_status_tx_and_rx_levels():
    w = new_world()

    @rp2.asm_pio()
    def prog():
        mov(isr, status)
        push()
        label("end")
        jmp("end")

    for sel, n, fill, expect in ((0, 2, 1, 0xFFFFFFFF), (0, 2, 2, 0), (1, 1, 0, 0xFFFFFFFF)):
        p = list(prog)
        p[1] = p[2] = -1
        p[-5] |= sel << 4 | n
        new_world()
        sm = rp2.StateMachine(0, p)
        for i in range(fill):
            sm.put(i)
        sm.active(1)
        world.current().advance_to(10)
        assert sm.get() == expect, (sel, n, fill)
    # RX level: one word already pushed makes the second status read zero with N=1, SEL=1
    p = list(prog)
    p[1] = p[2] = -1
    p[-5] |= 1 << 4 | 1
    w = new_world()

    @rp2.asm_pio()
    def twice():
        mov(isr, status)
        push()
        mov(isr, status)
        push()
        label("end")
        jmp("end")

    q = list(twice)
    q[-5] |= 1 << 4 | 1
    sm = rp2.StateMachine(0, q)
    sm.active(1)
    w.advance_to(10)
    assert [sm.get(), sm.get()] == [0xFFFFFFFF, 0]


def test_irq_between_two_state_machines():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def waiter():
        wait(1, irq, 5)
        set(pins, 1)
        label("end")
        jmp("end")

    @rp2.asm_pio()
    def setter():
        nop()[9]
        irq(5)  # executed in cycle 10
        label("end")
        jmp("end")

    a = rp2.StateMachine(0, waiter, set_base=4)
    b = rp2.StateMachine(1, setter)
    a.active(1)
    b.active(1)
    w.advance_to(100)
    # flag set in cycle 10 is seen in cycle 11 (wait completes and clears it), set pins in 12
    assert edges(w, 4)[-1] == (12, 1)
    assert w.pio[0].irq == 0


def test_irq_rel_and_irq_wait_for_clear():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def raiser():
        irq(block, rel(1))  # SM2: flag (1 + 2) % 4 = 3, then waits until it is cleared
        set(pins, 1)
        label("end")
        jmp("end")

    @rp2.asm_pio()
    def clearer():
        nop()[4]
        wait(1, irq, rel(2))  # SM1: flag (2 + 1) % 4 = 3, cleared on completion at cycle 5
        label("end")
        jmp("end")

    a = rp2.StateMachine(2, raiser, set_base=9)
    b = rp2.StateMachine(1, clearer)
    a.active(1)
    b.active(1)
    w.advance_to(50)
    assert edges(w, 9)[-1] == (7, 1)  # sees the clear in cycle 6, set pins in cycle 7


def test_pio_blocks_have_separate_irq_flags():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def waiter():
        wait(1, irq, 0)
        set(pins, 1)

    @rp2.asm_pio()
    def setter():
        irq(0)
        label("end")
        jmp("end")

    a = rp2.StateMachine(4, waiter, set_base=5)
    b = rp2.StateMachine(0, setter)
    a.active(1)
    b.active(1)
    w.advance_to(100)
    assert edges(w, 5) == [(0, 0)]


def test_jmp_pin_external_and_driven_by_other_sm():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def follower():
        label("top")
        jmp(pin, "hi")  # cycles 0, 3, 6, ... while the pin is low
        set(pins, 0)
        jmp("top")
        label("hi")
        set(pins, 1)

    sm = rp2.StateMachine(0, follower, set_base=1, jmp_pin=10)
    sm.active(1)
    w.advance_to(30)
    w.gpio.drive_external(10, 1)  # at cycle 30
    w.advance_to(60)
    # a CPU-side change at cycle 30 is seen by the jmp executing in cycle 30
    assert edges(w, 1) == [(0, 0), (31, 1)]

    # pin 20 driven by SM1 (side-set) read by SM0 via wait gpio: visible one cycle later
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def watcher():
        wait(1, gpio, 20)
        set(pins, 1)

    @rp2.asm_pio(sideset_init=PIO.OUT_LOW)
    def driver():
        nop().side(0)[6]
        nop().side(1)  # cycle 7
        label("end")
        jmp("end").side(1)

    a = rp2.StateMachine(0, watcher, set_base=2)
    b = rp2.StateMachine(1, driver, sideset_base=20)
    a.active(1)
    b.active(1)
    w.advance_to(40)
    assert edges(w, 20)[-1] == (7, 1)
    assert edges(w, 2)[-1] == (9, 1)  # wait completes in cycle 8, set in 9


def test_fifo_depths_and_joins():
    w = new_world()

    @rp2.asm_pio()
    def idle():
        nop()

    sm = rp2.StateMachine(0, idle)
    for i in range(4):
        sm.put(i)
    assert sm.tx_fifo() == 4
    with pytest.raises(RuntimeError) as ei:
        sm.put(4)
    assert "block" in str(ei.value)

    @rp2.asm_pio(fifo_join=PIO.JOIN_TX)
    def joined():
        nop()

    sm = rp2.StateMachine(1, joined)
    sm.put(rp2_array(range(8)))
    assert sm.tx_fifo() == 8
    with pytest.raises(RuntimeError):
        sm.put(9)

    @rp2.asm_pio(fifo_join=PIO.JOIN_RX, autopush=True, push_thresh=8)
    def pusher():
        in_(x, 8)

    sm = rp2.StateMachine(2, pusher)
    with pytest.raises(RuntimeError):
        sm.put(1)  # no TX FIFO when RX joined
    sm.exec("set(x, 3)")
    sm.active(1)
    w.advance_to(w.now + 20)
    assert sm.rx_fifo() == 8
    buf = rp2_array([0] * 8)
    sm.get(buf)
    assert list(buf) == [3] * 8
    with pytest.raises(RuntimeError):
        sm.get()


def rp2_array(values):
    from array import array

    return array("I", values)


def test_put_shift_and_get_shift():
    w = new_world()

    @rp2.asm_pio()
    def echo():
        pull()
        mov(isr, osr)
        push()

    sm = rp2.StateMachine(0, echo)
    sm.put(0x12, 8)
    sm.active(1)
    w.advance_to(10)
    assert sm.get(None, 4) == 0x120


def test_clock_divider_integer():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def toggle():
        set(pins, 1)
        set(pins, 0)[1]

    sm = rp2.StateMachine(0, toggle, freq=SYS_HZ // 4, set_base=0)
    sm.active(1)
    w.advance_to(60)
    # the first edge at cycle 0 replaces the initial entry (0, 0) of the record
    assert edges(w, 0)[:5] == [(0, 1), (4, 0), (12, 1), (16, 0), (24, 1)]
    assert pio_core.system_for(w).sms[0].d256 == 4 * 256


def test_clock_divider_fractional():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def toggle():
        set(pins, 1)
        set(pins, 0)

    sm = rp2.StateMachine(0, toggle, freq=50_000_000, set_base=0)  # divider 2.5
    assert pio_core.system_for(w).sms[0].d256 == 640
    sm.active(1)
    w.advance_to(40)
    # tick n at floor(n * 2.5): 0, 2, 5, 7, 10, 12, 15, 17 ...
    assert [c for c, _ in edges(w, 0)[:8]] == [0, 2, 5, 7, 10, 12, 15, 17]
    # MicroPython rounding: div = sys * 256 // freq (16.8 fixed point, truncated)
    rp2.StateMachine(1, toggle, freq=3_000_000, set_base=1)
    assert pio_core.system_for(w).sms[1].d256 == SYS_HZ * 256 // 3_000_000
    with pytest.raises(ValueError):
        rp2.StateMachine(2, toggle, freq=SYS_HZ * 2)
    with pytest.raises(ValueError):
        rp2.StateMachine(2, toggle, freq=1000)  # divider > 65535


def test_fractional_divider_with_closed_form_loop():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def prog():
        set(pins, 1)
        set(x, 9)
        label("l")
        jmp(x_dec, "l")
        set(pins, 0)
        label("end")
        jmp("end")

    sm = rp2.StateMachine(0, prog, freq=SYS_HZ * 256 // 333, set_base=0)  # D = 333/256
    sm.active(1)
    w.advance_to(100)
    # set pins 0 is tick 12: floor(12 * 333 / 256) = 15
    assert edges(w, 0) == [(0, 1), (12 * 333 // 256, 0)]


def test_program_memory_sharing_and_removal():
    w = new_world()

    @rp2.asm_pio()
    def p3():
        nop()
        nop()
        jmp(0) if False else word(0x0000)

    @rp2.asm_pio()
    def p2():
        label("x")
        jmp("x")
        nop()

    rp2.StateMachine(0, p3)
    rp2.StateMachine(1, p3)
    assert p3[1] == 29  # highest free slot first, like pio_add_program
    rp2.StateMachine(2, p2)
    assert p2[1] == 27
    blk = w.pio[0]
    assert blk.mem[27] == 27  # jmp relocated by the offset
    assert blk.mem[31] == 29
    rp2.PIO(0).remove_program(p2)
    assert p2[1] == -1
    rp2.PIO(1).add_program(p2)
    assert p2[2] == 30
    rp2.PIO(0).remove_program()
    assert p3[1] == -1
    with pytest.raises(OSError):
        for _ in range(20):
            rp2.PIO(1).add_program(list(p3))


def test_state_machine_ids_and_pio_state_machine():
    new_world()

    @rp2.asm_pio()
    def p():
        nop()

    sm = rp2.PIO(1).state_machine(2, p)
    assert sm == rp2.StateMachine(6)
    assert p[2] != -1 and p[1] == -1
    with pytest.raises(ValueError):
        rp2.StateMachine(8)


def test_exec_while_stopped_and_running():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW, sideset_init=PIO.OUT_LOW)
    def idle():
        label("l")
        jmp("l").side(0)

    sm = rp2.StateMachine(0, idle, set_base=3, sideset_base=4)
    w.advance_to(50)
    sm.exec("set(pins, 1).side(1)")
    assert edges(w, 3)[-1] == (50, 1)
    assert edges(w, 4)[-1] == (50, 1)
    w.advance_to(55)
    sm.active(1)  # `jmp l side 0` from cycle 55
    w.advance_to(60)
    assert edges(w, 4) == [(0, 0), (50, 1), (55, 0)]
    sm.exec(rp2.asm_pio_encode("set(pins, 0)", 1))  # replaces the next instruction (cycle 60)
    w.advance_to(70)
    assert edges(w, 3) == [(0, 0), (50, 1), (60, 0)]


def test_side_pindir_and_out_pins():
    w = new_world()

    @rp2.asm_pio(out_init=(PIO.OUT_LOW,) * 4, out_shiftdir=PIO.SHIFT_RIGHT)
    def nibbles():
        pull()
        out(pins, 4)
        out(pins, 4)
        out(pins, 4)

    sm = rp2.StateMachine(0, nibbles, out_base=10)
    sm.put(0x5A3)
    sm.active(1)
    w.advance_to(10)
    # nibbles 3, A, 5 at cycles 1, 2, 3
    nib = []
    for c in (1, 2, 3):
        nib.append(sum(w.gpio.level_at(10 + i, c) << i for i in range(4)))
    assert nib == [0x3, 0xA, 0x5]

    w = new_world()

    @rp2.asm_pio(sideset_init=PIO.OUT_HIGH, side_pindir=True)
    def dirs():
        nop().side(0)[3]
        nop().side(1)

    w.gpio.set_pull(8, 2)  # pull-down when released
    sm = rp2.StateMachine(0, dirs, sideset_base=8)
    sm.active(1)
    w.advance_to(6)
    # OUT_HIGH at init then pindir 0 in the same cycle 0 (glitch dropped), output again at 4
    assert edges(w, 8) == [(0, 0), (4, 1), (5, 0)]


def test_autopull_out_stalls_until_put():
    w = new_world()

    @rp2.asm_pio(out_init=PIO.OUT_LOW, autopull=True, pull_thresh=2)
    def serial():
        out(pins, 1)[1]

    sm = rp2.StateMachine(0, serial, out_base=0, out_shiftdir=PIO.SHIFT_RIGHT)
    sm.active(1)
    w.advance_to(100)
    assert edges(w, 0) == [(0, 0)]
    sm.put(0b01)
    w.advance_to(200)
    # refill and first bit in cycle 100 (1), second bit in 102 (0), then stalls again
    assert edges(w, 0) == [(0, 0), (100, 1), (102, 0)]


def test_not_implemented_paths():
    new_world()

    @rp2.asm_pio()
    def p():
        nop()

    q = list(p)
    q[-5] |= 1 << 17  # OUT_STICKY
    with pytest.raises(NotImplementedError):
        rp2.StateMachine(0, q)

    w = new_world()

    @rp2.asm_pio()
    def reserved_wait():
        word(0x2000 | 3 << 5)

    sm = rp2.StateMachine(0, reserved_wait)
    sm.active(1)
    with pytest.raises(NotImplementedError) as ei:
        w.advance_to(5)
        w.sync()
    assert "wait source 3" in str(ei.value)

    w = new_world()

    @rp2.asm_pio()
    def reserved_mov():
        word(0xA000 | 3 << 5 | 1)  # mov dest 3 (reserved on RP2040)

    sm = rp2.StateMachine(0, reserved_mov)
    with pytest.raises(NotImplementedError):
        sm.active(1)
        w.advance_to(5)
        w.sync()
    with pytest.raises(NotImplementedError):
        rp2.PIO(0).irq(lambda p: None, trigger=1)


def test_sm_irq_handler_runs_from_event_queue():
    w = new_world()
    log = []

    @rp2.asm_pio()
    def p():
        nop()[9]
        irq(rel(0))
        label("end")
        jmp("end")

    sm = rp2.StateMachine(1, p)
    sm.irq(lambda s: log.append((s, w.now)))
    sm.active(1)
    w.advance_to(100)
    w.sync()  # the world is lazy: PIO runs (and raises the flag at cycle 10) when someone looks
    w.run_due()  # handler scheduled at cycle 11, clamped to now
    assert log == [(sm, 100)]
    assert w.pio[0].irq == 0  # acknowledged by the handler


def test_blocked_state_machines_sleep():
    w = new_world()

    @rp2.asm_pio()
    def waiter():
        wait(1, gpio, 3)
        pull()

    sm = rp2.StateMachine(0, waiter)
    sm.active(1)
    w.advance_to(10_000_000)
    w.sync()
    assert w.pio_system.steps < 10


# ------------------------------------------------------------------------------------------
# Cross-check against pioemu on plain programs (no irq/wait, no optional side-set, divider 1)


def _pioemu_trace(opcodes, ncycles, pins, tx=(), **kw):
    from pioemu import State, emulate

    st = State(transmit_fifo=deque(tx))
    trace = {}
    stop = lambda op, s: s.clock >= ncycles
    for prev, cur in emulate(opcodes, stop_when=stop, initial_state=st, **kw):
        trace[prev.clock] = cur.pin_values
    out = []
    v = 0
    for c in range(ncycles):
        if c in trace:
            v = trace[c]
        out.append(tuple((v >> p) & 1 for p in pins))
    return out


def _sim_trace(w, ncycles, pins):
    w.sync()
    out = []
    for c in range(ncycles):
        out.append(tuple(w.gpio.level_at(p, c) for p in pins))
    return out


def _relocated(prog):
    # pioemu runs the program at address 0: use the words as assembled (jmp targets from 0)
    return list(prog[0])


def test_cross_check_pioemu_set_jmp_delays():
    w = new_world()

    @rp2.asm_pio(set_init=(PIO.OUT_LOW,) * 3)
    def prog():
        set(pins, 5)[2]
        set(x, 6)
        label("a")
        set(pins, 2)
        jmp(x_dec, "a")[1]
        set(y, 3)
        label("b")
        jmp(y_dec, "b")[4]
        set(pins, 7)
        mov(x, invert(null))
        label("c")
        set(pins, 1)[3]
        jmp(x_not_y, "d")
        label("d")
        set(pins, 0)[7]

    rp2.StateMachine(0, prog, set_base=0).active(1)
    n = 300
    w.advance_to(n)
    ref = _pioemu_trace(_relocated(prog), n, (0, 1, 2), set_base=0, set_count=3)
    assert _sim_trace(w, n, (0, 1, 2)) == ref


def test_cross_check_pioemu_side_set_pull_mov_out():
    w = new_world()

    @rp2.asm_pio(sideset_init=(PIO.OUT_LOW, PIO.OUT_LOW), out_init=(PIO.OUT_LOW,) * 2)
    def prog():
        pull().side(0)
        mov(y, osr).side(0)
        pull().side(0)
        wrap_target()
        mov(x, y).side(1)
        label("a")
        jmp(x_dec, "a").side(1)
        mov(x, osr).side(0)[2]
        label("g")
        jmp(x_dec, "g").side(0)
        out(pins, 2).side(2)[1]
        mov(x, y).side(2)
        label("b")
        jmp(x_dec, "b").side(2)
        nop().side(0)[5]
        wrap()

    rp2.StateMachine(0, prog, sideset_base=4, out_base=6).active(1)
    sm = rp2.StateMachine(0)
    sm.put(9)
    sm.put(0xFFFFFFE4)
    n = 400
    w.advance_to(n)
    prog_kw = dict(
        side_set_base=4,
        side_set_count=2,
        out_base=6,
        out_count=2,
        wrap_target=(prog[-5] >> 7) & 31,
        wrap_top=(prog[-5] >> 12) & 31,
    )
    ref = _pioemu_trace(_relocated(prog), n, (4, 5, 6, 7), tx=(9, 0xFFFFFFE4), **prog_kw)
    assert _sim_trace(w, n, (4, 5, 6, 7)) == ref


# ------------------------------------------------------------------------------------------
# Speed: the firmware's pulse program, two channels, 100 Hz, 60 s of device time


def test_pulse_train_speed():
    w = new_world()
    prog = list(biphasic)
    prog[1] = prog[2] = -1
    prog[-5] |= 3  # STATUS_SEL = 0 (TX level), STATUS_N = 3
    phase = 300 * 125
    gap = 50 * 125
    period = SYS_HZ // 100
    for ch in range(2):
        sm = rp2.StateMachine(ch, prog, sideset_base=2 + 2 * ch, jmp_pin=20)
        sm.put(phase - 1)
        sm.put(gap - 1)
        sm.put(period - 2 * phase - gap - 12)
        sm.active(1)
    w.gpio.drive_external(20, 1)
    t0 = time.process_time()  # CPU time: robust to other processes on the machine
    w.advance_to(60 * SYS_HZ)
    w.sync()
    dt = time.process_time() - t0
    e = w.gpio.edges[2]
    assert len(e) > 11_900
    # phase A lasts exactly (Y + 1) + 1 cycles: mov x, y + (Y+1) loop iterations
    assert e[2][0] - e[1][0] == phase + 1
    # constant period
    starts = [c for c, lv in e[1:] if lv == 1]
    periods = set(b - a for a, b in zip(starts, starts[1:], strict=False))
    assert len(periods) == 1
    assert dt < 1.5, dt


# ------------------------------------------------------------------------------------------
# EXEC, PC destinations, IN from pins, WAIT PIN, MOV to pins


def test_out_exec_ignores_own_delay_and_keeps_pc():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW, out_shiftdir=PIO.SHIFT_RIGHT)
    def prog():
        pull()               # cycle 0
        out(exec, 16)[3]     # cycle 1, its delay is ignored
        set(pins, 0)         # after the executee: cycle 2 + 1 + 2 = 5
        label("e")
        jmp("e")

    sm = rp2.StateMachine(0, prog, set_base=3)
    sm.put(rp2.asm_pio_encode("set(pins, 1)[2]", 0))  # executed in cycle 2, then 2 delay cycles
    sm.active(1)
    w.advance_to(20)
    assert edges(w, 3) == [(0, 0), (2, 1), (5, 0)]


def test_mov_exec_and_out_pc_and_mov_pc():
    w = new_world()

    @rp2.asm_pio(set_init=PIO.OUT_LOW, out_shiftdir=PIO.SHIFT_RIGHT)
    def prog():
        pull()               # 0: instruction word
        mov(exec, osr)       # 1: executee `set(pins, 1)` runs in cycle 2
        pull()               # 3: target address
        out(pc, 5)           # 4: jump
        set(pins, 0)         # skipped
        label("e")
        jmp("e")
        nop()[3]             # jumped to in cycle 5, 4 cycles
        set(pins, 0)         # cycle 9
        mov(pc, y)           # cycle 10: back to "e" (Y = its address)

    sm = rp2.StateMachine(0, prog, set_base=3)
    off = prog[1]
    sm.put(rp2.asm_pio_encode("set(pins, 1)", 0))
    sm.put(off + 6)
    sm.exec("set(y, {})".format(off + 5))
    sm.active(1)
    w.advance_to(40)
    assert edges(w, 3) == [(0, 0), (2, 1), (9, 0)]
    sm.active(0)
    assert w.pio_system.sms[0].pc == off + 5


def test_in_pins_wait_pin_and_mov_pins():
    w = new_world()

    @rp2.asm_pio(out_init=(PIO.OUT_LOW, PIO.OUT_LOW))
    def prog():
        in_(pins, 2)
        push()
        wait(1, pin, 1)         # in_base + 1 = pin 13
        mov(pins, invert(null))  # both out pins high
        label("e")
        jmp("e")

    w.gpio.drive_external(12, 1)
    w.gpio.drive_external(13, 0)
    sm = rp2.StateMachine(0, prog, in_base=12, out_base=20, in_shiftdir=PIO.SHIFT_LEFT)
    sm.active(1)
    w.advance_to(50)
    assert sm.get() == 0b01
    w.gpio.drive_external(13, 1)  # seen by the wait in cycle 50, mov in 51
    w.advance_to(100)
    assert edges(w, 20) == [(0, 0), (51, 1)]
    assert edges(w, 21) == [(0, 0), (51, 1)]


def test_restart_clears_shift_counters_and_keeps_pc():
    w = new_world()

    @rp2.asm_pio(autopush=True, push_thresh=8, in_shiftdir=PIO.SHIFT_LEFT)
    def prog():
        in_(x, 4)
        label("e")
        jmp("e")

    sm = rp2.StateMachine(0, prog)
    sm.exec("set(x, 5)")
    sm.active(1)
    w.advance_to(5)
    w.sync()  # advance_to is lazy: look at the SM after syncing
    core = w.pio_system.sms[0]
    assert core.isr_count == 4 and core.isr == 5
    sm.restart()
    assert core.isr_count == 0 and core.isr == 0
    assert core.pc == prog[1] + 1
