"""Property tests of the pulse engine over random parameter sequences (SAFETY rule 1, charge
balance, and that the train is the one asked for). Every sequence: start with a request, updates at
random moments, stop at a random moment; the recorded edges must show no cycle with both legs high,
no unbalanced pulse, no shape matching no request, the right number of pulses at the right period,
and every update taking effect (tests/pulse_harness.check_sequence).

Two kinds of draw:
- hypothesis strategies (test_hypothesis_sequences): a failure shrinks to a small sequence that
  hypothesis prints and replays;
- the portable PRNG (test_random_parameter_sequences_*): the bulk count, the same generator as the
  MicroPython runner uses.
Two mutants are kept as tests: a stalled engine and a service() that drops queued updates must
both fail check_sequence."""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.prng import Rng
from tests.pulse_harness import Rig, random_sequence, run_sequence

# 100,000 sequences in `make test` (the bar); PULSE_PROPERTY_SEQUENCES overrides
# (`make test-long` runs ten times as many).
N_SEQUENCES = int(os.environ.get("PULSE_PROPERTY_SEQUENCES", "100000"))
# The ESP32 RMT engine: 20,000 sequences (its loops are longer to simulate per sequence);
# PULSE_PROPERTY_SEQUENCES_ESP32 overrides.
N_SEQUENCES_ESP32 = int(os.environ.get("PULSE_PROPERTY_SEQUENCES_ESP32", "20000"))
N_HYPOTHESIS = int(os.environ.get("PULSE_PROPERTY_HYPOTHESIS", "300"))
SEQUENCES_PER_RIG = 500  # a fresh simulated board every so often keeps edge lists short
SHARDS = 8  # the bulk run split so pytest-xdist can spread it over the cores (and balance)


