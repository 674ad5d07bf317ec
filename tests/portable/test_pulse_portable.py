# Pulse engine checks that run on CPython (pytest) and on the MicroPython unix port
# (tests/mp_run.py): the same lib/ engine on the same simulated pins, two interpreters.
from tests.prng import Rng

from tests.pulse_harness import Rig, check_train, random_sequence, run_sequence


def test_train_edges_exact_on_this_interpreter():
    rig = Rig("pico")
    ch = rig.channel(1)
    plan = ch.set(phase_us=300, gap_us=50, rate_hz=50)
    assert plan.phase_ns == 300_000 and plan.gap_ns == 50_000 and plan.period_ns == 20_000_000
    ch.start()
    rig.run_cycles(plan.period_cycles * 4)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert len(pulses) == 4
    assert check_train(pulses, plan) == []


def test_burst_on_this_interpreter():
    rig = Rig("pico")
    ch = rig.channel(2)
    plan = ch.set(phase_us=100, gap_us=10, rate_hz=2500, burst_count=25, burst_rate_hz=50)
    ch.start()
    rig.run_cycles(plan.period_cycles * plan.burst_slots * 2)
    ch.stop()
    pulses, violations = rig.pulses(2)
    assert violations == []
    assert len(pulses) == 50


def test_random_sequences_portable_part():
    # The portable share of the 100,000-sequence property test (tests/test_pulse_property.py).
    rnd = Rng(99)
    rig = Rig("pico")
    for i in range(300):
        if i % 100 == 0:
            rig = Rig("pico")
        problems, _ = run_sequence(rig, random_sequence(rnd, 2), max_wait_periods=2)
        assert problems == [], problems
