"""Property tests of the pulse engine over random parameter sequences (SAFETY rule 1, charge
balance). Every sequence: start with a random request, random updates at random moments, stop at a
random moment; the recorded edges must show no cycle with both legs high, no unbalanced pulse and
no pulse whose shape matches no request."""
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.prng import Rng
from tests.pulse_harness import Rig, run_sequence

# 100,000 sequences in `make test` (the bar); PULSE_PROPERTY_SEQUENCES overrides.
N_SEQUENCES = int(os.environ.get("PULSE_PROPERTY_SEQUENCES", "100000"))
SEQUENCES_PER_RIG = 500  # a fresh simulated board every so often keeps edge lists short


def test_random_parameter_sequences_never_overlap_or_unbalance():
    rnd = Rng(20261124)
    total_pulses = 0
    failures = []
    rig = None
    for i in range(N_SEQUENCES):
        if i % SEQUENCES_PER_RIG == 0:
            rig = Rig("pico")
        problems, n = run_sequence(rig, rnd, n_updates=rnd.randint(0, 3), max_wait_periods=2)
        total_pulses += n
        if problems:
            failures.append((i, problems[:3]))
            if len(failures) > 5:
                break
    assert failures == []
    assert total_pulses > N_SEQUENCES  # the sequences really played pulses


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_hypothesis_sequences(seed):
    rig = Rig("pico")
    problems, _ = run_sequence(rig, Rng(seed), n_updates=4)
    assert problems == []
