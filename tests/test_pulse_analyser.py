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


def _long_train(rnd, n, defects, swap):
    """Long trains (so Analyser._bulk takes runs of pulses) with a defect or a first-leg swap now
    and then; some same-cycle edges, touching pulses, shared edges between the legs and entries
    that repeat the level."""
    legs = {"A": [(0, 0)], "B": [(0, 0)]}
    c = rnd.randrange(5)
    first, second = ("A", "B") if rnd.random() < 0.5 else ("B", "A")
    period = rnd.choice([8, 9, 12, 30])
    for _ in range(n):
        if rnd.random() < swap:
            first, second = second, first
        ph, gap, ph2 = 3, 1, 3
        if rnd.random() < defects:
            ph, gap, ph2 = rnd.choice([3, 4, 2]), rnd.choice([1, 0, 2, -1]), rnd.choice([3, 2, 4])
        for leg, t0, t1 in ((first, c, c + ph), (second, c + ph + gap, c + ph + gap + ph2)):
            for t, lv in ((t0, 1), (t1, 0)):
                rec = legs[leg]
                if t < rec[-1][0]:
                    continue
                if t == rec[-1][0] and len(rec) > 1:
                    rec.pop()
                if lv != rec[-1][1]:
                    rec.append((t, lv))
                elif rnd.random() < defects and t > rec[-1][0]:
                    rec.append((t, lv))  # an entry that changes nothing (not from a GPIO bank)
                if lv and rnd.random() < defects and t + 1 < t1 and rec[-1][0] == t:
                    rec.append((t + 1, 1))  # the same inside a phase
        c += period if rnd.random() > defects else rnd.choice([0, 5, 6, 7, 40])
    return legs["A"], legs["B"]


def test_runs_of_pulses_read_as_one_at_a_time():
    """Analyser._bulk (BULK) against the one-pulse step (BULK = False): the same pulses,
    violations, summary and state, fed whole or in random pieces, with cuts; analyse_columns()
    gives analyse()'s pulses as columns."""
    rnd = random.Random(12)
    bulk_pulses = 0
    try:
        for i in range(600):
            defects = rnd.choice([0, 0, 0.002, 0.02, 0.2])
            swap = rnd.choice([0, 0, 0.01, 0.5, 1.0])
            ea, eb = _long_train(rnd, rnd.randrange(1, 400), defects, swap)
            ends = sorted({c for c, _lv in ea[1:] + eb[1:]})
            cuts = set(rnd.sample(ends, min(len(ends), rnd.choice([0, 0, 1, 3]))))
            cut_at = rnd.choice([None, cuts, ends[-1]]) if ends else None
            pieces = [0] + sorted(rnd.sample(ends, min(len(ends), rnd.randrange(4))))
            res = []
            for bulk in (True, False):
                pulse_analysis.BULK = bulk
                an = pulse_analysis.Analyser(0, 0, max_violations=7)
                for j in range(len(pieces)):
                    lo = pieces[j]
                    hi = pieces[j + 1] if j + 1 < len(pieces) else ends[-1] + 1 if ends else 1
                    an.feed([e for e in ea[1:] if lo <= e[0] < hi],
                            [e for e in eb[1:] if lo <= e[0] < hi], cuts)
                res.append(_state(an))
                pulses, viol = pulse_analysis.analyse(ea, eb, cut_at)
                cols, viol2 = pulse_analysis.analyse_columns(ea, eb, cut_at)
                assert viol2 == viol
                rows = [(p.start, p.first_leg, p.phase1, p.gap, p.phase2) for p in pulses]
                assert list(zip(*cols, strict=True)) == rows
                res.append((repr(pulses), viol))
            assert res[0] == res[2] and res[1] == res[3], (i, ea, eb, cuts, cut_at)
            bulk_pulses += len(pulses)
    finally:
        pulse_analysis.BULK = True
    assert bulk_pulses > 50000
