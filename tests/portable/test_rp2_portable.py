# ruff: noqa: F821
# Portable tests of the rp2 stand-in: run by pytest (CPython) and by tests/mp_run.py (MicroPython
# unix port). Plain functions with assert; no pytest features.

from host_tools.sim import world
from host_tools.sim import rp2

PIO = rp2.PIO
SYS_HZ = 125_000_000


def _new():
    return world.new_world(sys_hz=SYS_HZ)


def _edges(w, pin):
    w.sync()
    return list(w.gpio.edges[pin])


def _raises(exc, fn):
    try:
        fn()
    except exc:
        return True
    return False


def test_assemble_pulse_program_words():
    @rp2.asm_pio(sideset_init=(PIO.OUT_LOW, PIO.OUT_LOW), fifo_join=PIO.JOIN_TX)
    def prog():
        wrap_target()
        mov(x, status).side(0)
        jmp(not_x, "load").side(0)
        label("play")
        mov(x, y).side(1)
        label("a")
        jmp(x_dec, "a").side(1)
        mov(x, isr).side(0)
        label("g")
        jmp(x_dec, "g").side(0)
        mov(x, y).side(2)
        label("b")
        jmp(x_dec, "b").side(2)
        irq(4).side(0)
        mov(x, osr).side(0)
        label("r")
        jmp(x_dec, "r").side(0)
        wrap()
        label("load")
        pull().side(0)
        mov(y, osr).side(0)
        pull().side(0)
        mov(isr, osr).side(0)
        pull().side(0)
        jmp("play").side(0)

    # words checked against adafruit_pioasm on CPython (tests/test_sim_rp2.py)
    expect = [0xA025, 0x002B, 0xA822, 0x0843, 0xA026, 0x0045, 0xB022, 0x1047, 0xC004, 0xA027,
              0x004A, 0x80A0, 0xA047, 0x80A0, 0xA0C7, 0x80A0, 0x0002]
    assert list(prog[0]) == expect
    # the v1.26+ layout (checked on the real v1.28.0 image): words, 3 offsets, execctrl, ...
    assert len(prog) == 9
    assert prog[1] == -1 and prog[2] == -1 and prog[3] == -1
    assert prog[-5] == 10 << 12  # wrap top 10, wrap target 0, no side-set opt
    assert prog[-4] == 1 << 30  # JOIN_TX
    assert prog[-1] == (PIO.OUT_LOW, PIO.OUT_LOW)


def test_side_set_opt_and_delay_fields():
    @rp2.asm_pio(sideset_init=PIO.OUT_LOW)
    def prog():
        nop().side(1)[7]
        nop()[3]

    # 1 side-set pin + opt bit: enable bit 12, value bit 11, 3 delay bits
    assert list(prog[0]) == [0xA042 | 1 << 12 | 1 << 11 | 7 << 8, 0xA042 | 3 << 8]
    assert prog[-5] & (1 << 30)


def test_dsl_names_do_not_leak():
    @rp2.asm_pio()
    def prog():
        nop()

    assert "nop" not in globals()
    assert "_new" in globals()


def test_delay_loop_edge_cycles():
    w = _new()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def prog():
        set(x, 3)
        set(pins, 1)[2]
        label("l")
        jmp(x_dec, "l")[1]
        set(pins, 0)

    sm = rp2.StateMachine(0, prog, set_base=7)
    w.advance_to(100)
    sm.active(1)
    w.advance_to(145)
    assert _edges(w, 7) == [(0, 0), (101, 1), (112, 0), (114, 1), (125, 0), (127, 1), (138, 0),
                            (140, 1)]


def test_pull_noblock_and_fifo():
    w = _new()

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
    assert sm.rx_fifo() == 1
    assert sm.get() == 21
    assert _raises(RuntimeError, sm.get)


def test_irq_from_another_state_machine():
    w = _new()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def waiter():
        wait(1, irq, 5)
        set(pins, 1)
        label("end")
        jmp("end")

    @rp2.asm_pio()
    def setter():
        nop()[9]
        irq(5)
        label("end")
        jmp("end")

    a = rp2.StateMachine(0, waiter, set_base=4)
    b = rp2.StateMachine(1, setter)
    a.active(1)
    b.active(1)
    w.advance_to(100)
    assert _edges(w, 4) == [(0, 0), (12, 1)]


def test_fractional_clock_divider():
    w = _new()

    @rp2.asm_pio(set_init=PIO.OUT_LOW)
    def toggle():
        set(pins, 1)
        set(pins, 0)

    sm = rp2.StateMachine(0, toggle, freq=50_000_000, set_base=0)  # divider 2.5
    sm.active(1)
    w.advance_to(20)
    assert [c for c, _ in _edges(w, 0)] == [0, 2, 5, 7, 10, 12, 15, 17]


def test_tx_fifo_full_raises():
    _new()

    @rp2.asm_pio(fifo_join=PIO.JOIN_TX)
    def prog():
        nop()

    sm = rp2.StateMachine(5, prog)
    for i in range(8):
        sm.put(i)
    assert sm.tx_fifo() == 8
    assert _raises(RuntimeError, lambda: sm.put(8))
