# UI: the menu state machine. Button events in, requests to the Session and SafetySupervisor out,
# text lines (and a few graphics, screens.py) drawn into the framebuffer.
#
#   ui = UI(session_factory, supervisor, store, programs, power=None, display=None)
#   ui.handle(event, now_ms)   # one button event (buttons.py codes); event 0 = just time passing
#   ui.update(now_ms, out=None)  # once per loop tick: session view, faults, idle dim
#   changed = ui.render(fb)    # draws only when something on the screen changed
#   ui.lines()                 # the text of the current screen (for tests and traces)
#   ui.session                 # the Session the UI started (None when none): the app ticks it
#                              # and passes its output to supervisor.apply and ui.update
#   ui.power_off_requested     # idle for settings["auto_off_min"] minutes with no session
#
# Custom programs: a LONG press of OK on a program's detail screen opens the editor (EDIT) on a
# copy (a preset gives a new custom program "My <name>", key c1, c2, ...). UP/DOWN step the selected
# field, Program.validate() decides (an impossible value is refused with a message and nothing
# changes), OK goes to the next field and on the last one saves (store.save_program: flash), BACK
# cancels. A LONG press of BACK on a custom program's detail asks to delete it (DELETE, OK
# confirms). The editor never starts output.
#
# Rules kept here (SAFETY.md): STOP works in every state, locked or not, and is acted on at the
# debounced press (not the release); a locked keypad changes nothing but STOP (and the BACK+OK
# unlock combo); a press that wakes a dimmed screen does nothing else (the rest of that press is
# swallowed up to its release); the intensity only moves by explicit presses, through
# supervisor.set_user_level, which bounds rises itself.
#
# Allocation: the text of a screen is built only when something it shows changed (a key, a
# second of the countdown, a level step), so strings are made at most a few times per second,
# never per loop tick; render() with nothing changed allocates nothing.
from micropython import const
import time

import buttons as B
import programs as progmod
import screens

VERSION = "0.1.0"

SPLASH = const(0)
LIST = const(1)
DETAIL = const(2)
CHECK = const(3)
RUN = const(4)
PAUSE = const(5)
ALERT = const(6)
SETTINGS = const(7)
HISTORY = const(8)
DONE = const(9)
EDIT = const(10)
DELETE = const(11)
NOTICE = const(12)
SCREEN_NAMES = ("splash", "list", "detail", "check", "run", "pause", "alert", "settings",
                "history", "done", "edit", "delete", "notice")

DIM_AFTER_MS = const(30000)
SPLASH_MS = const(1500)
STEP_MA = 1  # one press = 1 mA (SAFETY rule 3)

_MENU = ("Programs", "Settings", "History")
_NOTICE_ROWS = const(5)
_SETTINGS_ITEMS = ("Contrast", "Sound", "Auto-off", "Keypad lock", "Cap ch1", "Cap ch2")
_CONTRASTS = (32, 64, 128, 192, 255)
_AUTO_OFF = (0, 5, 10, 20, 30, 60)

# The program editor: the fields, as labels and units on the screen (rows of 16 characters).
EDIT_FIELDS = ("rate_hz", "phase_us", "on_s", "off_s", "ramp_up_s", "ramp_down_s", "session_min",
               "mode")
_EDIT_LABELS = ("Rate", "Width", "On", "Off", "Ramp+", "Ramp-", "Time", "Mode")
_EDIT_UNITS = (" Hz", " us", " s", " s", " s", " s", " min", "")
_EDIT_ROWS = const(5)  # fields visible at once (rows 1-5); row 6 message, row 7 help
_MODE_TEXT = ("sync", "alternate", "reciproc.")  # 9 characters at most (column 7-15)

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
# a stopped channel on the run screen (12 characters after "1 ")
_CH_FAULT_TEXT = {
    "open_circuit": "no electrode",
    "cannot_reach_current": "cannot reach",
    "over_current": "over current",
}


