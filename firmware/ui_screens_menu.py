# The menu screens: splash, file notices, the program list, settings, history, and the door to
# the EMG screens (emg_ui.py draws them; this class only hands it the keys).
from micropython import const
import time

import buttons as B
from ui_screen import (DETAIL, EMG, HISTORY, LIST, NOTICE, SETTINGS, SPLASH, STAY, BACK,
                       Screen, num, push, replace, wrap)

VERSION = "0.1.0"

_LIST_ROWS = const(6)
_NOTICE_ROWS = const(5)
_HISTORY_ROWS = const(6)
_SETTINGS_ITEMS = ("Contrast", "Sound", "Auto-off", "Keypad lock", "Cap ch1", "Cap ch2")
_CONTRASTS = (32, 64, 128, 192, 255)
_AUTO_OFF = (0, 5, 10, 20, 30, 60)

# how a session ended (history "end") and the faults it saw, as the history screen says them
_END_TEXT = {"done": "done", "stop": "STOP", "back": "ended", "fault": "fault",
             "battery": "battery", "usb": "USB", "reset": "reset"}
FAULT_SHORT = {
    "open_circuit": "no electrode",
    "cannot_reach_current": "cannot reach",
    "over_current": "over current",
    "timing_missed": "timing",
    "low_battery": "battery low",
    "low_battery_warning": "battery warn",
    "usb_power": "USB power",
    "watchdog": "watchdog",
    "stop_held": "STOP held",
    "invalid_params": "bad params",
}


class SplashScreen(Screen):
    SID = SPLASH

    def _next(self):
        return replace(NOTICE if self.ui.notices else LIST)

    def tick(self, now_ms):
        if time.ticks_diff(now_ms, self.ui.splash_until) >= 0:
            return self._next()
        return STAY

    def on_button(self, btn, kind, now_ms):
        return self._next()

    def quiet_ms(self, now_ms):
        d = time.ticks_diff(self.ui.splash_until, now_ms)
        return d if d > 0 else 0

    def lines(self):
        return ["", "  NMES handheld", "", "  v" + VERSION, "", "", " not a certified",
                " medical device"]


class NoticeScreen(Screen):
    """A file set aside at boot (bad settings or programs): shown until OK or BACK, one at a
    time; DOWN/UP scroll a long one."""
    SID = NOTICE

    def enter(self):
        Screen.enter(self)
        n = self.ui.notices
        self.rows = wrap(n[0]) if n else []

    def on_button(self, btn, kind, now_ms):
        n = self.ui.notices
        if btn == B.OK or btn == B.BACK:
            if n:
                n.pop(0)
            return replace(NOTICE if n else LIST)
        if btn == B.DOWN and self.scroll < len(self.rows) - _NOTICE_ROWS:
            self.scroll += 1
        elif btn == B.UP and self.scroll > 0:
            self.scroll -= 1
        return STAY

    def lines(self):
        rows = self.rows
        out = ["! File problem"]
        out += rows[self.scroll:self.scroll + _NOTICE_ROWS]
        while len(out) < 1 + _NOTICE_ROWS:
            out.append("")
        more = len(self.ui.notices) - 1
        out.append(("+%d more" % more) if more > 0 else
                   ("down: more" if len(rows) > self.scroll + _NOTICE_ROWS else ""))
        out.append("ok: dismiss")
        return out


class ListScreen(Screen):
    """The programs, then the menu entries (Settings, History, EMG when the unit has it)."""
    SID = LIST
    HIGHLIGHT = True

    def select(self, i):
        self.sel = i
        self.top = i - _LIST_ROWS + 1 if i >= _LIST_ROWS else 0

    def _n(self):
        return len(self.ui.programs) + len(self.ui.menu)

    def on_button(self, btn, kind, now_ms):
        ui = self.ui
        n = self._n()
        req = STAY
        if btn == B.UP:
            self.sel = (self.sel - 1) % n
        elif btn == B.DOWN:
            self.sel = (self.sel + 1) % n
        elif btn == B.OK:
            np = len(ui.programs)
            if self.sel < np:
                ui.program = ui.programs[self.sel]
                req = push(DETAIL)
            else:
                item = ui.menu[self.sel - np]
                req = push(SETTINGS if item == "Settings" else
                           HISTORY if item == "History" else EMG)
        if self.sel < self.top:
            self.top = self.sel
        elif self.sel >= self.top + _LIST_ROWS:
            self.top = self.sel - _LIST_ROWS + 1
        return req

    def lines(self):
        ui = self.ui
        out = ["Programs" + (" [L]" if ui.locked else "")]
        np = len(ui.programs)
        n = self._n()
        for i in range(self.top, min(n, self.top + _LIST_ROWS)):
            name = ui.programs[i].name[:15] if i < np else ui.menu[i - np]
            out.append((">" if i == self.sel else " ") + name)
        return out


def _next_in(seq, v):
    for i in range(len(seq)):
        if seq[i] > v:
            return seq[i]
    return seq[0]


