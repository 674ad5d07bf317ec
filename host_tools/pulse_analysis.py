"""Measure biphasic pulses from recorded GPIO edges (the ground truth of the simulation).

Common subset of CPython and MicroPython: the portable property tests use it on both.

Input: two edge lists [(cycle, level), ...] for leg A and leg B (sorted, first entry = initial
level). Output: a list of Pulse records and a list of violations (both legs high, unbalanced
phases, a phase without its partner).
"""
try:
    from operator import lt as _lt
    from operator import sub as _sub
except ImportError:  # MicroPython: no operator module
    def _lt(x, y):
        return x < y

    def _sub(x, y):
        return x - y

_INF = float("inf")
# feed() takes a run of well-formed pulses with list operations (Analyser._bulk) instead of one
# at a time; BULK = False takes them one at a time (tests/test_pulse_analyser.py compares both).
BULK = True
BULK_MAX = 4096  # most pulses one _bulk call looks at (its lists are a few times this long)


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
    summary either way; .violations keeps the first `max_violations`, .violation_count all.
    columns=True keeps the pulses as columns instead of Pulse records (.cols: starts, first legs,
    phase1, gaps, phase2; what analyse_columns() returns), and .pulses stays empty."""

    def __init__(self, a0, b0, keep=True, sys_hz=125_000_000, max_violations=None,
                 summarise=True, columns=False):
        self.a = a0
        self.b = b0
        self.keep = keep
        self.pulses = []
        self.cols = ([], [], [], [], []) if columns else None
        self._win = 16  # pulses the next _bulk call looks at (doubles while whole runs pass)
        self._cool = 0  # one-at-a-time steps before _bulk is tried again
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
        cols = self.cols
        bulk = BULK
        while ia < na or ib < nb:
            if state == "idle" and ia + 1 < na and ib + 1 < nb and not a and not b:
                if bulk:
                    if self._cool:
                        self._cool -= 1
                    else:
                        k = (na - ia) >> 1
                        if (nb - ib) >> 1 < k:
                            k = (nb - ib) >> 1
                        if self._win < k:
                            k = self._win
                        if k >= 4:
                            n = self._bulk(edges_a, ia, edges_b, ib, cuts, k)
                            if n == k:
                                self._win = min(2 * self._win, BULK_MAX)
                            elif n == 0:
                                self._win = 16
                                self._cool = 8
                            else:
                                self._cool = 1  # the pulse that stopped it: one at a time
                            if n:
                                ia += 2 * n
                                ib += 2 * n
                                continue
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
                    if cols is not None:
                        self._col(p)
                    elif keep:
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
                    if cols is not None:
                        self._col(p)
                    elif keep:
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


    def _col(self, p):
        c = self.cols
        c[0].append(p.start)
        c[1].append(p.first_leg)
        c[2].append(p.phase1)
        c[3].append(p.gap)
        c[4].append(p.phase2)

    def _bulk(self, ea, ia, eb, ib, cuts, k):
        """Up to k pulses at once from ea[ia:] and eb[ib:] (state idle, both legs low): the
        pulses feed()'s one-pulse step would take one after another (one leg up and down, then
        the other, nothing else in between nor on the first leg before the second leg's fall),
        found with list operations. Returns how many it took; the first one it did not take is
        left to feed() (0: not even the first)."""
        A = ea[ia:ia + 2 * k + 1]  # the k pulses' edges and the next one, if any
        B = eb[ib:ib + 2 * k + 1]
        la = [e[1] for e in A]
        lb = [e[1] for e in B]
        n = k  # pulses taken: cut down to the first that does not fit
        lar = la[0:2 * k:2]
        laf = la[1:2 * k:2]
        lbr = lb[0:2 * k:2]
        lbf = lb[1:2 * k:2]
        if lar.count(1) != k or laf.count(0) != k or lbr.count(1) != k or lbf.count(0) != k:
            n = 0
            while n < k and lar[n] == 1 and laf[n] == 0 and lbr[n] == 1 and lbf[n] == 0:
                n += 1
            if n == 0:
                return 0
        ta = [e[0] for e in A]
        tb = [e[0] for e in B]
        ar = ta[0:2 * n:2]
        af = ta[1:2 * n:2]
        br = tb[0:2 * n:2]
        bf = tb[1:2 * n:2]
        an = ta[2:2 * n + 1:2]  # the first leg's next edge (none after the record's last)
        bn = tb[2:2 * n + 1:2]
        if len(an) < n:
            an.append(_INF)
        if len(bn) < n:
            bn.append(_INF)
        x1 = list(map(_lt, ar, af))  # each leg up before it is down
        x2 = list(map(_lt, br, bf))
        xa = list(map(_lt, af, br))  # A first: A down before B up ...
        xa2 = list(map(_lt, bf, an))  # ... and A's next edge after B's fall
        if False not in x1 and False not in x2 and False not in xa and False not in xa2:
            order = "A"
        else:
            xb = list(map(_lt, bf, ar))  # B first
            xb2 = list(map(_lt, af, bn))
            if False not in x1 and False not in x2 and False not in xb and False not in xb2:
                order = "B"
            else:
                order = None
                # (zip without strict=: MicroPython has none; every list is n long)
                ok = [p and q and ((r and s) or (u and v))
                      for p, q, r, s, u, v in zip(x1, x2, xa, xa2, xb, xb2)]  # noqa: B905
                if False in ok:
                    n = ok.index(False)
                    if n == 0:
                        return 0
                    del ar[n:], af[n:], br[n:], bf[n:], xa[n:]
        if order is not None:
            # the leg that goes first (r1, f1), then the other (r2, f2)
            r1, f1, r2, f2 = (ar, af, br, bf) if order == "A" else (br, bf, ar, af)
            starts = r1
            legs = order * n
            p1 = list(map(_sub, f1, r1))
            gap = list(map(_sub, r2, f1))
            p2 = list(map(_sub, f2, r2))
            t4 = f2
        else:
            rows = list(zip(xa, ar, af, br, bf))  # noqa: B905 (all n long)
            starts = [r if x else s for x, r, f, s, g in rows]
            legs = ["A" if x else "B" for x in xa]
            p1 = [(f - r) if x else (g - s) for x, r, f, s, g in rows]
            gap = [(s - f) if x else (r - g) for x, r, f, s, g in rows]
            p2 = [(g - s) if x else (f - r) for x, r, f, s, g in rows]
            t4 = [g if x else f for x, r, f, s, g in rows]
        if cuts:
            lo = min(t4)
            hi = max(t4)
            if any(lo <= c <= hi for c in cuts):
                # a pulse ending at a cut is left out
                kept = [j for j in range(len(t4)) if t4[j] not in cuts]
                starts = [starts[j] for j in kept]
                legs = [legs[j] for j in kept]
                p1 = [p1[j] for j in kept]
                gap = [gap[j] for j in kept]
                p2 = [p2[j] for j in kept]
                t4 = [t4[j] for j in kept]
        if p1 != p2:
            for j in range(len(p1)):
                if p1[j] != p2[j]:
                    self._violation(t4[j], "unbalanced pulse %r" % (
                        Pulse(starts[j], legs[j], p1[j], gap[j], p2[j]),))
        c = self.cols
        if c is not None:
            c[0].extend(starts)
            c[1].extend(legs)
            c[2].extend(p1)
            c[3].extend(gap)
            c[4].extend(p2)
        elif self.keep or self.stats is not None:
            ps = list(map(Pulse, starts, legs, p1, gap, p2))
            if self.keep:
                self.pulses.extend(ps)
            st = self.stats
            if st is not None:
                for p in ps:
                    st.add(p)
        return n


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


def analyse_columns(edges_a, edges_b, cut_at=None):
    """analyse() with the pulses as columns: ((starts, first legs, phase1, gaps, phase2),
    violations); column i of every list is analyse()'s pulse i."""
    if cut_at is None:
        cuts = ()
    elif isinstance(cut_at, int):
        cuts = (cut_at,)
    else:
        cuts = cut_at
    an = Analyser(edges_a[0][1] if edges_a else 0, edges_b[0][1] if edges_b else 0,
                  summarise=False, columns=True)
    an.feed(edges_a[1:], edges_b[1:], cuts)
    return an.cols, an.violations


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
