"""A scenario (the JSON of host_tools/scenarios/*.json) run on the emulated Pico: the real
MicroPython image, the firmware as `make flash` lays it out, the board of board.py around it.

    from host_tools.emuchip import scenario
    result = scenario.run(spec, version="1.28.0")      # spec: dict as for host_tools.scenario
    result["events"], result["channels"]["1"]["amplitude_ma"], result["channels"]["1"]["enabled"]
    result["screens"]            # [[t_ms, text rows]] of every new OLED frame (OCR of the pixels)

    python -m host_tools.emuchip.scenario FILE.json [--version 1.28.0] [--out DIR]

The result has the shape of host_tools/scenario_core.trace_dict() (the host simulation's trace),
so the two can be compared entry by entry (tests/test_chip_firmware.py does).

Time base. On the host the firmware's imports take no time: the app starts at power-on (t = 0). On
the chip MicroPython boots and loads the .mpy files first (about 0.9 s emulated). So that the same
scenario means the same thing on both, the chip's scenario clock starts when the app does: at the
START of the app's display init, the first transfer to the display other than the NOP that
startup.py sends before it loads the app (DISPLAY_PROBE); the splash and every later screen are
timed from about there, as on the host. When the display does not answer, at the START of the
transfer it did not answer (the probe: the unit goes to its no-display fault there). Steps at
at_ms 0 act at power-on, before main.py runs (as on the host: BACK held at power-on is safe mode).
Every time in the result is on that scenario clock (anything earlier is stamped 0);
result["epoch_ms"] is when, after power-on, the app started on the chip. After a chip reset the
firmware boots again on the chip (the second app start is later than on the host by that boot
time again).

What the chip shows from outside is what the trace holds:
  events      "boot" (power_on / watchdog / soft), "input" (each step), "reset", "hang",
              "screen" (the screen named from the text of each new frame: see screen_name()),
              "output" ("running" while the output enable pin is high, "idle" when it is low).
              The host trace's "session" and "fault" events come from reading the app's objects,
              which a real chip does not show: they are not in the chip's trace ("fault": the
              alert screen's text is in "screens").
  channels    per channel: amplitude_ma [[t_ms, mA]] at every change of the DAC duty (PWM compare
              register as MicroPython reads it back, board calibration, 0.01 mA), enabled
              [[t_ms, bool]] of the enable pin, pulses (host_tools/pulse_analysis summary of the
              legs' edges; a pulse cut within CUT_WINDOW_MS after the enable fell, the DAC went to
              0 or the chip reset is a deliberate stop, not a violation).
  screens     [[t_ms, rows]]: a frame counts once no I2C byte came for SETTLE_MS, stamped with the
              time of its last byte (as the host trace).
  flash_erases  [t_ms] of every flash sector or block erase (LittleFS compacting a directory
              while the firmware writes a file; not in the host trace).
Step actions on the chip: press (+hold_ms), electrode, load_ohm, over_current, battery_mv, usb,
trigger (board_pico.PicoBoardModel, as on the host), hang (the CPU locks up: board.hang()),
stall_ms (the CPU is frozen for that long, then goes on). Not available on the chip: crash (an
exception injected into the loop needs the host's hooks) and power_cut / power_on.
"""
import argparse
import json
import sys
import time

from host_tools import scenario_core

SETTLE_MS = 2
CUT_WINDOW_MS = 20  # a leg falling this soon after a stop marker ends a pulse deliberately
EPOCH_LIMIT_MS = 10_000  # no I2C at all within this: the app never started
DISPLAY_PROBE = b"\x00\xe3"  # firmware/startup.py asks the display for a NOP before the app
ERASE_OPCODES = (0x20, 0x52, 0xD8)  # serial flash: 4 KB sector, 32 KB and 64 KB block erase
CHIP_ACTIONS = ("press", "electrode", "load_ohm", "over_current", "battery_mv", "usb",
                "trigger", "hang", "stall_ms")

