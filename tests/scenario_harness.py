"""Helpers for whole-firmware scenario tests: button sequences and trace queries."""
from host_tools import scenario_core

PRESS_GAP_MS = 300
TENS_CONV = 9  # index in programs.PRESETS: continuous 100 Hz, 2 s ramp, no warm-up
DISUSE = 4  # 50 Hz, 5 s on / 10 s off, no warm-up


class Steps:
    """Builds a step list with a running clock."""

    def __init__(self, t_ms=1800):
        self.t = t_ms
        self.steps = []

    def at(self, t_ms):
        self.t = t_ms
        return self

    def wait(self, ms):
        self.t += ms
        return self

    def add(self, gap_ms=PRESS_GAP_MS, **action):
        s = {"at_ms": self.t}
        s.update(action)
        self.steps.append(s)
        self.t += gap_ms
        return self

    def press(self, name, hold_ms=80, gap_ms=PRESS_GAP_MS):
        return self.add(gap_ms, press=name, hold_ms=hold_ms)

    def start_program(self, index):
        """From the program list: select the program, open it, pass the check, start."""
        for _ in range(index):
            self.press("down", gap_ms=220)
        self.press("ok", gap_ms=500)  # detail
        self.press("ok", gap_ms=500)  # pre-start check
        self.press("ok", gap_ms=600)  # start
        return self

    def raise_level(self, n, gap_ms=150):
        for _ in range(n):
            self.press("up", hold_ms=60, gap_ms=gap_ms)
        return self


def run(spec, tmp_path=None):
    """Run a scenario on a simulated Pico with the LittleFS flash; returns (run, trace dict)."""
    from host_tools import scenario

    return scenario.run_spec(spec, None, png=False)


CURRENT_BOARD = ["pico"]  # the safety scenarios set it per test (both boards)


def spec(steps, duration_ms, files=None, board=None):
    return {"board": board or CURRENT_BOARD[0], "duration_ms": duration_ms,
            "files": files or {},
            "steps": steps.steps if isinstance(steps, Steps) else steps}


def events(result, kind):
    return [e for e in result["events"] if e["kind"] == kind]


def amplitude(result, ch):
    return result["channels"][str(ch)]["amplitude_ma"]


def enabled(result):
    return result["channels"]["1"]["enabled"]


def level_at(record, t_ms):
    """Value of a [[t, v], ...] record at time t_ms."""
    v = record[0][1] if record else 0
    for t, x in record:
        if t > t_ms:
            break
        v = x
    return v


def screen_at(result, t_ms):
    lines = []
    for t, text in result["screens"]:
        if t > t_ms:
            break
        lines = text
    return lines


def screen_text_between(result, t0, t1):
    out = []
    for t, text in result["screens"]:
        if t0 <= t <= t1:
            out.append("\n".join(text))
    return "\n".join(out)


__all__ = ["Steps", "run", "spec", "events", "amplitude", "enabled", "level_at", "screen_at",
           "scenario_core"]