def _mmss(ms):
    if ms < 0:
        ms = 0
    s = (ms + 999) // 1000
    return "%02d:%02d" % (s // 60, s % 60)


def _fmt_ma(x10):
    return "%3d.%dmA" % (x10 // 10, x10 % 10)


class UI:
    def __init__(self, session_factory, supervisor, store, programs, power=None, display=None,
                 channels=2, now_ms=0):
        self.session_factory = session_factory
        self.sup = supervisor
        self.store = store
        self.programs = programs
        self.power = power  # optional: battery_pct(), usb_present()
        self.display = display  # optional: dim(level)
        self.channels = channels
        try:
            self.settings = store.load_settings()
        except Exception:
            self.settings = {}
        self.screen = SPLASH
        self.prev_screen = LIST
        self.sel = 0  # selected row in a list
        self.top = 0  # first visible row in a list
        self.scroll = 0  # detail / history scroll
        self.program = None
        self.session = None
        self.out = None
        self.ch = 1  # selected channel on the run screen
        self.locked = bool(self.settings.get("keypad_lock", False))
        self.dimmed = False
        self.last_input_ms = now_ms
        self.splash_until = time.ticks_add(now_ms, SPLASH_MS)
        self.alert = None  # (title, detail)
        self.seen_faults = len(getattr(supervisor, "faults", ()))
        self._swallow = 0  # bit per button: rest of this press ignored (it woke the screen)
        self._dirty = True
        self._sig = [0] * 12
        self._sig_new = [0] * 12
        self._lines = None
        self.history = None
        self.edit = None  # the Program being edited (a copy), EDIT screen
        self.edit_index = -1  # its place in self.programs (-1: new, appended on save)
        self.edit_msg = ""  # refusal message on the EDIT screen
        self.power_off_requested = False  # idle for auto_off_min with no session running
        self.requests = 0  # count of requests made to session / supervisor (for traces)
        # Notices of the file loads (a bad settings or programs file set aside): shown after the
        # splash, one at a time, until OK (or BACK) dismisses each
        self.notices = list(getattr(store, "notices", ()))
        self._faults_sig = [None, None, None]
        self._has_chf = hasattr(supervisor, "channel_fault")

    # -- events ------------------------------------------------------------------------------
    def handle(self, ev, now_ms):
        if ev == B.NONE:
            return
        btn = B.button_of(ev)
        kind = B.kind_of(ev)
        if btn == B.STOP:
            if kind == B.K_DOWN:
                self._stop_all(now_ms, "stop_button")
                self._wake(now_ms)
            return
        if self.dimmed:
            if kind == B.K_DOWN:
                self._wake(now_ms)
                self._swallow |= 1 << btn
            return
        self.last_input_ms = now_ms
        if self._swallow & (1 << btn):
            if kind == B.K_RELEASE:
                self._swallow &= ~(1 << btn)
            return
        if btn == B.LOCK:
            self._toggle_lock(now_ms)
            return
        if self.locked:
            return
        if kind == B.K_LONG:
            if self.screen == DETAIL:
                if btn == B.OK:
                    self._open_editor()
                elif btn == B.BACK and self._is_custom(self.program):
                    self.screen = DELETE
                    self._dirty = True
            return
        if kind == B.K_DOWN or kind == B.K_RELEASE:
            return
        # kind is PRESS or REPEAT from here on
        self._dirty = True
        s = self.screen
        if s == SPLASH:
            self._after_splash()
        elif s == NOTICE:
            self._on_notice(btn)
        elif s == LIST:
            self._on_list(btn)
        elif s == DETAIL:
            self._on_detail(btn)
        elif s == CHECK:
            self._on_check(btn, now_ms)
        elif s == RUN:
            self._on_run(btn, now_ms)
        elif s == PAUSE:
            self._on_pause(btn, now_ms)
        elif s == ALERT or s == DONE:
            if btn == B.OK or btn == B.BACK:
                self._dismiss()
        elif s == SETTINGS:
            self._on_settings(btn, now_ms)
        elif s == EDIT:
            self._on_edit(btn)
        elif s == DELETE:
            self._on_delete(btn)
        elif s == HISTORY:
            if btn == B.BACK:
                self._go(LIST)
            elif btn == B.UP and self.scroll > 0:
                self.scroll -= 1
            elif btn == B.DOWN:
                self.scroll += 1

    def _after_splash(self):
        if self.notices:
            self._go(NOTICE)
        else:
            self.screen = LIST
            self._dirty = True

    def _on_notice(self, btn):
        if btn == B.OK or btn == B.BACK:
            self.notices.pop(0)
            if self.notices:
                self._go(NOTICE)
            else:
                self._go(LIST)
        elif btn == B.DOWN and self.scroll < len(self._notice_rows()) - _NOTICE_ROWS:
            self.scroll += 1
        elif btn == B.UP and self.scroll > 0:
            self.scroll -= 1

    def _notice_rows(self):
        text = self.notices[0] if self.notices else ""
        rows = []
        while text:
            rows.append(text[:16])
            text = text[16:]
        return rows

    def _wake(self, now_ms):
        self.last_input_ms = now_ms
        if self.dimmed:
            self.dimmed = False
            self._dirty = True
            if self.display is not None:
                self.display.dim(0)

    def _go(self, screen):
        self.screen = screen
        self.sel = 0
        self.top = 0
        self.scroll = 0
        self._dirty = True

    def _menu_items(self):
        return len(self.programs) + 2  # programs, then Settings, History

    def _on_list(self, btn):
        n = self._menu_items()
        if btn == B.UP:
            self.sel = (self.sel - 1) % n
        elif btn == B.DOWN:
            self.sel = (self.sel + 1) % n
        elif btn == B.OK:
            if self.sel < len(self.programs):
                self.program = self.programs[self.sel]
                keep = self.sel
                self._go(DETAIL)
                self.prev_sel = keep
            elif self.sel == len(self.programs):
                self._go(SETTINGS)
            else:
                try:
                    self.history = self.store.load_history()
                except Exception:
                    self.history = []
                self._go(HISTORY)
        if self.sel < self.top:
            self.top = self.sel
        elif self.sel >= self.top + 6:
            self.top = self.sel - 5

    def _back_to_list(self):
        keep = getattr(self, "prev_sel", 0)
        self._go(LIST)
        self.sel = keep
        self.top = keep - 5 if keep > 5 else 0

    def _on_detail(self, btn):
        if btn == B.UP and self.scroll > 0:
            self.scroll -= 1
        elif btn == B.DOWN:
            if self.scroll < len(self._detail_lines()) - 6:
                self.scroll += 1
        elif btn == B.OK:
            self._go(CHECK)
        elif btn == B.BACK:
            self._back_to_list()

    def _on_check(self, btn, now_ms):
        if btn == B.BACK:
            self._go(DETAIL)
        elif btn == B.OK:
            if self._usb():
                self._show_alert("USB connected", "unplug to start")
                return
            self._start(now_ms)

    def _start(self, now_ms):
        self.session = self.session_factory(self.program)
        self.session.start(now_ms)
        self.out = self.session.tick(now_ms)
        self.requests += 1
        self.ch = 1
        fault = self.sup.start(self.out.pulse, now_ms)
        if fault is not None:
            self.session.stop(now_ms)
            self.session = None  # refused: nothing runs (the alert stays until dismissed)
            self.seen_faults = len(getattr(self.sup, "faults", ()))
            self._show_fault(fault)
            return
        self._go(RUN)

    def _on_run(self, btn, now_ms):
        if btn == B.UP and self._ch_fault(self.ch) is not None:
            # the electrode is back: an explicit press restarts the channel, from 0 mA
            if hasattr(self.sup, "rearm_channel"):
                self.sup.rearm_channel(self.ch, now_ms)
            self.requests += 1
        elif btn == B.UP or btn == B.DOWN:
            cur = self.sup.user_level(self.ch)
            want = cur + STEP_MA if btn == B.UP else cur - STEP_MA
            if want < 0:
                want = 0
            self.sup.set_user_level(self.ch, want, now_ms)
            self.requests += 1
        elif btn == B.OK:
            self.ch = self.ch + 1 if self.ch < self.channels else 1
        elif btn == B.BACK:
            self.session.pause(now_ms)
            self.sup.stop("pause")  # levels back to 0: output restarts from zero (rule 2)
            self.requests += 1
            self._go(PAUSE)

    def _on_pause(self, btn, now_ms):
        if btn == B.OK:
            self.session.resume(now_ms)
            self.out = self.session.tick(now_ms)
            fault = self.sup.start(self.out.pulse, now_ms)
            self.requests += 1
            if fault is not None:
                self._show_fault(fault)
                return
            self._go(RUN)
        elif btn == B.BACK:
            self._end_session(now_ms, "user")
            self._back_to_list()

    def _stop_all(self, now_ms, reason):
        self.sup.stop(reason)
        self.requests += 1
        if self.session is not None:
            self.session.stop(now_ms)
            self.session = None
        self._dirty = True
        if self.screen in (RUN, PAUSE, CHECK):
            self._show_alert("Stopped", "STOP pressed")

    def _end_session(self, now_ms, reason):
        self.sup.stop(reason)
        self.requests += 1
        if self.session is not None:
            self.session.stop(now_ms)
            self.session = None

    def _toggle_lock(self, now_ms):
        self.locked = not self.locked
        if not self.locked and hasattr(self.sup, "on_unlock"):
            self.sup.on_unlock()  # rule 2: output restarts from zero after an unlock
        self.settings["keypad_lock"] = self.locked
        self._dirty = True

    def _usb(self):
        return self.power is not None and bool(self.power.usb_present())

    def _ch_fault(self, ch):
        # a method call, not getattr (that would make a bound method: render runs every tick)
        return self.sup.channel_fault(ch) if self._has_chf else None

    # -- custom programs ---------------------------------------------------------------------
    def _is_custom(self, p):
        return p is not None and progmod.preset(p.key) is None

    def _index_of(self, p):
        for i in range(len(self.programs)):
            if self.programs[i] is p:
                return i
        return -1

    def _new_key_name(self, name):
        keys = [q.key for q in self.programs]
        names = [q.name for q in self.programs]
        n = 1
        while ("c%d" % n) in keys:
            n += 1
        nm = ("My " + name)[:progmod.NAME_MAX_CHARS]
        if nm in names:
            tail = " %d" % n
            nm = nm[:progmod.NAME_MAX_CHARS - len(tail)] + tail
        return "c%d" % n, nm

    def _open_editor(self):
        """LONG OK on a detail screen: edit a copy (a preset: a new custom program)."""
        p = self.program
        try:
            d = p.to_dict()
            if self._is_custom(p):
                self.edit_index = self._index_of(p)
            else:
                d["key"], d["name"] = self._new_key_name(p.name)
                d["source"] = "Custom, from " + p.key
                self.edit_index = -1
            self.edit = progmod.Program.from_dict(d)
        except Exception:
            self.edit = None
            self._show_alert("Cannot edit", p.name[:16])
            return
        self.edit_msg = ""
        self._go(EDIT)

    def _edit_value(self, i, up):
        """The next value of field i one step up or down (None for no change)."""
        p = self.edit
        name = EDIT_FIELDS[i]
        v = getattr(p, name)
        if name == "mode":
            k = progmod.MODES.index(v) if v in progmod.MODES else 0
            k = (k + (1 if up else -1)) % len(progmod.MODES)
            return progmod.MODES[k]
        if name == "rate_hz":
            # finer steps at low rates; the thresholds make up and down retrace each other
            w = v if up else v - 0.01
            step = 0.5 if w < 2 else 1 if w < 10 else 5 if w < 100 else 10 if w < 200 else 50
        elif name == "phase_us":
            step = 10
        elif name == "session_min":
            step = 1 if (v if up else v - 0.01) < 30 else 5
        else:
            step = 1
        v = v + step if up else v - step
        if type(v) is float and v == int(v):
            v = int(v)
        return v

    def _on_edit(self, btn):
        p = self.edit
        n = len(EDIT_FIELDS)
        i = self.sel
        self.edit_msg = ""
        if btn == B.UP or btn == B.DOWN:
            name = EDIT_FIELDS[i]
            old = getattr(p, name)
            setattr(p, name, self._edit_value(i, btn == B.UP))
            try:
                p.validate()
            except Exception as e:  # ValueError from validate(): the value is impossible
                setattr(p, name, old)  # refused: nothing changes
                if name == "mode":
                    self.edit_msg = "! mode not fit"
                elif "period" in str(e):
                    self.edit_msg = "! pulse > period"
                else:
                    self.edit_msg = "! limit reached"
        elif btn == B.OK:
            if i < n - 1:
                self.sel = i + 1
                if self.sel >= self.top + _EDIT_ROWS:
                    self.top = self.sel - _EDIT_ROWS + 1
            else:
                self._save_edit()
        elif btn == B.BACK:
            self.edit = None  # cancel: nothing saved, the program as it was
            self._go(DETAIL)

    def _save_edit(self):
        p = self.edit
        try:
            p.validate()
            self.store.save_program(p)
        except Exception:
            self.edit_msg = "! not saved"
            return
        i = self.edit_index
        if 0 <= i < len(self.programs):
            self.programs[i] = p
        else:
            self.programs.append(p)  # after the presets and the older custom programs
            i = len(self.programs) - 1
        self.edit = None
        self.program = p
        self.prev_sel = i
        self._back_to_list()

    def _on_delete(self, btn):
        if btn == B.OK:
            p = self.program
            try:
                self.store.delete_program(p.key)
            except Exception:
                self._show_alert("Not deleted", "flash error")
                return
            i = self._index_of(p)
            if i >= 0:
                self.programs.pop(i)
            self.program = None
            self.prev_sel = i - 1 if i > 0 else 0
            self._back_to_list()
        elif btn == B.BACK:
            self._go(DETAIL)

    def _edit_lines(self):
        p = self.edit
        out = [p.name[:16]]
        for i in range(self.top, min(len(EDIT_FIELDS), self.top + _EDIT_ROWS)):
            name = EDIT_FIELDS[i]
            v = getattr(p, name)
            if name == "mode":
                val = _MODE_TEXT[progmod.MODES.index(v)] if v in progmod.MODES else str(v)
            elif type(v) is float:
                val = "%.1f" % v + _EDIT_UNITS[i]
            else:
                val = "%d" % v + _EDIT_UNITS[i]
            row = "%-6s%s" % (_EDIT_LABELS[i], val)
            out.append((">" if i == self.sel else " ") + row[:15])
        while len(out) < 1 + _EDIT_ROWS:
            out.append("")
        out.append(self.edit_msg)
        last = self.sel == len(EDIT_FIELDS) - 1
        out.append("+/- ok:save bk:x" if last else "+/- ok:next bk:x")
        return out

    # -- alerts ------------------------------------------------------------------------------
    def _show_fault(self, fault):
        kind = getattr(fault, "kind", str(fault))
        title = _ALERT_TEXT.get(kind, kind[:16])
        ch = getattr(fault, "channel", 0)
        detail = ("channel %d" % ch) if ch else _ALERT_DETAIL.get(kind, "")
        self._show_alert(title, detail)

    def _show_alert(self, title, detail):
        if self.screen != ALERT:
            self.prev_screen = self.screen
        self.alert = (title, detail)
        self.screen = ALERT
        self._dirty = True

    def _dismiss(self):
        if hasattr(self.sup, "acknowledge"):
            self.sup.acknowledge()
        self.alert = None
        if self.session is not None and getattr(self.sup, "state", "") == "running":
            self._go(RUN)
        elif self.session is not None:
            self._go(PAUSE)
        else:
            self._back_to_list()

    # -- time --------------------------------------------------------------------------------
    def update(self, now_ms, out=None):
        """Once per loop tick: the session view, new faults, end of session, idle dim."""
        if self.screen == SPLASH and time.ticks_diff(now_ms, self.splash_until) >= 0:
            self._after_splash()
        if (self.session is not None and self.screen == RUN
                and getattr(self.sup, "state", "running") == "idle"):
            # the supervisor stopped on its own: STOP (its IRQ or its level) went first
            self._stop_all(now_ms, "stop_button")
        if self.session is not None:
            self.out = out if out is not None else self.session.tick(now_ms)
            if self.out.state == "done":
                self._end_session(now_ms, "done")
                self._record()
                self._go(DONE)
        faults = getattr(self.sup, "faults", ())
        if len(faults) > self.seen_faults:
            self.seen_faults = len(faults)
            self._show_fault(faults[-1])
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

    def _record(self):
        try:
            self.store.append_session({"program": self.program.key[:16]})
        except Exception:
            pass

    # -- text --------------------------------------------------------------------------------
    def _detail_lines(self):
        p = self.program
        lines = [
            p.name[:16],
            "%d Hz %d us" % (p.rate_hz, p.phase_us),
            "on %ds off %ds" % (p.on_s, p.off_s),
            "ramp %d/%d s" % (p.ramp_up_s, p.ramp_down_s),
            "time %d min" % p.session_min,
            "mode %s" % p.mode,
            "hold ok: edit",
        ]
        if self._is_custom(p):
            lines.append("hold bk: delete")
        src = p.source or ""
        while src:
            lines.append(src[:16])
            src = src[16:]
        return lines

    def _battery_pct(self):
        if self.power is None:
            return 100
        try:
            return int(self.power.battery_pct())
        except Exception:
            return 0

    def lines(self):
        """The text of the current screen, one string per text row (at most 8 x 16 chars)."""
        s = self.screen
        if s == SPLASH:
            return ["", "  NMES handheld", "", "  v" + VERSION, "", "", " not a certified",
                    " medical device"]
        if s == NOTICE:
            rows = self._notice_rows()
            out = ["! File problem"]
            out += rows[self.scroll:self.scroll + _NOTICE_ROWS]
            while len(out) < 1 + _NOTICE_ROWS:
                out.append("")
            more = len(self.notices) - 1
            out.append(("+%d more" % more) if more > 0 else
                       ("down: more" if len(rows) > self.scroll + _NOTICE_ROWS else ""))
            out.append("ok: dismiss")
            return out
        if s == LIST:
            out = ["Programs" + (" [L]" if self.locked else "")]
            n = self._menu_items()
            for i in range(self.top, min(n, self.top + 6)):
                if i < len(self.programs):
                    name = self.programs[i].name[:15]
                else:
                    name = _MENU[1 + i - len(self.programs)]
                out.append((">" if i == self.sel else " ") + name)
            return out
        if s == DETAIL:
            d = self._detail_lines()
            return [d[0]] + d[1 + self.scroll:7 + self.scroll] + ["ok:start back"]
        if s == CHECK:
            return ["Ready?", "Electrodes on", "skin, intensity", "starts at 0 mA", "",
                    "Battery %d%%" % self._battery_pct(),
                    "USB!" if self._usb() else "", "ok:start back"]
        if s == RUN:
            out = self.out
            name = self.program.name[:10]
            lines = [name, "", "", "", "", "", "", ""]
            if out is not None:
                lines[1] = "%-8s %3ds" % (out.state[:8], (out.countdown_ms + 999) // 1000)
                lines[2] = "left  " + _mmss(out.remaining_ms)
            for ch in range(1, self.channels + 1):
                head = "%s%d" % (">" if ch == self.ch else " ", ch)
                f = self._ch_fault(ch)
                if f is not None:
                    lines[2 + ch] = head + " " + _CH_FAULT_TEXT.get(f, f[:12])
                else:
                    x10 = int(self.sup.user_level(ch) * 10 + 0.5)
                    lines[2 + ch] = head + _fmt_ma(x10)
            lines[6] = "bat %d%%" % self._battery_pct()
            if self.locked:
                lines[7] = "LOCKED"
            elif self._ch_fault(self.ch) is not None:
                lines[7] = "up: restart ch%d" % self.ch
            else:
                lines[7] = "+/- ok:ch bk:||"
            return lines
        if s == PAUSE:
            return ["Paused", self.program.name[:16], "", "Intensity is 0", "on resume", "",
                    "ok: resume", "back: end"]
        if s == ALERT:
            t, d = self.alert if self.alert else ("", "")
            return ["! ALERT !", "", t[:16], d[:16], "", "", "", "ok: dismiss"]
        if s == DONE:
            return ["Session done", self.program.name[:16] if self.program else "", "", "",
                    "", "", "", "ok"]
        if s == SETTINGS:
            out = ["Settings"]
            for i in range(len(_SETTINGS_ITEMS)):
                out.append((">" if i == self.sel else " ") + self._setting_text(i))
            return out
        if s == EDIT:
            return self._edit_lines()
        if s == DELETE:
            return ["Delete program?", self.program.name[:16], "", "It is removed", "from flash.",
                    "", "ok: delete", "back: keep"]
        if s == HISTORY:
            h = self.history or []
            out = ["History (%d)" % len(h)]
            for r in h[::-1][self.scroll:self.scroll + 7]:
                out.append(("#%d %s" % (r.get("n", 0), r.get("program", "")))[:16])
            return out
        return []

    def _setting_text(self, i):
        st = self.settings
        if i == 0:
            return "Contrast %d" % st.get("contrast", 128)
        if i == 1:
            return "Sound %s" % ("on" if st.get("sound", True) else "off")
        if i == 2:
            m = st.get("auto_off_min", 10)
            return "Auto-off %s" % (("%dm" % m) if m else "never")
        if i == 3:
            return "Keypad lock" + (" on" if self.locked else "")
        cap = st.get("cap_ma", [100, 100])
        return "Cap ch%d %dmA" % (i - 3, cap[i - 4])

    def _on_settings(self, btn, now_ms):
        n = len(_SETTINGS_ITEMS)
        st = self.settings
        if btn == B.UP:
            self.sel = (self.sel - 1) % n
        elif btn == B.DOWN:
            self.sel = (self.sel + 1) % n
        elif btn == B.BACK:
            try:
                self.store.save_settings(st)
            except Exception:
                pass
            self._go(LIST)
            self.sel = len(self.programs)
        elif btn == B.OK:
            i = self.sel
            if i == 0:
                st["contrast"] = _next_in(_CONTRASTS, st.get("contrast", 128))
                if self.display is not None and hasattr(self.display, "contrast"):
                    self.display.contrast(st["contrast"])
            elif i == 1:
                st["sound"] = not st.get("sound", True)
            elif i == 2:
                st["auto_off_min"] = _next_in(_AUTO_OFF, st.get("auto_off_min", 10))
            elif i == 3:
                self._toggle_lock(now_ms)
            elif not st.get("clinician_lock", False):
                cap = list(st.get("cap_ma", [100, 100]))
                c = cap[i - 4] - 10
                cap[i - 4] = 100 if c < 10 else c  # 100, 90, ... 10, then back to 100
                st["cap_ma"] = cap
                if hasattr(self.sup, "set_caps"):
                    self.sup.set_caps(st)

    # -- drawing -----------------------------------------------------------------------------
    def _signature(self):
        """Integers that decide what the screen shows; compared without allocating."""
        g = self._sig_new
        g[0] = self.screen
        g[1] = self.sel
        g[2] = self.scroll
        g[3] = 1 if self.locked else 0
        g[4] = 1 if self.dimmed else 0
        out = self.out if self.screen == RUN else None
        if out is not None:
            g[5] = (out.countdown_ms + 999) // 1000
            g[6] = (out.remaining_ms + 999) // 1000
            g[7] = len(out.state)
        g[8] = self.ch
        if self.screen == RUN:
            # the level objects themselves: comparing floats allocates nothing, scaling would
            g[9] = self.sup.user_level(1)
            g[10] = self.sup.user_level(2) if self.channels > 1 else 0
            g[11] = self._battery_pct()
        changed = False
        old = self._sig
        for i in range(12):
            if old[i] != g[i]:
                old[i] = g[i]
                changed = True
        if self.screen == RUN:
            fs = self._faults_sig  # a channel stopped by a fault (the kind strings themselves)
            for ch in range(1, self.channels + 1):
                f = self._ch_fault(ch)
                if f is not fs[ch]:
                    fs[ch] = f
                    changed = True
        return changed

    def render(self, fb):
        """Draw the current screen if anything on it changed; returns True when it drew."""
        if not self._signature() and not self._dirty:
            return False
        self._dirty = False
        fb.fill(0)
        lines = self.lines()
        self._lines = lines
        screens.text_lines(fb, lines)
        if self.screen in (LIST, SETTINGS, EDIT):
            row = 1 + self.sel - self.top
            if 0 < row < 8:
                screens.text_inverted(fb, lines[row], row)
        if self.screen == RUN:
            lv = [0, int(self.sup.user_level(1) * 10),
                  int(self.sup.user_level(2) * 10) if self.channels > 1 else 0]
            cap = [0] + list(self.settings.get("cap_ma", [100, 100]))
            on = getattr(self.sup, "state", "") == "running"
            stopped = [False, self._ch_fault(1) is not None,
                       self.channels > 1 and self._ch_fault(2) is not None]
            screens.run_graphics(fb, lv, cap, self.ch, self._battery_pct(), on, self.locked,
                                 stopped)
        elif self.locked:
            screens.lock_mark(fb, 120, 0)
        return True


def _next_in(seq, v):
    for i in range(len(seq)):
        if seq[i] > v:
            return seq[i]
    return seq[0]
