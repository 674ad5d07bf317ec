"""The simulation's speed-ups give the results of the plain path, edge for edge:

- host_tools/sim/esp32.py BATCHED: a transmission plays its halves with equal neighbours merged and
  writes what it drives between two looks in one GpioBank.set_levels() call;
- host_tools/sim/gpio.py set_levels() against one set_level() per entry (glitches, unchanged
  levels, a pin driven by someone else, listeners, IRQs, the non-causal error);
- host_tools/sim/pio_core.py: the decoded-program cache (DECODE_CACHE) and the orbit's bulk write
  of whole periods (_periods);
- tests/pulse_harness.check_sequence's reuse of a steady train's step (CHECK_MEMO).

Each comparison runs the same random sequences both ways and compares every pin's edge list."""
import pytest

from host_tools.sim import esp32 as sim_esp32
from host_tools.sim import gpio as sim_gpio
from host_tools.sim import pio_core
from tests import pulse_harness
from tests.prng import Rng
from tests.pulse_harness import Rig, random_sequence, run_sequence


def _play(board, n_sequences, seed):
    """Every pin's edges, the clock and the problems found, over n random sequences on one rig."""
    rnd = Rng(seed)
    rig = Rig(board)
    found = []
    for _ in range(n_sequences):
        seq = random_sequence(rnd, n_updates=rnd.randint(0, 3))
        found.append(run_sequence(rig, seq, max_wait_periods=2))
    return [list(e) for e in rig.w.gpio.edges], rig.w.now, found


def _both_ways(monkeypatch, module, flag, board, n, seed):
    monkeypatch.setattr(module, flag, False)
    slow = _play(board, n, seed)
    monkeypatch.setattr(module, flag, True)
    fast = _play(board, n, seed)
    return slow, fast


def test_esp32_batched_transmission_gives_the_same_edges(monkeypatch):
    slow, fast = _both_ways(monkeypatch, sim_esp32, "BATCHED", "esp32", 120, 7)
    assert sum(len(e) for e in fast[0]) > 1000  # the sequences really drove the legs
    assert fast == slow


def test_pio_decode_cache_gives_the_same_edges(monkeypatch):
    slow, fast = _both_ways(monkeypatch, pio_core, "DECODE_CACHE", "pico", 150, 11)
    assert sum(len(e) for e in fast[0]) > 1000
    assert fast == slow


def test_check_sequence_memo_finds_the_same_problems(monkeypatch):
    """The recorded trains of random sequences, as played and with a defect each (a pulse
    dropped, one moved by a cycle, the train cut short), checked both ways."""
    calls = []
    real = pulse_harness.check_sequence

    def recording(pulses, plans, set_at, t_start, t_stop, switch_extra=0):
        calls.append((pulses, plans, set_at, t_start, t_stop, switch_extra))
        return real(pulses, plans, set_at, t_start, t_stop, switch_extra)

    monkeypatch.setattr(pulse_harness, "check_sequence", recording)
    _play("pico", 300, 5)
    monkeypatch.setattr(pulse_harness, "check_sequence", real)
    rnd = Rng(9)
    cases = []
    for pulses, plans, set_at, t0, t1, extra in calls:
        cases.append((pulses, plans, set_at, t0, t1, extra))
        if len(pulses) > 3:
            k = rnd.randint(1, len(pulses) - 2)
            moved = list(pulses)
            p = moved[k]
            moved[k] = type(p)(p.start + 1, p.first_leg, p.phase1, p.gap, p.phase2)
            cases.append((pulses[:k] + pulses[k + 1:], plans, set_at, t0, t1, extra))
            cases.append((moved, plans, set_at, t0, t1, extra))
            cases.append((pulses[:k], plans, set_at, t0, t1, extra))
    found = {}
    for memo in (False, True):
        monkeypatch.setattr(pulse_harness, "CHECK_MEMO", memo)
        found[memo] = [pulse_harness.check_sequence(*c) for c in cases]
    assert found[True] == found[False]
    assert sum(1 for f in found[True] if f) > 100  # the defects were seen


def test_check_sequence_memo_sees_a_same_shape_update():
    """An update with the pulse shape of the plan playing but another rate: pulses at the old
    period after the update was set fit both plans, so the new period is accepted later. A memo
    that reused the step from before the update (when the new plan was not set yet) would
    call the first pulse at the new period out of order."""
    seq = {"first": {"phase_us": 300, "gap_us": 50, "rate_hz": 100},
           "updates": [(0.3, {"phase_us": 300, "gap_us": 50, "rate_hz": 40})],
           "tail": 1.0}
    problems, n = run_sequence(Rig("pico"), seq)
    assert problems == [] and n > 5
    # and check_sequence itself, on pulses built by hand: 10 at P0, then 5 at P1
    P0, P1 = 1000, 2500

    class P:
        def __init__(self, start):
            self.start, self.phase1, self.gap = start, 30, 5

    class Plan:
        def __init__(self, period):
            self.phase_cycles, self.gap_cycles, self.period_cycles = 30, 5, period
            self.burst_count, self.burst_slots, self.alternate = 1, 1, False

    starts = [100 + k * P0 for k in range(10)]
    starts += [starts[-1] + k * P1 for k in range(1, 6)]
    pulses = [P(s) for s in starts]
    plans = [Plan(P0), Plan(P1)]
    set_at = [0, 100 + 5 * P0 + 10]  # the update set after the 6th pulse
    stop = starts[-1] + P1
    assert pulse_harness.check_sequence(pulses, plans, set_at, 0, stop) == []
    # an engine with a longer rest at a switch (switch_extra, the ESP32's): one spacing of
    # P0 + 3 is the switch to the update, a second one fits neither plan (the step after the
    # switch starts from another reach than the switch itself, with the same spacing and shape)
    starts = [100 + k * P0 for k in range(6)]
    starts += [starts[-1] + (P0 + 3), starts[-1] + 2 * (P0 + 3)]
    problems = pulse_harness.check_sequence([P(s) for s in starts], plans, [0, 100 + 4 * P0], 0,
                                            starts[-1] + 10, switch_extra=10)
    assert len(problems) == 1 and "pulse 7" in problems[0], problems


