# The screen base of the UI: what every screen class has, the screen ids, the navigation requests
# a screen answers with, and the text helpers (word wrap, numbers with their tenths).
#
# A screen (ui_screens_*.py) is one small class. The navigator (ui.py UI) owns the screen stack
# and every transition; a screen only says where to go:
#
#   scr.enter()                         # it becomes the top of the stack (fresh: scroll 0, ...)
#   scr.uncover()                       # the screen above it closed (it is as it was left)
#   req = scr.on_button(btn, kind, t)   # a PRESS or REPEAT (LONG too if scr.LONG) -> request
#   req = scr.tick(t)                   # every loop tick while on top -> navigation request
#   scr.lines()                         # its text rows (8 x 16 characters at most)
#   scr.changed()                       # something it shows changed without a key (no allocation)
#   scr.draw(fb)                        # text and graphics into the framebuffer
#
# A request is an int: STAY, BACK (the screen beneath), HOME (the program list, its selection
# kept), DISMISS (leave an alert: the run or pause screen while a session is on, else HOME),
# push(sid) (a new screen over this one) or replace(sid) (instead of this one).
from micropython import const

import screens

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
EMG = const(13)
SCREEN_NAMES = ("splash", "list", "detail", "check", "run", "pause", "alert", "settings",
                "history", "done", "edit", "delete", "notice", "emg")
N_SCREENS = const(14)

# quiet_ms() of something that does not change with time alone (host simulation: App.quiet_ms)
QUIET_FAR_MS = const(1048576)

STAY = const(0)
BACK = const(1)
HOME = const(2)
DISMISS = const(3)
PUSH = const(0x100)
REPLACE = const(0x200)
SID_MASK = const(0xFF)

COLS = const(16)


def push(sid):
    return PUSH | sid


def replace(sid):
    return REPLACE | sid


class Screen:
    SID = -1
    HIGHLIGHT = False  # the selected row (sel - top + 1) is drawn inverted (lists)
    WAKE_ACTS = False  # a press on the dimmed screen acts (alerts); elsewhere it only wakes
    LONG = False  # on_button gets LONG presses too (else only PRESS and REPEAT)

    def __init__(self, ui):
        self.ui = ui
        self.sel = 0
        self.top = 0
        self.scroll = 0

    def enter(self):
        self.sel = 0
        self.top = 0
        self.scroll = 0

    def uncover(self):
        pass  # the screen above it closed: it is on top again, as it was left

    def on_button(self, btn, kind, now_ms):
        return STAY

    def tick(self, now_ms):
        return STAY

    def lines(self):
        return []

    def changed(self) -> bool:  # (overrides answer True when they must redraw)
        return False

    def quiet_ms(self, now_ms):
        """How long from now_ms this screen's tick() and changed() stay as they are when no
        input comes (UI.quiet_ms): a screen without its own tick() or changed() only changes
        on input."""
        return QUIET_FAR_MS

    def draw(self, fb):
        lines = self.lines()
        screens.text_lines(fb, lines)
        if self.HIGHLIGHT:
            row = 1 + self.sel - self.top
            if 0 < row < 8 and row < len(lines):
                screens.text_inverted(fb, lines[row], row)
        if self.ui.locked:
            screens.lock_mark(fb, 120, 0)
        return lines


def wrap(text, width=COLS):
    """Rows of at most `width` characters, broken at spaces; a word longer than a row is the
    only thing broken inside (at the row's end)."""
    rows = []
    line = ""
    for word in text.split():
        while len(word) > width:
            if line:
                rows.append(line)
                line = ""
            rows.append(word[:width])
            word = word[width:]
        if not word:
            continue
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line = line + " " + word
        else:
            rows.append(line)
            line = word
    if line:
        rows.append(line)
    return rows


def num(v):
    """A number as a person writes it: 2 -> "2", 2.5 -> "2.5", 0.25 -> "0.25" (at most two
    decimals, no trailing zeros); None -> "-"."""
    if v is None:
        return "-"
    if type(v) is int or v == int(v):
        return "%d" % v
    s = "%.2f" % v
    while s[-1] == "0":
        s = s[:-1]
    return s


def mmss(ms):
    if ms < 0:
        ms = 0
    s = (ms + 999) // 1000
    return "%02d:%02d" % (s // 60, s % 60)
