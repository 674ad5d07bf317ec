# ESP32 RMT pulse engine checks that run on CPython (pytest) and on the MicroPython unix port
# (tests/mp_run.py): the same lib/pulse_rmt.py on the same simulated RMT, two interpreters.
from tests.prng import Rng

from tests.pulse_harness import Rig, check_train, random_sequence, run_sequence


def test_rmt_train_edges_exact_on_this_interpreter():
    rig = Rig("esp32")
    ch = rig.channel(1)
    plan = ch.set(phase_us=300, gap_us=50, rate_hz=50)
    assert plan.phase_cycles == 24000 and plan.gap_cycles == 4000
    ch.start()
    rig.run_cycles(plan.period_cycles * 4)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert len(pulses) == 4
    assert check_train(pulses, plan) == []


def test_rmt_burst_and_update_on_this_interpreter():
    rig = Rig("esp32")
    ch = rig.channel(2)
    plan = ch.set(phase_us=100, gap_us=10, rate_hz=2500, burst_count=25, burst_rate_hz=50)
    ch.start()
    rig.run_cycles(plan.period_cycles * plan.burst_slots * 2)
    pulses, violations = rig.pulses(2)
    assert violations == [] and len(pulses) == 50
    new = ch.set(phase_us=80, gap_us=10, rate_hz=2500, burst_count=25, burst_rate_hz=50)
    rig.run_cycles(plan.period_cycles * plan.burst_slots * 2)
    ch.stop()
    pulses, violations = rig.pulses(2)
    assert violations == []
    assert len(pulses) == 100
    assert check_train(pulses[75:], new) == []


def test_rmt_random_sequences_portable_part():
    rnd = Rng(123)
    rig = None
    for i in range(100):
        if i % 50 == 0:
            rig = Rig("esp32")
        problems, _ = run_sequence(rig, random_sequence(rnd, rnd.randint(0, 3)),
                                   max_wait_periods=2)
        assert problems == [], (i, problems[:3])


def test_half_count_is_the_length_of_the_halves_list():
    """_choose decides whether a pattern fits the RMT memory from half_count() and builds the
    halves only for the divider it keeps: the count must be the built list's length, for every
    shape of segments (0-, 1- and 2-tick segments, exact multiples of HALF_MAX and one more, odd
    counts with and without a low segment _halves can split)."""
    rmt = Rig("esp32").engine
    hm = rmt.HALF_MAX
    edge = (0, 1, 2, 3, hm - 1, hm, hm + 1, 2 * hm, 2 * hm + 1, 5 * hm + 7)
    rnd = Rng(77)
    cases = [[(d, 0)] for d in edge] + [[(d, 1)] for d in edge]
    cases += [[(1, 1), (d, 0)] for d in edge] + [[(d, 1), (1, 0), (1, 1)] for d in edge]
    for _ in range(400):
        segs = []
        for _ in range(rnd.randint(1, 6)):
            d = rnd.choice(edge) if rnd.randint(0, 2) == 0 else rnd.randint(0, 4 * hm)
            segs.append((d, rnd.randint(0, 1)))
        cases.append(segs)
    for segs in cases:
        assert rmt.half_count(segs) == len(rmt._halves(list(segs))), segs
