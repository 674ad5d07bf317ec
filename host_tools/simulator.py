"""Interactive simulator: the whole unit in a terminal (`make sim`).

    python -m host_tools.simulator [--speed 1x|10x|max|paused] [--out out/sim] [--flash DIR]

The firmware runs unchanged in the pin-level simulation (host_tools/scenario_core.py: a World per
boot whose clock continues, PicoBoardModel for buttons, electrodes, battery, USB and the foot
switch, the SSD1306 controller model for the OLED) in a worker thread. A "pacer" callback
scheduled on the world every PACE_MS of device time
  (a) applies the queued UI actions (presses, holds, fault injections) inside the firmware thread
      at the current device time,
  (b) copies a snapshot (OLED pixels, per-channel readouts, recent pulse edges) into a lock-
      protected Snapshot,
  (c) blocks until the UI grants more device time according to the speed setting: paused (no
      time), 1x (device time follows the wall clock), 10x, max (never waits).
The Textual UI redraws from the latest snapshot about 25 times a second.

Keys (also shown in the legend):
  Up / Down          UP / DOWN button      Enter        OK        Backspace / Esc  BACK
  Space / s          STOP (at once; drops the presses still queued)
                     A terminal reports key presses, not releases: each key event is one whole
                     press-and-release, queued behind the previous one, each as short as the
                     firmware's debounce accepts (press_timing(): from lib/buttons.py), UP/DOWN
                     presses no closer than the firmware's step interval (10 steps/s), so no
                     key event is lost (at most MAX_QUEUED wait; more are refused and counted)
  h, then a button   hold that button until it is pressed again (long press, auto-repeat);
                     shift+Up / shift+Down hold too; x = BACK+OK held 2 s (keypad lock combo)
  1 / 2              electrode of channel 1 / 2 off / on
  3 / 4              channel 1 / 2 load 20 kohm / 1 kohm (high skin impedance)
  5 / 6              over-current (short in the bridge) on channel 1 / 2
  b  battery in the warning band / full      B  battery below the cut-off / full
     (levels from the board config: battery_levels())
  u  USB power      t  foot switch press (T: hold / release)
  e  try to contract: the muscle under the EMG electrodes makes a 1.5 s effort (EFFORT_UV
     envelope); the status shows the muscle's envelope in uV (the EMG menu uses it)
  p  pause / resume   r  1x   0  10x   f  as fast as possible   .  one 10 ms step while paused
  c  save the OLED as out/sim/screen_<device ms>.png          q / ctrl+c  quit
"""
import argparse
import ast
import collections
import os
import sys
import threading
import time

from host_tools import scenario_core
from host_tools.sim import board_pico

PACE_MS = 5  # device time between two pacer calls
SNAP_REAL_S = 0.03  # at most this much wall time between snapshots while running
MAX_QUEUED = 10  # key presses waiting their turn (1 s of UP steps); more are refused
SCOPE_MS = 50  # span of the pulse scope
SCOPE_COLS = 50
SCOPE_MAX_MS = 1000
ZOOM_US = 1000  # span of the zoomed last-pulse view
SPEEDS = {"paused": 0.0, "1x": 1.0, "10x": 10.0, "max": None}
LOAD_HIGH_OHM = 20000
EFFORT_UV = 150  # key e: a voluntary effort (envelope uV) of the simulated muscle, 1.5 s long
EFFORT_MS = 1500
BUTTON_KEYS = {"up": "up", "down": "down", "enter": "ok", "backspace": "back",
               "escape": "back", "space": "stop", "s": "stop"}


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _constants(path, names, cls=None):
    """Integer constants of a device source file, read with ast (the file imports `machine` and
    `micropython`, so it is not imported here): module-level NAME = const(N) / NAME = N, and the
    class attributes of cls."""
    tree = ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read())
    body = list(tree.body)
    if cls is not None:
        body += [n for c in tree.body if isinstance(c, ast.ClassDef) and c.name == cls
                 for n in c.body]
    out = {}
    for n in body:
        if not (isinstance(n, ast.Assign) and len(n.targets) == 1
                and isinstance(n.targets[0], ast.Name) and n.targets[0].id in names):
            continue
        v = n.value
        if isinstance(v, ast.Call) and getattr(v.func, "id", "") == "const" and v.args:
            v = v.args[0]
        out[n.targets[0].id] = ast.literal_eval(v)
    missing = [x for x in names if x not in out]
    if missing:
        raise RuntimeError("simulator: %s has no %s" % (path, ", ".join(missing)))
    return out


