# ruff: noqa: F821
# The PIO engine's periodic-orbit fast-forward (host_tools/sim/pio_core.py, header) against the
# step-by-step run: the same programs and the project's pulse engine (lib/pulse_pio.py) run twice,
# fast-forward off and on, and every pin's edge list must be identical cycle for cycle, as well as
# every state machine's state at the end. Each case also checks that the fast-forward really
# jumped or entered an orbit (or, where it must not, that it did not), and mutants of the
# fast-forward (an edge one cycle late, a state one cycle off, a CPU write or an outside pin
# change not noticed) must make the comparison fail. The last part has the world look while an
# orbit runs (syncs, pin reads, callbacks at random cycles and at edge cycles, CPU accesses
# after long orbits): the level of every pin at every look must be the same too, and mutants of
# the orbit (a look one cycle late, a partial period forgotten, an SIO write of a read pin not
# noticed, a CPU read that keeps the orbit) must make it fail.
import pytest

from host_tools.sim import pio_core, rp2, world
from tests.prng import Rng
from tests.pulse_harness import Rig, random_request, random_sequence, run_sequence

PIO = rp2.PIO
SYS_HZ = 125_000_000


# ------------------------------------------------------------------------------------------
# helpers

def _system(w, ff):
    ps = pio_core.system_for(w)
    ps.fastforward = ff
    return ps


def observed(w):
    """Everything a test or the firmware can see of the PIO: every pin's edges, then every state
    machine's registers, FIFOs, program counter and next tick, the IRQ flags and pin registers
    (PioSystem.sync: the CPU looks, so a group in an orbit gets its exact state)."""
    ps = pio_core.system_for(w)
    ps.sync()
    sms = []
    for sm in ps.sms:
        sms.append((sm.enabled, sm.pc, sm.x, sm.y, sm.isr, sm.isr_count, sm.osr, sm.osr_count,
                    tuple(sm.tx), tuple(sm.rx), sm.stalled, sm.irq_waiting, sm.exec_word,
                    sm.sleep, sm.t if sm.enabled else None, sm.ff))
    blocks = [(b.irq, b.out, b.oe) for b in ps.blocks]
    return [list(e) for e in w.gpio.edges], sms, blocks


def first_difference(a, b):
    ea, sa, ba = a
    eb, sb, bb = b
    for pin in range(len(ea)):
        if ea[pin] != eb[pin]:
            k = 0
            while k < min(len(ea[pin]), len(eb[pin])) and ea[pin][k] == eb[pin][k]:
                k += 1
            return "pin %d edge %d: %r != %r" % (pin, k, ea[pin][k:k + 2], eb[pin][k:k + 2])
    if sa != sb:
        return "state machines: %r != %r" % (sa, sb)
    if ba != bb:
        return "blocks: %r != %r" % (ba, bb)
    return None


def both_ways(scenario):
    """Run scenario(ff) -> world with fast-forward off and on; (difference or None, jumps,
    cycles jumped, edges the run recorded)."""
    slow = scenario(False)
    a = observed(slow)
    fast = scenario(True)
    b = observed(fast)
    ps = pio_core.system_for(fast)
    assert pio_core.system_for(slow).ff_jumps == 0
    assert pio_core.system_for(slow).ff_orbits == 0
    return (first_difference(a, b), ps.ff_jumps + ps.ff_orbits, ps.ff_cycles,
            sum(len(e) for e in a[0]))


# ------------------------------------------------------------------------------------------
# the pulse engine (lib/pulse_pio.py) on the pico board

def engine(ff, steps):
    """A Rig with fast-forward on or off; `steps` is a list of actions:
    ("set", ch, kwargs) ("start", ch) ("stop", ch) ("run", cycles) ("service",)."""
    r = Rig("pico")
    _system(r.w, ff)
    for st in steps:
        op = st[0]
        if op == "set":
            r.channel(st[1]).set(**st[2])
        elif op == "start":
            r.channel(st[1]).start()
        elif op == "stop":
            r.channel(st[1]).stop()
        elif op == "run":
            r.run_cycles(st[1])
        elif op == "service":
            for ch in r.channels.values():
                ch.service()
    return r.w


MS = SYS_HZ // 1000
TRAIN = dict(phase_us=300, gap_us=50, rate_hz=100)

