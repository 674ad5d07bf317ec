"""Shared harness for EMG tests: a fresh simulated board ("pico" or "esp32") with lib/emg.py, the
board's real pulse engine and the simulated muscle on the EMG input.

Common subset of CPython and MicroPython (tests/portable/test_emg_portable.py uses it too).
"""
import sys


class EmgRig:
    def __init__(self, board_name="pico", seed=7, **muscle_kw):
        from host_tools.sim import install, muscle

        self.w, self.board = install.board_world(board_name)
        self.emg_mod = install.load("emg")
        self.engine = install.load(self.board.PULSE_ENGINE)
        self.machine = sys.modules["machine"]
        self.muscle = muscle.Muscle(self.w, self.board, seed=seed, **muscle_kw)
        self.emg = self.emg_mod.Emg(self.board)
        pin = self.machine.Pin
        self.enable = pin(self.board.OUTPUT_ENABLE, pin.OUT, value=0)
        self.channels = {}

    def channel(self, n=1, watch=True):
        if n not in self.channels:
            ch = self.engine.channel(n, self.board)
            if watch:
                self.emg.watch(ch)
            self.channels[n] = ch
        return self.channels[n]

    def cycles_ms(self, ms):
        return self.w.cycles(int(ms * 1_000_000))

    def tick(self, ms=10):
        """One loop tick: time moves on `ms` (the timer IRQs fire on their cycles), then the
        loop's process()."""
        self.w.advance_to(self.w.now + self.cycles_ms(ms))
        return self.emg.process()

    def run_ms(self, ms, each=None):
        """Ticks of 10 ms for `ms`; each(rig) after every tick (may return True to stop).
        Returns the highest envelope seen."""
        peak = 0
        t = 0
        while t < ms:
            self.tick(10)
            t += 10
            if self.emg.envelope_uv > peak:
                peak = self.emg.envelope_uv
            if each is not None and each(self):
                break
        return peak


def import_device(name):
    """Import a pure device module (firmware/, lib/) that uses MicroPython's time API: on CPython
    with the simulation's time stand-in in place while it imports (as tests/device_path.py does
    for safety and session)."""
    import time as host_time

    from tests import device_path  # noqa: F401

    if hasattr(host_time, "ticks_diff"):
        return __import__(name)
    from host_tools.sim import simtime

    sys.modules["time"] = simtime
    try:
        return __import__(name)
    finally:
        sys.modules["time"] = host_time
