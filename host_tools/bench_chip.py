"""Figures measured on the emulated RP2040 running real MicroPython (host_tools/emuchip/), for
`make bench` (host_tools/bench.py calls measure()) or on their own:

    python -m host_tools.bench_chip [--version 1.28.0]     # table on stderr, JSON line on stdout

Every figure is read from the emulated chip's own records (GPIO edges with their clk_sys cycle,
I2C transfers, the REPL), on an RP2040 at 125 MHz with the MicroPython image named in the result:

  chip_heap_after_boot_kb     gc.mem_alloc() after `app.App(board)` and gc.collect(), as main.py
                              builds it (the board held in safe mode at power-on, so the REPL
                              builds the app: the same imports and constructor); also the free heap
                              (gc.mem_free()) and MicroPython's own allocation before the app
                              (chip_heap_before_app_kb). Goal: < 60 KB.
  chip_tick_ms_median / _max  App.step, start to end, over every tick of a session: the program
                              list (9 presses), a program started (TENS conventional, 100 Hz),
                              intensity raised to 10 mA, then steady stimulation. Measured like a
                              scope probe: the bench wraps App.step so a spare GPIO (GP10) is high
                              while it runs; the wrapper's own cost (the two pin writes) is
                              measured on the chip and subtracted. Also in emulated CPU cycles
                              (chip_tick_cycles_*), and what the longest tick spent on the I2C bus.
                              Goal: max < 5 ms.
  chip_press_to_screen_ms_*   a button's first contact -> the last I2C byte of the next complete
                              frame (the frame as the panel shows it), over the same presses;
                              includes the debounce, the render on the chip and the transfer at
                              400 kHz. Goal: < 50 ms.
  chip_stop_to_enable_low_us  the STOP button's first contact -> output enable low, while the
                              output is on: once at a quiet moment of the loop and once 1 ms into a
                              display transfer. Goal: < 1 ms (1000 us).

What the emulator does not model (rp2040py 0.3.6): flash XIP cache misses and wait states (every
instruction runs from flash as from SRAM: real firmware running from flash is slower, notably
after a cache miss: 2-3x on code that misses), bus contention, and the RP2040's 2-cycle cost of
some instructions is as rp2040py counts it. So the cycle figures are lower bounds for the real
chip on code that runs out of the XIP cache. The I2C bus time is modelled (board.py).
"""
import argparse
import json
import statistics
import sys
import time

PROBE_STEP = 10  # spare GPIOs the bench drives as scope probes (not used by the board)
PROBE_UI = 11
SYS_HZ = 125_000_000
GOALS = {"chip_heap_after_boot_kb": 60.0, "chip_tick_ms_max": 5.0,
         "chip_press_to_screen_ms_max": 50.0, "chip_stop_to_enable_low_us_max": 1000.0}
TENS_CONV = 9  # index in the program list

CTRL_C, CTRL_D = b"\x03", b"\x04"


def _progress(msg):
    sys.stderr.write("bench_chip: %s\n" % msg)
    sys.stderr.flush()


