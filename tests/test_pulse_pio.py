"""The RP2040 PIO pulse engine, proven on the simulated pins (edges in system-clock cycles)."""
import pytest

from tests.prng import Rng
from tests.pulse_harness import Rig, check_train

SIDE_SET_BITS = 2


@pytest.fixture()
def rig():
    return Rig("pico")


def _words(prog):
    return list(prog[0])


# --- by construction ------------------------------------------------------------------------

def test_pulse_programs_never_drive_both_legs_and_never_touch_pins_otherwise(rig):
    eng = rig.engine
    for prog in (eng.biphasic, eng.biphasic_alternating):
        for w in _words(prog):
            side = (w >> (13 - SIDE_SET_BITS)) & ((1 << SIDE_SET_BITS) - 1)
            assert side != 0b11, "instruction %04x drives both legs" % w
            op = w >> 13
            dest = (w >> 5) & 7
            assert op != 0b011, "OUT in a pulse program (%04x)" % w
            assert op != 0b111, "SET in a pulse program (%04x)" % w
            if op == 0b101:
                assert dest != 0b000, "MOV to PINS in a pulse program (%04x)" % w


def test_both_programs_fit_a_pio_block_with_the_gate(rig):
    eng = rig.engine
    assert len(eng.biphasic[0]) + len(eng.burst_gate[0]) <= 32
    assert len(eng.biphasic_alternating[0]) + len(eng.burst_gate[0]) <= 32


PIO_TEXT = {
    "biphasic": """
.side_set 2
.wrap_target
    mov x, status side 0
    jmp x-- keep side 0
    pull side 0
    mov y, osr side 0
    pull side 0
    mov isr, osr side 0
    pull side 0
    jmp slot side 0
keep:
    nop side 0 [5]
slot:
    jmp pin play side 0
    mov x, y side 0 [1]
s1:
    jmp x-- s1 side 0
    mov x, isr side 0
s2:
    jmp x-- s2 side 0
    mov x, y side 0
s3:
    jmp x-- s3 side 0
tail:
    irq 4 side 0
    mov x, osr side 0
rest:
    jmp x-- rest side 0
.wrap
play:
    mov x, y side 1
a:
    jmp x-- a side 1
    mov x, isr side 0
g:
    jmp x-- g side 0
    mov x, y side 2
b:
    jmp x-- b side 2
    jmp tail side 0
""",
    "burst_gate": """
.side_set 1
.wrap_target
    mov x, isr side 1
on:
    wait 1 irq 4 side 1
    jmp x-- on side 1
    mov x, osr side 0
off:
    wait 1 irq 4 side 0
    jmp x-- off side 0
.wrap
""",
}


def test_instruction_words_match_adafruit_pioasm(rig):
    adafruit_pioasm = pytest.importorskip("adafruit_pioasm")
    for name, text in PIO_TEXT.items():
        assert _words(getattr(rig.engine, name)) == list(adafruit_pioasm.assemble(text)), name


def test_exec_words_match_adafruit_pioasm(rig):
    adafruit_pioasm = pytest.importorskip("adafruit_pioasm")
    eng = rig.engine
    two = ".side_set 2\n"
    one = ".side_set 1\n"
    assert adafruit_pioasm.assemble(two + "nop side 0")[0] == eng._EXEC_NOP_LEGS_LOW
    assert adafruit_pioasm.assemble(one + "nop side 0")[0] == eng._EXEC_GATE_LOW
    assert adafruit_pioasm.assemble(one + "nop side 1")[0] == eng._EXEC_GATE_HIGH
    assert adafruit_pioasm.assemble("irq clear 4")[0] == eng._EXEC_IRQ_CLEAR_SLOT
    assert adafruit_pioasm.assemble(one + "pull block side 0")[0] == 0x80A0
    assert adafruit_pioasm.assemble(one + "mov isr, osr side 0")[0] == 0xA0C7


# --- timing from captured edges --------------------------------------------------------------

TIMING_CASES = [
    (300, 50, 50),
    (20, 1, 200),  # shortest phase, smallest gap, fastest rate
    (1000, 1000, 0.5),  # longest everything, slowest rate
    (250, 100, 35),
    (400, 20, 30),
    (50.008, 3.333, 150),  # quantised to 8 ns
]


