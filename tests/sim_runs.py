"""Whole-firmware runs in the host simulation with what a scenario file cannot express: a ctrl-C
from the serial port at a given time, and a board with no display on its I2C bus. Used by
tests/test_service_path.py and tests/test_no_display.py."""
from host_tools import scenario_core
from host_tools.scenario import ocr
from host_tools.sim import flash as flash_mod


class Run(scenario_core.Run):
    """scenario_core.Run plus interrupt_ms (a KeyboardInterrupt raised in the firmware at that
    time of the first boot, as a ctrl-C on the REPL port does) and display=False (no OLED on
    the I2C bus: nothing answers at its address)."""

    def __init__(self, spec, interrupt_ms=None, display=True):
        super().__init__(spec, ocr=ocr, flash_factory=flash_mod.SimFlash)
        self.interrupt_ms = interrupt_ms
        self.display = display
        self._interrupted = False

    def _new_world(self, start_cycle, reason="power_on"):
        w = super()._new_world(start_cycle, reason)
        if not self.display:
            w.i2c_devices.pop(self.board.OLED_ADDR, None)
        return w

    def _schedule_steps(self, w):
        super()._schedule_steps(w)
        if self.interrupt_ms is not None and not self._interrupted:
            w.schedule(w.cycle_at_ns(self.interrupt_ms * 1_000_000), self._interrupt)

    def _load_main(self, w):
        try:
            super()._load_main(w)
        except KeyboardInterrupt:
            # main.py let the ctrl-C out (as firmware before the service path did): the chip
            # sits in the REPL, whatever is still running goes on
            self.trace.event(w.ms(), "repl")

    def _interrupt(self):
        self._interrupted = True
        self.trace.event(self._t_ms(), "input", interrupt=True)
        raise KeyboardInterrupt


def run(spec, **kw):
    r = Run(spec, **kw)
    trace = r.run()
    return r, scenario_core.trace_dict(trace)


def edges_ms(r, pin):
    """[(t_ms, level)] of one GPIO over the whole run."""
    w = r.world
    return [(w.ms(c), lv) for c, lv in scenario_core.merged_edges(r.trace, pin)]