# screen names (firmware/ui.py SCREEN_NAMES) from the text of a frame, first match wins
SCREEN_RULES = (
    ("blank", lambda r: not r),
    ("splash", lambda r: any("NMES handheld" in x for x in r)),
    ("notice", lambda r: r[0].startswith("! File problem")),
    ("alert", lambda r: r[0] == "! ALERT !"),
    ("list", lambda r: r[0].startswith("Programs")),
    ("check", lambda r: r[0] == "Ready?"),
    ("pause", lambda r: r[0] == "Paused"),
    ("done", lambda r: r[0] == "Session done"),
    ("settings", lambda r: r[0] == "Settings"),
    ("delete", lambda r: r[0] == "Delete program?"),
    ("history", lambda r: r[0].startswith("History (")),
    ("run", lambda r: r[-1] in ("+/- ok:ch bk:||", "LOCKED") or r[-1].startswith("up: restart")),
    ("detail", lambda r: r[-1] == "ok:start back"),
)


class ChipScenarioError(scenario_core.ScenarioError):
    pass


def screen_name(rows):
    """The UI screen a frame shows, named as firmware/ui.py names it (SCREEN_RULES); "blank" for a
    frame with no text (the display's init clears it), "other" when no rule matches."""
    for name, rule in SCREEN_RULES:
        try:
            if rule(rows):
                return name
        except (IndexError, TypeError):
            pass
    return "other"


def validate(spec):
    scenario_core.validate(spec)
    if spec.get("board", "pico") != "pico":
        raise ChipScenarioError("the emulated chip is an RP2040: board must be \"pico\"")
    for i, s in enumerate(spec.get("steps", [])):
        acts = [k for k in s if k in scenario_core.ACTIONS]
        if acts and acts[0] not in CHIP_ACTIONS:
            raise ChipScenarioError(
                "steps[%d].%s is not available on the emulated chip (only %s); run this scenario "
                "on the host simulation (python -m host_tools.scenario)" % (
                    i, acts[0], ", ".join(CHIP_ACTIONS)))
    return spec


def _ma(board, duty):
    if duty <= 0:
        return 0.0
    return round(duty * board.DAC_VREF_V / 65535 * board.DAC_MA_PER_VOLT + board.DAC_OFFSET_MA, 2)


