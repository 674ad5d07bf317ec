# The EMG part of the unit: its menu (calibrate, biofeedback, threshold), its screens, and the
# link between lib/emg.py and a running EMG-triggered program. The UI (ui.py) hands it the button
# presses while its screen is open and asks it for text and graphics; the app calls tick() every
# loop tick before Session.tick(), so a trigger starts the ramp in the same tick.
#
#   ctl = EmgControl(emg, root)       # emg: lib/emg.Emg (None on a board without EMG input)
#   ctl.tick(now_ms, session)          # sampling on while needed, envelope, trigger logic
#   ctl.open(); ctl.handle(btn, now_ms) -> True to leave; ctl.lines(); ctl.draw(fb)
#   ctl.run_line(), ctl.draw_run(fb)   # the run screen of an EMG-triggered program
#   ctl.history()                      # the history fields of the latest EMG session
#
# EMG-triggered programs are the presets whose key starts with "emg_" (programs.py); the trigger
# logic (emg_session.EmgTrigger) only calls Session.trigger(): the output still goes through the
# session's ramp and the safety supervisor. Without a calibration an EMG program never triggers
# (no time-out help either): its run screen says "calibrate".
#
# The calibration and the adapted threshold live in /emg.json (written atomically: a temporary
# file, then a rename).
from micropython import const
import json
import os
import time

import buttons as B
import emg_screens
import programs
import emg_session as es

CAL_FILE = "emg.json"
HISTORY_FILE = "emg_history.json"  # the EMG fields of each session (history.json keeps the rest)
HISTORY_MAX = const(50)
MENU = const(0)
CAL = const(1)
FEEDBACK = const(2)
_MENU_ITEMS = const(3)
REDRAW_MS = const(100)  # the live bar is redrawn at most 10 times a second
PCT_MIN = const(10)
PCT_MAX = const(80)
PCT_STEP = const(5)
UNCAL_FULL_UV = const(200)

_CAL_PROMPTS = ("Relax the muscle", "Squeeze hard!", "Relax", "Squeeze again!", "Done",
                "Failed: no", )
_CAL_TOTAL = (es.CAL_RELAX_MS, es.CAL_SQUEEZE_MS, es.CAL_RELAX2_MS, es.CAL_SQUEEZE_MS, 0, 0)


is_emg_program = programs.is_emg


def _fault_text(code):
    if code == 1:
        return "EMG flat"
    if code == 2:
        return "EMG saturated"
    return ""


