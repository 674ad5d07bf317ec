"""Scenario engine: the whole firmware from power-on in the simulation, driven by a script.

Common subset of CPython and MicroPython (one full scenario also runs on the unix port). The
CPython front end (host_tools/scenario.py) adds the files: VCD, PNG frames, flash dump.

A scenario:
    {"board": "pico", "duration_ms": N, "files": {"<path on flash>": "<content>"},
     "steps": [{"at_ms": 0, "press": "ok", "hold_ms": 100}, ...]}
Step actions: press (+hold_ms), electrode {channel, connected}, load_ohm {channel, ohm},
battery_mv, usb, trigger, hang, power_cut, power_on, over_current {channel, on}.

A chip reset (watchdog, machine.reset) or a power cut ends the current World; the next boot gets
a fresh World whose clock continues where the last one stopped, so the chip starts from its reset
state while the physical things around it (electrodes, battery, OLED, flash) carry on. The records
of all boots are merged into one trace.
"""
import sys

# (gc_mod imported here, not where it is used: a run may mount the simulated flash at /)
from host_tools.sim import gc_mod, install
from host_tools.sim import world as world_mod

BUTTON_NAMES = ("up", "down", "ok", "back", "stop")
ACTIONS = ("press", "electrode", "load_ohm", "battery_mv", "usb", "trigger", "hang",
           "power_cut", "power_on", "over_current", "stall_ms", "crash", "emg")
# Beyond the list: over_current {channel, on} (a short in the bridge), stall_ms N
# (the main loop is blocked for N ms, then goes on), crash true (an exception in the main loop).
MAX_DURATION_MS = 4 * 3600 * 1000
OBSERVE_MS = 5  # the observer samples app state this often (device time)
PARK_OBSERVER = True  # while ticks are left out, its no-op looks are not scheduled (_unpark)
RECORD_MS = 1000  # a streaming run hands its records to the Recorder this often (device time)
KEEP_MS = 1000  # ... keeping the last second in the world (the current-sense model reads it)
SETTLE_MS = 2  # an OLED frame is complete when no I2C byte came for this long


# machine.*_RESET values of the rp2 port, per boot reason
RESET_CAUSE = {"power_on": 1, "power_cut": 1, "watchdog": 3, "soft": 5}


class ScenarioError(ValueError):
    pass


class SimulationEnd(BaseException):
    pass


class Hang(BaseException):
    pass


class PowerLost(BaseException):
    pass


def _num(v):
    return (isinstance(v, int) or isinstance(v, float)) and not isinstance(v, bool) and v == v


def validate(spec):
    """Check a scenario dict; raises ScenarioError naming the exact place and the fix."""
    if not isinstance(spec, dict):
        raise ScenarioError("a scenario is a JSON object with board, duration_ms and steps")
    for k in spec:
        if k not in ("board", "duration_ms", "files", "steps", "name", "description", "seed"):
            raise ScenarioError("unknown key %r at the top level" % k)
    board = spec.get("board", "pico")
    if board not in ("pico", "esp32_devkitc", "esp32"):
        raise ScenarioError("board %r: expected \"pico\" or \"esp32\"" % (board,))
    d = spec.get("duration_ms")
    if not _num(d) or d <= 0 or d > MAX_DURATION_MS:
        raise ScenarioError("duration_ms must be a number of ms in 1..%d, got %r" % (
            MAX_DURATION_MS, d))
    files = spec.get("files", {})
    if not isinstance(files, dict):
        raise ScenarioError("files must map flash paths to text contents")
    for path in files:
        if not isinstance(files[path], str):
            raise ScenarioError("files[%r] must be text" % (path,))
    steps = spec.get("steps", [])
    if not isinstance(steps, list):
        raise ScenarioError("steps must be a list")
    last = 0
    for i in range(len(steps)):
        s = steps[i]
        where = "steps[%d]" % i
        if not isinstance(s, dict):
            raise ScenarioError("%s must be an object" % where)
        t = s.get("at_ms")
        if not _num(t) or t < 0:
            raise ScenarioError("%s.at_ms must be a number >= 0, got %r" % (where, t))
        if t < last:
            raise ScenarioError("%s.at_ms %r is before the previous step (%r): keep steps in "
                                "time order" % (where, t, last))
        last = t
        acts = [k for k in s if k in ACTIONS]
        extra = [k for k in s if k not in ACTIONS and k not in ("at_ms", "hold_ms")]
        if extra:
            raise ScenarioError("%s: unknown key(s) %s; actions are %s" % (
                where, ", ".join(extra), ", ".join(ACTIONS)))
        if len(acts) != 1:
            raise ScenarioError("%s needs exactly one action (%s), has %d" % (
                where, ", ".join(ACTIONS), len(acts)))
        a = acts[0]
        v = s[a]
        if a == "press":
            if v not in BUTTON_NAMES:
                raise ScenarioError("%s.press: %r is not a button (%s)" % (
                    where, v, ", ".join(BUTTON_NAMES)))
            h = s.get("hold_ms", 100)
            if not _num(h) or h <= 0 or h > 60000:
                raise ScenarioError("%s.hold_ms must be in 1..60000, got %r" % (where, h))
        elif a in ("electrode", "load_ohm", "over_current"):
            if not isinstance(v, dict) or v.get("channel") not in (1, 2):
                raise ScenarioError("%s.%s needs {\"channel\": 1 or 2, ...}" % (where, a))
            if a == "electrode" and not isinstance(v.get("connected"), bool):
                raise ScenarioError("%s.electrode.connected must be true or false" % where)
            if a == "load_ohm" and (not _num(v.get("ohm")) or v.get("ohm") <= 0):
                raise ScenarioError("%s.load_ohm.ohm must be a number > 0" % where)
        elif a == "battery_mv":
            if not _num(v) or v < 0 or v > 6000:
                raise ScenarioError("%s.battery_mv must be in 0..6000" % where)
        elif a in ("usb", "trigger"):
            if not isinstance(v, bool):
                raise ScenarioError("%s.%s must be true or false" % (where, a))
        elif a == "stall_ms":
            if not _num(v) or v <= 0 or v > 60000:
                raise ScenarioError("%s.stall_ms must be in 1..60000" % where)
        elif a == "emg":  # the muscle on the EMG input (host_tools/sim/muscle.py, issue 10)
            from host_tools.sim import muscle

            err = muscle.validate_step(v, where)
            if err:
                raise ScenarioError(err)
        elif a in ("hang", "power_cut", "power_on", "crash"):
            if v is not True:
                raise ScenarioError("%s.%s must be true" % (where, a))
    return spec