ENGINE_CASES = {
    "train_100hz": [("set", 1, TRAIN), ("start", 1), ("run", 1000 * MS), ("stop", 1)],
    "train_200hz_short_phase": [("set", 1, dict(phase_us=20, gap_us=1, rate_hz=200)),
                                ("start", 1), ("run", 500 * MS), ("stop", 1)],
    "train_0_5hz_long_rest": [("set", 1, dict(phase_us=1000, gap_us=1000, rate_hz=0.5)),
                              ("start", 1), ("run", 9000 * MS), ("stop", 1)],
    "burst": [("set", 1, dict(phase_us=100, gap_us=20, rate_hz=1000, burst_count=5,
                              burst_rate_hz=20)),
              ("start", 1), ("run", 700 * MS), ("stop", 1)],
    "burst_many_slots": [("set", 1, dict(phase_us=50, gap_us=10, rate_hz=2500, burst_count=7,
                                         burst_rate_hz=50)),
                         ("start", 1), ("run", 300 * MS), ("stop", 1)],
    "alternating": [("set", 1, dict(phase_us=250, gap_us=100, rate_hz=80, alternate=True)),
                    ("start", 1), ("run", 900 * MS), ("stop", 1)],
    "two_channels_same_rate": [("set", 1, TRAIN), ("set", 2, dict(phase_us=250, gap_us=50,
                                                                  rate_hz=100)),
                               ("start", 1), ("start", 2), ("run", 1500 * MS),
                               ("stop", 1), ("stop", 2)],
    "two_channels_other_rates": [("set", 1, dict(phase_us=200, gap_us=30, rate_hz=67)),
                                 ("set", 2, dict(phase_us=400, gap_us=80, rate_hz=150,
                                                 burst_count=3, burst_rate_hz=10)),
                                 ("start", 1), ("run", 37 * MS + 11), ("start", 2),
                                 ("run", 1200 * MS), ("stop", 1), ("run", 55 * MS),
                                 ("stop", 2)],
    # live updates the way the app makes them: set(), then service() every 10 ms tick
    "live_updates": [("set", 1, TRAIN), ("start", 1), ("run", 333 * MS + 7),
                     ("set", 1, dict(phase_us=200, gap_us=40, rate_hz=150)), ("service",),
                     ("run", 10 * MS), ("service",), ("run", 400 * MS + 3),
                     ("set", 1, dict(phase_us=450, gap_us=60, rate_hz=40)), ("service",),
                     ("run", 10 * MS), ("service",), ("run", 650 * MS), ("stop", 1)],
    # stop inside phase A, inside the gap, inside phase B, then a new start
    "stop_mid_phase": [("set", 1, TRAIN), ("start", 1), ("run", 500 * MS + 20 + 125 * 100),
                       ("stop", 1), ("run", 3 * MS), ("start", 1),
                       ("run", 300 * MS + 37500 + 125 * 20), ("stop", 1), ("run", 1 * MS),
                       ("start", 1), ("run", 200 * MS + 37500 + 6250 + 125 * 150), ("stop", 1),
                       ("run", 50 * MS)],
    # the world looks every 3 ms (as the firmware does): no jump fits, recording pauses; then a
    # long stretch without a look, where it resumes and jumps
    "short_looks_then_long_run": [("set", 1, TRAIN), ("set", 2, dict(phase_us=100, gap_us=20,
                                                                     rate_hz=50)),
                                  ("start", 1), ("start", 2)] + [("run", 3 * MS + 17)] * 120 +
                                 [("run", 2000 * MS), ("stop", 1), ("stop", 2)],
    "burst_stop_mid_burst": [("set", 1, dict(phase_us=100, gap_us=20, rate_hz=1000,
                                             burst_count=5, burst_rate_hz=20)),
                             ("start", 1), ("run", 402 * MS + 1234), ("stop", 1),
                             ("run", 20 * MS), ("start", 1), ("run", 170 * MS), ("stop", 1)],
}


@pytest.mark.parametrize("name", sorted(ENGINE_CASES))
def test_pulse_engine_same_edges(name):
    diff, jumps, cycles, nedges = both_ways(lambda ff: engine(ff, ENGINE_CASES[name]))
    assert diff is None, diff
    assert nedges > 20
    assert jumps > 0 and cycles > 0, "the fast-forward never jumped"


def test_random_sequences_same_edges():
    """Random parameter sequences of the property test (random start, updates at random
    moments, stop at a random moment), each played on a fresh rig both ways, while channel 2
    plays a random request of its own from a random moment before."""
    rnd = Rng(11)
    jumped = 0
    for i in range(60):
        seq = random_sequence(rnd)
        other = random_request(rnd)
        lead = rnd.randint(0, 2_000_000)
        runs = []
        for ff in (False, True):
            r = Rig("pico")
            _system(r.w, ff)
            c2 = r.channel(2)
            try:
                c2.set(**other)
                c2.start()
            except ValueError:
                pass  # the request does not fit: channel 2 stays off
            r.run_cycles(lead)
            run_sequence(r, seq)
            runs.append(observed(r.w))
            if ff:
                ps = pio_core.system_for(r.w)
                jumped += ps.ff_jumps + ps.ff_orbits
        diff = first_difference(runs[0], runs[1])
        assert diff is None, (i, seq, diff)
    assert jumped > 20


# ------------------------------------------------------------------------------------------
# small programs: pins every instruction, IRQs between machines, pins from outside, dividers

@rp2.asm_pio(set_init=PIO.OUT_LOW)
def _sets():
    wrap_target()
    set(pins, 1)
    set(pins, 0)[2]
    wrap()