class Bench:
    def __init__(self, version=None, progress=_progress):
        from host_tools.emuchip import chip as chip_mod
        from host_tools.emuchip.board import attach
        from host_tools.emuchip.image import DEFAULT_VERSION, image_path

        self.version = version or DEFAULT_VERSION
        image_path(self.version)  # a clear error naming PICO_FIRMWARE when there is no image
        self.progress = progress or (lambda m: None)
        files = chip_mod.make_flash_files()
        files["/settings.json"] = b'{"first_sessions_half": false}'
        self.chip = chip_mod.Chip(self.version, files, exact_pio=True)
        self.board = attach(self.chip)
        self.w = self.board.world
        for p in (PROBE_STEP, PROBE_UI):
            self.w.gpio.watch(p)
        self.i2c_log = []  # (start_cycle, end_cycle, n_bytes) of every display transaction
        self.board.i2c.on_transaction = self._on_i2c
        self._i2c_start = []  # START cycles (to find "a transfer is going on")
        orig = self.chip.mcu.i2c[0].on_start

        def on_start(repeated):
            self._i2c_start.append(self.w.now)
            orig(repeated)

        self.chip.mcu.i2c[0].on_start = on_start
        self.presses = []  # (name, cycle of first contact)
        self.stops = []  # (cycle of STOP contact, label)
        self.wall0 = time.monotonic()

    def _on_i2c(self, addr, data, start, end):
        self.i2c_log.append((start, end, len(data)))

    # -- driving -----------------------------------------------------------------------------
    def ms(self, n):
        self.chip.run(ms=n)

    def press(self, name, hold_ms=60, then_ms=250):
        c0, _ = self.board.model.press(name, hold_ms)
        self.presses.append((name, c0))
        self.ms(then_ms)

    def boot_safe_mode(self):
        """Power on with BACK held: main.py leaves the REPL free (safe mode)."""
        self.board.model.hold("back", True)
        self.chip.start(120.0)
        t_end = self.chip.nanos + 3e9
        while "safe mode" not in self.board.console() and self.chip.nanos < t_end:
            self.ms(10)
        if "safe mode" not in self.board.console():
            raise RuntimeError("the firmware did not reach safe mode; console: %r"
                               % self.board.console())
        self.board.model.hold("back", False)

    def launch(self, code, timeout=300.0):
        """Start `code` on the raw REPL and return once MicroPython accepted it (it keeps
        running: a loop that never returns)."""
        c = self.chip
        c.exec("pass")  # into the raw REPL
        c._rx.clear()
        c._capture = True
        c._send(code.encode() + CTRL_D, timeout)
        c._until(lambda: len(c._rx) >= 2, timeout, "raw REPL OK")
        if bytes(c._rx[:2]) != b"OK":
            raise RuntimeError("raw REPL refused the bench code: %r" % bytes(c._rx[:200]))

    def interrupt(self, timeout=300.0):
        """Ctrl-C the running code; back to the raw REPL prompt."""
        c = self.chip
        c._rx.clear()
        c._send(CTRL_C, timeout)
        c._until(lambda: c._rx.count(CTRL_D) >= 2 and c._rx.endswith(b">"), timeout,
                 "interrupting the bench loop")
        c._rx.clear()

    # -- figures -----------------------------------------------------------------------------
    def heap(self):
        out = self.chip.exec(
            "import gc\ngc.collect()\n_b = gc.mem_alloc()\nimport board_config\n"
            "board = board_config.load()\nimport app\na = app.App(board)\ngc.collect()\n"
            "print(_b, gc.mem_alloc(), gc.mem_free())\n"
            "import time\n_t = time.ticks_us()\ngc.collect()\n"
            "print(time.ticks_diff(time.ticks_us(), _t))", timeout=600.0)
        before, alloc, free, gc_us = (int(x) for x in out.split())
        return {"chip_heap_before_app_kb": round(before / 1024, 1),
                "chip_heap_after_boot_kb": round(alloc / 1024, 1),
                "chip_heap_after_boot_bytes": alloc,
                "chip_heap_free_kb": round(free / 1024, 1),
                "chip_heap_free_bytes": free,
                "chip_gc_collect_ms": round(gc_us / 1000, 2)}

    def start_probed_loop(self):
        """App.run() with App.step and App.ui_step wrapped by probe pins (PROBE_STEP high while a
        step runs, PROBE_UI while a ui_step runs); 20 calibration pulses of the same wrapper
        around an empty function first."""
        self.launch(
            "import machine\n"
            "_P = machine.Pin(%d, machine.Pin.OUT, value=0)\n"
            "_Q = machine.Pin(%d, machine.Pin.OUT, value=0)\n"
            "def _nop(now):\n    pass\n"
            "def _cal(now):\n    _P.value(1)\n    _nop(now)\n    _P.value(0)\n"
            "for _i in range(20):\n    _cal(0)\n"
            "_s = a.step\n_u = a.ui_step\n"
            "def _step(now):\n    _P.value(1)\n    _s(now)\n    _P.value(0)\n"
            "def _ui(now):\n    _Q.value(1)\n    _u(now)\n    _Q.value(0)\n"
            "a.step = _step\na.ui_step = _ui\na.run()\n" % (PROBE_STEP, PROBE_UI))

    def pulses(self, pin, c0=0, c1=None):
        """(rise, fall) cycle pairs of a probe pin within [c0, c1)."""
        out = []
        rise = None
        for c, lv in self.w.gpio.edges[pin][1:]:
            if c < c0 or (c1 is not None and c >= c1):
                continue
            if lv:
                rise = c
            elif rise is not None:
                out.append((rise, c))
                rise = None
        return out

    def frame_ends(self):
        """Cycle of the last byte of every complete frame (no display byte for 2 ms after it)."""
        log = self.i2c_log
        gap = 2 * SYS_HZ // 1000
        ends = []
        for i, (_s, e, _n) in enumerate(log):
            nxt = log[i + 1][0] if i + 1 < len(log) else None
            if nxt is None or nxt - e >= gap:
                ends.append(e)
        return ends

    def i2c_busy(self, c0, c1):
        """Cycles of display bus time inside [c0, c1) and bytes sent."""
        busy = 0
        nbytes = 0
        for s, e, n in self.i2c_log:
            lo, hi = max(s, c0), min(e, c1)
            if hi > lo:
                busy += hi - lo
                nbytes += n
        return busy, nbytes

    def stop_trial(self, label, during_transfer):
        w = self.w
        if during_transfer:
            n0 = len(self._i2c_start)
            t_end = self.chip.nanos + 2.5e9
            while len(self._i2c_start) == n0 and self.chip.nanos < t_end:
                self.chip.run(us=200)
            if len(self._i2c_start) == n0:
                raise RuntimeError("no display transfer to press STOP into")
            # 1 ms after that transfer began (its own START: a page takes about 3 ms)
            target = self._i2c_start[n0] + SYS_HZ // 1000
            if target > w.now:
                self.chip.run(cycles=target - w.now)
        en = self.board.board.OUTPUT_ENABLE
        if not w.gpio.level(en):
            raise RuntimeError("the output is not on at the STOP trial (%s)" % label)
        c0, _ = self.board.model.press("stop", 80)
        self.presses.append(("stop", c0))
        self.stops.append((c0, label))
        self.ms(300)

    def restart_session(self):
        for _ in range(4):  # dismiss the alert, detail, check, start
            self.press("ok", 60, 300)
        self.ms(200)

    def run(self):
        p = self.progress
        p("booting MicroPython %s in safe mode (BACK held)" % self.version)
        self.boot_safe_mode()
        p("building the app on the REPL (heap)")
        out = self.heap()
        p("heap after App(): %.1f KB allocated, %.1f KB free" % (
            out["chip_heap_after_boot_kb"], out["chip_heap_free_kb"]))
        self.start_probed_loop()
        c_loop = self.w.now
        self.ms(300)
        p("the program list: 9 presses (press to screen)")
        self.press("down", 60, 300)  # leaves the splash for the list
        for _ in range(TENS_CONV):
            self.press("down", 60, 250)
        p("start TENS conventional, raise to 10 mA")
        for _ in range(3):
            self.press("ok", 60, 350)
        for _ in range(10):
            self.press("up", 60, 150)
        self.ms(1000)
        c_steady_end = self.w.now
        p("STOP trials")
        self.stop_trial("1 ms into a display transfer", True)
        self.restart_session()
        self.stop_trial("at a quiet moment of the loop", False)
        c_end = self.w.now
        # figures
        probe = self.pulses(PROBE_STEP, c_loop, c_end)
        cal, probe = probe[:20], probe[20:]  # the wrapper around an empty function comes first
        overhead = min(f - r for r, f in cal)
        ticks = [(r, f, f - r - overhead) for r, f in probe]
        session = [t for t in ticks if t[1] <= c_steady_end]
        cyc = sorted(t[2] for t in session)
        longest = max(session, key=lambda t: t[2])
        busy, nbytes = self.i2c_busy(longest[0], longest[1])
        out.update({
            "chip_tick_count": len(cyc),
            "chip_tick_cycles_median": int(statistics.median(cyc)),
            "chip_tick_cycles_max": cyc[-1],
            "chip_tick_ms_median": round(statistics.median(cyc) / SYS_HZ * 1000, 3),
            "chip_tick_ms_max": round(cyc[-1] / SYS_HZ * 1000, 3),
            "chip_tick_max_i2c_ms": round(busy / SYS_HZ * 1000, 3),
            "chip_tick_max_i2c_bytes": nbytes,
            "chip_probe_overhead_cycles": overhead,
        })
        steady = [t[2] for t in session if t[0] >= c_steady_end - SYS_HZ]
        if steady:
            out["chip_tick_ms_median_steady"] = round(statistics.median(steady) / SYS_HZ * 1e3, 3)
            out["chip_tick_ms_max_steady"] = round(max(steady) / SYS_HZ * 1e3, 3)
        no_frame = [t[2] for t in session if self.i2c_busy(t[0], t[1])[0] == 0]
        if no_frame:
            out["chip_tick_ms_max_without_display"] = round(max(no_frame) / SYS_HZ * 1e3, 3)
        ui = [f - r - overhead for r, f in self.pulses(PROBE_UI, c_loop, c_steady_end)]
        if ui:
            out["chip_ui_step_ms_max"] = round(max(ui) / SYS_HZ * 1e3, 3)
        ends = self.frame_ends()
        lat = []
        first_byte = []
        each = []
        for name, c in self.presses:
            if name == "stop" or c > c_steady_end:
                continue
            after = [e for e in ends if e > c]
            starts = [s for s, _e, _n in self.i2c_log if s > c]
            if after:
                lat.append((after[0] - c) / SYS_HZ * 1e3)
                first_byte.append((starts[0] - c) / SYS_HZ * 1e3)
                each.append([name, round(lat[-1], 2), round(first_byte[-1], 2)])
        out.update({
            "chip_press_to_screen_ms_median": round(statistics.median(lat), 2),
            "chip_press_to_screen_ms_max": round(max(lat), 2),
            "chip_press_to_first_i2c_ms_max": round(max(first_byte), 2),
            "chip_press_count": len(lat),
            "chip_press_to_screen_each": each,  # [button, ms to the frame, ms to its 1st byte]
        })
        en = self.w.gpio.edges[self.board.board.OUTPUT_ENABLE]
        stops = []
        for c, label in self.stops:
            falls = [ce for ce, lv in en if ce >= c and not lv]
            during = [e for st, e, _n in self.i2c_log if st <= c < e]
            stops.append({"trial": label, "us": round((falls[0] - c) / SYS_HZ * 1e6, 1),
                          "during_display_transfer": bool(during),
                          # the enable fell before that transfer's STOP: the stop path did not
                          # wait for the I2C write to finish
                          "before_transfer_end": bool(during) and falls[0] < during[0]})
        out["chip_stop_to_enable_low_us_max"] = max(s["us"] for s in stops)
        out["chip_stop_trials"] = stops
        out["chip_micropython"] = self.version
        out["chip_emulated_s"] = round(self.chip.nanos / 1e9, 2)
        out["chip_wall_s"] = round(time.monotonic() - self.wall0, 1)
        out["chip_goals"] = dict(GOALS)
        out["chip_goals_met"] = {k: out[k] < v for k, v in GOALS.items()}
        return out