class Trace:
    def __init__(self, board):
        self.board = board
        self.events = []
        self.screens = []
        self.amplitude = {1: [], 2: []}
        self.enabled = {1: [], 2: []}
        self.frames = []  # (t_ms, pixels rows) when the visible frame changed
        self.boots = []  # (start_cycle, end_cycle, world)
        self.recorder = None  # a Recorder when the run streams its records (long sessions)

    def event(self, t_ms, kind, **fields):
        e = {"t_ms": t_ms, "kind": kind}
        for k in fields:
            e[k] = fields[k]
        self.events.append(e)


class Run:
    """One scenario run. run() returns the Trace."""

    def __init__(self, spec, flash_dir=None, ocr=None, seed=1, flash_factory=None,
                 recorder=None, on_frame=None, progress=None, skip=True):
        self.spec = validate(spec)
        # skip: leave out the loop ticks the firmware says would only repeat the last one while
        # no input changes (see _skip_hook); the run is the same either way, only faster
        self.skip = skip
        self.ticks_left_out = 0
        self._sk_n = 0
        self._sk_last = 0
        self._sk_until = 0
        self._park_h = None
        self._park = None
        self._sk_fired = -1
        self._sk_from = 0
        self._sk_reads = []
        # recorder: a Recorder (or a callable(board) -> Recorder) that takes the pin edges and
        # DAC log every RECORD_MS of device time and at each reset, so memory stays bounded:
        # merged_edges() is then not available, trace_dict() reads the recorder.
        # on_frame(t_ms, pixels): called for each new OLED frame instead of keeping it in
        # trace.frames. progress(t_ms, duration_ms): called about once a device second.
        self.recorder = recorder
        self.on_frame = on_frame
        self.progress = progress
        self.board_name = spec.get("board", "pico")
        if self.board_name == "esp32":
            self.board_name = "esp32_devkitc"
        self.duration_ms = spec["duration_ms"]
        self.flash = None  # CPython: host_tools.sim.flash.SimFlash, made by flash_factory(world)
        self.flash_factory = flash_factory
        self._power_exc = (PowerLost,)
        self.flash_dir = flash_dir  # MicroPython: a real folder
        self.ocr = ocr  # callable(pixels) -> list of text rows, or None
        self.seed = seed
        self.world = None
        self.model = None
        self.oled = None
        self.board = None
        self.trace = None
        self.powered = True
        self.hung = False
        self.physical = {"connected": {1: True, 2: True}, "load_ohm": {1: 1000, 2: 1000},
                         "over_current": {1: False, 2: False}, "battery_mv": 3900,
                         "usb": False, "trigger": False}
        self._last = {}
        self._last_pixels = None
        self._last_frames = -1
        self._end_cycle = 0
        self._oled_end = None
        self.before_main = None  # hook: called right before main.py is imported (benchmarks)

    # -- worlds ------------------------------------------------------------------------------
    def _new_world(self, start_cycle, reason="power_on"):
        w, board = install.board_world(self.board_name)
        w.reset_cause = RESET_CAUSE.get(reason, 1)
        if start_cycle:
            w.now = start_cycle
            w._base_cycle = start_cycle
            w._base_ns = start_cycle * 1_000_000_000 // w.sys_hz
        w.on_reset = self._on_reset
        self.world = w
        self._sk_n = 0  # a new boot: nothing left out yet
        self._park_h = None  # (the observer's parked look was on the old boot's world)
        self._sk_fired = -1
        self.board = board
        from host_tools.sim import board_pico

        m = board_pico.PicoBoardModel(w, board, seed=self.seed)
        if self.oled is None:
            self.oled = m.oled
            self._wrap_oled(board)
        elif m.oled is not None:
            w.i2c_devices[board.OLED_ADDR] = self.oled  # the panel keeps its image over a reset
            m.oled = self.oled
        for ch in (1, 2):
            m.electrode(ch, self.physical["connected"][ch])
            m.load_ohm(ch, self.physical["load_ohm"][ch])
            if self.physical["over_current"][ch]:
                m.over_current(ch, True)
        m.battery(self.physical["battery_mv"])
        m.usb(self.physical["usb"])
        if self.physical["trigger"]:
            m.trigger(True)
        self.model = m
        from host_tools.sim import muscle  # the EMG input's muscle (issue 10)

        self.muscle = muscle.attach(w, board, getattr(self, "muscle", None), self.seed)
        if self.flash is None and self.flash_factory is not None:
            self.flash = self.flash_factory(w)
            self.flash.preload(self._files)
            pc = getattr(sys.modules.get(type(self.flash).__module__), "PowerCut", None)
            if pc is not None:
                self._power_exc = (PowerLost, pc)
        elif self.flash is not None:
            self.flash.world = w
            if self.flash.dead and self.powered:
                self.flash.power_on()
            elif not self.flash.dead:
                self.flash.reboot()
        if self.flash is not None:
            install.install(w, flash=self.flash)
        if self.trace is None:
            self.trace = Trace(board)
            if self.recorder is not None and not isinstance(self.recorder, Recorder):
                self.recorder = self.recorder(board)
            self.trace.recorder = self.recorder
        self.trace.boots.append([w.now, None, w, board])
        return w

    def _wrap_oled(self, board):
        # remember when the last I2C transfer to the panel ended (the bus time of the stand-in:
        # 9 bits per byte plus the address byte, start and stop, at the board's I2C clock)
        o = self.oled
        if o is None:
            return
        orig = o.write
        hz = getattr(board, "I2C_HZ", 400_000)
        run = self

        def write(data, cycle=0):
            orig(data, cycle)
            w = run.world
            run._oled_end = cycle + ((9 * (1 + len(data)) + 2) * w.sys_hz + hz - 1) // hz

        o.write = write

    def _on_reset(self, reason):
        raise world_mod.SimReset(reason)

    # -- steps -------------------------------------------------------------------------------
    def _schedule_steps(self, w):
        for s in self.spec.get("steps", []):
            c = w.cycle_at_ns(int(s["at_ms"] * 1_000_000))
            if c < w.now or (c == w.now and s.get("_done")):
                continue
            w.schedule(c, self._step_fn(s))
        end = w.cycle_at_ns(int(self.duration_ms * 1_000_000))
        w.schedule(end, self._end)
        self._schedule_observer(w)

    def _step_fn(self, s):
        return lambda: self._apply(s)

    def _t_ms(self):
        return self.world.ms()

    def _apply(self, s):
        s["_done"] = True
        m = self.model
        t = self._t_ms()
        ph = self.physical
        if "press" in s:
            self.trace.event(t, "input", press=s["press"], hold_ms=s.get("hold_ms", 100))
            if self.powered:  # a hung chip still has buttons: only the firmware ignores them
                m.press(s["press"], s.get("hold_ms", 100))
        elif "electrode" in s:
            v = s["electrode"]
            ph["connected"][v["channel"]] = v["connected"]
            m.electrode(v["channel"], v["connected"])
            self.trace.event(t, "input", electrode=v)
        elif "load_ohm" in s:
            v = s["load_ohm"]
            ph["load_ohm"][v["channel"]] = v["ohm"]
            m.load_ohm(v["channel"], v["ohm"])
            self.trace.event(t, "input", load_ohm=v)
        elif "over_current" in s:
            v = s["over_current"]
            ph["over_current"][v["channel"]] = bool(v.get("on", True))
            m.over_current(v["channel"], bool(v.get("on", True)))
            self.trace.event(t, "input", over_current=v)
        elif "battery_mv" in s:
            ph["battery_mv"] = s["battery_mv"]
            m.battery(s["battery_mv"])
            self.trace.event(t, "input", battery_mv=s["battery_mv"])
        elif "usb" in s:
            ph["usb"] = s["usb"]
            m.usb(s["usb"])
            self.trace.event(t, "input", usb=s["usb"])
        elif "trigger" in s:
            ph["trigger"] = s["trigger"]
            m.trigger(s["trigger"])
            self.trace.event(t, "input", trigger=s["trigger"])
        elif "emg" in s:
            if self.muscle is not None:
                self.muscle.apply_step(s["emg"])
            self.trace.event(t, "input", emg=s["emg"])
        elif "hang" in s:
            self.trace.event(t, "input", hang=True)
            if self.powered and not self.hung:
                self.hung = True
                raise Hang()
        elif "stall_ms" in s:
            self.trace.event(t, "input", stall_ms=s["stall_ms"])
            if self.powered and not self.hung:
                w = self.world
                w.advance_to(w.now + w.cycles(int(s["stall_ms"] * 1_000_000)))
        elif "crash" in s:
            self.trace.event(t, "input", crash=True)
            if self.powered and not self.hung:
                raise RuntimeError("fault injected by the scenario")
        elif "power_cut" in s:
            self.trace.event(t, "power_cut")
            if self.powered:
                self.powered = False
                if self.flash is not None and getattr(self.flash, "_op", None) is not None:
                    self.flash.power_cut()  # the write in progress raises when it returns
                else:
                    if self.flash is not None:
                        self.flash.power_cut()
                    raise PowerLost()
        elif "power_on" in s:
            self.trace.event(t, "power_on")
            if not self.powered:
                self.powered = True
                raise PowerLost()  # leave the dead-chip wait: boot again

    def _end(self):
        raise SimulationEnd()

    # -- leaving quiet ticks out (app.sim_skip) -------------------------------------------------
    # The firmware's loop asks this hook at each tick (half False) and, for a tick left out, at
    # its half tick (half True). A tick is left out when the firmware said, after the last tick
    # it ran, that ticks up to some time would only repeat it (App.quiet_ms) and nothing it
    # reads has changed since: no scheduled callback other than the observer fired (button
    # contacts, scenario steps, timers, the watchdog all are callbacks) and every ADC it read in
    # that tick reads the same value now. The loop still sleeps exactly as it would, so every
    # clock and edge stays where it was; the watchdog is fed as the left-out tick would have.
    # Before the firmware runs again, App.skipped() brings its clocks up to the last tick left
    # out. tests/test_sim_skip.py requires the same trace, VCD, frames and flash with it on
    # and off.
    def _skip_hook(self, app, half):
        w = self.world
        if half:
            if w.fired == self._sk_fired:
                return True
            # something came: the firmware samples its buttons now (ui_step). The next tick
            # runs too (fired stays counted): ui_step reads only the buttons.
            app.skipped(self._sk_n, self._sk_last)
            self._sk_n = 0
            self._unpark()
            return False
        now = w.ms()
        if w.fired != self._sk_fired:
            return self._sk_end(app)
        if self._sk_n == 0:
            q = app.quiet_ms(now & 0x3FFFFFFF)
            if q <= 0:
                return self._sk_end(app)
            self._sk_until = now + q
            reads = []
            for pin in w.adc_reads:
                r = w.adc_reads[pin]
                if r[3] >= self._sk_from:  # read by the tick that ran last
                    reads.append(r)
            self._sk_reads = reads
        elif now >= self._sk_until:
            return self._sk_end(app)
        c = w.now
        for r in self._sk_reads:
            if r[0].read_at(r[1], c) != r[2]:
                return self._sk_end(app)
        self._sk_n += 1
        self._sk_last = now & 0x3FFFFFFF
        self.ticks_left_out += 1
        if app.wdt is not None:
            app.wdt.feed()  # as the left-out tick would have: a hang resets 1 s after it
        return True

    def _sk_end(self, app):
        """The firmware runs this tick: catch up on the ticks left out, then watch the inputs
        from here."""
        if self._sk_n:
            app.skipped(self._sk_n, self._sk_last)
            self._sk_n = 0
            self._unpark()
        w = self.world
        self._sk_fired = w.fired
        self._sk_from = w.now
        return False

    # -- observing ---------------------------------------------------------------------------
    def _schedule_observer(self, w):
        step = w.cycles(OBSERVE_MS * 1_000_000)
        every = RECORD_MS // OBSERVE_MS
        n = [0]
        self._park_h = None

        def obs():
            self._observe()
            n[0] += 1
            if n[0] >= every:
                n[0] = 0
                if self.recorder is not None:
                    self.recorder.piece(w, self.trace.boots[-1][0],
                                        w.now - w.cycles(KEEP_MS * 1_000_000))
                if self.progress is not None:
                    self.progress(w.ms(), self.duration_ms)
            if PARK_OBSERVER and self._sk_n and self._nothing_to_observe():
                # Ticks are being left out and no frame is on its way: every look until the
                # firmware runs again would return at once (_observe). Park until the next
                # record boundary; _unpark() puts the looks back on their grid when the firmware
                # is about to run.
                self._park = (w.now, n, obs, step)
                self._park_h = w.schedule(w.now + (every - n[0]) * step, parked, quiet=True)
            else:
                w.schedule(w.now + step, obs, quiet=True)

        def parked():
            self._park_h = None
            n[0] = every - 1  # the looks left out were the no-ops before this one
            obs()

        w.schedule(w.now + step, obs, quiet=True)

    def _unpark(self):
        """The firmware is about to run: the observer's looks left out while parked (none of
        them reached the record boundary, where the parked look waits) are counted, and the
        next look is scheduled on the observer's grid."""
        h = self._park_h
        if h is None:
            return
        h.cancel()
        self._park_h = None
        last, n, obs, step = self._park
        w = self.world
        k = (w.now - last) // step  # grid points in (last, now]: they looked at nothing new
        n[0] += k
        w.schedule(last + (k + 1) * step, obs, quiet=True)

    def _nothing_to_observe(self):
        o = self.oled
        return o is None or (o.frame_count == self._last_frames and self._last_pixels is not None)

    def _observe(self):
        if self._sk_n and self._nothing_to_observe():
            # Ticks are being left out: no firmware code ran since the last look, so the app's
            # state is as it was; only a frame whose transfer ended before the stretch can be
            # new, and the panel's data-write count says whether there is one.
            return
        app = sys.modules.get("app")
        if self.skip and app is not None and getattr(app, "sim_skip", 0) is None:
            app.sim_skip = self._skip_hook
        a = getattr(app, "current", None) if app is not None else None
        t = self._t_ms()
        last = self._last
        if a is not None and not self._sk_n:  # (ticks left out: the app's state is as it was)
            u = a.ui
            # every 5 ms of device time: compare the raw values, name the screen only on a change
            scr = u.screen
            if scr != last.get("_screen_raw", -1) or "screen" not in last:
                last["_screen_raw"] = scr
                v = _screen_name(u)
                if last.get("screen") != v:
                    last["screen"] = v
                    self.trace.event(t, "screen", state=v)
            v = a.sup.state
            if last.get("output") != v:
                last["output"] = v
                self.trace.event(t, "output", state=v)
            v = u.out.state if (u.session is not None and u.out is not None) else "none"
            if last.get("session") != v:
                last["session"] = v
                self.trace.event(t, "session", state=v)
            faults = a.sup.faults
            n = last.get("faults", 0)
            if len(faults) > n:
                for f in faults[n:]:
                    self.trace.event(t, "fault", fault=getattr(f, "kind", str(f)),
                                     channel=getattr(f, "channel", 0))
            last["faults"] = len(faults)
        self._observe_oled(t)

    def _observe_oled(self, t):
        # A frame counts once its transfer is over (no I2C write for SETTLE_MS); it is stamped
        # with the time of its last I2C byte, the moment the panel shows it whole.
        o = self.oled
        if o is None:
            return
        w = self.world
        last = self._oled_end
        if last is None:
            return
        if last > w.now or w.now - last < w.cycles(SETTLE_MS * 1_000_000):
            return  # a transfer is still going on (or only just ended)
        if getattr(o, "frame_count", 0) == self._last_frames and self._last_pixels is not None:
            return
        self._last_frames = getattr(o, "frame_count", 0)
        px = o.pixels()
        if px != self._last_pixels:
            self._last_pixels = px
            t_last = w.ms(last) if last >= self.trace.boots[0][0] else t
            if self.on_frame is not None:
                self.on_frame(t_last, px)
            else:
                self.trace.frames.append((t_last, px))
            text = self.ocr(px) if self.ocr is not None else []
            self.trace.screens.append([t_last, text])

    # -- boot loop ---------------------------------------------------------------------------
    def run(self):
        files = dict(self.spec.get("files", {}))
        if "board.txt" not in files and "/board.txt" not in files:
            # the simulated chip reports sys.platform of the host: the board is named on flash
            # (board_config.load reads /board.txt first), as on a custom board
            files["board.txt"] = self.board_name + "\n"
        self._files = files
        if self.ocr is not None:
            self.ocr([[0] * 8] * 8)  # load what OCR needs from the host before the run
        if self.flash_factory is None and self.flash_dir is not None:
            _preload_dir(self.flash_dir, files)
        cycle = 0
        reason = "power_on"
        while True:
            w = self._new_world(cycle, reason)
            self.trace.event(w.ms(), "boot", reason=reason)
            self.hung = False
            self._schedule_steps(w)
            try:
                # steps at the boot instant (e.g. BACK held at power-on) act before main.py runs
                if self.powered:
                    w.run_due()
                try:
                    if not self.powered:
                        # dead chip: only the physical world moves until power returns
                        w.advance_to(w.cycle_at_ns(int(self.duration_ms * 1_000_000)) + 1)
                    self._load_main(w)
                    # main returned (safe mode): the chip idles in the REPL
                    w.advance_to(w.cycle_at_ns(int(self.duration_ms * 1_000_000)) + 1)
                except Hang:
                    self.trace.event(w.ms(), "hang")
                    w.advance_to(w.cycle_at_ns(int(self.duration_ms * 1_000_000)) + 1)
            except world_mod.SimReset as r:
                self.trace.event(w.ms(), "reset", reason=r.reason)
                reason = r.reason
            except SimulationEnd:
                self._finish(w)
                return self.trace
            except Exception as e:  # noqa: BLE001 - a simulator problem, not the firmware's
                self.trace.event(w.ms(), "sim_error", error=repr(e))
                self._finish(w)
                raise
            except BaseException as e:  # noqa: B036 - power loss classes are BaseExceptions
                if not isinstance(e, self._power_exc):
                    raise
                reason = "power_on" if self.powered else "power_cut"
                if not self.powered:
                    self._chip_dead(w)
            self._finish_boot(w)
            cycle = w.now + 1

    def _load_main(self, w):
        if self.before_main is not None:
            self.before_main(self)
        # main.py runs the app inside its import (as on the device, where it never returns).
        # Modules it imports later (the app after the safe-mode check) must see the simulated
        # flash too, so the builtin open() is the flash's for as long as the firmware runs; and
        # `gc` is MicroPython's API over no heap (host_tools/sim/gc_mod.py), not CPython's.
        import builtins

        real_open = builtins.open
        real_gc = sys.modules.get("gc")
        if self.flash is not None:
            builtins.open = self.flash.open
        sys.modules["gc"] = gc_mod  # type: ignore[assignment]
        try:
            install.load("main", w=w)
        finally:
            builtins.open = real_open
            if real_gc is None:
                del sys.modules["gc"]
            else:
                sys.modules["gc"] = real_gc

    def _chip_dead(self, w):
        if self.oled is not None:
            self.oled.reset()  # no power: the panel forgets its image

    def _finish_boot(self, w):
        w.sync()
        self.trace.boots[-1][1] = w.now
        if self.recorder is not None:
            self.recorder.piece(w, self.trace.boots[-1][0], w.now + 1, end=w.now)

    def _finish(self, w):
        self._observe()
        self._finish_boot(w)
        self._end_cycle = w.now