@rp2.asm_pio(sideset_init=PIO.OUT_LOW)
def _irq_raiser():
    wrap_target()
    set(x, 9).side(1)
    label("l")
    jmp(x_dec, "l").side(0)[1]
    irq(5).side(1)
    nop().side(0)[3]
    wrap()


@rp2.asm_pio(set_init=(PIO.OUT_LOW, PIO.OUT_LOW))
def _irq_counter():
    wrap_target()
    set(y, 2)
    label("c")
    wait(1, irq, 5)
    set(pins, 1)
    jmp(y_dec, "c")
    set(pins, 2)[7]
    set(pins, 0)
    wrap()


@rp2.asm_pio(sideset_init=PIO.OUT_LOW)
def _follow_pin():
    wrap_target()
    wait(1, pin, 0).side(1)
    set(x, 20).side(0)
    label("d")
    jmp(x_dec, "d").side(1)
    wait(0, pin, 0).side(0)
    wrap()


@rp2.asm_pio(sideset_init=PIO.OUT_LOW)
def _jmp_pin_square():
    wrap_target()
    jmp(pin, "hi").side(0)
    set(x, 30).side(0)
    label("lo")
    jmp(x_dec, "lo").side(0)
    jmp("end").side(0)
    label("hi")
    set(x, 12).side(1)
    label("hl")
    jmp(x_dec, "hl").side(1)
    label("end")
    nop().side(0)
    wrap()


@rp2.asm_pio(sideset_init=PIO.OUT_LOW)
def _wait_own_square():
    # waits on its own side-set pin: it may sleep on a pin, so it is never an orbit (every look
    # of the world wakes such a machine); whole periods are jumped between looks instead
    wrap_target()
    set(x, 10).side(1)
    wait(1, gpio, 6).side(1)
    label("h")
    jmp(x_dec, "h").side(1)[2]
    set(x, 7).side(0)
    wait(0, gpio, 6).side(0)
    label("l")
    jmp(x_dec, "l").side(0)[1]
    wrap()


@rp2.asm_pio(autopush=True, push_thresh=8)
def _sampler():
    wrap_target()
    in_(pins, 1)[3]
    wrap()


@rp2.asm_pio(out_init=PIO.OUT_LOW, autopull=True, pull_thresh=4, out_shiftdir=PIO.SHIFT_RIGHT)
def _shifter():
    wrap_target()
    out(pins, 1)[2]
    wrap()


def program_world(ff, build):
    w = world.new_world(sys_hz=SYS_HZ)
    _system(w, ff)
    build(w)
    return w


def _run(w, cycles):
    w.advance_to(w.now + cycles)
    w.sync()


def case_sets(w):
    rp2.StateMachine(0, _sets, set_base=5).active(1)
    _run(w, 100_000)


def case_irq_pair(w):
    rp2.StateMachine(0, _irq_raiser, sideset_base=2).active(1)
    rp2.StateMachine(1, _irq_counter, set_base=10).active(1)
    _run(w, 50_000)


def case_two_blocks_irq_and_sets(w):
    rp2.StateMachine(0, _irq_raiser, sideset_base=2).active(1)
    rp2.StateMachine(2, _irq_counter, set_base=10).active(1)
    sm = rp2.StateMachine(4, _sets, set_base=14)
    _run(w, 777)
    sm.active(1)
    _run(w, 60_000)


def case_wait_own_square(w):
    rp2.StateMachine(0, _wait_own_square, sideset_base=6).active(1)
    for k in range(6):
        _run(w, 3000 + 1000 * k)


