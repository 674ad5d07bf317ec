# UI: the navigator. Button events in, requests to the Session and SafetySupervisor out, the
# screen on top of its stack drawn into the framebuffer. Each screen is one small class
# (ui_screens_menu.py, ui_screens_program.py, ui_screens_run.py; the base in ui_screen.py); it
# draws itself and answers a key or a tick with a navigation request, and this class alone
# carries the requests out (push, replace, back, home, leave an alert).
#
#   ui = UI(session_factory, supervisor, store, programs, power=None, display=None, emg=None,
#           emg_factory=None)
#   ui.handle(event, now_ms)   # one button event (buttons.py codes); event 0 = just time passing
#   ui.update(now_ms, out=None)  # once per loop tick: session view, faults, idle dim
#   changed = ui.render(fb)    # draws only when something on the screen changed
#   ui.lines()                 # the text of the current screen (for tests and traces)
#   ui.screen                  # the id of the screen on top (SCREEN_NAMES[ui.screen])
#   ui.session                 # the Session the UI started (None when none): the app ticks it
#                              # and passes its output to supervisor.apply and ui.update
#   ui.power_off_requested     # idle for settings["auto_off_min"] minutes with no session
#   emg                        # optional emg_ui.EmgControl: an "EMG" entry after History
#   emg_factory                # or a function that builds it when the EMG menu first opens
#                              # (ui.emg is None until then; ui.emg_control() builds it)
#
# Rules kept here (docs/safety.md): STOP works in every state, locked or not, and is acted on at the
# debounced press (not the release); a locked keypad changes nothing but STOP (and the BACK+OK
# unlock combo); a press that wakes a dimmed screen does nothing else (the rest of that press is
# swallowed up to its release), except on an alert: an alert wakes the screen itself, and its OK
# acts (answering it changes no output); the intensity only moves by explicit presses, through
# supervisor.set_user_level, which bounds rises itself.
#
# Allocation: the text of a screen is built only when something it shows changed (a key, a
# second of the countdown, a level step), so strings are made at most a few times per second,
# never per loop tick; render() with nothing changed allocates nothing.
from micropython import const
import time

import buttons as B
import programs as progmod  # noqa: F401 (tests reach the firmware's programs module here)
# the screen ids, SCREEN_NAMES, VERSION, EDIT_FIELDS, STEP_MA: tests and host tools name them ui.*
from ui_screen import (ALERT, BACK, CHECK, DELETE, DETAIL, DISMISS, DONE, EDIT, EMG,  # noqa: F401
                       HISTORY, HOME, LIST, NOTICE, PAUSE, PUSH, REPLACE, RUN, SCREEN_NAMES,
                       SETTINGS, SID_MASK, SPLASH, STAY, push, replace)
from ui_screens_menu import (VERSION, EmgScreen, HistoryScreen, ListScreen,  # noqa: F401
                             NoticeScreen, SettingsScreen, SplashScreen)
from ui_screens_program import EDIT_FIELDS, DeleteScreen, DetailScreen, EditorScreen  # noqa: F401
from ui_screens_run import (STEP_MA, AlertScreen, CheckScreen, DoneScreen,  # noqa: F401
                            PauseScreen, RunScreen)

DIM_AFTER_MS = const(30000)
SPLASH_MS = const(1500)

_ALERT_TEXT = {
    "open_circuit": "Electrode off",
    "cannot_reach_current": "Cannot reach mA",
    "over_current": "Over current",
    "timing_missed": "Timing fault",
    "low_battery": "Battery low",
    "low_battery_warning": "Battery low soon",
    "usb_power": "USB connected",
    "watchdog": "Watchdog reset",
    "stop_held": "STOP is down",
}
_ALERT_DETAIL = {
    "stop_held": "release it first",
}
# what to do about a fault during a session (rows 3-4 of the alert): a channel stopped on its
# own (the other one still running) restarts with UP on the run screen; after a stop of the whole
# output, OK on the pause screen starts both channels again from 0 mA
_HOW_CHANNEL = {
    "open_circuit": ("fix electrode,", "ok, up: restart"),
    "cannot_reach_current": ("wet/bigger pads,", "ok, up: restart"),
}
_HOW_STOPPED = {
    "usb_power": ("unplug USB,", "ok, ok: resume"),
    "low_battery": ("charge battery:", "output stopped"),
    "stop_held": ("release STOP,", "ok, ok: resume"),
}
_HOW_RESUME = ("all stopped:", "ok, ok: resume")
_SIG = const(6)


