# The screens of one program: its detail (parameters, guidance, source), the editor of custom
# programs, and the delete question.
#
# Custom programs: a LONG press of OK on a program's detail screen opens the editor on a copy (a
# preset gives a new custom program "My <name>", key c1, c2, ...). UP/DOWN step the selected
# field, Program.validate() decides (an impossible value is refused with a message and nothing
# changes), OK goes to the next field and on the last one saves (store.save_program: flash), BACK
# cancels. A LONG press of BACK on a custom program's detail asks to delete it (OK confirms). The
# editor never starts output.
from micropython import const

import buttons as B
import programs as progmod
from ui_screen import (BACK, CHECK, DELETE, DETAIL, EDIT, HOME, STAY, Screen, num, push, wrap)

_DETAIL_ROWS = const(6)

# The program editor: the fields, as labels and units on the screen (rows of 16 characters).
EDIT_FIELDS = ("rate_hz", "phase_us", "on_s", "off_s", "ramp_up_s", "ramp_down_s", "session_min",
               "mode")
_EDIT_LABELS = ("Rate", "Width", "On", "Off", "Ramp+", "Ramp-", "Time", "Mode")
_EDIT_UNITS = (" Hz", " us", " s", " s", " s", " s", " min", "")
_EDIT_ROWS = const(5)  # fields visible at once (rows 1-5); row 6 message, row 7 help
_MODE_TEXT = ("sync", "alternate", "reciproc.")  # 9 characters at most (column 7-15)


def is_custom(ui, p):
    """A program of the unit's own list that is not a preset (edited here or loaded from
    programs.json); the EMG menu's programs are not in the list."""
    return p is not None and progmod.preset(p.key) is None and ui.index_of(p) >= 0


_CHANNELS_TEXT = {"sync": "ch1+2 together", "alternating": "ch1/2 alternate",
                  "reciprocal": "ch1/2 reciprocal"}