class ChipRun:
    """One scenario on a fresh emulated chip; run() returns the result dict."""

    def __init__(self, spec, version=None, exact_pio=True, progress=None, display=True,
                 chip=None, root=None):
        from host_tools.emuchip.image import DEFAULT_VERSION

        self.spec = validate(spec)
        self.version = version or DEFAULT_VERSION
        self.exact_pio = exact_pio
        self.progress = progress
        self.display = display
        self.chip = chip
        self.root = root  # the repository whose device files go on flash (default: this one)
        self.board = None
        self.epoch = None  # cycle of the first I2C START (the app's start)
        self.events = []
        self.frames = []  # (cycle of last byte, pixels)
        self.screens = []
        self._last_px = None
        self._settle = None
        self.boot_cycles = [0]
        self.erases = []  # cycles of flash erases (see _hooks)
        self._start_cycle = 0  # of the last I2C START

    # -- time ----------------------------------------------------------------------------------
    def t_ms(self, cycle):
        if self.epoch is None or cycle <= self.epoch:
            return 0
        return (cycle - self.epoch) * 8 // 1_000_000

    def _event(self, cycle, kind, **fields):
        e = {"t_ms": self.t_ms(cycle), "kind": kind}
        e.update(fields)
        self.events.append(e)

    # -- setup ---------------------------------------------------------------------------------
    def _make_chip(self):
        from host_tools.emuchip import chip as chip_mod
        from host_tools.emuchip.board import attach

        files = dict(self.spec.get("files", {}))
        fs = chip_mod.make_flash_files() if self.root is None else chip_mod.make_flash_files(
            self.root)
        for p, d in files.items():
            fs["/" + p.lstrip("/")] = d.encode() if isinstance(d, str) else bytes(d)
        self.chip = c = chip_mod.Chip(self.version, fs, exact_pio=self.exact_pio)
        self.board = attach(c, display=self.display)
        return c

    def _hooks(self):
        b = self.board
        w = b.world
        bridge = b.i2c
        orig_start = bridge._on_start

        orig_connect = b.chip.mcu.i2c[b.board.I2C_ID].on_connect

        def on_start(repeated):
            self._start_cycle = w.now
            self._settle.cancel()  # a frame is complete only once the bus is quiet
            orig_start(repeated)

        def on_connect(address, mode):
            orig_connect(address, mode)
            if self.epoch is None and address == b.board.OLED_ADDR and bridge.nacks > nacks[0]:
                self.epoch = self._start_cycle  # the display did not answer: no app to wait for
            nacks[0] = bridge.nacks

        nacks = [bridge.nacks]
        i2c = b.chip.mcu.i2c[b.board.I2C_ID]
        i2c.on_start = on_start
        i2c.on_connect = on_connect
        bridge.on_transaction = self._on_i2c
        self._settle = w.clock.create_alarm(self._frame_settled)
        orig_trigger = b.chip.mcu.watchdog.on_watchdog_trigger

        def trigger():
            orig_trigger()  # board.py records the reset, then the chip resets
            r = b.resets[-1]
            self.boot_cycles.append(r["cycle"])
            self._event(r["cycle"], "reset", reason=r["reason"])
            self._event(r["cycle"], "boot", reason=r["reason"])

        b.chip.mcu.watchdog.on_watchdog_trigger = trigger
        # flash sector / block erases (LittleFS writing: a compaction erases): their cycles
        ssi = b.chip.mcu.ssi
        orig_apply = ssi._apply_command

        def apply_command():
            buf = ssi._tx_buffer
            if buf and buf[0] in ERASE_OPCODES and ssi._write_enabled:
                self.erases.append(w.now)
            orig_apply()

        ssi._apply_command = apply_command

    def _on_i2c(self, addr, data, start, end):
        if addr == self.board.board.OLED_ADDR:
            if self.epoch is None and data != DISPLAY_PROBE:
                self.epoch = start  # the app's display init (see the module docstring)
            self._settle.schedule(SETTLE_MS * 1_000_000)

    def _frame_settled(self):
        from host_tools.scenario import ocr

        px = self.board.oled.pixels()
        if px != self._last_px:
            self._last_px = px
            last = self.board.i2c.last_stop_cycle
            rows = ocr(px)
            self.frames.append((last, px))
            self.screens.append([self.t_ms(last), rows])
            self._event(last, "screen", state=screen_name(rows))

    # -- steps ---------------------------------------------------------------------------------
    def _apply(self, s):
        b = self.board
        m = b.model
        w = b.world
        now = w.now
        if "press" in s:
            self._event(now, "input", press=s["press"], hold_ms=s.get("hold_ms", 100))
            m.press(s["press"], s.get("hold_ms", 100))
        elif "electrode" in s:
            v = s["electrode"]
            m.electrode(v["channel"], v["connected"])
            self._event(now, "input", electrode=v)
        elif "load_ohm" in s:
            v = s["load_ohm"]
            m.load_ohm(v["channel"], v["ohm"])
            self._event(now, "input", load_ohm=v)
        elif "over_current" in s:
            v = s["over_current"]
            m.over_current(v["channel"], bool(v.get("on", True)))
            self._event(now, "input", over_current=v)
        elif "battery_mv" in s:
            m.battery(s["battery_mv"])
            self._event(now, "input", battery_mv=s["battery_mv"])
        elif "usb" in s:
            m.usb(s["usb"])
            self._event(now, "input", usb=s["usb"])
        elif "trigger" in s:
            m.trigger(s["trigger"])
            self._event(now, "input", trigger=s["trigger"])
        elif "hang" in s:
            self._event(now, "input", hang=True)
            b.hang()
        elif "stall_ms" in s:
            self._event(now, "input", stall_ms=s["stall_ms"])
            b.stall(s["stall_ms"])

    def _schedule_steps(self, at_power_on):
        w = self.board.world
        for s in self.spec.get("steps", []):
            t = s["at_ms"]
            if (t == 0) != at_power_on:
                continue
            if at_power_on:
                self._apply(s)
            else:
                w.schedule(self.epoch + w.cycles(int(t * 1_000_000)), self._step_fn(s))

    def _step_fn(self, s):
        return lambda: self._apply(s)

    # -- the run -------------------------------------------------------------------------------
    def run(self):
        c = self.chip or self._make_chip()
        if self.board is None:
            from host_tools.emuchip.board import attach

            self.board = attach(c, display=self.display)
        self._hooks()
        self._event(0, "boot", reason="power_on")
        self._schedule_steps(True)
        c.start(60.0)
        t_wall = time.monotonic()
        lim = EPOCH_LIMIT_MS * 1_000_000
        while self.epoch is None and c.nanos < lim:
            c.run(ms=5)
        if self.epoch is None:
            self.epoch = self.board.world.now  # no I2C at all: the scenario clock starts now
        self._schedule_steps(False)
        w = self.board.world
        end = self.epoch + w.cycles(int(self.spec["duration_ms"] * 1_000_000))
        while w.now < end:
            step = min(end - w.now, w.cycles(250 * 1_000_000))
            c.run(cycles=step)
            if self.progress is not None:
                self.progress(self.t_ms(w.now), self.spec["duration_ms"],
                              time.monotonic() - t_wall)
        self.end_cycle = w.now
        return self.result()

    # -- the trace -------------------------------------------------------------------------------
    def _edges_ms(self, pin):
        return [[self.t_ms(cyc), bool(lv)] for cyc, lv in self.board.world.gpio.edges[pin]]

    def enabled_record(self):
        return self._edges_ms(self.board.board.OUTPUT_ENABLE)

    def amplitude_record(self, ch):
        b = self.board.board
        out = []
        last = None
        for cyc, duty in self.board.world.pwm_log.get(b.CHANNELS[ch]["dac"], []):
            ma = _ma(b, duty)
            if ma != last:
                out.append([self.t_ms(cyc), ma])
                last = ma
        if not out:
            out.append([0, 0.0])
        return out

    def _cuts(self, ch):
        """Cycles of leg falls that end a pulse deliberately (see CUT_WINDOW_MS)."""
        b = self.board.board
        w = self.board.world
        markers = [c for c, lv in w.gpio.edges[b.OUTPUT_ENABLE] if not lv]
        markers += [c for c, d in w.pwm_log.get(b.CHANNELS[ch]["dac"], []) if d == 0]
        markers += [r["cycle"] for r in self.board.resets]
        win = w.cycles(CUT_WINDOW_MS * 1_000_000)
        cuts = set()
        for leg in ("leg_a", "leg_b"):
            for c, lv in w.gpio.edges[b.CHANNELS[ch][leg]]:
                if not lv and any(0 <= c - m <= win for m in markers):
                    cuts.add(c)
        return cuts

    def result(self):
        from host_tools import pulse_analysis

        b = self.board.board
        w = self.board.world
        w.sync()
        chans = {}
        enabled = self.enabled_record()
        for ch in (1, 2):
            c = b.CHANNELS[ch]
            ea = list(w.gpio.edges[c["leg_a"]])
            eb = list(w.gpio.edges[c["leg_b"]])
            pulses, violations = pulse_analysis.analyse(ea, eb, cut_at=self._cuts(ch))
            s = pulse_analysis.summary(pulses, w.sys_hz)
            s["violations"] = [v[1] for v in violations][:10]
            chans[str(ch)] = {"amplitude_ma": self.amplitude_record(ch), "enabled": enabled,
                              "pulses": s}
        events = list(self.events)
        for t, on in enabled[1:]:
            events.append({"t_ms": t, "kind": "output", "state": "running" if on else "idle"})
        events.sort(key=lambda e: e["t_ms"])  # stable: same-time events keep their order
        return {"events": events, "channels": chans, "screens": self.screens,
                "epoch_ms": self.epoch * 8 / 1e6 if self.epoch is not None else None,
                "end_ms": self.t_ms(self.end_cycle), "version": self.version,
                "console": self.board.console(), "resets": [
                    {"t_ms": self.t_ms(r["cycle"]), "reason": r["reason"]}
                    for r in self.board.resets],
                "i2c_nacks": self.board.i2c.nacks,
                "flash_erases": [self.t_ms(c) for c in self.erases]}


def run(spec, version=None, exact_pio=True, progress=None, display=True):
    """Run `spec` (a scenario dict) on a fresh emulated Pico; returns the result dict."""
    return ChipRun(spec, version=version, exact_pio=exact_pio, progress=progress,
                   display=display).run()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--version", default=None, help="MicroPython version of the image")
    ap.add_argument("--out", default=None, help="write DIR/trace.json there")
    a = ap.parse_args(argv)
    with open(a.file) as f:
        spec = json.load(f)

    def progress(t, d, wall):
        print("emulated %d / %d ms, %.0f s wall" % (t, d, wall), file=sys.stderr, flush=True)

    try:
        res = run(spec, version=a.version, progress=progress)
    except scenario_core.ScenarioError as e:
        print("scenario error: %s" % e, file=sys.stderr)
        return 2
    text = json.dumps(res, indent=1)
    if a.out:
        import os

        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "trace.json"), "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
