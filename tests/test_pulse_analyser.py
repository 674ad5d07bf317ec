"""host_tools/pulse_analysis.Analyser, which measures the pulses of trace.json: a record fed whole
(a well-formed pulse is then taken in one step) reads the same as the same record fed one cycle
at a time (every change through the step-by-step state machine): pulses, violations and summary,
on random trains with overlaps, missing gaps, unbalanced phases, cuts and same-cycle edges."""
import random

from host_tools import pulse_analysis


def _train(rnd, n):
    legs = {"A": [(0, 0)], "B": [(0, 0)]}
    c = rnd.randrange(5)
    for _ in range(n):
        first, second = ("A", "B") if rnd.random() < 0.7 else ("B", "A")
        ph, gap, ph2 = rnd.choice([3, 3, 4]), rnd.choice([1, 1, 0, 2]), rnd.choice([3, 3, 2])
        for leg, t0, t1 in ((first, c, c + ph), (second, c + ph + gap, c + ph + gap + ph2)):
            for t, lv in ((t0, 1), (t1, 0)):
                rec = legs[leg]
                if t < rec[-1][0]:
                    continue
                if t == rec[-1][0] and len(rec) > 1:
                    rec.pop()  # two changes in one cycle: the later one stands
                if lv != rec[-1][1]:
                    rec.append((t, lv))
        c += ph + gap + ph2 + rnd.choice([0, 1, 5, 20, 20])
    return legs["A"], legs["B"]


def _state(an):
    return (repr(an.pulses), an.violations, an.violation_count, an.stats.result(), an.state)


def test_whole_record_reads_as_cycle_by_cycle():
    rnd = random.Random(11)
    pulses = 0
    for _ in range(1500):
        ea, eb = _train(rnd, rnd.randrange(12))
        cycles = sorted({c for c, _lv in ea[1:] + eb[1:]})
        cuts = set(rnd.sample(cycles, min(len(cycles), rnd.randrange(3))))
        whole = pulse_analysis.Analyser(0, 0, max_violations=5)
        whole.feed(ea[1:], eb[1:], cuts)
        step = pulse_analysis.Analyser(0, 0, max_violations=5)
        for c in cycles:
            step.feed([e for e in ea[1:] if e[0] == c], [e for e in eb[1:] if e[0] == c],
                      cuts if c in cuts else ())
        assert _state(whole) == _state(step), (ea, eb, cuts)
        pulses += len(whole.pulses)
    assert pulses > 3000