class UI:
    def __init__(self, session_factory, supervisor, store, programs, power=None, display=None,
                 channels=2, now_ms=0, emg=None, emg_factory=None):
        self.session_factory = session_factory
        self.sup = supervisor
        self.store = store
        self.programs = programs
        self.power = power  # optional: battery_pct(), usb_present()
        self.display = display  # optional: dim(level), contrast(v)
        self.channels = channels
        self.emg = emg
        self._emg_factory = emg_factory
        try:
            self.settings = store.load_settings()
        except Exception:
            self.settings = {}
        self.program = None  # the program of the detail, check, run screens
        self.session = None
        self.out = None
        self.locked = bool(self.settings.get("keypad_lock", False))
        self.dimmed = False
        self.last_input_ms = now_ms
        self.now_ms = now_ms
        # (the stubs make ticks opaque; on MicroPython they are ints, as now_ms=0 here)
        self.splash_until = time.ticks_add(now_ms, SPLASH_MS)  # pyright: ignore[reportArgumentType]
        self.seen_faults = len(supervisor.faults)
        self._swallow = 0  # bit per button: rest of this press ignored (it woke the screen)
        self._dirty = True
        self._sig = [-1] * _SIG
        self.power_off_requested = False  # idle for auto_off_min with no session running
        self.requests = 0  # count of requests made to session / supervisor (for traces)
        # Notices of the file loads (a bad settings or programs file set aside): shown after the
        # splash, one at a time, until OK (or BACK) dismisses each
        self.notices = list(store.notices)
        has_emg = emg is not None or emg_factory is not None
        self.menu = ("Settings", "History", "EMG") if has_emg else ("Settings", "History")
        if emg is not None:
            emg.ui = self  # the live EMG screens keep the display lit
        self.list = ListScreen(self)
        self.editor = EditorScreen(self)
        self.alert = AlertScreen(self)
        self.run = RunScreen(self)
        s: list = [None] * len(SCREEN_NAMES)  # a Screen per id (None: EMG without emg)
        for scr in (SplashScreen(self), self.list, DetailScreen(self), CheckScreen(self),
                    self.run, PauseScreen(self), self.alert, SettingsScreen(self),
                    HistoryScreen(self), DoneScreen(self), self.editor, DeleteScreen(self),
                    NoticeScreen(self)):
            s[scr.SID] = scr
        if has_emg:
            s[EMG] = EmgScreen(self)
        self._screens = s
        self._stack = [s[SPLASH]]

    def emg_control(self):
        """The EMG controller (emg, or the one emg_factory() builds at the first call: the EMG
        menu's first opening)."""
        e = self.emg
        if e is None and self._emg_factory is not None:
            e = self.emg = self._emg_factory()
            e.ui = self
        return e

    # -- the stack -----------------------------------------------------------------------------
    @property
    def screen(self):
        return self._stack[-1].SID

    @property
    def sel(self):
        return self._stack[-1].sel

    def top(self):
        return self._stack[-1]

    def _nav(self, req):
        """Carry out a navigation request (ui_screen.py)."""
        if req == STAY:
            return
        st = self._stack
        self._dirty = True
        if req == BACK:
            if len(st) > 1:
                st.pop()
                st[-1].uncover()
        elif req == HOME:
            while len(st) > 1:
                st.pop()
            if st[0] is not self.list:
                self.list.enter()
                st[0] = self.list
            else:
                self.list.uncover()
        elif req == DISMISS:
            self.sup.acknowledge()
            title = self.alert.title
            if st[-1] is self.alert and len(st) > 1:
                st.pop()
            if self.session is not None:
                want = RUN if self.sup.state == "running" else PAUSE
                if st[-1].SID != want:
                    self._nav(replace(want))
                else:
                    st[-1].uncover()
                if want == PAUSE:
                    self._screens[PAUSE].cause = title  # the output stopped: why
            else:
                self._nav(HOME)
        elif req & PUSH:
            scr = self._screens[req & SID_MASK]
            scr.enter()
            st.append(scr)
        elif req & REPLACE:
            scr = self._screens[req & SID_MASK]
            scr.enter()
            st[-1] = scr

    def show_alert(self, title, detail, how=None):
        """An alert over whatever is shown (one at a time: a newer one replaces its text). It
        wakes a dimmed screen."""
        a = self.alert
        a.title = title
        a.detail = detail
        a.how = how
        if self._stack[-1] is not a:
            a.enter()
            self._stack.append(a)
        self._dirty = True
        self._wake(self.now_ms)

    def show_fault(self, fault):
        kind = fault.kind
        title = _ALERT_TEXT.get(kind, kind[:16])
        ch = fault.channel
        detail = ("channel %d" % ch) if ch else _ALERT_DETAIL.get(kind, "")
        how = None
        if self.session is not None:
            if self.sup.state == "running":
                how = _HOW_CHANNEL.get(kind)  # (a warning: nothing to do)
            else:
                how = _HOW_STOPPED.get(kind, _HOW_RESUME)
        self.show_alert(title, detail, how)

    # -- events ------------------------------------------------------------------------------
    def handle(self, ev, now_ms):
        if ev == B.NONE:
            return
        btn = B.button_of(ev)
        kind = B.kind_of(ev)
        self.now_ms = now_ms
        if btn == B.STOP:
            if kind == B.K_DOWN:
                self._stop_all(now_ms, "stop_button")
                self._wake(now_ms)
            return
        top = self._stack[-1]
        if self.dimmed:
            if kind == B.K_DOWN:
                self._wake(now_ms)
                if not top.WAKE_ACTS:
                    self._swallow |= 1 << btn
            return
        self.last_input_ms = now_ms
        if self._swallow & (1 << btn):
            if kind == B.K_RELEASE:
                self._swallow &= ~(1 << btn)
            return
        if btn == B.LOCK:
            self.toggle_lock()
            return
        if self.locked:
            return
        if kind == B.K_DOWN or kind == B.K_RELEASE:
            return
        if kind == B.K_LONG:
            if not top.LONG:
                return
        else:
            self._dirty = True
        self._nav(top.on_button(btn, kind, now_ms))

    def _wake(self, now_ms):
        self.last_input_ms = now_ms
        if self.dimmed:
            self.dimmed = False
            self._dirty = True
            if self.display is not None:
                self.display.dim(0)

    def toggle_lock(self):
        self.locked = not self.locked
        if not self.locked:
            self.sup.on_unlock()  # rule 2: output restarts from zero after an unlock
        self.settings["keypad_lock"] = self.locked
        self._dirty = True

    # -- the session (the screens ask; every path does it alike) -----------------------------
    def start(self, now_ms):
        """OK on the check screen: a new session for self.program. Returns the navigation."""
        self.session = self.session_factory(self.program)
        self.session.start(now_ms)
        self.out = self.session.tick(now_ms)
        self.requests += 1
        self.run.ch = 1
        fault = self.sup.start(self.out.pulse, now_ms)
        if fault is not None:
            self.session.stop(now_ms)
            self.session = None  # refused: nothing runs (the alert stays until dismissed)
            self.seen_faults = len(self.sup.faults)
            self.show_fault(fault)
            return STAY
        return replace(RUN)

    def pause(self, now_ms):
        s = self.session
        if s is not None:  # (None: STOP ended it already; the output stops either way)
            s.pause(now_ms)
        self.sup.stop("pause")  # levels back to 0: output restarts from zero (rule 2)
        self.requests += 1

    def resume(self, now_ms):
        s = self.session
        if s is None:
            return HOME  # nothing to resume (STOP ended the session): back to the list
        s.resume(now_ms)
        self.out = s.tick(now_ms)
        fault = self.sup.start(self.out.pulse, now_ms)
        self.requests += 1
        if fault is not None:
            self.show_fault(fault)
            return STAY
        return replace(RUN)

    def end_session(self, now_ms, reason):
        self.sup.stop(reason)
        self.requests += 1
        if self.session is not None:
            self.session.stop(now_ms)
            self.session = None

    def _stop_all(self, now_ms, reason):
        self.end_session(now_ms, reason)
        self._dirty = True
        s = self._stack[-1].SID
        if s == RUN or s == PAUSE or s == CHECK:
            self.show_alert("Stopped", "STOP pressed")

    def usb(self):
        return self.power is not None and bool(self.power.usb_present())

    def battery_pct(self):
        if self.power is None:
            return 100
        try:
            return int(self.power.battery_pct())
        except Exception:
            return 0

    def index_of(self, p):
        for i in range(len(self.programs)):
            if self.programs[i] is p:
                return i
        return -1

    # -- time --------------------------------------------------------------------------------
    def update(self, now_ms, out=None):
        """Once per loop tick: the session view, new faults, end of session, idle dim."""
        self.now_ms = now_ms
        self._nav(self._stack[-1].tick(now_ms))
        sup = self.sup
        if (self.session is not None and self._stack[-1] is self.run
                and sup.state == "idle"):
            # the supervisor stopped on its own: STOP (its IRQ or its level) went first
            self._stop_all(now_ms, "stop_button")
        if self.session is not None:
            self.out = out if out is not None else self.session.tick(now_ms)
            if self.out.state == "done":
                self.end_session(now_ms, "done")
                self._nav(HOME)
                self._nav(push(DONE))
        faults = sup.faults
        if len(faults) > self.seen_faults:
            self.seen_faults = len(faults)
            self.show_fault(faults[-1])
        elif len(faults) < self.seen_faults:
            self.seen_faults = len(faults)
        idle_ms = time.ticks_diff(now_ms, self.last_input_ms)
        auto_off = self.settings.get("auto_off_min", 0)
        if self.session is None and auto_off and idle_ms >= auto_off * 60000:
            self.power_off_requested = True  # the app decides what "off" means (deep sleep)
        if not self.dimmed and idle_ms >= DIM_AFTER_MS:
            self.dimmed = True
            self._dirty = True
            if self.display is not None:
                self.display.dim(2)

    def quiet_ms(self, now_ms):
        """How long from now_ms update() and render() would change nothing if no input came
        (host simulation: App.quiet_ms): the top screen's own answer, the dimming and auto-off
        timers; 0 with a redraw pending, a fault not yet shown, a session ended or stopped."""
        if self._dirty or self.power_off_requested:
            return 0
        sup = self.sup
        if len(sup.faults) != self.seen_faults:
            return 0
        top = self._stack[-1]
        if self.session is not None:
            if top is self.run and sup.state == "idle":
                return 0
            out = self.out
            if out is None or out.state == "done":
                return 0
        q = top.quiet_ms(now_ms)
        idle = time.ticks_diff(now_ms, self.last_input_ms)
        if not self.dimmed and DIM_AFTER_MS - idle < q:
            q = DIM_AFTER_MS - idle
        auto_off = self.settings.get("auto_off_min", 0)
        if self.session is None and auto_off and auto_off * 60000 - idle < q:
            q = auto_off * 60000 - idle
        return q if q > 0 else 0

    # -- drawing -----------------------------------------------------------------------------
    def lines(self):
        """The text of the current screen, one string per text row (at most 8 x 16 chars)."""
        return self._stack[-1].lines()

    def _signature(self, top):
        """Integers that decide what any screen shows; compared without allocating."""
        g = self._sig
        changed = False
        v = top.SID
        if g[0] != v:
            g[0] = v
            changed = True
        v = top.sel
        if g[1] != v:
            g[1] = v
            changed = True
        v = top.scroll
        if g[2] != v:
            g[2] = v
            changed = True
        v = 1 if self.locked else 0
        if g[3] != v:
            g[3] = v
            changed = True
        v = 1 if self.dimmed else 0
        if g[4] != v:
            g[4] = v
            changed = True
        v = len(self._stack)
        if g[5] != v:
            g[5] = v
            changed = True
        return changed

    def render(self, fb):
        """Draw the current screen if anything on it changed; returns True when it drew."""
        top = self._stack[-1]
        a = self._signature(top)
        b = top.changed()
        if not (a or b or self._dirty):
            return False
        self._dirty = False
        fb.fill(0)
        top.draw(fb)
        return True

