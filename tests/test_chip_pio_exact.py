"""The emulated Pico's PIO is cycle-exact (host_tools/emuchip/pio_exact.py).

Small PIO programs with known timings, assembled and run by the real MicroPython on the emulated
RP2040; their GPIO edges are compared with cycle counts worked out by hand from the instruction
list (each instruction 1 cycle + its [delay], a `jmp x--` loop from X = n runs n + 1 times).
Both state machines of a test are enabled by one write of CTRL, so their phases are known.
"""
import pytest

from host_tools.emuchip.chip import boot
from host_tools.emuchip.image import available_versions, image_path

VERSION = (available_versions() or ["1.28.0"])[-1]
PIO0_CTRL_SET = 0x50200000 + 0x2000  # atomic-set alias of PIO0 CTRL
PIO0_CTRL_CLR = 0x50200000 + 0x3000  # atomic-clear alias
PIO0_INPUT_SYNC_BYPASS = 0x50200000 + 0x038


@pytest.fixture(scope="module")
def chip():
    image_path(VERSION)  # a clear error naming PICO_FIRMWARE when no image is there
    c = boot(VERSION, files={})
    c.exec("import rp2, machine\nfrom machine import Pin")
    yield c
    c.close()


@pytest.fixture(scope="module")
def shipped():
    """rp2040py's own PIO, as shipped (no exact stepping, no pad read-back)."""
    c = boot(VERSION, files={}, exact_pio=False)
    c.exec("import rp2, machine\nfrom machine import Pin")
    yield c
    c.close()


def fresh(chip, code):
    chip.exec("for _i in range(8):\n rp2.StateMachine(_i).active(0)\n"
              "rp2.PIO(0).remove_program()\nrp2.PIO(1).remove_program()\n"
              "machine.mem32[%d] = 0\n" % PIO0_INPUT_SYNC_BYPASS + code)


def stop_pio0(chip):
    """Disable PIO0's state machines now (a bus write from outside: no REPL round trip)."""
    chip.mcu.write_uint32(PIO0_CTRL_CLR, 0xF)


def run_window(chip, pins, cycles, mask=0b11):
    """Enable PIO0 state machines `mask` with one CTRL write, record `pins` for `cycles`."""
    rec = chip.record(pins)
    chip.exec("machine.mem32[%d] = %d" % (PIO0_CTRL_SET, mask))
    chip.run(cycles=cycles)
    stop_pio0(chip)
    rec.stop()
    return rec.edges


def on(edges, pin):
    return [(c, v) for c, p, v in edges if p == pin]


SQUARE = """
@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def square():
    wrap_target()
    set(pins, 1)
    mov(x, y)
    label("a")
    jmp(x_dec, "a")
    set(pins, 0)
    mov(x, y)
    label("b")
    jmp(x_dec, "b") [1]
    wrap()
"""
SQUARE_ASM = """
.wrap_target
    set pins, 1
    mov x, y
a:
    jmp x-- a
    set pins, 0
    mov x, y
b:
    jmp x-- b [1]
.wrap
"""


def square_expected(start, y, div, n):
    # high: set (1) + mov (1) + loop (y + 1); low: set + mov + loop (y + 1) * 2
    high, low = (y + 3) * div, (2 * y + 4) * div
    edges = []
    t = start
    for _ in range(n):
        edges += [(t, 1), (t + high, 0)]
        t += high + low
    return edges