# -- GpioBank.set_levels against set_level, entry by entry ------------------------------------

def _bank(setup):
    from host_tools.sim import world as sim_world

    w = sim_world.new_world()
    g = w.gpio
    g.set_level(3, 0, 0, sim_gpio.RMT)
    g.set_dir(3, True, 0, sim_gpio.RMT)
    g.set_function(3, sim_gpio.RMT)
    calls = []
    setup(g, calls)
    return g, calls


def _runs():
    rnd = Rng(3)
    for _ in range(60):
        t = 5
        run = []
        for _ in range(rnd.randint(0, 40)):
            t += rnd.choice([0, 0, 1, 7, 100])  # same-cycle entries: glitches and overwrites
            run.append((t, rnd.choice([0, 1, 1, True, False])))
        yield run


def _no_setup(g, calls):
    pass


def _driven_elsewhere(g, calls):
    g.set_function(3, sim_gpio.SIO)


def _output_off(g, calls):
    g.set_dir(3, False, 0, sim_gpio.RMT)
    g.set_pull(3, sim_gpio.PULL_UP)


def _listener(g, calls):
    g.add_listener(lambda pin, lvl, c: calls.append((pin, lvl, c)))


def _irq(g, calls):
    g.set_irq(3, lambda p: calls.append(p), sim_gpio.IRQ_RISING | sim_gpio.IRQ_FALLING, "pin3")


@pytest.mark.parametrize("setup", [_no_setup, _driven_elsewhere, _output_off, _listener, _irq])
def test_set_levels_is_set_level_entry_by_entry(setup):
    for run in _runs():
        a, calls_a = _bank(setup)
        for c, lvl in run:
            a.set_level(3, lvl, c, sim_gpio.RMT)
        b, calls_b = _bank(setup)
        b.set_levels(3, run, sim_gpio.RMT)
        assert b.edges == a.edges, run
        assert b.levels == a.levels and b.pio_out == a.pio_out
        assert calls_b == calls_a
        assert [(h.cycle) for h in b.world._queue] == [(h.cycle) for h in a.world._queue]


def test_set_levels_refuses_a_non_causal_edge_like_set_level():
    for way in ("one", "batch"):
        g, _ = _bank(_no_setup)
        g.set_level(3, 1, 50, sim_gpio.RMT)
        with pytest.raises(ValueError, match="non-causal"):
            if way == "one":
                g.set_level(3, 0, 40, sim_gpio.RMT)
            else:
                g.set_levels(3, [(60, 1), (40, 0)], sim_gpio.RMT)
        assert g.levels[3] == 0 and g.edges[3] == [(0, 0), (50, 1)]


# -- pio_core ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lst,off,P,k", [
    ([(100, 1)], 0, 1000, 1),
    ([(100, 1), (400, 0)], 12345, 1000, 7),
    ([(0, 1), (30, 0), (35, 1), (65, 0)], 99, 2000, 300),
    ([(5, 0), (6, 1), (9, 0)], 1 << 40, 10, 2),
])
def test_bulk_periods_are_the_comprehension(lst, off, P, k):
    assert list(pio_core._periods(lst, off, P, k)) == \
        [(cyc + off + q * P, lvl) for q in range(k) for cyc, lvl in lst]


def test_decode_cache_key_holds_the_pin_configuration(monkeypatch):
    """Two state machines with the same program but other side-set / SET pins decode to other
    pin masks (a cache keyed by the words alone would hand the first one's to the second)."""
    rig = Rig("pico")
    for n in (1, 2):
        ch = rig.channel(n)
        ch.set(phase_us=300, gap_us=50, rate_hz=100)
        ch.start()
    rig.run_ms(25)
    cores = [sm for sm in rig.w.pio_system.sms if sm.configured]
    assert len(cores) >= 2
    cached = []
    for sm in cores:
        sm._decode_all()
        cached.append(sm.code)
    monkeypatch.setattr(pio_core, "DECODE_CACHE", False)
    for sm, code in zip(cores, cached, strict=True):
        sm._decode_all()
        assert code == sm.code
    masks = set(tuple((ins[4], ins[3] if ins[0] == 8 else None) for ins in code)
                for code in cached)
    assert len(masks) >= 2, "the two channels' machines drive other pins"