def _bulk(board, n_sequences, shard):
    rnd = Rng(20261124 + shard)
    total_pulses = 0
    failures = []
    rig = None
    long_waits = []
    for i in range(n_sequences):
        if i % SEQUENCES_PER_RIG == 0:
            if rig is not None:
                long_waits += [e for e in rig.w.events if e["kind"] == "rmt_disable_iwdt"]
            rig = Rig(board)
        seq = random_sequence(rnd, n_updates=rnd.randint(0, 3))
        problems, n = run_sequence(rig, seq, max_wait_periods=2)
        total_pulses += n
        if problems:
            failures.append((i, seq, problems[:3]))
            if len(failures) > 5:
                break
    assert failures == []
    assert total_pulses > n_sequences  # the sequences really played pulses
    long_waits += [e for e in rig.w.events if e["kind"] == "rmt_disable_iwdt"]
    assert long_waits == []  # ESP32: never a busy-wait long enough to trip the interrupt WDT


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_random_parameter_sequences_pico(shard):
    _bulk("pico", N_SEQUENCES // SHARDS, shard)


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_random_parameter_sequences_esp32(shard):
    _bulk("esp32", N_SEQUENCES_ESP32 // SHARDS, shard)


# -- hypothesis strategies: the same request space as tests/pulse_harness.random_request ------

_phase_us = st.one_of(st.sampled_from([20, 1000]), st.integers(20, 1000),
                      st.floats(20, 1000, allow_nan=False))
_gap_us = st.one_of(st.sampled_from([1, 1000]), st.integers(1, 1000),
                    st.floats(1, 200, allow_nan=False))
_rate_hz = st.one_of(st.sampled_from([0.5, 50, 200]), st.floats(0.5, 200, allow_nan=False),
                     st.integers(1, 200))


@st.composite
def _burst_request(draw):
    rate = draw(st.sampled_from([100, 500, 1000, 2500]))
    phase = min(draw(_phase_us), 1e6 / rate / 2.5)
    gap = min(draw(_gap_us), 1e6 / rate / 10)
    return dict(phase_us=max(phase, 20), gap_us=max(gap, 1), rate_hz=rate,
                burst_count=draw(st.integers(2, 8)),
                burst_rate_hz=draw(st.sampled_from([5, 10, 20, 50, 100])))


_train_request = st.fixed_dictionaries(
    {"phase_us": _phase_us, "gap_us": _gap_us, "rate_hz": _rate_hz, "alternate": st.booleans()})
_request = st.one_of(_train_request, _burst_request())
_fraction = st.floats(0.0, 1.0, allow_nan=False)
sequences = st.fixed_dictionaries({
    "first": _request,
    "updates": st.lists(st.tuples(_fraction, _request), max_size=4),
    "tail": _fraction,
})


@pytest.mark.parametrize("board", ["pico", "esp32"])
@settings(max_examples=N_HYPOTHESIS, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seq=sequences)
def test_hypothesis_sequences(board, seq):
    rig = Rig(board)
    problems, _ = run_sequence(rig, seq)
    assert problems == []


def test_found_by_hypothesis_stop_right_after_a_switch_on_the_esp32():
    """Found by test_hypothesis_sequences (30 Nov 2026): an update set 2.6 ms before the end of
    the iteration swaps at once (the ESP32 engine busy-waits up to SWAP_WINDOW_US for the loop
    end), the new pattern starts after the restart (2 x skew: the documented longer rest at a
    switch), and stop() comes one cycle later. The next pulse was then due one period plus that
    rest after the last one; the harness allowed only the period (a false alarm, 960 cycles
    over). Both pulses played, the switch rest within switch_extra."""
    seq = {"first": {"phase_us": 20, "gap_us": 3.0, "rate_hz": 200, "alternate": False},
           "updates": [(0.5, {"phase_us": 20, "gap_us": 2, "rate_hz": 200, "alternate": False})],
           "tail": 0.0}
    problems, n = run_sequence(Rig("esp32"), seq)
    assert problems == [] and n == 2


# -- kept mutants: the checks above must see a dead engine and a dropped update ---------------

_STEADY = {"phase_us": 300, "gap_us": 50, "rate_hz": 100}
_SEQ_WITH_UPDATES = {
    "first": _STEADY,
    "updates": [(0.4, {"phase_us": 200, "gap_us": 50, "rate_hz": 100}),
                (0.01, {"phase_us": 250, "gap_us": 20, "rate_hz": 100}),
                (0.01, {"phase_us": 100, "gap_us": 20, "rate_hz": 100}),
                (0.01, {"phase_us": 150, "gap_us": 30, "rate_hz": 100})],
    "tail": 1.0,
}


def test_the_unmutated_engine_passes_the_mutant_sequences():
    for seq in ({"first": _STEADY, "updates": [], "tail": 1.0}, _SEQ_WITH_UPDATES):
        problems, n = run_sequence(Rig("pico"), seq)
        assert problems == [] and n > 5


def test_mutant_stalled_engine_is_caught():
    """The v1.28 failure: one pulse, then the state machine waits on `pull` for ever."""
    rig = Rig("pico")
    ch = rig.channel(1)
    real_start = ch.start

    def start_then_stall():
        real_start()
        rig.run_cycles(ch.plan.period_cycles // 2)  # the first pulse plays ...
        ch._sm.active(0)  # ... and the machine stops, legs low (as a stall on pull leaves them)
        ch._sm.exec(0xA042)

    ch.start = start_then_stall
    problems, n = run_sequence(rig, {"first": _STEADY, "updates": [], "tail": 1.0})
    assert n == 1
    assert any("ended" in p for p in problems), problems


def test_mutant_service_dropping_updates_is_caught():
    """A service() that forgets a queued block instead of handing it over later."""
    rig = Rig("pico")
    ch = rig.channel(1)

    def dropping_service():
        if ch._queued is not None and ch._sm.tx_fifo() > 5:
            ch._queued = None  # the FIFO is full: the update is lost
        elif ch._queued is not None:
            ch._sm.put(ch._block(ch._queued))
            ch._queued = None
        return True

    ch.service = dropping_service
    problems, _ = run_sequence(rig, _SEQ_WITH_UPDATES)
    assert any("never took effect" in p or "fits no plan" in p for p in problems), problems


def test_mutant_pulse_of_another_shape_is_caught():
    """An engine that plays a phase 2 cycles longer than the plan it reports: every pulse matches
    no request (run_sequence's shape check, before check_sequence)."""
    rig = Rig("pico")
    ch = rig.channel(1)
    real_set = ch.set

    def set_reporting_a_shorter_phase(**kw):
        p = real_set(**kw)
        return type(p)(p.sys_hz, p.phase_cycles - 2, p.gap_cycles, p.period_cycles,
                       p.burst_count, p.burst_slots, p.alternate)

    ch.set = set_reporting_a_shorter_phase
    problems, n = run_sequence(rig, {"first": _STEADY, "updates": [], "tail": 1.0})
    assert n > 5
    assert len(problems) == n and all("matches no request" in p for p in problems), problems