def measure(version=None, progress=_progress):
    """Every figure above as a dict (keys chip_*); about 3-5 min wall."""
    return Bench(version, progress).run()


def table(res):
    rows = [
        ("heap after boot (gc.mem_alloc after App())", "%.1f KB" % res["chip_heap_after_boot_kb"],
         "< 60 KB"),
        ("free heap then (gc.mem_free())", "%.1f KB" % res["chip_heap_free_kb"], ""),
        ("gc.collect() with the app built", "%.2f ms" % res["chip_gc_collect_ms"], ""),
        ("App.step median / max", "%.3f / %.3f ms" % (res["chip_tick_ms_median"],
                                                      res["chip_tick_ms_max"]), "max < 5 ms"),
        ("  (cycles at 125 MHz)", "%d / %d" % (res["chip_tick_cycles_median"],
                                               res["chip_tick_cycles_max"]), ""),
        ("  I2C bus time inside the longest tick", "%.3f ms" % res["chip_tick_max_i2c_ms"], ""),
        ("press to screen median / max", "%.2f / %.2f ms" % (
            res["chip_press_to_screen_ms_median"], res["chip_press_to_screen_ms_max"]),
         "< 50 ms"),
        ("STOP contact to enable low (max)", "%.1f us" % res["chip_stop_to_enable_low_us_max"],
         "< 1000 us"),
    ]
    lines = ["Measured on the emulated RP2040 (rp2040py, 125 MHz, no XIP cache model) with "
             "MicroPython %s:" % res["chip_micropython"]]
    for name, val, goal in rows:
        lines.append("  %-44s %-22s %s" % (name, val, goal))
    for s in res["chip_stop_trials"]:
        lines.append("    STOP %s: %.1f us" % (s["trial"], s["us"]))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", default=None, help="MicroPython version of the image")
    a = ap.parse_args(argv)
    res = measure(a.version)
    sys.stderr.write(table(res) + "\n")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