def case_divider(w):
    # divider 2.5 (fractional): never fast-forwarded, but still the same
    rp2.StateMachine(0, _sets, freq=SYS_HZ * 2 // 5, set_base=5).active(1)
    _run(w, 20_000)


def case_external_input(w):
    # a pin driven from outside at chosen moments: every change must be seen at its cycle
    w.gpio.drive_external(20, 0)
    rp2.StateMachine(0, _follow_pin, in_base=20, sideset_base=3).active(1)
    for k in range(12):
        _run(w, 3000 + 517 * k)
        w.gpio.drive_external(20, k & 1)
    _run(w, 5000)


def case_external_gate(w):
    # jmp pin on an outside level that flips and flips back between two syncs of the world
    w.gpio.drive_external(21, 0)
    rp2.StateMachine(0, _jmp_pin_square, sideset_base=4, jmp_pin=21).active(1)
    for k in range(10):
        _run(w, 4000 + 333 * k)
        w.gpio.drive_external(21, 1)
        _run(w, 40)
        w.gpio.drive_external(21, 0)
    _run(w, 9000)


def case_cross_block_read(w):
    # block 1 samples a pin block 0 drives: the blocks interact, no jump may break that
    rp2.StateMachine(0, _sets, set_base=5).active(1)
    sm = rp2.StateMachine(4, _sampler, in_base=5)
    sm.active(1)
    got = []
    for _ in range(20):
        _run(w, 200)
        while sm.rx_fifo():
            got.append(sm.get())
    assert got


def case_fifo_feed(w):
    # the CPU feeds the TX FIFO now and then; the state between feeds repeats (OSR empty,
    # stalled on autopull) and the CPU put must be seen at its cycle
    sm = rp2.StateMachine(0, _shifter, out_base=9)
    sm.active(1)
    for k in range(30):
        sm.put(0b1011 if k % 3 else 0b0110)
        _run(w, 900 + 13 * (k % 4))


PROGRAM_CASES = {
    "sets": (case_sets, True),
    "irq_pair": (case_irq_pair, True),
    "two_blocks": (case_two_blocks_irq_and_sets, True),
    "divider": (case_divider, False),
    "wait_own_square": (case_wait_own_square, True),
    "external_input": (case_external_input, None),  # waits on the pin: no period
    "external_gate": (case_external_gate, True),
    "cross_block_read": (case_cross_block_read, None),
    "fifo_feed": (case_fifo_feed, None),
}


@pytest.mark.parametrize("name", sorted(PROGRAM_CASES))
def test_programs_same_edges(name):
    build, expect_jumps = PROGRAM_CASES[name]
    diff, jumps, _cycles, _n = both_ways(lambda ff: program_world(ff, build))
    assert diff is None, diff
    if expect_jumps is True:
        assert jumps > 0
    elif expect_jumps is False:
        assert jumps == 0


def test_cross_block_read_is_not_fast_forwarded():
    w = program_world(True, case_cross_block_read)
    assert pio_core.system_for(w).ff_jumps == 0


def test_speed_two_channels_100hz():
    """The bench's PIO-only case (2 channels x 100 Hz) covers 60 s with few jumps and exact."""
    steps = [("set", 1, TRAIN), ("set", 2, dict(phase_us=250, gap_us=50, rate_hz=100)),
             ("start", 1), ("start", 2), ("run", 60 * SYS_HZ), ("stop", 1), ("stop", 2)]
    w = engine(True, steps)
    ps = pio_core.system_for(w)
    assert ps.ff_cycles > 59 * SYS_HZ * 2  # both blocks jumped over nearly all of it
    assert ps.steps < 2000  # instructions actually executed
    assert len(w.gpio.edges[2]) == 1 + 2 * 6000


# ------------------------------------------------------------------------------------------
# mutants: each breaks the fast-forward in one way; the comparison must see it

def _mutant_edge_late(orig):
    def jump(self, blk, h, seg, raw1, raw2, k, P):
        seg = [(p, c + 1, v) for p, c, v in seg]  # off by one in the replayed edges
        return orig(self, blk, h, seg, raw1, raw2, k, P)
    return jump


def _mutant_state_early(orig):
    def jump(self, blk, h, seg, raw1, raw2, k, P):
        orig(self, blk, h, seg, raw1, raw2, k, P)
        for s in blk.sms:  # off by one in the shift of the machines' time
            if s.enabled and not s.sleep:
                s.n -= 1
                s.t -= 1
    return jump


@pytest.mark.parametrize("mutant", [_mutant_edge_late, _mutant_state_early])
def test_mutant_of_the_jump_is_caught(monkeypatch, mutant):
    # (whole-period jumps: a group that can sleep on a pin, so never an orbit)
    monkeypatch.setattr(pio_core.PioSystem, "_ff_jump", mutant(pio_core.PioSystem._ff_jump))
    diff, jumps, _c, _n = both_ways(lambda ff: program_world(ff, case_wait_own_square))
    assert jumps > 0
    assert diff is not None


def test_mutant_cpu_write_not_noticed_is_caught(monkeypatch):
    orig = pio_core.SmCore.cpu_put

    def put(self, v):
        orig(self, v)
        self.system.gen -= 1  # the history survives the CPU's write

    monkeypatch.setattr(pio_core.SmCore, "cpu_put", put)
    diff, _j, _c, _n = both_ways(lambda ff: program_world(ff, case_fifo_feed))
    assert diff is not None


def test_mutant_outside_pin_change_not_noticed_is_caught(monkeypatch):
    monkeypatch.setattr(pio_core, "_ff_sig", lambda gpio: 0)
    original = pio_core.SmCore.read_pins
    monkeypatch.setattr(pio_core.SmCore, "read_pins", lambda self, n: set())
    diff, _j, _c, _n = both_ways(lambda ff: program_world(ff, case_external_gate))
    monkeypatch.setattr(pio_core.SmCore, "read_pins", original)
    assert diff is not None


# ------------------------------------------------------------------------------------------
# random programs: every instruction kind, several machines in one or both blocks, IRQs between
# them, pins read and written, FIFOs fed and drained by the CPU at random moments

def _random_word(rnd, n):
    kind = rnd.randint(0, 9)
    if kind <= 1:  # JMP (conditions 0-7; 6 is the JMP pin)
        return (rnd.randint(0, 7) << 5) | rnd.randint(0, n - 1)
    if kind == 2:  # WAIT on an IRQ flag of this block or on a GPIO
        if rnd.random() < 0.6:
            return 0x2000 | (rnd.randint(0, 1) << 7) | (2 << 5) | rnd.choice((4, 5, 0x10, 6))
        return 0x2000 | (rnd.randint(0, 1) << 7) | rnd.choice((0, 1)) << 5 | rnd.randint(0, 3)
    if kind == 3:  # IN from pins, x, y, null, isr, osr
        return 0x4000 | (rnd.choice((0, 1, 2, 3, 6, 7)) << 5) | rnd.randint(0, 31)
    if kind == 4:  # OUT to pins, x, y, null, pindirs, pc, isr
        return 0x6000 | (rnd.choice((0, 1, 2, 3, 4, 5, 6)) << 5) | rnd.randint(0, 31)
    if kind == 5:  # PUSH / PULL, iffull / ifempty, block / noblock
        return 0x8000 | (rnd.randint(0, 1) << 7) | (rnd.randint(0, 1) << 6) | \
            (rnd.randint(0, 1) << 5)
    if kind == 6:  # MOV (no EXEC destination)
        dst = rnd.choice((0, 1, 2, 5, 6, 7))
        return 0xA000 | (dst << 5) | (rnd.randint(0, 2) << 3) | rnd.choice((0, 1, 2, 3, 5, 6, 7))
    if kind == 7:  # IRQ set / clear / set-and-wait, flags 4-7 and relative ones
        return 0xC000 | (rnd.randint(0, 1) << 6) | (rnd.randint(0, 1) << 5) | \
            rnd.choice((4, 5, 6, 0x10, 0x11))
    # SET pins, x, y, pindirs
    return 0xE000 | (rnd.choice((0, 1, 2, 4)) << 5) | rnd.randint(0, 31)


def _random_program(rnd):
    import array

    n = rnd.randint(2, 7)
    sideset = rnd.randint(0, 2)
    words = []
    for _ in range(n):
        w = _random_word(rnd, n)
        field = rnd.randint(0, 31) if rnd.random() < 0.5 else 0
        words.append(w | (field << 8))
    top = rnd.randint(0, n - 1)
    bottom = rnd.randint(0, top)
    execctrl = (top << 12) | (bottom << 7) | (rnd.randint(0, 1) << 4) | rnd.randint(0, 15)
    shiftctrl = (rnd.randint(0, 1) << 16) | (rnd.randint(0, 1) << 17) | \
        (rnd.randint(0, 1) << 18) | (rnd.randint(0, 1) << 19) | \
        (rnd.randint(0, 31) << 20) | (rnd.randint(0, 31) << 25)
    side = None if sideset == 0 else tuple([PIO.OUT_LOW] * sideset)
    return [array.array("H", words), -1, -1, -1, execctrl, shiftctrl,
            (PIO.OUT_LOW, PIO.OUT_LOW), (PIO.OUT_LOW, PIO.OUT_HIGH), side]


def random_program_world(ff, seed):
    rnd = Rng(seed)
    w = world.new_world(sys_hz=SYS_HZ)
    _system(w, ff)
    sms = random_machines(rnd)
    for _ in range(rnd.randint(1, 12)):
        w.advance_to(w.now + rnd.randint(1, 1500))
        w.sync()
        if not sms:
            break
        sm = sms[rnd.randint(0, len(sms) - 1)]
        act = rnd.random()
        if act < 0.4 and sm.tx_fifo() < 4:
            sm.put(rnd.randint(0, 0xFFFFFFFF))
        elif act < 0.6 and sm.rx_fifo():
            sm.get()
        elif act < 0.7:
            w.gpio.drive_external(rnd.randint(0, 15), rnd.randint(0, 1))
        elif act < 0.75:
            sm.active(0)
            w.advance_to(w.now + rnd.randint(0, 50))
            sm.active(1)
    w.advance_to(w.now + rnd.randint(500, 8000))
    return w


def random_machines(rnd):
    """One to four random machines in one or both blocks of the current world, started."""
    sms = []
    # pins 0-15: every machine writes and reads inside its block's 8 pins (so blocks stay
    # apart) unless the case lets block 1 read block 0's pins
    cross = rnd.random() < 0.2
    nsm = rnd.randint(1, 4)
    for i in range(nsm):
        blk = rnd.randint(0, 1)
        idx = blk * 4 + i
        base = 8 * blk
        prog = _random_program(rnd)
        try:
            sm = rp2.StateMachine(
                idx, prog, freq=SYS_HZ if rnd.random() < 0.9 else SYS_HZ * 2 // 3,
                in_base=(0 if cross else base) + rnd.randint(0, 4),
                out_base=base + rnd.randint(0, 5), set_base=base + rnd.randint(0, 5),
                sideset_base=base + rnd.randint(0, 5),
                jmp_pin=(0 if cross else base) + rnd.randint(0, 7))
        except (OSError, ValueError):
            continue  # the block's instruction memory is full: fewer machines
        sms.append(sm)
    for sm in sms:
        sm.active(1)
    return sms


def test_random_programs_same_edges(seeds=range(200)):
    jumps = 0
    for seed in seeds:
        try:
            diff, j, _c, _n = both_ways(lambda ff, seed=seed: random_program_world(ff, seed))
        except NotImplementedError:
            continue
        assert diff is None, (seed, diff)
        jumps += j
    assert jumps > 50


@rp2.asm_pio(sideset_init=PIO.OUT_LOW, set_init=PIO.OUT_LOW)
def _wait_own_sideset():
    wait(1, gpio, 3).side(1)
    set(pins, 1).side(1)
    label("end")
    jmp("end").side(1)


def test_wait_sees_its_own_sideset():
    """A WAIT on a pin its own side-set raises: the level is seen one cycle later and the WAIT
    completes then (it used to sleep until something else woke it: a lost wake-up, which made
    the step-by-step run depend on unrelated pin changes and could not be fast-forwarded)."""
    for ff in (False, True):
        w = world.new_world(sys_hz=SYS_HZ)
        _system(w, ff)
        w.advance_to(1000)
        rp2.StateMachine(0, _wait_own_sideset, sideset_base=3, set_base=5).active(1)
        w.advance_to(5000)
        w.sync()
        assert w.gpio.edges[3] == [(0, 0), (1000, 1)]
        assert w.gpio.edges[5] == [(0, 0), (1002, 1)]


# ------------------------------------------------------------------------------------------
# the world looks: an orbit (header of pio_core.py) must survive every look that does not touch
# the PIO (a sync, a pin read, a scheduled callback) and give, at each look, the levels stepping
# gives at that cycle; a CPU access after a long orbit gets the exact state of the machines.
# Each run is a schedule of (cycle, kind, value) events played on a fresh world; the same
# schedule is played with the fast-forward off and on, plus looks at the edge cycles (and one
# cycle either side) of a first run.

def play(w, sched, cpu):
    """Play `sched` on world w: "look" syncs the world and notes every pin's level, "pin" reads
    one pin (GpioBank.level), "cb" notes the levels from a callback the world fires at that
    cycle; anything else is cpu(kind, value). Returns the notes."""
    seen = []
    gpio = w.gpio

    def note():
        seen.append((w.now, tuple(gpio.levels)))

    for cyc, kind, val in sched:
        if kind == "cb":
            w.schedule(cyc, lambda: (w.sync(), note()))
            continue
        w.advance_to(cyc)
        if kind == "look":
            w.sync()
            note()
        elif kind == "pin":
            seen.append((w.now, val, gpio.level(val)))
        else:
            seen.append((w.now, kind, cpu(kind, val)))
    return seen


def edge_looks(w, rnd, n):
    """n look events at the cycles of random edges of world w (and one cycle before or after)."""
    cycles = [c for rec in w.gpio.edges for c, _l in rec[1:]]
    out = []
    for _ in range(min(n, len(cycles))):
        c = rnd.choice(cycles) + rnd.choice((-1, 0, 0, 1))
        if c > 0:
            out.append((c, rnd.choice(("look", "look", "pin", "cb")), rnd.randint(0, 15)))
    return out


def looks_both_ways(make, sched, rnd, n_edge_looks, orbits_only=False):
    """make(ff) -> (world, cpu); the schedule played once (fast-forward on: to find the edges),
    then off and on with looks at edges added; (difference or None, the fast run's PioSystem
    with its orbit statistics). orbits_only: (None, None) if the first run had no orbit."""
    w, cpu = make(True)
    try:
        play(w, sched, cpu)
    except NotImplementedError:
        raise
    except Exception as e:  # (the fast run of a mutant, say: a non-causal edge)
        return "first run: %r" % e, pio_core.system_for(w)
    if orbits_only and not pio_core.system_for(w).ff_orbits:
        return None, None
    full = sorted(sched + edge_looks(w, rnd, n_edge_looks), key=lambda e: e[0])
    runs = []
    for ff in (False, True):
        w, cpu = make(ff)
        try:
            seen = play(w, full, cpu)
        except Exception as e:
            if not ff:
                raise
            return "fast run: %r" % e, pio_core.system_for(w)
        runs.append((observed(w), seen, pio_core.system_for(w)))
    diff = first_difference(runs[0][0], runs[1][0])
    if diff is None and runs[0][1] != runs[1][1]:
        for k in range(len(runs[0][1])):
            if runs[0][1][k] != runs[1][1][k]:
                diff = "look %d: %r != %r" % (k, runs[0][1][k], runs[1][1][k])
                break
        else:
            diff = "looks: %d != %d" % (len(runs[0][1]), len(runs[1][1]))
    return diff, runs[1][2]


def firmware_looks(rnd, t0, t1, every_ms):
    """Looks like the firmware's: every `every_ms` (+-1 ms), alternately a sync, a pin read of a
    leg or the gate, a callback."""
    out = []
    t = t0
    while True:
        t += rnd.randint((every_ms - 1) * MS, (every_ms + 1) * MS)
        if t >= t1:
            return out
        out.append((t, rnd.choice(("look", "pin", "cb")), rnd.choice((2, 3, 4, 6, 7))))


def engine_make(ff):
    r = Rig("pico")
    _system(r.w, ff)

    def cpu(kind, val):
        ch = r.channel(val[0])
        if kind == "set":
            try:
                ch.set(**val[1])
            except ValueError as e:  # a request that does not fit the engine (both runs)
                return str(e)
            return None
        if kind == "service":
            ch.service()
            return None
        if kind == "queued":
            return ch.pending_updates()
        if kind == "start":
            try:
                ch.start()
            except ValueError as e:  # never set
                return str(e)
            return None
        ch.stop()
        return None

    return r.w, cpu


def engine_schedule(rnd):
    """Two channels at random rates; the firmware looks every 3-7 ms for 1.2 s, with a random
    live update (set, then service twice), reads of the queue, a stop and a new start of one
    channel at random moments after long stretches without a CPU access."""
    reqs = {}
    for ch in (1, 2):
        req = random_request(rnd)
        while req.get("rate_hz", 100) < 10:
            req = random_request(rnd)
        reqs[ch] = req
    sched = [(1, "set", (1, reqs[1])), (1, "set", (2, reqs[2])), (2, "start", (1,)),
             (2 + rnd.randint(0, 30 * MS), "start", (2,))]
    end = 1200 * MS
    sched += firmware_looks(rnd, 40 * MS, end, rnd.randint(3, 7))
    t = rnd.randint(300, 500) * MS + rnd.randint(0, MS)
    sched += [(t, "queued", (1,)), (t + rnd.randint(1, 9 * MS), "set", (1, random_request(rnd))),
              (t + 10 * MS, "service", (1,)), (t + 20 * MS, "service", (1,))]
    t = rnd.randint(700, 800) * MS + rnd.randint(0, MS)
    ch = rnd.randint(1, 2)
    sched += [(t, "queued", (ch,)), (t + 1, "stop", (ch,)),
              (t + rnd.randint(1, 50) * MS + rnd.randint(0, 999), "start", (ch,))]
    sched += [(end, "stop", (1,)), (end, "stop", (2,)), (end + 5 * MS, "look", 0)]
    return sorted(sched, key=lambda e: e[0])


def engine_looks(seeds):
    """(first difference or None, looks the orbits went on through, orbits) over the seeds."""
    looks = orbits = 0
    for seed in seeds:
        rnd = Rng(500 + seed)
        sched = engine_schedule(rnd)
        diff, ps = looks_both_ways(engine_make, sched, rnd, 150)
        if diff is not None:
            return (seed, diff), looks, orbits
        looks += ps.ff_looks
        orbits += ps.ff_orbits
    return None, looks, orbits


def test_pulse_engine_with_the_world_looking():
    """The pulse engine as the firmware drives it: looks every few ms (so no whole period fits
    between two looks), edge-aligned looks, CPU accesses after long orbits."""
    diff, looks, orbits = engine_looks(range(12))
    assert diff is None, diff
    assert orbits > 20
    assert looks > 1500  # looks that the orbits went on through


def program_make(seed, build=None):
    """make(ff) for looks_both_ways: the random machines of `seed` (or build() -> machines) in
    a fresh world, and the CPU accesses of program_schedule."""
    def make(ff):
        w = world.new_world(sys_hz=SYS_HZ)
        _system(w, ff)
        sms = random_machines(Rng(seed)) if build is None else build(w)

        def cpu(kind, val):
            if not sms:
                return None
            sm = sms[val[0] % len(sms)]
            if kind == "put":
                if sm.tx_fifo() < 4:
                    sm.put(val[1])
                return sm.tx_fifo()
            if kind == "get":
                return sm.get() if sm.rx_fifo() else None
            if kind == "drive":
                w.gpio.drive_external(val[1] & 15, val[1] >> 4 & 1)
                return None
            if kind == "sio":  # the CPU claims a pin and writes it (a level a machine may read)
                w.gpio.sio_config(val[1] & 15, output=True, value=val[1] >> 4 & 1)
                return None
            if kind == "gate":  # the CPU writes pin 21, an SIO output
                w.gpio.sio_write(21, val[1] & 1)
                return None
            if kind == "flags":
                return rp2.PIO(sm._id >> 2).irq().flags()
            if kind == "restart":
                sm.active(0)
                sm.active(1)
                return None
            return (sm.active(), sm.tx_fifo(), sm.rx_fifo())

        return w, cpu

    return make


def program_schedule(rnd):
    """Stretches of 500-6,000 cycles with looks at random cycles inside, each ended by a
    random CPU access (a put, a get, a look at the FIFO levels or the IRQ flags, an outside pin
    change, a restart, an SIO write of a pin)."""
    sched = []
    t = 0
    for _ in range(rnd.randint(2, 5)):
        span = rnd.randint(500, 6000)
        for _ in range(rnd.randint(2, 20)):
            sched.append((t + rnd.randint(1, span), rnd.choice(("look", "pin", "cb")),
                          rnd.randint(0, 15)))
        t += span
        sched.append((t, rnd.choice(("put", "get", "get", "state", "state", "drive", "flags",
                                     "restart", "sio", "sio")),
                      (rnd.randint(0, 3), rnd.randint(0, 0xFFFFFFFF))))
    return sorted(sched, key=lambda e: e[0])


def program_looks(seeds):
    """(first difference or None, looks the orbits went on through, orbits) over the seeds: the
    random programs of test_random_programs_same_edges under random looks and CPU accesses (the
    ones that never enter an orbit are left to that test)."""
    looks = orbits = 0
    for seed in seeds:
        rnd = Rng(9000 + seed)
        try:
            diff, ps = looks_both_ways(program_make(seed), program_schedule(rnd), rnd, 30,
                                       orbits_only=True)
        except NotImplementedError:
            continue
        if ps is None:
            continue
        if diff is not None:
            return (seed, diff), looks, orbits
        looks += ps.ff_looks
        orbits += ps.ff_orbits
    return None, looks, orbits


def test_random_programs_with_the_world_looking():
    diff, looks, orbits = program_looks(range(200))
    assert diff is None, diff
    assert orbits > 50
    assert looks > 300


def build_gate(w):
    # jmp pin on pin 21, an SIO output the CPU writes (like the pulse engine's gate)
    w.gpio.sio_config(21, output=True, value=0)
    sm = rp2.StateMachine(0, _jmp_pin_square, sideset_base=4, jmp_pin=21)
    sm.active(1)
    return [sm]


def build_irq_pair(w):
    a = rp2.StateMachine(0, _irq_raiser, sideset_base=2)
    b = rp2.StateMachine(1, _irq_counter, set_base=10)
    a.active(1)
    b.active(1)
    return [a, b]


def build_two_blocks(w):
    sms = [rp2.StateMachine(0, _irq_raiser, sideset_base=2),
           rp2.StateMachine(2, _irq_counter, set_base=10),
           rp2.StateMachine(4, _sets, set_base=14)]
    for sm in sms:
        sm.active(1)
    return sms


def small_looks(seeds):
    """The small programs (a jmp pin on an SIO output the CPU writes now and then, IRQ
    handshakes, two blocks) under random looks and CPU accesses."""
    looks = 0
    for seed in seeds:
        for build in (build_gate, build_irq_pair, build_two_blocks):
            rnd = Rng(700 + seed)
            sched = program_schedule(rnd)
            if build is build_gate:
                sched = sorted(sched + [(c + rnd.randint(1, 3000), "gate", (0, rnd.randint(0, 1)))
                                        for c, k, _v in sched if k not in ("look", "pin", "cb")],
                               key=lambda e: e[0])
            diff, ps = looks_both_ways(program_make(None, build), sched, rnd, 30)
            if diff is not None:
                return (seed, build.__name__, diff), looks
            looks += ps.ff_looks
    return None, looks


def test_small_programs_with_the_world_looking():
    diff, looks = small_looks(range(8))
    assert diff is None, diff
    assert looks > 100


# mutants of the orbit: each must make the comparison under looks fail

def _mutant_look_one_cycle_late(monkeypatch):
    orig = pio_core.PioSystem._orbit_advance

    def advance(self, blk, c):
        orig(self, blk, c - 1)  # the changes of the cycle before the look are not there yet
    monkeypatch.setattr(pio_core.PioSystem, "_orbit_advance", advance)


def _mutant_partial_period_forgotten(monkeypatch):
    # materialisation restores the last period start and does not step the rest of the way
    monkeypatch.setattr(pio_core.PioSystem, "_step_to", lambda self, c: None)


def _mutant_read_pin_written_by_cpu_not_noticed(monkeypatch):
    orig = pio_core.PioSystem._orbit_start

    def start(self, blk, *a):
        orig(self, blk, *a)
        blk.orbit.ro = []  # an SIO write of a pin the group reads goes unnoticed
    monkeypatch.setattr(pio_core.PioSystem, "_orbit_start", start)


def _mutant_cpu_read_keeps_the_orbit(monkeypatch):
    # a CPU read of a state machine or a block (PioSystem.sync) does not end the orbit: it sees
    # the frozen state of the period start
    monkeypatch.setattr(pio_core.PioSystem, "materialise", lambda self: None)


@pytest.mark.parametrize("mutant", [_mutant_look_one_cycle_late,
                                    _mutant_partial_period_forgotten,
                                    _mutant_read_pin_written_by_cpu_not_noticed,
                                    _mutant_cpu_read_keeps_the_orbit])
def test_mutant_of_the_orbit_is_caught(monkeypatch, mutant):
    mutant(monkeypatch)
    assert (engine_looks(range(3))[0] is not None or small_looks(range(3))[0] is not None or
            program_looks(range(60))[0] is not None)
