"""Shared harness for pulse-engine tests: a fresh simulated Pico with the real lib/ engine.

Common subset of CPython and MicroPython (the portable tests use it too).
"""
from host_tools import pulse_analysis


class Rig:
    def __init__(self, board_name="pico"):
        from host_tools.sim import install, world as world_mod

        self.w = world_mod.new_world()
        install.install(self.w)
        self.board = install.load("board_config").load(board_name)
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


def check_train(pulses, plan, allow_first_gap=True):
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
