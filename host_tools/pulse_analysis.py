"""Measure biphasic pulses from recorded GPIO edges (the ground truth of the simulation).

Common subset of CPython and MicroPython: the portable property tests use it on both.

Input: two edge lists [(cycle, level), ...] for leg A and leg B (sorted, first entry = initial
level). Output: a list of Pulse records and a list of violations (both legs high, unbalanced
phases, a phase without its partner).
"""


class Pulse:
    __slots__ = ("start", "first_leg", "phase1", "gap", "phase2", "end")

    def __init__(self, start, first_leg, phase1, gap, phase2):
        self.start = start  # cycle the first phase began
        self.first_leg = first_leg  # "A" or "B"
        self.phase1 = phase1  # cycles
        self.gap = gap
        self.phase2 = phase2
        self.end = start + phase1 + gap + phase2

    def balanced(self):
        return self.phase1 == self.phase2

    def __repr__(self):
        return "Pulse(start=%d, %s, %d/%d/%d)" % (self.start, self.first_leg, self.phase1,
                                                  self.gap, self.phase2)


def _merge(edges_a, edges_b):
    """Yield (cycle, a, b) for every cycle at which either level changes (both applied)."""
    a = edges_a[0][1] if edges_a else 0
    b = edges_b[0][1] if edges_b else 0
    # skip the initial entries (cycle 0 levels)
    ia = 1 if edges_a else 0
    ib = 1 if edges_b else 0
    na = len(edges_a)
    nb = len(edges_b)
    out = []
    while ia < na or ib < nb:
        ca = edges_a[ia][0] if ia < na else None
        cb = edges_b[ib][0] if ib < nb else None
        if cb is None or (ca is not None and ca < cb):
            t = ca
        else:
            t = cb
        while ia < na and edges_a[ia][0] == t:
            a = edges_a[ia][1]
            ia += 1
        while ib < nb and edges_b[ib][0] == t:
            b = edges_b[ib][1]
            ib += 1
        out.append((t, a, b))
    return out, (edges_a[0][1] if edges_a else 0), (edges_b[0][1] if edges_b else 0)


def analyse(edges_a, edges_b, cut_at=None):
    """Return (pulses, violations). A pulse still open at the end of the record is not judged.
    `cut_at`: the cycle (or a set of cycles) of a deliberate stop; a pulse cut short at exactly such
    a cycle is counted in `cut` and left out (stop drops both legs at once rather than finish the
    pulse: the DAC is zeroed in the same instant) and is not a violation."""
    if cut_at is None:
        cuts = ()
    elif isinstance(cut_at, int):
        cuts = (cut_at,)
    else:
        cuts = cut_at
    changes, a0, b0 = _merge(edges_a, edges_b)
    pulses = []
    violations = []
    if a0 and b0:
        violations.append((0, "both legs high"))
    # state machine over segments: idle -> p1 -> gap -> p2 -> idle
    state = "idle"
    if a0 or b0:
        state = "unknown"
    first = None
    t_start = t_p1_end = t_gap_end = 0
    for t, a, b in changes:
        if a and b:
            violations.append((t, "both legs high"))
            state = "unknown"
            continue
        high = "A" if a else ("B" if b else None)
        if state == "idle":
            if high is not None:
                state, first, t_start = "p1", high, t
        elif state == "p1":
            if high is None:
                state, t_p1_end = "gap", t
            else:  # direct switch A->B with no gap
                violations.append((t, "no inter-phase gap"))
                state = "unknown"
        elif state == "gap":
            if high is None:
                continue
            if high == first:
                violations.append((t, "phase %s repeated without the opposite phase" % high))
                state, first, t_start = "p1", high, t
            else:
                state, t_gap_end = "p2", t
        elif state == "p2":
            if high is None:
                p = Pulse(t_start, first, t_p1_end - t_start, t_gap_end - t_p1_end, t - t_gap_end)
                if t in cuts:
                    state = "idle"
                    continue
                if not p.balanced():
                    violations.append((t, "unbalanced pulse %r" % (p,)))
                pulses.append(p)
                state = "idle"
            else:
                violations.append((t, "no rest after a pulse"))
                state = "unknown"
        elif state == "unknown":
            if high is None:
                state = "idle"
    return pulses, violations


def summary(pulses, sys_hz=125_000_000):
    """Measured phase widths, gaps and periods in ns (sets of distinct values) and the count."""
    def ns(c):
        return (c * 1_000_000_000 + sys_hz // 2) // sys_hz

    phases = set()
    gaps = set()
    periods = set()
    for i, p in enumerate(pulses):
        phases.add(ns(p.phase1))
        phases.add(ns(p.phase2))
        gaps.add(ns(p.gap))
        if i:
            periods.add(ns(p.start - pulses[i - 1].start))
    return {
        "pulse_count": len(pulses),
        "phase_ns": sorted(phases),
        "gap_ns": sorted(gaps),
        "period_ns": sorted(periods),
        "first_legs": "".join(p.first_leg for p in pulses[:16]),
    }