def _screen_name(u):
    try:
        import ui as ui_mod

        return ui_mod.SCREEN_NAMES[u.screen]
    except Exception:  # noqa: BLE001
        return str(u.screen)


def _preload_dir(folder, files):
    import os

    for path in files:
        p = path.lstrip("/")
        full = folder + "/" + p
        i = full.rfind("/")
        if i > 0:
            try:
                os.mkdir(full[:i])
            except OSError:
                pass
        with open(full, "w") as f:
            f.write(files[path])


# -- trace assembly (portable) -----------------------------------------------------------------

def merged_edges(trace, pin):
    """Edges of one GPIO over every boot, as one list (initial level first)."""
    if trace.recorder is not None:
        raise ValueError("this run streamed its edges (Recorder): read them from the recorder's "
                         "outputs (VCD, pulse summary), or run without a recorder")
    out = []
    level = None
    for start, end, w, _board in trace.boots:
        edges = w.gpio.edges[pin]
        for c, lv in edges:
            if c < start:
                c = start
            if lv != level:
                out.append((c, lv))
                level = lv
        # at a reset the chip releases the pin: hardware pull-downs keep outputs low
        if end is not None and level:
            out.append((end, 0))
            level = 0
    return out


def amplitude_record(trace, ch):
    """[[t_ms, mA]] at every DAC change over every boot, converted with the board calibration."""
    out = []
    last = None
    for _start, end, w, board in trace.boots:
        pin = board.CHANNELS[ch]["dac"]
        for c, duty in w.pwm_log.get(pin, []):
            ma = _duty_to_ma(board, duty)
            if ma != last:
                out.append([w.ms(c), ma])
                last = ma
        if end is not None and last:
            out.append([w.ms(end), 0.0])  # reset: the PWM stops, the RC filter drains
            last = 0.0
    return out