def _dur(s):
    """A duration in seconds as minutes when whole, else seconds with their tenths."""
    return ("%d min" % (s // 60)) if s >= 60 and s % 60 == 0 else "%s s" % num(s)


def detail_rows(p, custom):
    """The scrolling part of a program's detail screen (row 0 is its name): the pulses (bursts,
    modulation), what starts the output (work cycle, gait or hold switch, a trigger), the timer,
    the channels, the guidance (electrodes, position, intensity, sessions, first minutes
    seated), then the source. Wrapped at spaces; times keep their tenths."""
    rows = ["%s Hz %s us" % (num(p.rate_hz), num(p.phase_us))]
    if p.burst_count > 1:
        rows.append("bursts %d @%s Hz" % (p.burst_count, num(p.burst_rate_hz)))
    m = p.modulation
    if m:
        rows += wrap("swept: rate -%d%% width -%d%% per %s s" % (
            int(m.get("rate_depth", 0) * 100 + 0.5), int(m.get("width_depth", 0) * 100 + 0.5),
            num(m.get("period_s", 0))))
    if p.alternate:
        rows.append("polarity altern.")
    ramps = "%s/%s s" % (num(p.ramp_up_s), num(p.ramp_down_s))
    t = p.trigger
    if t == "gait":
        rows.append("foot switch gait")
        rows.append("on: heel off to")
        rows.append("strike +%d ms" % p.extend_ms)
        rows.append("ramps " + ramps)
        rows.append("max on %s s" % num(p.on_s))
    elif t == "hold":
        rows.append("switch held: on")
        rows.append("max hold %s s" % num(p.on_s))
        rows.append("ramps " + ramps)
    elif p.triggered:
        rows.append("per trigger:")
        rows.append("on %s s" % num(p.on_s))
        rows.append("ramps " + ramps)
    else:
        if p.off_s:
            rows.append("on %ss off %ss" % (num(p.on_s), num(p.off_s)))
        else:
            rows.append("continuous")
        rows.append("ramp " + ramps)
    rows.append("time %s min" % num(p.session_min))
    if p.progression:
        rows += wrap("grows over weeks: step %d of %d" % (p.step + 1, len(p.progression)))
    if p.warmup_s:
        rows.append("warm-up " + _dur(p.warmup_s))
    if p.cooldown_s:
        rows.append("cool-down " + _dur(p.cooldown_s))
    rows.append(_CHANNELS_TEXT.get(p.mode, "mode " + p.mode))
    if p.placement:
        rows += wrap("Electrodes: " + p.placement)
    if p.position:
        rows += wrap("Position: " + p.position)
    if p.intensity:
        rows += wrap("Intensity: " + p.intensity)
    if p.sessions_week:
        rows += wrap("Sessions: " + p.sessions_week)
    if p.seated_first:
        rows += wrap("First minutes seated or lying")
    rows.append("hold ok: edit")
    if custom:
        rows.append("hold bk: delete")
    if p.source:
        rows += wrap("Source: " + p.source)
    return rows


class DetailScreen(Screen):
    SID = DETAIL
    LONG = True  # hold OK: edit; hold BACK: delete

    def enter(self):
        Screen.enter(self)
        p = self.ui.program
        self.rows = detail_rows(p, is_custom(self.ui, p)) if p is not None else []

    def on_button(self, btn, kind, now_ms):
        ui = self.ui
        if kind == B.K_LONG:
            if btn == B.OK:
                return push(EDIT) if ui.editor.open(ui.program) else STAY
            if btn == B.BACK and is_custom(ui, ui.program):
                return push(DELETE)
            return STAY
        if btn == B.UP and self.scroll > 0:
            self.scroll -= 1
        elif btn == B.DOWN:
            if self.scroll < len(self.rows) - _DETAIL_ROWS:
                self.scroll += 1
        elif btn == B.OK:
            return push(CHECK)
        elif btn == B.BACK:
            return BACK
        return STAY

    def lines(self):
        p = self.ui.program
        return ([p.name[:16]] + self.rows[self.scroll:self.scroll + _DETAIL_ROWS]
                + ["ok:start back"])


class EditorScreen(Screen):
    SID = EDIT
    HIGHLIGHT = True

    def __init__(self, ui):
        Screen.__init__(self, ui)
        self.prog = None  # the Program being edited (a copy)
        self.index = -1  # its place in ui.programs (-1: new, appended on save)
        self.msg = ""  # refusal message

    def _new_key_name(self, name):
        progs = self.ui.programs
        keys = [q.key for q in progs]
        names = [q.name for q in progs]
        n = 1
        while ("c%d" % n) in keys:
            n += 1
        nm = ("My " + name)[:progmod.NAME_MAX_CHARS]
        if nm in names:
            tail = " %d" % n
            nm = nm[:progmod.NAME_MAX_CHARS - len(tail)] + tail
        return "c%d" % n, nm

    def open(self, p):
        """LONG OK on a detail screen: edit a copy (a preset: a new custom program). False (and
        an alert) when the program cannot be edited."""
        try:
            d = p.to_dict()
            if is_custom(self.ui, p):
                self.index = self.ui.index_of(p)
            else:
                d["key"], d["name"] = self._new_key_name(p.name)
                d["source"] = "Custom, from " + p.key
                self.index = -1
            self.prog = progmod.Program.from_dict(d)
        except Exception:
            self.prog = None
            self.ui.show_alert("Cannot edit", p.name[:16])
            return False
        self.msg = ""
        return True

    def _value(self, i, up):
        """The next value of field i one step up or down."""
        name = EDIT_FIELDS[i]
        v = getattr(self.prog, name)
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

    def on_button(self, btn, kind, now_ms):
        p = self.prog
        if p is None:
            return BACK  # nothing open (cancelled or saved): leave the editor
        n = len(EDIT_FIELDS)
        i = self.sel
        self.msg = ""
        if btn == B.UP or btn == B.DOWN:
            name = EDIT_FIELDS[i]
            old = getattr(p, name)
            setattr(p, name, self._value(i, btn == B.UP))
            try:
                p.validate()
            except Exception as e:  # ValueError from validate(): the value is impossible
                setattr(p, name, old)  # refused: nothing changes
                if name == "mode":
                    self.msg = "! mode not fit"
                elif "period" in str(e):
                    self.msg = "! pulse > period"
                else:
                    self.msg = "! limit reached"
        elif btn == B.OK:
            if i < n - 1:
                self.sel = i + 1
                if self.sel >= self.top + _EDIT_ROWS:
                    self.top = self.sel - _EDIT_ROWS + 1
            else:
                return self._save()
        elif btn == B.BACK:
            self.prog = None  # cancel: nothing saved, the program as it was
            return BACK
        return STAY

    def _save(self):
        ui = self.ui
        p = self.prog
        if p is None:
            return BACK  # nothing open: nothing to save
        try:
            p.validate()
            ui.store.save_program(p)
        except Exception:
            self.msg = "! not saved"
            return STAY
        i = self.index
        if 0 <= i < len(ui.programs):
            ui.programs[i] = p
        else:
            ui.programs.append(p)  # after the presets and the older custom programs
            i = len(ui.programs) - 1
        self.prog = None
        ui.program = p
        ui.list.select(i)
        return HOME

    def lines(self):
        p = self.prog
        if p is None:
            return []  # nothing open (as the base screen: a blank screen)
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
        out.append(self.msg)
        last = self.sel == len(EDIT_FIELDS) - 1
        out.append("+/- ok:save bk:x" if last else "+/- ok:next bk:x")
        return out


class DeleteScreen(Screen):
    SID = DELETE

    def on_button(self, btn, kind, now_ms):
        ui = self.ui
        if btn == B.OK:
            p = ui.program
            try:
                ui.store.delete_program(p.key)
            except Exception:
                ui.show_alert("Not deleted", "flash error")
                return STAY
            i = ui.index_of(p)
            if i >= 0:
                ui.programs.pop(i)
            ui.program = None
            ui.list.select(i - 1 if i > 0 else 0)
            return HOME
        if btn == B.BACK:
            return BACK
        return STAY

    def lines(self):
        return ["Delete program?", self.ui.program.name[:16], "", "It is removed", "from flash.",
                "", "ok: delete", "back: keep"]
