"""Shared harness for pulse-engine tests: a fresh simulated board ("pico" or "esp32") with the
real lib/ engine.

Common subset of CPython and MicroPython (the portable tests use it too).
"""
from host_tools import pulse_analysis


class Rig:
    def __init__(self, board_name="pico"):
        from host_tools.sim import install

        # the world's clock and GPIO count follow the board (ESP32: 80 MHz RMT source cycles)
        self.w, self.board = install.board_world(board_name)
        self.engine = install.load(self.board.PULSE_ENGINE)
        self.plan_mod = install.load("pulse_plan")
        self.channels = {}

    def channel(self, n=1):
        if n not in self.channels:
            self.channels[n] = self.engine.channel(n, self.board)
        return self.channels[n]

    def ms(self, ms):
        return int(ms * (self.w.sys_hz // 1000))

    def run_cycles(self, cycles):
        self.w.advance_to(self.w.now + cycles)
        self.w.sync()

    def run_ms(self, ms):
        self.run_cycles(self.ms(ms))

    def legs(self, n=1):
        c = self.board.CHANNELS[n]
        return self.w.gpio.edges[c["leg_a"]], self.w.gpio.edges[c["leg_b"]]

    def pulses(self, n=1):
        a, b = self.legs(n)
        return pulse_analysis.analyse(a, b)


def check_train(pulses, plan):
    """Every pulse exactly as planned; every period exact. Returns a list of problems."""
    problems = []
    for i, p in enumerate(pulses):
        if p.phase1 != plan.phase_cycles or p.phase2 != plan.phase_cycles:
            problems.append("pulse %d phase %d/%d != %d" % (i, p.phase1, p.phase2,
                                                             plan.phase_cycles))
        if p.gap != plan.gap_cycles:
            problems.append("pulse %d gap %d != %d" % (i, p.gap, plan.gap_cycles))
        if i and p.start - pulses[i - 1].start != plan.period_cycles:
            problems.append("pulse %d period %d != %d" % (i, p.start - pulses[i - 1].start,
                                                           plan.period_cycles))
    return problems


def edges_since(edges, mark):
    """The edge list from index `mark` on, with the level in force at that point first."""
    if mark == 0:
        return edges
    return [(edges[mark - 1][0], edges[mark - 1][1])] + edges[mark:]


def random_request(rnd):
    """A random request inside the engine's ranges (it may still not fit the period)."""
    kind = rnd.random()
    phase = rnd.choice([20, 1000, rnd.randint(20, 1000), rnd.uniform(20, 1000)])
    gap = rnd.choice([1, 1000, rnd.randint(1, 1000), rnd.uniform(1, 200)])
    if kind < 0.15:
        rate = rnd.choice([100, 500, 1000, 2500])
        phase = min(phase, 1e6 / rate / 2.5)
        gap = min(gap, 1e6 / rate / 10)
        count = rnd.randint(2, 8)
        brate = rnd.choice([5, 10, 20, 50, 100])
        return dict(phase_us=max(phase, 20), gap_us=max(gap, 1), rate_hz=rate,
                    burst_count=count, burst_rate_hz=brate)
    rate = rnd.choice([0.5, 200, 50, rnd.uniform(0.5, 200), rnd.randint(1, 200)])
    return dict(phase_us=phase, gap_us=gap, rate_hz=rate, alternate=rnd.random() < 0.25)


# A sequence is a plain description (so a failure can be printed, replayed and shrunk):
#   {"first": request, "updates": [(wait, request), ...], "tail": wait}
# each wait a fraction (0..1] of `max_wait_periods` periods of the first plan. Requests the engine
# refuses are skipped (a refused set() changes nothing; that is tested elsewhere).
CHECK_MEMO = True  # check_sequence reuses a steady train's step (tests/test_sim_batched.py)
LEAD_CYCLES = 2000  # start() or a slot boundary to the leg edge, with margin (both engines)


def random_sequence(rnd, n_updates=3):
    """A sequence drawn from the portable PRNG (the bulk runs and the MicroPython runner)."""
    updates = [(rnd.random(), random_request(rnd)) for _ in range(n_updates)]
    return {"first": random_request(rnd), "updates": updates, "tail": rnd.random()}


def span_cycles(plan):
    """Longest time between two pulse starts of `plan` (a burst's silent slots included), and
    between two moments an update can be loaded (alternating pulses switch at pair boundaries)."""
    if plan.burst_count > 1:
        return plan.period_cycles * (plan.burst_slots - plan.burst_count + 1)
    if plan.alternate:
        return 2 * plan.period_cycles
    return plan.period_cycles


def loop_cycles(plan):
    """One whole pattern of `plan`: a burst with its silent slots, an alternating pair, or one
    period. The ESP32 engine takes updates only where its RMT loop wraps, so an update may wait
    that long (the PIO takes them at every slot boundary, sooner)."""
    return plan.period_cycles * plan.burst_slots * (2 if plan.alternate else 1)


def _spacings(plan):
    if plan.burst_count > 1:
        return (plan.period_cycles, span_cycles(plan))
    return (plan.period_cycles,)


def _fits(diff, plans, j, j2, switch_extra):
    """Can two consecutive pulses played with plans j then j2 (j2 >= j) be `diff` apart?
    Plans between j and j2 were superseded before they were loaded (a newer set() replaces a
    queued one); whether that happened too late is check_sequence's update budget.
    `switch_extra`: how much longer than planned an engine may make the rest at a switch (0 on
    the PIO; the ESP32 RMT restarts both legs' loops: two start skews)."""
    a = plans[j]
    if j == j2:
        return diff in _spacings(a)
    if a.period_cycles <= diff <= a.period_cycles + switch_extra:
        return True  # the switch at the next slot boundary, after a's own period
    if a.burst_count <= 1:
        return False  # every slot plays a pulse: no other spacing is possible
    # across a burst's silent slots, some slots may have used the plans in between
    silent = a.burst_slots - a.burst_count + 1
    lo = min(p.period_cycles for p in plans[j:j2 + 1])
    hi = max(p.period_cycles for p in plans[j:j2 + 1])
    return silent * lo <= diff <= silent * hi + switch_extra


class PulseList:
    """The pulses of pulse_analysis.analyse_columns() as a read-only list of Pulse records, made
    on demand (len, [k], slices, iteration); check_sequence reads the columns (.cols) directly."""

    def __init__(self, cols):
        self.cols = cols

    def __len__(self):
        return len(self.cols[0])

    def __getitem__(self, k):
        if isinstance(k, slice):
            return list(self)[k]
        c = self.cols
        return pulse_analysis.Pulse(c[0][k], c[1][k], c[2][k], c[3][k], c[4][k])

    def __iter__(self):
        c = self.cols
        for k in range(len(c[0])):
            yield pulse_analysis.Pulse(c[0][k], c[1][k], c[2][k], c[3][k], c[4][k])


def check_sequence(pulses, plans, set_at, t_start, t_stop, switch_extra=0):
    """What a user would see on a scope, against what was asked: every pulse has the shape of a
    plan, plans take effect in order and never before they were set, consecutive pulses are
    exactly one period of their plan apart (the burst's silent span across a burst; at a switch
    the engine's documented extra rest), the train starts within one period of start(), leaves
    no hole before stop(), and an update that stayed the newest long enough was played. A stalled
    engine or a dropped update fails here. `pulses`: Pulse records (anything with start, phase1
    and gap) or a PulseList."""
    problems = []
    shapes = [(p.phase_cycles, p.gap_cycles) for p in plans]
    if not len(pulses):
        if t_stop - t_start > span_cycles(plans[0]) + LEAD_CYCLES:
            problems.append("no pulse in %d cycles after start()" % (t_stop - t_start))
        return problems
    cols = getattr(pulses, "cols", None)
    if cols is not None:
        starts = cols[0]
        p1s = cols[2]
        gaps = cols[3]
    else:
        starts = [p.start for p in pulses]
        p1s = [p.phase1 for p in pulses]
        gaps = [p.gap for p in pulses]
    # the plans each pulse can have been played with (in order, never before set)
    reach = set(j for j in range(len(plans))
                if shapes[j] == (p1s[0], gaps[0]) and set_at[j] <= starts[0])
    if not reach:
        problems.append("first pulse %r fits no plan set before it" % (pulses[0],))
        return problems
    if starts[0] - t_start > span_cycles(plans[0]) + LEAD_CYCLES:
        problems.append("first pulse %d cycles after start()" % (starts[0] - t_start))
    played = set(reach)
    # A steady train repeats one step (same reach, shape and spacing) thousands of times; the
    # step's answer is the same whenever no plan of that shape was left out for being set after
    # the pulse (set_at only moves past pulses as the train goes on), so it is kept (`memo`:
    # the last step's inputs and answer; CHECK_MEMO = False works every step out).
    memo = None
    prev = starts[0]
    for k in range(1, len(starts)):
        start = starts[k]
        diff = start - prev
        prev = start
        shape = (p1s[k], gaps[k])
        if memo is not None and memo[0] == diff and memo[1] == shape and memo[2] == reach:
            nxt = memo[3]
        else:
            nxt = set()
            early = True  # every plan of this shape was set before this pulse
            for j2 in range(len(plans)):
                if shapes[j2] != shape:
                    continue
                if set_at[j2] > start:
                    early = False
                    continue
                for j in reach:
                    if j2 >= j and _fits(diff, plans, j, j2, switch_extra):
                        nxt.add(j2)
                        break
            memo = (diff, shape, reach, nxt) if early and CHECK_MEMO else None
        if not nxt:
            problems.append("pulse %d (%r) %d cycles after the previous one fits no plan in order"
                            % (k, pulses[k], diff))
            return problems
        reach = nxt
        played |= nxt
    last = starts[-1]
    # the next pulse was due one span after the last one (a pulse still running at stop() is
    # cut and not counted, so allow for one pulse length too), plus the engine's switch rest
    # when an update was set after it (the ESP32 swap holds the next pulse back by that much)
    late = plans[min(reach):]
    extra = switch_extra if set_at[-1] > last else 0
    if t_stop - last > (max(span_cycles(q) for q in late)
                        + max(2 * q.phase_cycles + q.gap_cycles for q in late) + LEAD_CYCLES
                        + extra):
        problems.append("train ended %d cycles before stop()" % (t_stop - last))
    # an update that stayed the newest for longer than it can take to load (the pattern playing,
    # up to two blocks queued ahead of it, its own pattern) must have played; a burst plan may
    # spend its slots silent, which the loop lengths include
    for j in range(len(plans)):
        until = set_at[j + 1] if j + 1 < len(plans) else t_stop
        budget = LEAD_CYCLES + 2 * switch_extra
        for i in range(max(0, j - 3), j + 1):
            budget += loop_cycles(plans[i]) + 2 * plans[i].phase_cycles + plans[i].gap_cycles
        if until - set_at[j] > budget and not any(i >= j for i in played):
            problems.append("update %d (the newest for %d cycles) never took effect"
                            % (j, until - set_at[j]))
    return problems


def switch_extra(rig):
    """The ESP32 engine's documented longer rest at a switch (two RMT start skews, plus a few
    ticks of rounding); 0 for engines that switch on the pulse grid."""
    skew_ns = getattr(rig.board, "RMT_START_SKEW_NS", 0)
    if not skew_ns:
        return 0
    return (2 * skew_ns + 1000) * (rig.w.sys_hz // 1_000_000) // 1000


def run_sequence(rig, seq, max_wait_periods=3):
    """Play a sequence (random_sequence() or a hypothesis draw) on channel 1; the app's service()
    call is made after every wait, as the 10 ms loop does. Returns (problems, pulses): both legs
    high, unbalanced or merged phases, a shape matching no request, and everything
    check_sequence() finds."""
    ch = rig.channel(1)
    a_pin = rig.board.CHANNELS[1]["leg_a"]
    b_pin = rig.board.CHANNELS[1]["leg_b"]
    ea, eb = rig.w.gpio.edges[a_pin], rig.w.gpio.edges[b_pin]
    ma, mb = len(ea), len(eb)
    try:
        plan = ch.set(**seq["first"])
    except ValueError:
        return [], 0  # nothing to play: the engine refused the request
    plans = [plan]
    t_start = rig.w.now
    ch.start()
    set_at = [t_start]
    longest = plan.period_cycles * max_wait_periods
    for frac, req in seq["updates"]:
        rig.run_cycles(1 + int(frac * longest))
        ch.service()
        req = dict(req)
        req["burst_count"] = plan.burst_count
        if plan.burst_count > 1:
            req["burst_rate_hz"] = plan.sys_hz * 1000 // (plan.period_cycles * plan.burst_slots)
            req["burst_rate_hz"] = req["burst_rate_hz"] / 1000
            req.pop("alternate", None)
        else:
            req.pop("burst_rate_hz", None)
            req["alternate"] = plan.alternate
        try:
            new = ch.set(**req)
        except ValueError:
            continue
        if new != plans[-1]:  # an identical set() is no update
            plans.append(new)
            set_at.append(rig.w.now)
    tail = 1 + int(seq["tail"] * longest * (len(plans) + 2))
    while tail > 0:  # the app's loop keeps calling service() while the train runs
        step = tail if ch.service() else min(tail, rig.ms(10))
        rig.run_cycles(step)
        tail -= step
    t_stop = rig.w.now
    ch.stop()
    # let an engine that finishes its loop unseen after stop (the ESP32 RMT) get idle, so the
    # next sequence on this rig starts from a quiet channel
    rig.run_cycles(max(loop_cycles(p) for p in plans) + LEAD_CYCLES)
    cols, violations = pulse_analysis.analyse_columns(edges_since(ea, ma), edges_since(eb, mb),
                                                      cut_at=t_stop)
    pulses = PulseList(cols)
    problems = [v[1] for v in violations]
    shapes = set((p.phase_cycles, p.gap_cycles) for p in plans)
    p1s = cols[2]
    gaps = cols[3]
    if not set(zip(p1s, gaps)) <= shapes:  # noqa: B905 (MicroPython: no strict=; equal lengths)
        for k in range(len(p1s)):
            if (p1s[k], gaps[k]) not in shapes:
                problems.append("pulse %r matches no request" % (pulses[k],))
    if not problems:
        problems = check_sequence(pulses, plans, set_at, t_start, t_stop, switch_extra(rig))
    return problems, len(pulses)
