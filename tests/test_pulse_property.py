"""Property tests of the pulse engine over random parameter sequences (SAFETY rule 1, charge
balance). Every sequence: start with a random request, random updates at random moments, stop at a
random moment; the recorded edges must show no cycle with both legs high, no unbalanced pulse and
no pulse whose shape matches no request."""
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.prng import Rng
from tests.pulse_harness import Rig, run_sequence

# 100,000 sequences in `make test` (the bar); PULSE_PROPERTY_SEQUENCES overrides.
N_SEQUENCES = int(os.environ.get("PULSE_PROPERTY_SEQUENCES", "100000"))
# The ESP32 RMT engine: 20,000 sequences (its loops are longer to simulate per sequence);
# PULSE_PROPERTY_SEQUENCES_ESP32 overrides.
N_SEQUENCES_ESP32 = int(os.environ.get("PULSE_PROPERTY_SEQUENCES_ESP32", "20000"))
SEQUENCES_PER_RIG = 500  # a fresh simulated board every so often keeps edge lists short
BOARDS = [("pico", N_SEQUENCES), ("esp32", N_SEQUENCES_ESP32)]


@pytest.mark.parametrize("board,n_sequences", BOARDS, ids=[b for b, _ in BOARDS])
def test_random_parameter_sequences_never_overlap_or_unbalance(board, n_sequences):
    rnd = Rng(20261124)
    total_pulses = 0
    failures = []
    rig = None
    long_waits = []
    for i in range(n_sequences):
        if i % SEQUENCES_PER_RIG == 0:
            if rig is not None:
                long_waits += [e for e in rig.w.events if e["kind"] == "rmt_disable_iwdt"]
            rig = Rig(board)
        problems, n = run_sequence(rig, rnd, n_updates=rnd.randint(0, 3), max_wait_periods=2)
        total_pulses += n
        if problems:
            failures.append((i, problems[:3]))
            if len(failures) > 5:
                break
    assert failures == []
    assert total_pulses > n_sequences  # the sequences really played pulses
    long_waits += [e for e in rig.w.events if e["kind"] == "rmt_disable_iwdt"]
    assert long_waits == []  # ESP32: never a busy-wait long enough to trip the interrupt WDT


@pytest.mark.parametrize("board", ["pico", "esp32"])
@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_hypothesis_sequences(board, seed):
    rig = Rig(board)
    problems, _ = run_sequence(rig, Rng(seed), n_updates=4)
    assert problems == []
