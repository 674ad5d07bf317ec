"""Pulse-engine behaviour that is the same on both chips: the RP2040 PIO engine (lib/pulse_pio.py)
and the ESP32 RMT engine (lib/pulse_rmt.py) behind one API, each on its simulated pins. What is
particular to one chip stays in tests/test_pulse_pio.py and tests/test_pulse_rmt.py."""
import pytest

from tests.pulse_harness import Rig, check_train


@pytest.fixture(params=["pico", "esp32"])
def rig(request):
    return Rig(request.param)


def test_bursts_play_n_pulses_then_silent_slots_with_exact_burst_period(rig):
    ch = rig.channel(1)
    plan = ch.set(phase_us=200, gap_us=20, rate_hz=100, burst_count=10, burst_rate_hz=2)
    assert plan.burst_slots == 50
    ch.start()
    rig.run_cycles(plan.period_cycles * plan.burst_slots * 3)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert len(pulses) == 30
    for k in range(3):
        burst = pulses[10 * k:10 * k + 10]
        assert check_train(burst, plan) == []
        if k:
            assert burst[0].start - pulses[10 * (k - 1)].start == plan.period_cycles * 50

def test_russian_current_2500_hz_carrier_in_50_hz_bursts(rig):
    ch = rig.channel(1)
    plan = ch.set(phase_us=100, gap_us=10, rate_hz=2500, burst_count=25, burst_rate_hz=50)
    assert plan.burst_slots == 50 and plan.burst_period_ns == 20_000_000
    ch.start()
    rig.run_ms(100)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert len(pulses) == 5 * 25
    assert check_train(pulses[:25], plan) == []
    assert pulses[25].start - pulses[0].start == plan.period_cycles * 50

def test_polarity_alternates_pulse_to_pulse(rig):
    ch = rig.channel(1)
    plan = ch.set(phase_us=250, gap_us=50, rate_hz=80, alternate=True)
    ch.start()
    rig.run_cycles(plan.period_cycles * 6)
    ch.stop()
    pulses, violations = rig.pulses(1)
    assert violations == []
    assert "".join(p.first_leg for p in pulses) == "ABABAB"
    assert check_train(pulses, plan) == []

def test_two_channels_run_independently(rig):
    c1, c2 = rig.channel(1), rig.channel(2)
    p1 = c1.set(phase_us=300, gap_us=50, rate_hz=50)
    p2 = c2.set(phase_us=200, gap_us=100, rate_hz=77)
    c1.start()
    c2.start()
    rig.run_ms(200)
    c1.stop()
    c2.stop()
    for n, plan in ((1, p1), (2, p2)):
        pulses, violations = rig.pulses(n)
        assert violations == []
        assert check_train(pulses, plan) == []
        assert len(pulses) >= 9