@pytest.mark.parametrize("div", [1, 3])
def test_square_wave_4002_cycle_phase(chip, div):
    y = 3999  # high = y + 3 = 4,002 cycles (32,016 ns), low = 8,002
    fresh(chip, SQUARE + "sm = rp2.StateMachine(0, square, freq=%d, set_base=Pin(2))\n"
                         "sm.put(%d)\nsm.exec('pull()')\nsm.exec('mov(y, osr)')\n"
          % (125_000_000 // div, y))
    edges = on(run_window(chip, [2], 5 * 12004 * div + 10, mask=1), 2)
    assert len(edges) >= 10  # (and more while the REPL stops the machine)
    assert edges == square_expected(edges[0][0], y, div, len(edges))[:len(edges)]


def test_instruction_words_match_adafruit_pioasm(chip):
    adafruit_pioasm = pytest.importorskip("adafruit_pioasm")
    fresh(chip, SQUARE)
    words = chip.eval("list(square[0])")
    assert words == list(adafruit_pioasm.assemble(SQUARE_ASM))


SQUARE_32 = """
@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def src():
    wrap_target()
    set(pins, 1) [31]
    set(pins, 0) [31]
    wrap()

@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def follow():
    wrap_target()
    label("top")
    jmp(pin, "hi")
    set(pins, 0)
    jmp("top")
    label("hi")
    set(pins, 1) [1]
    wrap()
"""


def follow_expected(start, latency, end):
    """Edges of `follow`: it samples its jmp pin on cycles start, start + 3, ... (both branches
    take 3 cycles) and sets its pin on the next cycle; `src` drives the pin high on start + 64 k,
    low on start + 32 + 64 k; a level driven on cycle t is seen from cycle t + latency."""
    def level(c):
        return int(c >= start and (c - start) % 64 < 32)

    out, edges = 0, []
    for s in range(start, end - 1, 3):
        v = level(s - latency)
        if v != out:
            edges.append((s + 1, v))
            out = v
    return edges


@pytest.mark.parametrize("bypass", [False, True])
def test_jmp_pin_reads_a_pin_another_state_machine_drives(chip, bypass):
    fresh(chip, SQUARE_32 + "a = rp2.StateMachine(0, src, freq=125_000_000, set_base=Pin(5))\n"
                            "b = rp2.StateMachine(1, follow, freq=125_000_000, set_base=Pin(6), "
                            "jmp_pin=Pin(5))\n"
          + ("machine.mem32[%d] = 1 << 5\n" % PIO0_INPUT_SYNC_BYPASS if bypass else ""))
    edges = run_window(chip, [5, 6], 64 * 6)
    src, dst = on(edges, 5), on(edges, 6)
    s = src[0][0]
    assert len(src) >= 12
    assert src == [(s + 32 * i, 1 - i % 2) for i in range(len(src))]
    # a pad reads its own level through the 2-stage input synchroniser: seen 3 cycles after the
    # instruction that drove it (1 with INPUT_SYNC_BYPASS)
    want = follow_expected(s, 1 if bypass else 3, src[-1][0] + 64)
    assert len(dst) >= 10
    assert dst == want[:len(dst)]
    assert dst[0] == (s + (4 if not bypass else 4), 1)  # sampled at s + 3 either way
    assert dst[1] == (s + (37 if not bypass else 34), 0)


def test_without_pad_read_back_jmp_pin_never_sees_the_level(chip):
    """The mutant: rp2040py as shipped feeds no pad output back to its input."""
    fresh(chip, SQUARE_32 + "a = rp2.StateMachine(0, src, freq=125_000_000, set_base=Pin(5))\n"
                            "b = rp2.StateMachine(1, follow, freq=125_000_000, set_base=Pin(6), "
                            "jmp_pin=Pin(5))\n")
    chip.pio.readback = False
    try:
        edges = run_window(chip, [5, 6], 64 * 4)
    finally:
        chip.pio.readback = True
    assert len(on(edges, 5)) >= 8 and on(edges, 6) == []


IRQ_PAIR = """
@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def raiser():
    wrap_target()
    set(pins, 1)
    irq(4)
    set(pins, 0) [7]
    wrap()

@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def waiter():
    wrap_target()
    wait(1, irq, 4)
    set(pins, 1)
    set(pins, 0)
    wrap()
"""


@pytest.mark.parametrize("order", ["raiser_first", "waiter_first"])
def test_irq_flag_is_seen_the_cycle_after_it_is_set(chip, order):
    # raiser: set 1 at s, irq at s + 1, period 10. The flag is seen at s + 2, the wait completes
    # there, the waiter's set 1 is at s + 3 (whichever state machine index raises).
    r, w = (0, 1) if order == "raiser_first" else (1, 0)
    fresh(chip, IRQ_PAIR + "rp2.StateMachine(%d, raiser, freq=125_000_000, set_base=Pin(5))\n"
                           "rp2.StateMachine(%d, waiter, freq=125_000_000, set_base=Pin(6))\n"
          % (r, w))
    edges = run_window(chip, [5, 6], 10 * 8)
    src, dst = on(edges, 5), on(edges, 6)
    s = src[0][0]
    assert src[:8] == [(s + 10 * (i // 2) + (i % 2) * 2, 1 - i % 2) for i in range(8)]
    assert dst[:8] == [(s + 10 * (i // 2) + 3 + (i % 2), 1 - i % 2) for i in range(8)]


LONG_LOOP = """
@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def long_high():
    set(pins, 1)
    mov(x, y)
    label("a")
    jmp(x_dec, "a")
    set(pins, 0)
    label("end")
    jmp("end")
"""


@pytest.mark.parametrize("fast_forward", [True, False])
def test_cpu_exec_mid_countdown_sees_and_changes_the_loop_state(chip, fast_forward):
    """A countdown loop skipped in closed form is rewound when the CPU touches the state machine:
    `mov isr, x` reads the X of that cycle, `set x, 5` ends the loop 6 cycles later."""
    y = 1_000_000  # 8 ms: the REPL takes about 7 ms to run the exec() lines below
    fresh(chip, LONG_LOOP + "sm = rp2.StateMachine(0, long_high, freq=125_000_000, "
                            "set_base=Pin(2))\nsm.put(%d)\nsm.exec('pull()')\n"
                            "sm.exec('mov(y, osr)')\n" % y)
    chip.pio.fast_forward = fast_forward
    chip.pio.writes = []
    try:
        rec = chip.record([2])
        chip.exec("machine.mem32[%d] = 1" % PIO0_CTRL_SET)
        chip.run(cycles=20_000)
        # mov isr, x / push noblock / set x, 5 (words, so no assembler runs between them)
        chip.exec("sm.exec(0xA0C1)\nsm.exec(0x8000)\nsm.exec(0xE025)\nx1 = sm.get()")
        x1 = int(chip.exec("print(x1)"))
        chip.run(cycles=1000)
        stop_pio0(chip)
        rec.stop()
        writes = chip.pio.writes
    finally:
        chip.pio.fast_forward = True
        chip.pio.writes = None
    edges = on(rec.edges, 2)
    s = edges[0][0]
    instr = [c for c, blk, off, v in writes if blk == 0 and off == 0xD8]  # SM0_INSTR
    e_mov, e_set = instr[-3], instr[-1]  # mov isr, x / push / set x, 5
    # loop iterations run on s + 2, s + 3, ...; before cycle E, E - (s + 2) of them have run
    assert x1 == y - (e_mov - (s + 2))
    assert edges == [(s, 1), (e_set + 6, 0)]
    if fast_forward:
        assert chip.pio.skipped > 0


COUNTED = """
@rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
def counted():
    wrap_target()
    pull()
    mov(x, osr)
    label("p")
    set(pins, 1) [2]
    set(pins, 0) [1]
    jmp(x_dec, "p")
    wrap()
"""


@pytest.mark.parametrize("which", ["exact", "shipped"])
def test_same_pulses_as_rp2040py_own_pio(chip, shipped, which):
    """Instruction semantics cross-checked against rp2040py's own PIO: the same words give the
    same number of pulses (n + 1 per word n); only their timing differs (exact: 3 high, 5 low)."""
    c = chip if which == "exact" else shipped
    fresh(c, COUNTED + "sm = rp2.StateMachine(0, counted, freq=125_000_000, set_base=Pin(2))\n")
    rec = c.record([2])
    c.exec("sm.active(1)\nfor n in (0, 4, 9):\n sm.put(n)")
    c.run(cycles=20_000)
    stop_pio0(c)
    rec.stop()
    edges = on(rec.edges, 2)
    rises = [t for t, v in edges if v == 1]
    assert len(rises) == 1 + 5 + 10
    if which == "exact":
        highs = [b[0] - a[0] for a, b in zip(edges, edges[1:], strict=False) if a[1] == 1]
        assert set(highs) == {3}
        # inside one word's train a pulse starts every 3 + 2 + 1 (set, set, jmp) = 6 cycles
        gaps = [b - a for a, b in zip(rises, rises[1:], strict=False)]
        assert gaps.count(6) == 4 + 9
