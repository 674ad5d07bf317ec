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


class Analyser:
    """The pulse state machine over a record that arrives in pieces (long sessions: nothing but
    the open pulse and the summary is kept). Feed consecutive pieces of the two legs' edges with
    feed(); pieces must not overlap in time and every edge of one cycle must come in one piece.

    keep=True keeps every Pulse in .pulses (what analyse() returns); .stats accumulates the
    summary either way; .violations keeps the first `max_violations`, .violation_count all."""

    def __init__(self, a0, b0, keep=True, sys_hz=125_000_000, max_violations=None,
                 summarise=True):
        self.a = a0
        self.b = b0
        self.keep = keep
        self.pulses = []
        self.violations = []
        self.violation_count = 0
        self.max_violations = max_violations
        self.stats = Summary(sys_hz) if summarise else None
        # state machine over segments: idle -> p1 -> gap -> p2 -> idle
        self.state = "unknown" if (a0 or b0) else "idle"
        self.first = None
        self.t_start = self.t_p1_end = self.t_gap_end = 0
        if a0 and b0:
            self._violation(0, "both legs high")

    def _violation(self, t, what):
        self.violation_count += 1
        if self.max_violations is None or len(self.violations) < self.max_violations:
            self.violations.append((t, what))

    def feed(self, edges_a, edges_b, cuts=()):
        """edges_*: changes [(cycle, level)] of this piece (no initial entry). `cuts`: cycles of
        deliberate stops in this piece (see analyse)."""
        # the two legs merged on the fly: at each cycle where either changes (all of its edges
        # at that cycle applied), one step of the state machine
        a = self.a
        b = self.b
        na = len(edges_a)
        nb = len(edges_b)
        ia = 0
        ib = 0
        state = self.state
        first = self.first
        t_start = self.t_start
        t_p1_end = self.t_p1_end
        t_gap_end = self.t_gap_end
        keep = self.keep
        stats = self.stats
        while ia < na or ib < nb:
            if state == "idle" and ia + 1 < na and ib + 1 < nb and not a and not b:
                # the usual case in one step: a whole well-formed pulse next, first leg up and
                # down, then the other leg up and down, nothing else in between nor at its end
                # (the step by step machine below gives the same pulse from these 4 changes)
                if edges_a[ia][0] < edges_b[ib][0]:
                    e1 = edges_a
                    i1 = ia
                    e2 = edges_b
                    i2 = ib
                    leg = "A"
                else:
                    e1 = edges_b
                    i1 = ib
                    e2 = edges_a
                    i2 = ia
                    leg = "B"
                r1 = e1[i1]
                f1 = e1[i1 + 1]
                r2 = e2[i2]
                f2 = e2[i2 + 1]
                t4 = f2[0]
                if r1[1] and not f1[1] and r2[1] and not f2[1] and \
                        r1[0] < f1[0] < r2[0] < t4 and \
                        (i1 + 2 >= len(e1) or e1[i1 + 2][0] > t4):
                    ia += 2
                    ib += 2
                    if t4 in cuts:
                        continue
                    p = Pulse(r1[0], leg, f1[0] - r1[0], r2[0] - f1[0], t4 - r2[0])
                    if p.phase1 != p.phase2:
                        self._violation(t4, "unbalanced pulse %r" % (p,))
                    if keep:
                        self.pulses.append(p)
                    if stats is not None:
                        stats.add(p)
                    continue
            if ib >= nb:
                t = edges_a[ia][0]
            elif ia >= na:
                t = edges_b[ib][0]
            else:
                t = edges_a[ia][0]
                cb = edges_b[ib][0]
                if cb < t:
                    t = cb
            while ia < na and edges_a[ia][0] == t:
                a = edges_a[ia][1]
                ia += 1
            while ib < nb and edges_b[ib][0] == t:
                b = edges_b[ib][1]
                ib += 1
            if a and b:
                self._violation(t, "both legs high")
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
                    self._violation(t, "no inter-phase gap")
                    state = "unknown"
            elif state == "gap":
                if high is None:
                    continue
                if high == first:
                    self._violation(t, "phase %s repeated without the opposite phase" % high)
                    state, first, t_start = "p1", high, t
                else:
                    state, t_gap_end = "p2", t
            elif state == "p2":
                if high is None:
                    state = "idle"
                    if t in cuts:
                        continue
                    p = Pulse(t_start, first, t_p1_end - t_start, t_gap_end - t_p1_end,
                              t - t_gap_end)
                    if p.phase1 != p.phase2:
                        self._violation(t, "unbalanced pulse %r" % (p,))
                    if keep:
                        self.pulses.append(p)
                    if stats is not None:
                        stats.add(p)
                else:
                    self._violation(t, "no rest after a pulse")
                    state = "unknown"
            elif state == "unknown":
                if high is None:
                    state = "idle"
        self.a = a
        self.b = b
        self.state = state
        self.first = first
        self.t_start = t_start
        self.t_p1_end = t_p1_end
        self.t_gap_end = t_gap_end


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
    an = Analyser(edges_a[0][1] if edges_a else 0, edges_b[0][1] if edges_b else 0,
                  summarise=False)
    an.feed(edges_a[1:], edges_b[1:], cuts)
    return an.pulses, an.violations


class Summary:
    """summary() accumulated one pulse at a time (sets of distinct values stay small)."""

    def __init__(self, sys_hz=125_000_000):
        self.sys_hz = sys_hz
        self.count = 0
        self.phases = set()
        self.gaps = set()
        self.periods = set()
        self.first_legs = ""
        self.last_start = None

    def _ns(self, c):
        return (c * 1_000_000_000 + self.sys_hz // 2) // self.sys_hz

    def add(self, p):
        hz = self.sys_hz
        half = hz // 2  # ns(c) = (c * 1e9 + hz // 2) // hz, inline
        phases = self.phases
        phases.add((p.phase1 * 1_000_000_000 + half) // hz)
        phases.add((p.phase2 * 1_000_000_000 + half) // hz)
        self.gaps.add((p.gap * 1_000_000_000 + half) // hz)
        if self.last_start is not None:
            self.periods.add(((p.start - self.last_start) * 1_000_000_000 + half) // hz)
        self.last_start = p.start
        if self.count < 16:
            self.first_legs += p.first_leg
        self.count += 1

    def result(self):
        return {
            "pulse_count": self.count,
            "phase_ns": sorted(self.phases),
            "gap_ns": sorted(self.gaps),
            "period_ns": sorted(self.periods),
            "first_legs": self.first_legs,
        }


def summary(pulses, sys_hz=125_000_000):
    """Measured phase widths, gaps and periods in ns (sets of distinct values) and the count."""
    s = Summary(sys_hz)
    for p in pulses:
        s.add(p)
    return s.result()