class EmgControl:
    def __init__(self, emg, root="", presets=()):
        self.emg = emg
        self.presets = presets  # EMG-triggered programs listed in the menu (programs.EMG_PRESETS)
        if root and not root.endswith("/"):
            root = root + "/"
        self.root = root
        self.rest_uv = 0
        self.max_uv = 0
        self.pct = 30
        self.calibrated = False
        self._load()
        self.screen = MENU
        self.sel = 0
        self.cal = es.EmgCalibration()
        self.cal_running = False
        self.feedback = None
        self.trigger = None
        self._session = None
        self._last_history = None
        self.open_ = False  # the EMG screen is shown (the UI sets it through open()/handle())
        self.ui = None  # the UI, for keeping the screen awake while the live bar is shown
        self.now_ms = 0
        self._sig = [0, 0, 0, 0, 0, 0, 0, 0]
        self._drawn_ms = 0

    # -- calibration file ------------------------------------------------------------------
    def _path(self):
        return self.root + CAL_FILE

    def _load(self):
        try:
            with open(self._path()) as f:
                d = json.load(f)
            r = d.get("rest_uv")
            m = d.get("max_uv")
            p = d.get("pct", 30)
            if (type(r) is int and type(m) is int and type(p) is int and 0 <= r < m <= 100000
                    and m >= 2 * r + es.MIN_SPAN_UV and PCT_MIN <= p <= PCT_MAX):
                self.rest_uv = r
                self.max_uv = m
                self.pct = p
                self.calibrated = True
        except (OSError, ValueError, AttributeError):
            pass  # missing or unreadable: not calibrated

    def save(self):
        path = self._path()
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps({"rest_uv": self.rest_uv, "max_uv": self.max_uv,
                                "pct": self.pct}))
        os.rename(tmp, path)

    # -- the loop ----------------------------------------------------------------------------
    def _needed(self, session):
        if self.open_ and (self.cal_running or self.feedback is not None):
            return True
        return session is not None and is_emg_program(session.program) and session.running

    def quiet(self, session):
        """True when tick() would only note the time: no EMG in use (App.quiet_ms)."""
        e = self.emg
        if e is None:
            return True
        return not e.running and self._session is None and not self._needed(session)

    def tick(self, now_ms, session):
        self.now_ms = now_ms
        e = self.emg
        if e is None:
            return
        if self._needed(session):
            if not e.running:
                e.reset_envelope()
                e.start()
            e.process()
        elif e.running:
            e.stop()
        env = e.envelope_uv
        fault = e.fault
        # EMG-triggered program
        if (session is not None and session.running and is_emg_program(session.program)
                and self.calibrated):
            t = self.trigger
            if self._session is not session or t is None:
                self._session = session
                t = self.trigger = es.EmgTrigger(session, self.rest_uv, self.max_uv, self.pct)
                t.attach(now_ms)
            t.tick(now_ms, env, fault)
        elif self._session is not None:
            self._session_over()
        if self.open_:
            if self.cal_running:
                self.cal.tick(now_ms, env)
            elif self.feedback is not None:
                self.feedback.tick(now_ms, env, fault)
            if self.ui is not None and (self.cal_running or self.feedback is not None):
                self.ui.last_input_ms = now_ms  # the live screen stays lit while in use

    def _session_over(self):
        t = self.trigger
        if t is not None:
            self._last_history = t.stats.history()
            if t.pct != self.pct:
                self.pct = t.pct  # the adapted threshold is where the next session starts
                try:
                    self.save()
                except OSError:
                    pass
        self._session = None
        self.trigger = None

    def record_history(self, n, program_key):
        """Append the latest EMG session's fields to /emg_history.json, with `n` the number of
        its record in the unit's history (0 for biofeedback, which has none). Bounded to the last
        HISTORY_MAX records; written atomically. Returns the record (None if nothing to record)."""
        h = self.history()
        if h is None:
            return None
        rec = {"n": n, "program": program_key[:16]}
        for k in h:
            rec[k] = h[k]
        path = self.root + HISTORY_FILE
        lst = []
        try:
            with open(path) as f:
                lst = json.load(f)
            if not isinstance(lst, list):
                lst = []
        except (OSError, ValueError):
            lst = []
        lst.append(rec)
        lst = lst[-HISTORY_MAX:]
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(lst))
        os.rename(tmp, path)
        self._last_history = None
        return rec

    def on_record(self, rec):
        """The app's hook after each stored history record: the EMG fields of an EMG-triggered
        session go to /emg_history.json under the same record number."""
        try:
            if rec.get("program", "").startswith("emg_"):
                self.record_history(rec.get("n", 0), rec["program"])
        except OSError:
            pass

    def history(self):
        """History fields of the EMG session that is running or just ended (None if none)."""
        if self.trigger is not None:
            return self.trigger.stats.history()
        return self._last_history

    # -- the EMG screens -----------------------------------------------------------------------
    def open(self):
        self.open_ = True
        self.screen = MENU
        self.sel = 0

    def _close_feedback(self):
        fb = self.feedback
        if fb is not None:
            self._last_history = fb.stats.history()
            try:
                self.record_history(0, "emg_feedback")
            except OSError:
                pass
        self.feedback = None

    def handle(self, btn, now_ms):
        """A PRESS or REPEAT of btn on an EMG screen. Returns True to leave to the main menu, a
        Program to open (an EMG-triggered preset: the UI shows its detail, check and run screens
        as for any program), else False."""
        s = self.screen
        n = _MENU_ITEMS + len(self.presets)
        if s == MENU:
            if btn == B.UP:
                self.sel = (self.sel - 1) % n
            elif btn == B.DOWN:
                self.sel = (self.sel + 1) % n
            elif btn == B.BACK:
                self.open_ = False
                return True
            elif btn == B.OK:
                if self.sel == 0:
                    self.screen = CAL
                    self.cal_running = False
                    self.cal = es.EmgCalibration()
                elif self.sel >= _MENU_ITEMS:
                    self.open_ = False
                    return self.presets[self.sel - _MENU_ITEMS]
                elif self.sel == 1:
                    self.screen = FEEDBACK
                    self.feedback = es.EmgFeedback(self.rest_uv, self._max_for_feedback(),
                                                   self.pct)
                    self.feedback.start(now_ms)
                else:
                    p = self.pct + PCT_STEP
                    self.pct = PCT_MIN if p > PCT_MAX else p
                    if self.calibrated:
                        try:
                            self.save()
                        except OSError:
                            pass
        elif s == CAL:
            if not self.cal_running and not self.cal.done:
                if btn == B.OK:
                    self.cal.start(now_ms)
                    self.cal_running = True
                elif btn == B.BACK:
                    self.screen = MENU
            elif self.cal_running and not self.cal.done:
                if btn == B.BACK:  # cancel: the old calibration stays
                    self.cal_running = False
                    self.cal = es.EmgCalibration()
                    self.screen = MENU
            else:
                self.cal_running = False
                if btn == B.OK and self.cal.ok:
                    self.rest_uv = self.cal.rest_uv
                    self.max_uv = self.cal.max_uv
                    self.calibrated = True
                    try:
                        self.save()
                    except OSError:
                        pass
                    self.screen = MENU
                elif btn == B.OK:  # failed: again
                    self.cal = es.EmgCalibration()
                elif btn == B.BACK:
                    self.cal = es.EmgCalibration()
                    self.screen = MENU
        elif s == FEEDBACK:
            fb = self.feedback
            if btn == B.BACK:
                self._close_feedback()
                self.screen = MENU
            elif fb is not None and (btn == B.UP or btn == B.DOWN):
                p = self.pct + (PCT_STEP if btn == B.UP else -PCT_STEP)
                if PCT_MIN <= p <= PCT_MAX:
                    self.pct = p
                    fb.pct = p
                    fb.threshold_uv = es.threshold_uv(fb.rest_uv, fb.max_uv, p)
        return False

    def _max_for_feedback(self):
        if self.calibrated:
            return self.max_uv
        return self.rest_uv + UNCAL_FULL_UV  # uncalibrated: a fixed 200 uV scale

    def full_uv(self):
        m = self.max_uv if self.calibrated else UNCAL_FULL_UV
        return m * 5 // 4  # the calibrated maximum at 80 % of the bar

    def lines(self):
        s = self.screen
        if s == MENU:
            items = ["Calibrate", "Biofeedback", "Threshold %d%%" % self.pct]
            for p in self.presets:
                items.append(p.name[:15])
            out = ["EMG"]
            for i in range(len(items)):
                out.append((">" if i == self.sel else " ") + items[i])
            while len(out) < 6:
                out.append("")
            out = out[:6]
            f = _fault_text(self.emg.fault) if self.emg is not None else "no EMG input"
            if f:
                out.append(f)
            elif self.calibrated:
                out.append("rest %d max %d" % (self.rest_uv, self.max_uv))
            else:
                out.append("not calibrated")
            out.append("ok  bk:back")
            return out
        env = self.emg.envelope_uv if self.emg is not None else 0
        if s == CAL:
            c = self.cal
            if not self.cal_running and not c.done:
                return ["Calibrate EMG", "Electrodes on", "the muscle. You", "relax 5 s, then",
                        "squeeze hard 3s", "twice.", "", "ok:start bk"]
            ph = c.phase
            out = ["Calibrate EMG", _CAL_PROMPTS[ph]]
            if ph < es.CAL_DONE:
                out.append("%2d s" % ((c.countdown_ms + 999) // 1000))
                out.append("now %d uV" % env)
            elif ph == es.CAL_DONE:
                out.append("rest %d uV" % c.rest_uv)
                out.append("max  %d uV" % c.max_uv)
            else:
                out.append("effort: check")
                out.append("the electrodes")
            out.append("")
            out.append("")
            out.append("")
            if ph == es.CAL_DONE:
                out.append("ok:save bk")
            elif ph == es.CAL_FAILED:
                out.append("ok:again bk")
            else:
                out.append("bk: cancel")
            return out
        if s == FEEDBACK:
            fb = self.feedback
            if fb is None:
                return ["Biofeedback"]
            st = fb.stats
            f = _fault_text(fb.fault)
            return ["Biofeedback" + (" !" if fb.above else ""),
                    ("! " + f) if f else ("now %4d uV" % env),
                    "thr %4d uV %2d%%" % (fb.threshold_uv, fb.pct),
                    "pk %d mean %d" % (st.peak_uv, st.mean_uv),
                    "marks %d %ds" % (fb.crossings, fb.above_ms // 1000),
                    "", "", "+/-:thr bk:end"]
        return []

    def draw(self, fb):
        """Graphics of the EMG screen, after its text (the live bar on rows 5-6)."""
        s = self.screen
        e = self.emg
        if e is None:
            return
        if s == FEEDBACK and self.feedback is not None:
            f = self.feedback
            emg_screens.envelope_bar(fb, e.envelope_uv, self.full_uv(), f.threshold_uv,
                                     f.stats.peak_uv, f.above)
        elif s == CAL and self.cal_running:
            c = self.cal
            full = self.full_uv() if c.max_uv * 5 // 4 < self.full_uv() else c.max_uv * 5 // 4
            emg_screens.envelope_bar(fb, e.envelope_uv, full, 0, c.max_uv, False)
            if c.phase < es.CAL_DONE:
                emg_screens.countdown_bar(fb, c.countdown_ms, _CAL_TOTAL[c.phase])
        self._drawn_ms = self.now_ms

    # -- the run screen of an EMG-triggered program ------------------------------------------
    def trigger_state(self):
        t = self.trigger
        if not self.calibrated:
            return "calibrate"
        if t is None:
            return ""
        if t.state == es.T_FAULT:
            return "EMG flat" if t.fault == 1 else "EMG sat."
        return es.TRIGGER_STATE_NAMES[t.state]

    def run_line(self):
        """Row 5 of the run screen (9 characters, left of the bar): "try   30%" (the state and
        the threshold in % of the calibrated range), or the fault, or "calibrate"."""
        t = self.trigger
        if t is None or t.state == es.T_FAULT or t.state == es.T_DONE:
            return self.trigger_state()[:9]
        return "%-6s%2d%%" % (es.TRIGGER_SHORT_NAMES[t.state], t.pct)

    def draw_run(self, fb):
        t = self.trigger
        if t is None or self.emg is None:
            return
        emg_screens.run_bar(fb, self.emg.envelope_uv, self.full_uv(), t.threshold_uv)
        self._drawn_ms = self.now_ms

    def wants_redraw(self, emg_screen, run_screen):
        """For UI.render: the EMG screen, or the run screen of an EMG-triggered program, has
        something new to show."""
        if emg_screen:
            return self.changed()
        if run_screen and self.trigger is not None:
            return self.changed(True)
        return False

    def changed(self, running_screen=False):
        """True when what the EMG screen (or the run screen's EMG row) shows has changed and the
        last drawing is REDRAW_MS old. Integers only: no allocation."""
        if self.emg is None:
            return False
        g = self._sig
        e = self.emg
        t = self.trigger
        new0 = emg_screens.level_px(e.envelope_uv, self.full_uv(), 56 if running_screen else 128)
        new1 = e.fault
        new2 = self.screen
        new3 = self.sel
        new4 = t.state if (running_screen and t is not None) else -1
        new5 = 0
        new6 = 0
        new7 = 0
        if not running_screen:
            if self.cal_running:
                new5 = self.cal.phase
                new6 = (self.cal.countdown_ms + 999) // 1000
                new7 = e.envelope_uv
            elif self.feedback is not None:
                f = self.feedback
                new5 = f.crossings
                new6 = f.stats.peak_uv + f.pct
                new7 = e.envelope_uv
        d = time.ticks_diff(self.now_ms, self._drawn_ms)
        diff = (g[0] != new0 or g[1] != new1 or g[2] != new2 or g[3] != new3 or g[4] != new4
                or g[5] != new5 or g[6] != new6 or g[7] != new7)
        if not diff:
            return False
        # a new state or screen at once; the moving bar and numbers at most every REDRAW_MS
        urgent = g[1] != new1 or g[2] != new2 or g[3] != new3 or g[4] != new4 or g[5] != new5
        if not urgent and 0 <= d < REDRAW_MS:
            return False
        g[0] = new0
        g[1] = new1
        g[2] = new2
        g[3] = new3
        g[4] = new4
        g[5] = new5
        g[6] = new6
        g[7] = new7
        return True