def _duty_to_ma(board, duty):
    if duty <= 0:
        return 0.0
    ma = duty * board.DAC_VREF_V / 65535 * board.DAC_MA_PER_VOLT + board.DAC_OFFSET_MA
    return round(ma, 2)


def enabled_record(trace):
    b = trace.board
    out = []
    for c, lv in merged_edges(trace, b.OUTPUT_ENABLE):
        w = trace.boots[0][2]
        out.append([c * 1000 // w.sys_hz, bool(lv)])
    return out


def wires(board):
    """[(name, gpio)] of the pins a trace records (the VCD wires)."""
    out = []
    for n in (1, 2):
        c = board.CHANNELS[n]
        out.append(("ch%d_a" % n, c["leg_a"]))
        out.append(("ch%d_b" % n, c["leg_b"]))
    out.append(("enable", board.OUTPUT_ENABLE))
    out.append(("output_led", board.OUTPUT_LED))
    for name, gpio in sorted(board.BUTTONS.items(), key=lambda kv: kv[1]):
        out.append(("btn_" + name, gpio))
    return out


class Recorder:
    """Takes a run's records in pieces, in time order, and keeps only what the trace reports:
    the pulse summaries (accumulated pulse by pulse), the DAC amplitude and enable records, and
    the wires' edges handed on to `vcd` (an object with begin(levels), add(events), end(cycle):
    host_tools.vcd.VcdWriter) as they come. Memory does not grow with the number of edges.

    The pieces give exactly what merged_edges / amplitude_record / trace_dict give for the
    whole trace at the end (tests/test_scenario_stream.py compares the two)."""

    def __init__(self, board, vcd=None, max_violations=100):
        from host_tools import pulse_analysis

        self.board = board
        self.wires = wires(board)
        self.pins = [pin for _name, pin in self.wires]
        self.vcd = vcd
        self.levels = [None] * len(self.wires)
        self.index = {}
        for k in range(len(self.pins)):
            self.index[self.pins[k]] = k
        self.amplitude = {1: [], 2: []}
        self.enabled = []
        self._ma = {1: None, 2: None}
        self._pwm_done = {}  # id(world) -> {pin: cycle up to which pwm_log was read}
        self.analysers = {}
        self.sys_hz = None
        self.max_violations = max_violations
        self._mod = pulse_analysis
        self.end_cycle = None
        self._en_level = 0  # the output enable at the end of the last piece

    def piece(self, w, start, cutoff, end=None):
        """Everything world w recorded before cycle `cutoff` (a boot that started at `start`);
        end: the boot ended at that cycle (its last piece: everything left)."""
        b = self.board
        w.sync()  # (the observer that calls this is a quiet callback: no sync before it)
        if self.sys_hz is None:
            self.sys_hz = w.sys_hz
            if self.vcd is not None and getattr(self.vcd, "sys_hz", 0) is None:
                self.vcd.sys_hz = w.sys_hz
        drained = w.gpio.drain(cutoff, self.pins, final=end is not None)
        # the merged wires (as merged_edges: clamped to the boot start, repeats dropped, low at a
        # reset), per wire and as one time-ordered event list
        per = []
        events = []
        begin = None
        for k in range(len(self.pins)):
            level = self.levels[k]
            got = []
            for c, lv in drained[self.pins[k]]:
                if c < start:
                    c = start
                if lv != level:
                    got.append((c, lv))
                    level = lv
            if end is not None and level:
                got.append((end, 0))
                level = 0
            if self.levels[k] is None and got:
                if begin is None:
                    begin = [0] * len(self.pins)
                begin[k] = got[0][1]
                first = 1
            else:
                first = 0
            self.levels[k] = level
            for c, lv in got[first:]:
                events.append((c, k, lv))
            per.append(got)
        if begin is not None and self.vcd is not None:
            self.vcd.begin(begin)
        events.sort()
        if self.vcd is not None and events:
            self.vcd.add(events)
        # enable record, and the cycles of deliberate stops in this piece
        en = per[self.index[b.OUTPUT_ENABLE]]
        en_before = self._en_level
        falls = set()
        for c, lv in en:
            self.enabled.append([c * 1000 // self.sys_hz, bool(lv)])
            if not lv:
                falls.add(c)
            self._en_level = lv
        for ch in (1, 2):
            cuts = set(falls)
            self._amplitude(w, ch, cutoff, end, cuts)
            if end is not None:
                cuts.add(end)
            c = b.CHANNELS[ch]
            ea = per[self.index[c["leg_a"]]]
            eb = per[self.index[c["leg_b"]]]
            _cuts_while_disabled(cuts, en_before, en, ea, eb)
            an = self.analysers.get(ch)
            if an is None:
                if not ea and not eb:
                    continue
                an = self.analysers[ch] = self._mod.Analyser(
                    ea[0][1] if ea else 0, eb[0][1] if eb else 0, keep=False,
                    sys_hz=self.sys_hz, max_violations=self.max_violations)
                ea = ea[1:]
                eb = eb[1:]
            an.feed(ea, eb, cuts)
        if end is not None:
            self.end_cycle = end

    def _amplitude(self, w, ch, cutoff, end, cuts):
        pin = self.board.CHANNELS[ch]["dac"]
        log = w.pwm_log.get(pin)
        done = self._pwm_done.setdefault(id(w), {})
        frm = done.get(pin, -1)
        last = self._ma[ch]
        if log:
            k = 0
            n = len(log)
            while k < n and log[k][0] < frm:
                k += 1
            j = k
            while j < n and (end is not None or log[j][0] < cutoff):
                c, duty = log[j]
                if duty == 0:
                    cuts.add(c)
                ma = _duty_to_ma(self.board, duty)
                if ma != last:
                    self.amplitude[ch].append([w.ms(c), ma])
                    last = ma
                j += 1
            done[pin] = cutoff
            if j > 1:
                del log[:j - 1]  # keep the entry in force at cutoff (the board model reads it)
        if end is not None:
            if last:
                self.amplitude[ch].append([w.ms(end), 0.0])
                last = 0.0
            del self._pwm_done[id(w)]
        self._ma[ch] = last

    def channel(self, ch):
        an = self.analysers.get(ch)
        if an is None:
            s = self._mod.summary([], self.sys_hz or 125_000_000)
            s["violations"] = []
            return s
        s = an.stats.result()
        s["violations"] = [v[1] for v in an.violations][:10]
        return s

    def finish(self):
        if self.vcd is not None:
            if self.levels[0] is None:
                self.vcd.begin([0] * len(self.pins))
            self.vcd.end(self.end_cycle)


def _cuts_while_disabled(cuts, level, en, ea, eb):
    """Adds to `cuts` the cycle of every leg edge that falls while the output enable is low
    (level: the enable before the first entry of `en`, its changes [(cycle, level)]): the
    bridge is off then and no current flows, so a pulse broken there is a stop, not a broken
    pulse. (A STOP's interrupt drops the enable and the DACs at once and the loop stops the
    pulse trains at its next tick, up to a tick later: a pulse the engine plays meanwhile
    may be cut by that stop.)"""
    if not ea and not eb:
        return
    for edges in (ea, eb):
        k = 0
        lv = level
        n = len(en)
        for c, _v in edges:
            while k < n and en[k][0] <= c:
                lv = en[k][1]
                k += 1
            if not lv:
                cuts.add(c)


def trace_dict(trace):
    from host_tools import pulse_analysis

    r = trace.recorder
    if r is not None:
        chans = {}
        for ch in (1, 2):
            chans[str(ch)] = {"amplitude_ma": r.amplitude[ch], "enabled": r.enabled,
                              "pulses": r.channel(ch)}
        return {"events": trace.events, "channels": chans, "screens": trace.screens}

    b = trace.board
    w0 = trace.boots[0][2]
    chans = {}
    enabled = enabled_record(trace)
    for ch in (1, 2):
        c = b.CHANNELS[ch]
        # a stop zeroes the DAC and drops both legs in the same instant: a pulse cut there is a
        # deliberate stop (counted), any other broken pulse is a violation
        cuts = set()
        for _start, end, w, board in trace.boots:
            for cyc, duty in w.pwm_log.get(board.CHANNELS[ch]["dac"], []):
                if duty == 0:
                    cuts.add(cyc)
            if end is not None:
                cuts.add(end)
        en = merged_edges(trace, b.OUTPUT_ENABLE)
        for cyc, lv in en:
            if not lv:
                cuts.add(cyc)
        ea, eb = merged_edges(trace, c["leg_a"]), merged_edges(trace, c["leg_b"])
        _cuts_while_disabled(cuts, 0, en, ea, eb)
        pulses, violations = pulse_analysis.analyse(ea, eb, cut_at=cuts)
        s = pulse_analysis.summary(pulses, w0.sys_hz)
        s["violations"] = [v[1] for v in violations][:10]
        chans[str(ch)] = {"amplitude_ma": amplitude_record(trace, ch), "enabled": enabled,
                          "pulses": s}
    return {"events": trace.events, "channels": chans, "screens": trace.screens}
