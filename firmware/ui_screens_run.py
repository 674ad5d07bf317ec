# The screens of a session: the pre-start check, the run screen, pause, alerts, session done.
#
# The intensity only moves by explicit presses on the run screen, through
# supervisor.set_user_level, which bounds rises itself (SAFETY rule 3). Starting, pausing,
# resuming and ending a session are the navigator's (ui.py), so every path does them alike.
from micropython import const

import buttons as B
import screens
from ui_screen import (ALERT, BACK, CHECK, DISMISS, DONE, HOME, PAUSE, RUN, STAY, Screen, mmss,
                       replace)

STEP_MA = 1  # one press = 1 mA (SAFETY rule 3)
_RUN_SIG = const(8)

# a stopped channel on the run screen (12 characters after "1 ")
CH_FAULT_TEXT = {
    "open_circuit": "no electrode",
    "cannot_reach_current": "cannot reach",
    "over_current": "over current",
}


def _fmt_ma(x10):
    return "%3d.%dmA" % (x10 // 10, x10 % 10)


class CheckScreen(Screen):
    SID = CHECK

    def on_button(self, btn, kind, now_ms):
        if kind == B.K_LONG:
            return STAY
        ui = self.ui
        if btn == B.BACK:
            return BACK
        if btn == B.OK:
            if ui.usb():
                ui.show_alert("USB connected", "unplug to start")
                return STAY
            return ui.start(now_ms)
        return STAY

    def lines(self):
        ui = self.ui
        return ["Ready?", "Electrodes on", "skin, intensity", "starts at 0 mA", "",
                "Battery %d%%" % ui.battery_pct(), "USB!" if ui.usb() else "", "ok:start back"]


class RunScreen(Screen):
    SID = RUN

    def __init__(self, ui):
        Screen.__init__(self, ui)
        self.ch = 1  # the channel UP/DOWN act on
        self._sig = [None] * _RUN_SIG

    def enter(self):
        Screen.enter(self)
        for i in range(_RUN_SIG):
            self._sig[i] = None

    def on_button(self, btn, kind, now_ms):
        if kind == B.K_LONG:
            return STAY
        ui = self.ui
        sup = ui.sup
        ch = self.ch
        if btn == B.UP and sup.channel_fault(ch) is not None:
            # the electrode is back: an explicit press restarts the channel, from 0 mA
            sup.rearm_channel(ch, now_ms)
            ui.requests += 1
        elif btn == B.UP or btn == B.DOWN:
            cur = sup.user_level(ch)
            want = cur + STEP_MA if btn == B.UP else cur - STEP_MA
            if want < 0:
                want = 0
            sup.set_user_level(ch, want, now_ms)
            ui.requests += 1
        elif btn == B.OK:
            self.ch = ch + 1 if ch < ui.channels else 1
        elif btn == B.BACK:
            ui.pause(now_ms)
            return replace(PAUSE)
        return STAY

    def changed(self):
        """What the run screen shows, compared without allocating: the countdowns (seconds),
        the phase, the levels (the float objects themselves: comparing allocates nothing,
        scaling would), the battery, a channel stopped by a fault (the kind strings)."""
        ui = self.ui
        sup = ui.sup
        g = self._sig
        out = ui.out
        changed = False
        if out is not None:
            v = (out.countdown_ms + 999) // 1000
            if g[0] != v:
                g[0] = v
                changed = True
            v = (out.remaining_ms + 999) // 1000
            if g[1] != v:
                g[1] = v
                changed = True
            if g[2] is not out.state:
                g[2] = out.state
                changed = True
        v = ui.battery_pct()
        if g[3] != v:
            g[3] = v
            changed = True
        i = 4
        for ch in range(1, ui.channels + 1):
            v = sup.user_level(ch)
            if g[i] is not v:
                g[i] = v
                changed = True
            v = sup.channel_fault(ch)
            if g[i + 1] is not v:
                g[i + 1] = v
                changed = True
            i += 2
        return changed

    def lines(self):
        ui = self.ui
        sup = ui.sup
        out = ui.out
        lines = [ui.program.name[:10], "", "", "", "", "", "", ""]
        if out is not None:
            lines[1] = "%-8s %3ds" % (out.state[:8], (out.countdown_ms + 999) // 1000)
            lines[2] = "left  " + mmss(out.remaining_ms)
        for ch in range(1, ui.channels + 1):
            head = "%s%d" % (">" if ch == self.ch else " ", ch)
            f = sup.channel_fault(ch)
            if f is not None:
                lines[2 + ch] = head + " " + CH_FAULT_TEXT.get(f, f[:12])
            else:
                x10 = int(sup.user_level(ch) * 10 + 0.5)
                lines[2 + ch] = head + _fmt_ma(x10)
        lines[6] = "bat %d%%" % ui.battery_pct()
        if ui.locked:
            lines[7] = "LOCKED"
        elif sup.channel_fault(self.ch) is not None:
            lines[7] = "up: restart ch%d" % self.ch
        else:
            lines[7] = "+/- ok:ch bk:||"
        return lines

    def draw(self, fb):
        ui = self.ui
        sup = ui.sup
        lines = self.lines()
        screens.text_lines(fb, lines)
        two = ui.channels > 1
        lv = [0, int(sup.user_level(1) * 10), int(sup.user_level(2) * 10) if two else 0]
        cap = [0] + list(ui.settings.get("cap_ma", [100, 100]))
        stopped = [False, sup.channel_fault(1) is not None,
                   two and sup.channel_fault(2) is not None]
        screens.run_graphics(fb, lv, cap, self.ch, ui.battery_pct(), sup.state == "running",
                             ui.locked, stopped)
        return lines


class PauseScreen(Screen):
    SID = PAUSE

    def on_button(self, btn, kind, now_ms):
        if kind == B.K_LONG:
            return STAY
        ui = self.ui
        if btn == B.OK:
            return ui.resume(now_ms)
        if btn == B.BACK:
            ui.end_session(now_ms, "user")
            return HOME
        return STAY

    def lines(self):
        return ["Paused", self.ui.program.name[:16], "", "Intensity is 0", "on resume", "",
                "ok: resume", "back: end"]


class AlertScreen(Screen):
    """A fault, a refused start, STOP: until OK (or BACK). An alert wakes a dimmed screen, and
    a press on it acts even when the screen was dimmed (answering it changes no output)."""
    SID = ALERT
    WAKE_ACTS = True

    def __init__(self, ui):
        Screen.__init__(self, ui)
        self.title = ""
        self.detail = ""

    def on_button(self, btn, kind, now_ms):
        if kind != B.K_LONG and (btn == B.OK or btn == B.BACK):
            return DISMISS
        return STAY

    def lines(self):
        return ["! ALERT !", "", self.title[:16], self.detail[:16], "", "", "", "ok: dismiss"]


class DoneScreen(Screen):
    SID = DONE

    def on_button(self, btn, kind, now_ms):
        if kind != B.K_LONG and (btn == B.OK or btn == B.BACK):
            return HOME
        return STAY

    def lines(self):
        p = self.ui.program
        return ["Session done", p.name[:16] if p else "", "", "", "", "", "", "ok"]