def press_timing():
    """How long a simulated key press lasts, from the firmware's own timing constants.

    lib/buttons.py accepts a level after it was stable for Buttons.debounce_ms; the app samples
    the buttons twice per TICK_MS (firmware/app.py: step and ui_step); the board model's contact
    bounces for up to BOUNCE_MS after a touch and after a release. A press held for
    bounce + debounce + two samples is accepted whatever the sampling phase, and so is a
    release held as long. UP/DOWN step at most once per _MIN_STEP_MS (docs/safety.md rule 3: <= 10
    steps/s; a second too-soon press while one waits is dropped by the firmware), so presses of
    one step button start at least that far apart. Returns ms values in a dict: down, up (the
    release before the next press may start), step (between two presses of UP, or of DOWN),
    and the firmware's constants they came from."""
    b = _constants("lib/buttons.py", ("debounce_ms", "long_ms", "repeat_delay_ms",
                                      "_MIN_STEP_MS"), cls="Buttons")
    a = _constants("firmware/app.py", ("TICK_MS",))
    sample = a["TICK_MS"] // 2
    need = board_pico.BOUNCE_MS + b["debounce_ms"] + 2 * sample
    down = -(-need // PACE_MS) * PACE_MS  # whole pacer steps, never shorter than needed
    if down >= min(b["long_ms"], b["repeat_delay_ms"]):
        raise RuntimeError("simulator: a tap of %d ms would be a long press" % down)
    t = {"down": down, "up": down, "step": max(b["_MIN_STEP_MS"], 2 * down),
         "sample": sample, "bounce": board_pico.BOUNCE_MS}
    t.update(b)
    t.update(a)
    return t


def battery_levels(board):
    """Battery levels for the keys, from the board config: `b` the middle of the warning band
    (BATTERY_CUTOFF_MV .. BATTERY_WARN_MV), `B` as far below the cut-off as the band is wide
    halved, and `full` (the board model's fresh cell) to go back."""
    warn, cut = board.BATTERY_WARN_MV, board.BATTERY_CUTOFF_MV
    half = (warn - cut) // 2
    return {"warning": cut + half, "cutoff": cut - half, "full": board_pico.DEFAULT_BATTERY_MV}


def battery_band(board, mv):
    if mv < board.BATTERY_CUTOFF_MV:
        return "below cut-off %d" % board.BATTERY_CUTOFF_MV
    if mv < board.BATTERY_WARN_MV:
        return "warning band < %d" % board.BATTERY_WARN_MV
    return "ok"


class Snapshot:
    """What the UI shows; filled by the pacer in the firmware thread."""

    def __init__(self):
        self.seq = 0
        self.t_ms = 0
        self.pixels = [[0] * 128 for _ in range(64)]
        self.frame_t_ms = 0
        self.oled_on = False
        self.contrast = 0x7F
        self.screen = "-"
        self.lines = []
        self.session = "none"
        self.countdown_ms = 0
        self.remaining_ms = 0
        self.output = "-"
        self.enabled = False
        self.channels = {1: {}, 2: {}}
        self.faults = []
        self.physical = {}
        self.holds = ()
        self.queued = 0  # key presses waiting their turn
        self.refused = 0  # key presses refused because MAX_QUEUED were waiting
        self.boots = 0
        self.error = None
        self.running = True
        self.real_speed = 0.0


class SimEngine(scenario_core.Run):
    """scenario_core.Run with no script: runs until stop(), paced by the UI."""

    def __init__(self, speed="1x", seed=1, board="pico", flash_dir="out/sim/flash"):
        spec = {"board": board, "duration_ms": scenario_core.MAX_DURATION_MS, "steps": []}
        flash_dir = os.path.abspath(flash_dir)
        os.makedirs(flash_dir, exist_ok=True)
        super().__init__(spec, flash_dir=flash_dir, ocr=None, seed=seed)
        self.cond = threading.Condition()
        self.snap_lock = threading.Lock()
        self.snap = Snapshot()
        self.actions = []  # queued dicts, applied by the pacer
        self.holds = set()  # buttons held down by the UI
        self.timing = press_timing()
        self.keyq = collections.deque()  # button actions waiting their turn (firmware thread)
        self.refused = 0
        self._next_ok_ms = 0  # device ms when the next queued button action may start
        self._last_start = {}  # button -> device ms its last queued press started
        self.speed = speed
        self._anchor = None  # (device ms, wall s) of the last speed change
        self._grant_ms = 0  # paused: device ms the UI allowed (single steps)
        self._quit = False
        self._last_snap_real = 0.0
        self._rate = (0, 0.0)  # (device ms, wall s) for the measured speed
        self.thread = None
        self.boots = 0

    # -- worlds: held buttons stay held over a reset ---------------------------------------------
    def _new_world(self, start_cycle, reason="power_on"):
        w = super()._new_world(start_cycle, reason)
        self.boots += 1
        for name in self.holds:
            self.model.hold(name, True)
        return w

    def _schedule_observer(self, w):
        super()._schedule_observer(w)
        step = w.cycles(PACE_MS * 1_000_000)

        def pace():
            self._pace()
            w.schedule(w.now + step, pace)

        w.schedule(w.now, pace)

    # -- thread ---------------------------------------------------------------------------------
    def start(self):
        # everything the UI thread may import lazily is imported now: while the firmware runs,
        # sys.modules["time"] and ["os"] are the simulated ones (host_tools/sim/install.py)
        import PIL.Image  # noqa: F401
        import PIL.PngImagePlugin  # noqa: F401

        from host_tools import scenario  # noqa: F401

        self.thread = threading.Thread(target=self._thread_main, name="firmware", daemon=True)
        self.thread.start()

    def _thread_main(self):
        # The device's flash is a real folder (as on the MicroPython unix port): the firmware opens
        # its files relative to the current directory, so the process works in that folder while
        # the firmware runs (settings, custom programs and logs persist between simulator runs).
        cwd = os.getcwd()
        try:
            os.chdir(self.flash_dir)
            self.run()
        except BaseException as e:  # noqa: BLE001 - shown in the UI, never silently lost
            if not self._quit:
                with self.snap_lock:
                    self.snap.error = "%s: %s" % (type(e).__name__, e)
        finally:
            os.chdir(cwd)
            with self.snap_lock:
                self.snap.running = False

    def stop(self, timeout=5.0):
        """Ask the firmware thread to end (at its next pacer call) and wait for it."""
        with self.cond:
            self._quit = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True

    # -- UI side --------------------------------------------------------------------------------
    def queue(self, **action):
        with self.cond:
            self.actions.append(action)
            self.cond.notify_all()

    def set_speed(self, speed):
        if speed not in SPEEDS:
            raise ValueError("speed is one of %s" % ", ".join(SPEEDS))
        with self.cond:
            self.speed = speed
            self._anchor = None
            self._grant_ms = self.snap.t_ms
            self.cond.notify_all()

    def step(self, ms=10):
        """While paused: let the device run ms more."""
        with self.cond:
            self._grant_ms = max(self._grant_ms, self.snap.t_ms) + ms
            self.cond.notify_all()

    def snapshot(self):
        with self.snap_lock:
            return self.snap

    def wait_until(self, pred, timeout=20.0):
        """Test helper: poll snapshots until pred(snapshot) is true; returns the snapshot."""
        end = time.monotonic() + timeout
        while True:
            s = self.snapshot()
            if pred(s):
                return s
            if time.monotonic() > end or not s.running:
                raise TimeoutError("simulator: condition not met by device time %d ms (screen "
                                   "%s, lines %r, error %r)" % (s.t_ms, s.screen, s.lines,
                                                               s.error))
            time.sleep(0.01)

    # -- firmware side: the pacer ---------------------------------------------------------------
    def _pace(self):
        w = self.world
        now_ms = w.ms()
        acts = self._take_actions()
        if self.keyq:
            self._run_keyq()
        if acts or time.monotonic() - self._last_snap_real >= SNAP_REAL_S:
            self._take_snapshot()
        while True:
            with self.cond:
                if self._quit:
                    raise scenario_core.SimulationEnd()
                wait = 0 if self.actions else self._wait_s(now_ms)
                if wait > 0 and self.snap.t_ms == now_ms:
                    self.cond.wait(min(wait, 0.1))
                    continue
            if wait <= 0:
                if self._take_actions():  # arrived while waiting: at this device time
                    self._take_snapshot()
                    continue
                return
            self._take_snapshot()  # about to wait: the UI shows this moment

    def _take_actions(self):
        with self.cond:
            acts = self.actions
            self.actions = []
        for a in acts:
            self._act(a)
        return acts

    def _wait_s(self, now_ms):
        """Wall seconds to wait before device time may pass now_ms (inf: until told)."""
        f = SPEEDS[self.speed]
        real = time.monotonic()
        if f is None:
            self._anchor = None
            return 0
        if f == 0:
            self._anchor = None
            return 0 if now_ms < self._grant_ms else float("inf")
        if self._anchor is None:
            self._anchor = (now_ms, real)
        d0, r0 = self._anchor
        allowed = d0 + (real - r0) * f * 1000.0
        if allowed - now_ms > 200:  # the simulation fell behind: no catch-up burst
            self._anchor = (now_ms, real)
            return 0
        return (now_ms - allowed) / (f * 1000.0)

    def _act(self, a):
        kind = a["kind"]
        ph = self.physical
        if kind in ("press", "hold", "combo"):
            if a.get("button") == "stop":
                self._stop_now(a)
            elif len(self.keyq) >= MAX_QUEUED:
                self.refused += 1
                self.trace.event(self._t_ms(), "input", refused=a.get("button", kind),
                                 queued=len(self.keyq))
            else:
                self.keyq.append(a)
            self._run_keyq()
        elif kind == "electrode":
            ch = a["channel"]
            self._apply({"electrode": {"channel": ch,
                                       "connected": a.get("connected", not ph["connected"][ch])}})
        elif kind == "load":
            ch = a["channel"]
            ohm = a.get("ohm")
            if ohm is None:
                ohm = 1000 if ph["load_ohm"][ch] >= LOAD_HIGH_OHM else LOAD_HIGH_OHM
            self._apply({"load_ohm": {"channel": ch, "ohm": ohm}})
        elif kind == "over_current":
            ch = a["channel"]
            self._apply({"over_current": {"channel": ch,
                                          "on": a.get("on", not ph["over_current"][ch])}})
        elif kind == "battery":
            mv = a.get("mv")
            if mv is None:  # a level key: that level, or back to a full cell if already there
                lv = battery_levels(self.board)
                mv = lv[a.get("level", "warning")]
                if ph["battery_mv"] == mv:
                    mv = lv["full"]
            self._apply({"battery_mv": mv})
        elif kind == "usb":
            self._apply({"usb": a.get("on", not ph["usb"])})
        elif kind == "emg":
            self._apply({"emg": {"uv": a.get("uv", EFFORT_UV), "ms": a.get("ms", EFFORT_MS)}})
        elif kind == "trigger":
            down = a.get("down", not ph["trigger"])
            self._apply({"trigger": down})
            if a.get("ms"):
                w = self.world
                w.schedule(w.now + w.cycles(a["ms"] * 1_000_000),
                           lambda: self._apply({"trigger": False}))

    # -- button presses: one whole press per key event, in turn ---------------------------------
    def _stop_now(self, a):
        """STOP acts at once, ahead of everything queued, and drops the queued presses: a STOP
        must never be followed by rises the user asked for before it."""
        if self.keyq:
            self.trace.event(self._t_ms(), "input", dropped_by_stop=len(self.keyq))
            self.keyq.clear()
        self._button(a["kind"], "stop", a.get("down"))

    def _button(self, kind, b, down=None):
        """Press, hold or release button b now; returns how long it stays down (ms)."""
        m = self.model
        if kind == "hold" or b in self.holds:
            if down is None:
                down = b not in self.holds
            if down:
                self.holds.add(b)
            else:
                self.holds.discard(b)
            m.hold(b, down)
            self.trace.event(self._t_ms(), "input", hold=b, down=down)
            return 0
        self._apply({"press": b, "hold_ms": self.timing["down"]})
        return self.timing["down"]

    def _run_keyq(self):
        """Start the queued button actions whose turn has come: one at a time, the next one after
        the previous press and its release were long enough for the debounce, and a press of UP
        (or DOWN) no sooner than the firmware's step interval after the previous one."""
        t = self.timing
        while self.keyq:
            now = self._t_ms()
            a = self.keyq[0]
            b = a.get("button")
            if now < self._next_ok_ms:
                return
            if a["kind"] == "press" and b in ("up", "down") and b not in self.holds:
                last = self._last_start.get(b)
                if last is not None and now < last + t["step"]:
                    return
            self.keyq.popleft()
            if a["kind"] == "combo":  # BACK and OK together (the keypad lock)
                ms = a.get("hold_ms", 2000)
                for x in ("back", "ok"):
                    self._apply({"press": x, "hold_ms": ms})
            else:
                ms = self._button(a["kind"], b, a.get("down"))
                if ms and b is not None:
                    self._last_start[b] = now
            self._next_ok_ms = now + ms + t["up"]

    def _take_snapshot(self):
        w = self.world
        s = Snapshot()
        s.t_ms = w.ms()
        old = self.snap
        s.seq = old.seq + 1
        o = self.oled
        s.pixels, s.frame_t_ms = old.pixels, old.frame_t_ms
        if o is not None:
            last = getattr(o, "last_write_cycle", None)
            if last is None:  # nothing sent to the panel yet
                last = 0
            settled = last <= w.now and w.now - last >= w.cycles(scenario_core.SETTLE_MS *
                                                               1_000_000)
            if settled or old.seq == 0:
                s.pixels = o.pixels()
                s.frame_t_ms = w.ms(last) if last <= w.now else s.t_ms
            s.oled_on = bool(getattr(o, "on", False))
            s.contrast = getattr(o, "contrast", 0x7F)
        b = self.board
        g = w.gpio
        s.enabled = bool(g.level_at(b.OUTPUT_ENABLE, w.now))
        app = sys.modules.get("app")
        a = getattr(app, "current", None) if app is not None else None
        m = self.model
        for ch in (1, 2):
            c = b.CHANNELS[ch]
            r = {"command_ma": round(m.command_ma(ch), 2),
                 "delivered_ma": round(m.delivered_ma(ch), 2),
                 "phase_us": None, "gap_us": None, "rate_hz": None, "playing": False,
                 "level_ma": None, "fault": None,
                 "scope_ms": SCOPE_MS,
                 "zoom": _zoom(w, g.edges[c["leg_a"]], g.edges[c["leg_b"]]),
                 "edges": len(g.edges[c["leg_a"]]) + len(g.edges[c["leg_b"]])}
            if a is not None:
                try:
                    eng = a.stage.pulses(ch)
                    plan = eng.plan
                    r["playing"] = bool(getattr(eng, "running", False))
                    if plan is not None:
                        r["phase_us"] = plan.phase_ns / 1000.0
                        r["gap_us"] = plan.gap_ns / 1000.0
                        r["rate_hz"] = 1e9 / plan.period_ns if plan.period_ns else 0.0
                        r["burst"] = (plan.burst_count, plan.burst_slots)
                        # the scope spans about three pulse periods (at least SCOPE_MS)
                        per_ms = max(plan.period_ns, getattr(plan, "burst_period_ns", 0)) / 1e6
                        span = int(min(SCOPE_MAX_MS, max(SCOPE_MS, 3 * per_ms)) + 9) // 10 * 10
                        r["scope_ms"] = span
                    r["level_ma"] = a.sup.user_level(ch)
                    r["fault"] = a.sup.channel_fault(ch)
                except Exception as e:  # noqa: BLE001 - a readout must not stop the firmware
                    r["fault"] = "readout: %r" % e
            r["scope"] = _scope(w, g.edges[c["leg_a"]], g.edges[c["leg_b"]], r["scope_ms"])
            s.channels[ch] = r
        if a is not None:
            u = a.ui
            s.screen = scenario_core._screen_name(u)
            try:
                s.lines = list(u.lines())
            except Exception:  # noqa: BLE001
                s.lines = []
            s.output = a.sup.state
            out = u.out if u.session is not None else None
            if out is not None:
                s.session = out.state
                s.countdown_ms = out.countdown_ms
                s.remaining_ms = out.remaining_ms
            s.faults = ["%s%s@%d" % (getattr(f, "kind", f),
                                     " ch%d" % f.channel if getattr(f, "channel", 0) else "",
                                     getattr(f, "t_ms", 0)) for f in a.sup.faults[-4:]]
        ph = self.physical
        s.physical = {"connected": dict(ph["connected"]), "load_ohm": dict(ph["load_ohm"]),
                      "over_current": dict(ph["over_current"]), "battery_mv": ph["battery_mv"],
                      "usb": ph["usb"], "trigger": ph["trigger"],
                      "battery_band": battery_band(b, ph["battery_mv"]),
                      "emg_uv": (None if self.muscle is None
                                 else round(self.muscle.envelope_uv()))}
        s.holds = tuple(sorted(self.holds))
        s.queued = len(self.keyq)
        s.refused = self.refused
        s.boots = self.boots
        real = time.monotonic()
        d0, r0 = self._rate
        if real - r0 >= 0.5:
            s.real_speed = (s.t_ms - d0) / 1000.0 / (real - r0) if r0 else 0.0
            self._rate = (s.t_ms, real)
        else:
            s.real_speed = old.real_speed
        self._last_snap_real = real
        with self.snap_lock:
            self.snap = s


def _level_at(edges, cycle):
    i = _last_index(edges, cycle)
    return edges[i][1] if i >= 0 else 0


def _last_index(edges, cycle):
    i = len(edges) - 1
    while i >= 0 and edges[i][0] > cycle:
        i -= 1
    return i


def _high_spans(edges, t0, t1):
    """(start, end) cycle spans inside [t0, t1] where the pin is high."""
    i = _last_index(edges, t0)
    level = edges[i][1] if i >= 0 else 0
    since = t0 if level else None
    out = []
    j = i + 1
    while j < len(edges) and edges[j][0] <= t1:
        c, lv = edges[j]
        if lv and since is None:
            since = c
        elif not lv and since is not None:
            out.append((since, c))
            since = None
        j += 1
    if since is not None:
        out.append((since, t1))
    return out


def _both_spans(ea, eb, t0, t1):
    """Cycle spans inside [t0, t1] where leg A and leg B are high at the same instant (a
    short through the bridge: never in a correct pulse)."""
    a = _high_spans(ea, t0, t1)
    b = _high_spans(eb, t0, t1)
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        s = max(a[i][0], b[j][0])
        e = min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def scope_rows(ea, eb, t0, t1, cols=SCOPE_COLS, per=None):
    """The legs over [t0, t1] (cycles) in cols columns, as three rows of cols characters:
    leg A (the first phase, current one way) above the axis: '▄' in a column where leg A was
    high at some time in it; the axis: '─', or '!' where both legs were high at the same
    instant; leg B (the second phase, current the other way) below: '▀'. A biphasic pulse
    shorter than a column marks the same column in both leg rows, never the axis. per: cycles
    per column (default: [t0, t1] fills the cols); columns after t1 stay blank."""
    if per is None:
        per = max(1, -(-(t1 - t0) // cols))
    marks = []
    for spans in (_high_spans(ea, t0, t1), _both_spans(ea, eb, t0, t1),
                  _high_spans(eb, t0, t1)):
        m = [0] * cols
        for s, e in spans:
            last = (e - t0 - 1) // per if e > s else (s - t0) // per
            for k in range(max(0, (s - t0) // per), min(cols, last + 1)):
                m[k] = 1
        marks.append(m)
    a, both, b = marks
    return ("".join("▄" if x else " " for x in a),
            "".join("!" if x else "─" for x in both),
            "".join("▀" if x else " " for x in b))


def _scope(w, ea, eb, span_ms=SCOPE_MS, cols=SCOPE_COLS):
    """The last span_ms: scope_rows."""
    t1 = w.now
    t0 = max(0, t1 - w.cycles(span_ms * 1_000_000))
    return scope_rows(ea, eb, t0, t1, cols)


def _zoom(w, ea, eb, span_us=ZOOM_US, cols=SCOPE_COLS):
    """The last pulse from 10% of span_us before its first rise, over span_us: scope_rows, or
    three empty rows before the first pulse."""
    last = None
    for edges in (ea, eb):
        i = len(edges) - 1
        while i >= 0:
            if edges[i][1] and edges[i][0] <= w.now:
                break
            i -= 1
        if i >= 0 and (last is None or edges[i][0] > last):
            last = edges[i][0]
    if last is None:
        return ("", "", "")
    # start of the pulse: the latest leg-A rise at or before the last rise of either leg
    i = _last_index(ea, last)
    while i >= 0 and not ea[i][1]:
        i -= 1
    start = ea[i][0] if i >= 0 else last
    span = w.cycles(span_us * 1000)
    t0 = start - span // 10
    # a pulse still playing: only what has happened by now, at the same scale
    return scope_rows(ea, eb, t0, min(t0 + span, w.now), cols, per=max(1, -(-span // cols)))


# -- rendering (pure functions, tested) ---------------------------------------------------------

def halfblock_lines(pixels):
    """64 rows of 128 pixels -> 32 strings of 128 characters: ' ', '▀', '▄' or '█'."""
    chars = (" ", "▀", "▄", "█")
    out = []
    for y in range(0, len(pixels), 2):
        top = pixels[y]
        bot = pixels[y + 1] if y + 1 < len(pixels) else [0] * len(top)
        out.append("".join(chars[(1 if top[x] else 0) | (2 if bot[x] else 0)]
                           for x in range(len(top))))
    return out


def fmt_ms(ms):
    ms = max(0, int(ms))
    return "%d:%02d.%03d" % (ms // 60000, ms // 1000 % 60, ms % 1000)


def readout_lines(s):
    """The per-channel readouts and status as plain text lines."""
    lines = ["screen %-8s output %-8s enable %s   session %s" % (
        s.screen, s.output, "ON " if s.enabled else "off", s.session)]
    if s.session not in ("none", "idle"):
        lines.append("phase ends in %s   session left %s" % (
            fmt_ms(s.countdown_ms), fmt_ms(s.remaining_ms)))
    else:
        lines.append("")
    for ch in (1, 2):
        r = s.channels.get(ch) or {}
        if not r:
            lines.append("ch%d -" % ch)
            continue
        ph = s.physical
        elec = "on " if ph.get("connected", {}).get(ch, True) else "OFF"
        load = ph.get("load_ohm", {}).get(ch, 1000)
        if r.get("phase_us") is not None:
            pulse = "%4.0fus gap %3.0fus %6.1fHz%s" % (
                r["phase_us"], r["gap_us"], r["rate_hz"], " play" if r["playing"] else " idle")
        else:
            pulse = "no pulse plan"
        lines.append("ch%d DAC %5.1fmA delivered %5.1fmA level %s  %s" % (
            ch, r["command_ma"], r["delivered_ma"],
            "-" if r.get("level_ma") is None else "%.0fmA" % r["level_ma"], pulse))
        lines.append("    electrode %s load %dohm%s%s" % (
            elec, load, "  OVER-CURRENT" if ph.get("over_current", {}).get(ch) else "",
            "  fault: %s" % r["fault"] if r.get("fault") else ""))
    ph = s.physical
    lines.append("battery %dmV (%s)  usb %s  foot switch %s  held %s  keys queued %d%s" % (
        ph.get("battery_mv", 0), ph.get("battery_band", "?"), "yes" if ph.get("usb") else "no",
        "down" if ph.get("trigger") else "up", ",".join(s.holds) or "-", s.queued,
        " (%d refused: %d at most)" % (s.refused, MAX_QUEUED) if s.refused else ""))
    emg = ph.get("emg_uv")
    lines.append("faults: " + (", ".join(s.faults) if s.faults else "none")
                 + ("" if emg is None else "  EMG envelope %d uV (e: try to contract)" % emg))
    return lines


SCOPE_HEAD = ("scope: leg A (1st phase) above the axis, leg B (2nd phase) below, "
              "! = both legs high at once; mA = the DAC now")
SCOPE_PREFIX = 16  # characters before the trace columns


def scope_rows_styled(s):
    """The scope as (text, role) lines: role 'head', 'a', 'axis' or 'b' (the UI colours leg A
    and leg B differently). Per channel: leg A row with +amplitude, the axis with the span,
    leg B row with -amplitude; the last SCOPE_MS+ of pulses, then the last pulse over ZOOM_US."""
    out = [(SCOPE_HEAD, "head")]
    for ch in (1, 2):
        r = s.channels.get(ch) or {}
        ma = r.get("command_ma", 0.0) or 0.0
        sa, sx, sb = r.get("scope") or ("", "", "")
        za, zx, zb = r.get("zoom") or ("", "", "")
        span = "%dms" % r.get("scope_ms", SCOPE_MS)
        zoom = "%dus" % ZOOM_US
        out.append(("ch%d A %8s |%s| |%s|" % (ch, "+%.1fmA" % ma, sa, za), "a"))
        out.append(("%*s |%s| |%s| %s" % (SCOPE_PREFIX - 2, span, sx, zx, zoom), "axis"))
        out.append(("    B %8s |%s| |%s|" % ("-%.1fmA" % ma, sb, zb), "b"))
    return out


def scope_lines(s):
    return [t for t, _ in scope_rows_styled(s)]


PNG_COLOURS = {"head": (160, 160, 160), "a": (95, 215, 95), "axis": (128, 128, 128),
               "b": (255, 175, 95)}
SCOPE_STYLE = {"head": "#a0a0a0", "a": "#5fd75f", "axis": "#808080", "b": "#ffaf5f",
               "both": "bold #ff3030"}

LEGEND = (
    "Up/Down Enter=OK Bksp/Esc=BACK Space/s=STOP (at once) | h+key or shift+Up/Down: hold | "
    "x: BACK+OK 2s",
    "1/2 electrode off/on | 3/4 load 20k | 5/6 over-current | b battery low (warning) | "
    "B battery below cut-off | u USB | t/T foot sw. | e contract (EMG)",
    "a key = one whole press, queued (UP/DOWN at most 10/s, as the firmware steps) | "
    "p pause r 1x 0 10x f max . step | c PNG | q quit",
)


def save_png(snap, out_dir="out/sim"):
    """The snapshot's OLED frame as out_dir/screen_<device ms>.png (scenario.frame_image)."""
    from host_tools import scenario

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "screen_%d.png" % snap.t_ms)
    scenario.frame_image(snap.pixels).save(path)
    return path


def status_line(s, speed, extra=""):
    real = " (%.1fx real)" % s.real_speed if speed not in ("paused",) else ""
    st = "device %s  speed %s%s  boots %d%s" % (fmt_ms(s.t_ms), speed, real, s.boots, extra)
    if s.error:
        st += "  SIMULATION STOPPED: " + s.error
    return st


def terminal_png(s, speed, path, scale=1):
    """A PNG of what the terminal shows (status, OLED, readouts, scope, legend) without a terminal:
    text in DejaVu Sans Mono (shipped with matplotlib), the OLED drawn from its pixels."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font_path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf",
                             "DejaVuSansMono.ttf")
    font = ImageFont.truetype(font_path, 12 * scale)
    cw = int(font.getlength("M") + 0.999)  # never narrower than a character
    ch = 16 * scale
    oled_rows = 32
    text = [status_line(s, speed)]
    grey = (200, 200, 200)
    after = ([("", grey)] + [(x, grey) for x in readout_lines(s)]
             + [(x, PNG_COLOURS[role]) for x, role in scope_rows_styled(s)]
             + [("", grey)] + [(x, (160, 160, 160)) for x in LEGEND])
    cols = max(132, max(len(x) for x, _ in [(text[0], 0)] + after) + 2)
    rows = len(text) + oled_rows + 2 + len(after)
    img = Image.new("RGB", (cols * cw, rows * ch), (18, 18, 28))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, cols * cw, ch], fill=(48, 48, 80))
    d.text((0, 0), text[0], font=font, fill=(230, 230, 230))
    y0 = ch * 2
    x0 = cw * 2
    d.rectangle([x0 - cw // 2, y0 - ch // 2, x0 + 128 * cw + cw // 2,
                 y0 + oled_rows * ch + ch // 2], fill=(8, 10, 24), outline=(95, 135, 175))
    on = (120, 200, 255)
    px_h = ch / 2.0
    for y, row in enumerate(s.pixels):
        for x, v in enumerate(row):
            if v:
                d.rectangle([x0 + x * cw, int(y0 + y * px_h), x0 + (x + 1) * cw - 1,
                             int(y0 + (y + 1) * px_h) - 1], fill=on)
    y = y0 + oled_rows * ch + ch
    for line, colour in after:  # on the character grid, as a terminal draws it
        for k, c in enumerate(line):
            if c in "▀▄█":  # half and full blocks fill their half of the cell, as in a terminal
                top = y if c != "▄" else y + ch // 2
                bot = y + ch - 1 if c != "▀" else y + ch // 2 - 1
                d.rectangle([k * cw, top, (k + 1) * cw - 1, bot], fill=colour)
            elif c != " ":  # '!' marks both legs high at once: red
                d.text((k * cw, y), c, font=font, fill=(255, 48, 48) if c == "!" and
                       colour == PNG_COLOURS["axis"] else colour)
        y += ch
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)
    return path


def demo_screenshot(path_png, path_svg=None, flash_dir=None):
    """Headless: start TENS on channel 1 at 12 mA, run 4 s, save the terminal as SVG (Textual)
    and PNG (terminal_png). Used for docs/img/simulator.png."""
    import asyncio
    import tempfile

    path_png = os.path.abspath(path_png)  # the firmware thread works in its flash folder
    path_svg = os.path.abspath(path_svg) if path_svg else None
    os.makedirs(os.path.dirname(path_png), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="nmes-sim-")
    eng = SimEngine(speed="paused", flash_dir=flash_dir or os.path.join(tmp, "flash"))
    app = make_app(eng, out_dir=tmp)

    async def go():
        async with app.run_test(size=(134, 52)) as pilot:
            async def run(ms):
                t = eng.snapshot().t_ms + ms
                eng.step(ms)
                while eng.snapshot().t_ms < t:
                    await pilot.pause(0.005)

            async def key(k, ms):
                await pilot.press(k)
                await run(ms)

            await run(2000)
            for _ in range(9):
                await key("down", 200)
            for gap in (500, 500, 600):
                await key("enter", gap)
            for _ in range(12):
                await key("up", 200)
            await run(4000)
            app.refresh_view()
            await pilot.pause(0.05)
            if path_svg:
                d, f = os.path.split(path_svg)
                app.save_screenshot(filename=f, path=d)
            terminal_png(eng.snapshot(), eng.speed, path_png)
            await pilot.press("q")

    try:
        asyncio.run(go())
    finally:
        eng.stop()
    return path_png


# -- the Textual app ----------------------------------------------------------------------------

def make_app(engine, out_dir="out/sim", fps=25):
    out_dir = os.path.abspath(out_dir)  # before the firmware thread changes the directory
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.widgets import Static

    class Oled(Static):
        DEFAULT_CSS = """
        Oled { width: 130; height: 34; border: round #5f87af; padding: 0 0; }
        """

        def show_snapshot(self, s):
            lines = halfblock_lines(s.pixels)
            c = 0x20 + (s.contrast * 0xDF) // 0xFF if s.oled_on else 0
            fg = "#%02x%02x%02x" % (c * 120 // 255, c * 200 // 255, c * 255 // 255)
            t = Text("\n".join(lines), style="%s on #080a18" % fg, no_wrap=True)
            self.update(t)

    class SimApp(App):
        TITLE = "Open NMES simulator"
        CSS = """
        Screen { overflow: auto auto; }
        #status { height: 1; background: #303050; }
        #readouts { height: auto; }
        #scope { height: auto; }
        #legend { height: auto; color: #a0a0a0; }
        """
        BINDINGS = [Binding("q", "quit_sim", "quit", priority=True),
                    Binding("ctrl+c", "quit_sim", "quit", priority=True)]

        def __init__(self):
            super().__init__()
            self.engine = engine
            self.out_dir = out_dir
            self.hold_next = False
            self.message = ""
            self.last_png = None
            self._seq = -1

        def compose(self) -> ComposeResult:
            yield Static("", id="status")
            yield Oled("", id="oled")
            yield Static("", id="readouts")
            yield Static("", id="scope")
            yield Static("\n".join(LEGEND), id="legend")

        def on_mount(self):
            if self.engine.thread is None:
                self.engine.start()
            self.set_interval(1.0 / fps, self.refresh_view)

        def refresh_view(self):
            s = self.engine.snapshot()
            st = status_line(s, self.engine.speed, "%s%s" % (
                "  HOLD: press a button key" if self.hold_next else "",
                "  " + self.message if self.message else ""))
            self.query_one("#status", Static).update(Text(st, no_wrap=True))
            if s.seq == self._seq:
                return
            self._seq = s.seq
            self.query_one("#oled", Oled).show_snapshot(s)
            self.query_one("#readouts", Static).update(Text("\n".join(readout_lines(s)),
                                                            no_wrap=True))
            t = Text(no_wrap=True)
            for i, (line, role) in enumerate(scope_rows_styled(s)):
                if i:
                    t.append("\n")
                t.append(line, style=SCOPE_STYLE[role])
            t.highlight_regex(r"!", SCOPE_STYLE["both"])
            self.query_one("#scope", Static).update(t)

        def action_quit_sim(self):
            self.engine.stop()
            self.exit()

        def on_key(self, event):
            k = event.key
            e = self.engine
            if k in ("q", "ctrl+c"):
                return
            event.prevent_default()
            event.stop()
            if k == "h":
                self.hold_next = not self.hold_next
                return
            if k in BUTTON_KEYS:
                b = BUTTON_KEYS[k]
                if self.hold_next:
                    self.hold_next = False
                    e.queue(kind="hold", button=b)
                else:
                    e.queue(kind="press", button=b)
                return
            if k in ("shift+up", "shift+down"):
                e.queue(kind="hold", button=k[6:])
                return
            self.hold_next = False
            if k == "x":
                e.queue(kind="combo", hold_ms=2000)
            elif k in ("1", "2"):
                e.queue(kind="electrode", channel=int(k))
            elif k in ("3", "4"):
                e.queue(kind="load", channel=int(k) - 2)
            elif k in ("5", "6"):
                e.queue(kind="over_current", channel=int(k) - 4)
            elif k == "b":
                e.queue(kind="battery", level="warning")
            elif k in ("B", "shift+b"):
                e.queue(kind="battery", level="cutoff")
            elif k == "u":
                e.queue(kind="usb")
            elif k == "e":
                e.queue(kind="emg")
            elif k == "t":
                e.queue(kind="trigger", down=True, ms=300)
            elif k in ("T", "shift+t"):
                e.queue(kind="trigger")
            elif k == "p":
                e.set_speed("1x" if e.speed == "paused" else "paused")
            elif k == "r":
                e.set_speed("1x")
            elif k == "0":
                e.set_speed("10x")
            elif k == "f":
                e.set_speed("max")
            elif k in ("full_stop", "."):
                e.step(10)
            elif k == "c":
                self.last_png = save_png(e.snapshot(), self.out_dir)
                self.message = "saved " + self.last_png

    return SimApp()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--speed", choices=sorted(SPEEDS), default="1x", help="speed at start")
    ap.add_argument("--out", default="out/sim", help="folder for saved PNG screens (key c)")
    ap.add_argument("--flash", default=None,
                    help="folder holding the unit's flash (settings, custom programs, logs); "
                         "default OUT/flash, kept between runs")
    ap.add_argument("--seed", type=int, default=1, help="seed of the button contact bounce")
    ap.add_argument("--board", choices=["pico", "esp32"], default="pico",
                    help="reference board: pico (RP2040, PIO engine) or esp32 (DevKitC, RMT)")
    ap.add_argument("--screenshot", metavar="PNG",
                    help="no terminal: run a short scripted session (TENS, channel 1 at 12 mA) "
                         "and save the screen as PNG (and Textual's SVG next to it)")
    a = ap.parse_args(argv)
    if a.screenshot:
        demo_screenshot(a.screenshot, os.path.splitext(a.screenshot)[0] + ".svg")
        print(a.screenshot)
        return 0
    out = os.path.abspath(a.out)
    eng = SimEngine(speed=a.speed, seed=a.seed, board=a.board,
                    flash_dir=a.flash or os.path.join(out, "flash"))
    app = make_app(eng, out_dir=out)
    try:
        app.run()
    finally:
        eng.stop()
    s = eng.snapshot()
    if s.error:
        print("simulator: the simulation stopped at %s: %s" % (fmt_ms(s.t_ms), s.error),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