class SettingsScreen(Screen):
    SID = SETTINGS
    HIGHLIGHT = True

    def on_button(self, btn, kind, now_ms):
        ui = self.ui
        n = len(_SETTINGS_ITEMS)
        st = ui.settings
        if btn == B.UP:
            self.sel = (self.sel - 1) % n
        elif btn == B.DOWN:
            self.sel = (self.sel + 1) % n
        elif btn == B.BACK:
            try:
                ui.store.save_settings(st)
            except Exception:
                pass
            return BACK
        elif btn == B.OK:
            i = self.sel
            if i == 0:
                st["contrast"] = _next_in(_CONTRASTS, st.get("contrast", 128))
                if ui.display is not None:
                    ui.display.contrast(st["contrast"])
            elif i == 1:
                st["sound"] = not st.get("sound", True)
            elif i == 2:
                st["auto_off_min"] = _next_in(_AUTO_OFF, st.get("auto_off_min", 10))
            elif i == 3:
                ui.toggle_lock()
            elif not st.get("clinician_lock", False):
                cap = list(st.get("cap_ma", [100, 100]))
                c = cap[i - 4] - 10
                cap[i - 4] = 100 if c < 10 else c  # 100, 90, ... 10, then back to 100
                st["cap_ma"] = cap
                ui.sup.set_caps(st)
        return STAY

    def _text(self, i):
        ui = self.ui
        st = ui.settings
        if i == 0:
            return "Contrast %d" % st.get("contrast", 128)
        if i == 1:
            return "Sound %s" % ("on" if st.get("sound", True) else "off")
        if i == 2:
            m = st.get("auto_off_min", 10)
            return "Auto-off %s" % (("%dm" % m) if m else "never")
        if i == 3:
            return "Keypad lock" + (" on" if ui.locked else "")
        cap = st.get("cap_ma", [100, 100])
        return "Cap ch%d %dmA" % (i - 3, cap[i - 4])

    def lines(self):
        out = ["Settings"]
        for i in range(len(_SETTINGS_ITEMS)):
            out.append((">" if i == self.sel else " ") + self._text(i))
        return out


def _ma(v):
    """A peak current with its tenth: 25 -> "25", 6.25 -> "6.3"."""
    if type(v) is not int and type(v) is not float:
        return "-"
    x = int(v * 10 + 0.5)
    return "%d" % (x // 10) if x % 10 == 0 else "%d.%d" % (x // 10, x % 10)


class HistoryScreen(Screen):
    """The sessions, newest first: program, minutes stimulated, peak mA per channel, how it
    ended, contractions, faults. UP/DOWN move one session. Old records (fewer fields) show what
    they have."""
    SID = HISTORY

    def enter(self):
        Screen.enter(self)
        try:
            h = self.ui.store.load_history()
        except Exception:
            h = []
        self.records = h
        self.scroll = 0

    def on_button(self, btn, kind, now_ms):
        if btn == B.BACK:
            return BACK
        if btn == B.UP and self.scroll > 0:
            self.scroll -= 1
        elif btn == B.DOWN and self.scroll < len(self.records) - 1:
            self.scroll += 1
        return STAY

    def _name(self, key):
        for p in self.ui.programs:
            if p.key == key:
                return p.name
        return key

    def record_rows(self, r):
        """One session: "#12 Quad ACL" / " 12.5 min   STOP" / " max 25/0 mA" / " 15 contractions"
        / " ! no electrode" (a row per fault kind); a row only for what the record has."""
        rows = [("#%d %s" % (r.get("n", 0), self._name(r.get("program", "?"))))[:16]]
        m = r.get("minutes")
        end = r.get("end")
        cut = end == "reset"      # cut by a reset or power loss: minutes and mA not known
        left = (" %s min" % num(m)) if m is not None else (" ? min" if cut else "")
        right = _END_TEXT.get(end, end[:7]) if end else ""
        if left or right:
            rows.append(left + " " * (16 - len(left) - len(right)) + right)
        mx = r.get("max_ma")
        if mx:
            t = "/".join([_ma(v) for v in mx]) + " mA"
            rows.append(((" max " + t) if len(t) <= 11 else " " + t)[:16])
        elif cut:
            rows.append(" max ? mA")
        c = r.get("contractions")
        if c:
            rows.append((" %d contractions" % c)[-16:])
        for k in r.get("faults") or ():
            rows.append((" ! " + FAULT_SHORT.get(k, k))[:16])
        return rows

    def lines(self):
        h = self.records
        out = ["History (%d)" % len(h)]
        if not h:
            out.append("No sessions yet")
        i = len(h) - 1 - self.scroll
        while i >= 0 and len(out) < 1 + _HISTORY_ROWS:
            out += self.record_rows(h[i])
            i -= 1
        out = out[:1 + _HISTORY_ROWS]
        while len(out) < 1 + _HISTORY_ROWS:
            out.append("")
        out.append("dn:older bk" if i >= 0 or self.scroll < len(h) - 1 else "bk: back")
        return out


class EmgScreen(Screen):
    """The EMG menu (emg_ui.EmgControl: calibrate, biofeedback, threshold, EMG-triggered
    programs). Its keys go to the controller; a program it hands back opens the detail screen."""
    SID = EMG

    def enter(self):
        Screen.enter(self)
        self.ui.emg_control().open()

    def uncover(self):
        self.ui.emg_control().open()

    def on_button(self, btn, kind, now_ms):
        r = self.ui.emg.handle(btn, now_ms)
        if r is True:
            return BACK
        if r is False or r is None:
            return STAY
        self.ui.program = r  # an EMG-triggered program: detail, check and run as any other
        return push(DETAIL)

    def lines(self):
        return self.ui.emg.lines()

    def changed(self):
        return self.ui.emg.wants_redraw(True, False)

    def quiet_ms(self, now_ms):
        return 0  # the live EMG bar

    def draw(self, fb):
        lines = Screen.draw(self, fb)
        self.ui.emg.draw(fb)
        return lines

