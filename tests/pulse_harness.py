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


def run_sequence(rig, rnd, n_updates=3, max_wait_periods=3):
    """Start a channel with a random request, apply random updates at random moments (pulse
    boundaries are the engine's business), stop at a random moment. Returns a list of problems:
    both legs high, unbalanced or truncated-then-merged phases, or a pulse whose phase/gap matches
    no request made."""
    ch = rig.channel(1)
    a_pin = rig.board.CHANNELS[1]["leg_a"]
    b_pin = rig.board.CHANNELS[1]["leg_b"]
    ea, eb = rig.w.gpio.edges[a_pin], rig.w.gpio.edges[b_pin]
    ma, mb = len(ea), len(eb)
    plan = None
    while plan is None:
        try:
            plan = ch.set(**random_request(rnd))
        except ValueError:
            plan = None
    plans = [plan]
    ch.start()
    for _ in range(n_updates):
        rig.run_cycles(rnd.randint(1, plan.period_cycles * max_wait_periods))
        req = random_request(rnd)
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
        plans.append(new)
    rig.run_cycles(rnd.randint(1, plan.period_cycles * max_wait_periods))
    t_stop = rig.w.now
    ch.stop()
    rig.run_cycles(100)
    pulses, violations = pulse_analysis.analyse(edges_since(ea, ma), edges_since(eb, mb),
                                                cut_at=t_stop)
    problems = [v[1] for v in violations]
    shapes = set((p.phase_cycles, p.gap_cycles) for p in plans)
    for p in pulses:
        if (p.phase1, p.gap) not in shapes:
            problems.append("pulse %r matches no request" % (p,))
    return problems, len(pulses)