@pytest.mark.parametrize("phase_us,gap_us,rate_hz", TIMING_CASES)
def test_edges_match_the_quantised_plan_to_the_cycle(rig, phase_us, gap_us, rate_hz):
    ch = rig.channel(1)
    plan = ch.set(phase_us=phase_us, gap_us=gap_us, rate_hz=rate_hz)
    assert abs(plan.phase_ns - phase_us * 1000) <= 4  # nearest 8 ns cycle
    ch.start()
    n_expected = 5
    rig.run_cycles(plan.period_cycles * n_expected)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert len(pulses) == n_expected
    assert check_train(pulses, plan) == []
    assert pulses[0].first_leg == "A"


def test_legs_low_at_start_and_after_stop_and_stop_is_immediate(rig):
    ch = rig.channel(1)
    ch.set(phase_us=500, gap_us=100, rate_hz=100)
    a, b = rig.legs(1)
    assert a[-1][1] == 0 and b[-1][1] == 0
    ch.start()
    # stop in the middle of phase A of the second pulse
    plan = ch.plan
    rig.run_cycles(plan.period_cycles + 20 + plan.phase_cycles // 2)
    assert rig.w.gpio.level(rig.board.CHANNELS[1]["leg_a"]) == 1
    t_stop = rig.w.now
    ch.stop()
    a, b = rig.legs(1)
    assert a[-1] == (t_stop, 0)  # low in the same cycle the stop was written
    assert b[-1][1] == 0
    rig.run_ms(50)
    a2, b2 = rig.legs(1)
    assert a2 == a and b2 == b  # nothing more happens


def test_out_of_range_requests_raise_and_change_nothing(rig):
    ch = rig.channel(1)
    good = ch.set(phase_us=300, gap_us=50, rate_hz=50)
    bad = [
        dict(phase_us=19.9, gap_us=50, rate_hz=50),
        dict(phase_us=1000.1, gap_us=50, rate_hz=50),
        dict(phase_us=300, gap_us=0.5, rate_hz=50),  # below the board's dead time
        dict(phase_us=300, gap_us=1001, rate_hz=50),
        dict(phase_us=300, gap_us=50, rate_hz=0.4),
        dict(phase_us=300, gap_us=50, rate_hz=201),
        dict(phase_us="300", gap_us=50, rate_hz=50),
        dict(phase_us=300, gap_us=50, rate_hz=float("nan")),
        dict(phase_us=300, gap_us=50, rate_hz=100, burst_count=10, burst_rate_hz=20),
        dict(phase_us=300, gap_us=50, rate_hz=100, burst_count=0),
        dict(phase_us=100, gap_us=50, rate_hz=2600, burst_count=5, burst_rate_hz=50),
    ]
    ch.start()
    for kw in bad:
        with pytest.raises(ValueError):
            ch.set(**kw)
        assert ch.plan == good
    rig.run_ms(100)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == [] and check_train(pulses, good) == []





def test_update_takes_effect_at_a_pulse_boundary_only(rig):
    ch = rig.channel(1)
    old = ch.set(phase_us=300, gap_us=50, rate_hz=50)
    ch.start()
    # change in the middle of the third pulse's phase B
    rig.run_cycles(2 * old.period_cycles + old.phase_cycles + old.gap_cycles + 100)
    new = ch.set(phase_us=150, gap_us=30, rate_hz=100)
    rig.run_cycles(6 * old.period_cycles)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert check_train(pulses[:3], old) == []
    assert pulses[3].start - pulses[2].start == old.period_cycles  # old rest kept whole
    assert check_train(pulses[3:], new) == []



def test_random_updates_keep_every_pulse_whole_and_balanced(rig):
    rnd = Rng(7)
    ch = rig.channel(1)
    ch.set(phase_us=300, gap_us=50, rate_hz=100)
    ch.start()
    for _ in range(200):
        phase = rnd.randint(20, 1000)
        gap = rnd.randint(1, 1000)
        rate = rnd.choice([0.5, 1, 10, 35.5, 50, 99, 150, 200])
        try:
            ch.set(phase_us=phase, gap_us=gap, rate_hz=rate)
        except ValueError:
            pass
        rig.run_cycles(rnd.randint(1, 3 * 125_000))
        ch.service()
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert all(p.balanced() for p in pulses)
