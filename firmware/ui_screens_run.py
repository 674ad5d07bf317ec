# The screens of a session: the pre-start check, the run screen, pause, alerts, session done.
#
# The intensity only moves by explicit presses on the run screen, through
# supervisor.set_user_level, which bounds rises itself (SAFETY rule 3). Starting, pausing,
# resuming and ending a session are the navigator's (ui.py), so every path does them alike.
from micropython import const
import time

import buttons as B
import screens
import session
from ui_screen import (ALERT, BACK, CHECK, DISMISS, DONE, HOME, PAUSE, QUIET_FAR_MS, RUN, STAY,
                       Screen, mmss, num, replace)

STEP_MA = 1  # one press = 1 mA (SAFETY rule 3)
REDRAW_MS = const(200)  # a current that moves (a ramp) is redrawn at most 5 times a second
_RUN_SIG = const(10)
_STATE_TEXT = {"waiting_trigger": "waiting", "ramp_down": "ramp_dn"}  # 8 characters at most

# a stopped channel on the run screen (12 characters after "1 ")
CH_FAULT_TEXT = {
    "open_circuit": "no electrode",
    "cannot_reach_current": "cannot reach",
    "over_current": "over current",
}


class CheckScreen(Screen):
    SID = CHECK

    def on_button(self, btn, kind, now_ms):
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
    """Per channel the current flowing (what the DAC plays, confirmed by the current sense:
    otherwise the channel stops with a fault) beside the level set, and the factor between them
    when one applies (warm-up or cool-down, the first sessions). A channel stopped by a fault has
    its row inverted, saying why, and the last row says how to restart it."""
    SID = RUN

    def __init__(self, ui):
        Screen.__init__(self, ui)
        self.ch = 1  # the channel UP/DOWN act on
        self.emg = False  # an EMG-triggered program: row 5 is the EMG's
        self._sig = [None] * _RUN_SIG
        self._drawn_ms = 0

    def enter(self):
        Screen.enter(self)
        for i in range(_RUN_SIG):
            self._sig[i] = None
        p = self.ui.program
        self.emg = self.ui.emg is not None and p is not None and p.key.startswith("emg_")

    def on_button(self, btn, kind, now_ms):
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
        the phase, the levels and the current flowing (the float objects themselves: comparing
        allocates nothing, scaling would), the battery, a channel stopped by a fault (the kind
        strings). The current alone (a ramp) redraws at most every REDRAW_MS."""
        ui = self.ui
        sup = ui.sup
        g = self._sig
        out = ui.out
        now = False
        if out is not None:
            v = (out.countdown_ms + 999) // 1000
            if g[0] != v:
                g[0] = v
                now = True
            v = (out.remaining_ms + 999) // 1000
            if g[1] != v:
                g[1] = v
                now = True
            if g[2] is not out.state:
                g[2] = out.state
                now = True
        v = ui.battery_pct()
        if g[3] != v:
            g[3] = v
            now = True
        soon = False
        i = 4
        for ch in range(1, ui.channels + 1):
            v = sup.user_level(ch)
            if g[i] is not v:
                g[i] = v
                now = True
            v = sup.channel_fault(ch)
            if g[i + 1] is not v:
                g[i + 1] = v
                now = True
            if g[i + 2] is not sup.played_ma(ch):
                soon = True
            i += 3
        if self.emg and ui.emg.wants_redraw(False, True):
            now = True
        if not now:
            if not soon or time.ticks_diff(ui.now_ms, self._drawn_ms) < REDRAW_MS:
                return False
        i = 6
        for ch in range(1, ui.channels + 1):
            g[i] = sup.played_ma(ch)
            i += 3
        self._drawn_ms = ui.now_ms
        return True

    def factor(self):
        """The factor between the level set and the current (x0.5 in the warm-up, x0.5 in the
        first sessions, both: x0.25) and what it is called; ("", 1) when none."""
        ui = self.ui
        s = ui.session
        out = ui.out
        f = 1.0
        name = ""
        if out is not None and (out.state == "warmup" or out.state == "cooldown"):
            f = session.WARMUP_ENVELOPE
            name = "warm-up" if out.state == "warmup" else "cool-down"
        if s is not None and s.scale < 1:
            f = f * s.scale
            name = (name[:4] + "+1st") if name else "1st sess."
        return name, f

    def lines(self):
        ui = self.ui
        sup = ui.sup
        out = ui.out
        lines = [ui.program.name[:10], "", "", "", "", "", "", ""]
        if out is not None:
            st = _STATE_TEXT.get(out.state, out.state)
            c = (out.countdown_ms + 999) // 1000  # none for a switch-driven program (gait, hold)
            lines[1] = ("%-8s %3ds" % (st[:8], c)) if c > 0 else st[:8]
            lines[2] = "left  " + mmss(out.remaining_ms)
        other = 0  # a stopped channel that is not the selected one
        for ch in range(1, ui.channels + 1):
            head = "%s%d" % (">" if ch == self.ch else " ", ch)
            f = sup.channel_fault(ch)
            if f is not None:
                lines[2 + ch] = head + " " + CH_FAULT_TEXT.get(f, f[:12])
                if ch != self.ch:
                    other = ch
            else:
                lines[2 + ch] = "%s%5.1fmA of%4s" % (head, sup.played_ma(ch),
                                                    num(sup.user_level(ch)))
        if self.emg:
            lines[5] = ui.emg.run_line()
        # row 6: the factor when one applies, else the battery (its icon is on row 0 anyway).
        # Row 5 stays blank otherwise: an alert over this screen then changes 7 of the 8 pages,
        # not 8 (each page is ~3 ms of I2C in which the loop waits: docs/performance.md)
        name, f = self.factor()
        lines[6] = ("%s x%s" % (name, num(f))) if name else "bat %d%%" % ui.battery_pct()
        if ui.locked:
            lines[7] = "LOCKED"
        elif sup.channel_fault(self.ch) is not None:
            lines[7] = "up: restart ch%d" % self.ch
        elif other:
            lines[7] = "ch%d: ok, then up" % other
        else:
            lines[7] = "+/- ok:ch bk:||"
        return lines

    def draw(self, fb):
        ui = self.ui
        sup = ui.sup
        lines = self.lines()
        screens.text_lines(fb, lines)
        for ch in range(1, ui.channels + 1):
            if sup.channel_fault(ch) is not None:
                screens.text_inverted(fb, lines[2 + ch], 2 + ch)  # the mark of a stopped channel
        # the output mark while the output stage is enabled (not while a switch-driven session
        # waits for its switch with the output off: sup.waiting; the state row says "waiting")
        screens.run_graphics(fb, self.ch, ui.battery_pct(),
                             sup.state == "running" and not sup.waiting, ui.locked)
        if self.emg:
            ui.emg.draw_run(fb)
        return lines


    def quiet_ms(self, now_ms):
        """The countdowns move on their own: quiet until the next whole second of either (their
        values are the last tick's, made at out.at_ms). A current still waiting for its redraw,
        or the EMG row: not quiet (UI.quiet_ms)."""
        ui = self.ui
        if self.emg:
            return 0
        sup = ui.sup
        i = 6
        for ch in range(1, ui.channels + 1):
            if self._sig[i] is not sup.played_ma(ch):
                return 0
            i += 3
        out = ui.out
        q = QUIET_FAR_MS
        if out is not None:
            since = time.ticks_diff(now_ms, out.at_ms)
            v = out.countdown_ms
            if v > 0:
                left = v - 1000 * ((v + 999) // 1000 - 1) - since
                if left < q:
                    q = left
            v = out.remaining_ms
            if v > 0:
                left = v - 1000 * ((v + 999) // 1000 - 1) - since
                if left < q:
                    q = left
        return q if q > 0 else 0


class PauseScreen(Screen):
    """BACK on the run screen, or a fault that stopped the whole output (its name on row 2): OK
    starts the output again with both channels at 0 mA."""
    SID = PAUSE

    def __init__(self, ui):
        Screen.__init__(self, ui)
        self.cause = ""

    def enter(self):
        Screen.enter(self)
        self.cause = ""

    def on_button(self, btn, kind, now_ms):
        ui = self.ui
        if btn == B.OK:
            return ui.resume(now_ms)
        if btn == B.BACK:
            ui.end_session(now_ms, "user")
            return HOME
        return STAY

    def lines(self):
        return ["Paused", self.ui.program.name[:16], ("! " + self.cause)[:16] if self.cause else "",
                "Intensity is 0", "on resume", "", "ok: resume", "back: end"]


class AlertScreen(Screen):
    """A fault, a refused start, STOP: until OK (or BACK). An alert wakes a dimmed screen, and
    a press on it acts even when the screen was dimmed (answering it changes no output)."""
    SID = ALERT
    WAKE_ACTS = True

    def __init__(self, ui):
        Screen.__init__(self, ui)
        self.title = ""
        self.detail = ""
        self.how = None  # two rows: what to do about it, or None

    def on_button(self, btn, kind, now_ms):
        if btn == B.OK or btn == B.BACK:
            return DISMISS
        return STAY

    def lines(self):
        # rows 5-6 blank, as on the run screen: an alert over it sends 7 pages, not 8
        h = self.how
        return ["! ALERT !", self.title[:16], self.detail[:16], h[0] if h else "",
                h[1] if h else "", "", "", "ok: dismiss"]


class DoneScreen(Screen):
    SID = DONE

    def on_button(self, btn, kind, now_ms):
        if btn == B.OK or btn == B.BACK:
            return HOME
        return STAY

    def lines(self):
        p = self.ui.program
        return ["Session done", p.name[:16] if p else "", "", "", "", "", "", "ok"]

