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
