# Drawing on the 128x64 framebuf: 8x8 font text, 16 characters x 8 lines, plus the few graphics
# of the run screen (battery icon, output-active mark, lock mark), bars and inverted rows.
#
# The UI (ui.py) decides what the lines say; this module only puts pixels in the framebuffer.
# Nothing here allocates except the text strings the UI hands over.
from micropython import const

COLS = const(16)
ROWS = const(8)
W = const(128)
H = const(64)


def text_lines(fb, lines, first_row=0):
    for i in range(len(lines)):
        row = first_row + i
        if row >= ROWS:
            break
        fb.text(lines[i], 0, row * 8, 1)


def highlight_row(fb, row):
    """Invert one text row (the selected menu item)."""
    fb.fill_rect(0, row * 8, W, 8, 1)


def text_inverted(fb, s, row):
    fb.fill_rect(0, row * 8, W, 8, 1)
    fb.text(s, 0, row * 8, 0)


def bar(fb, x, y, w, h, value, full):
    """Horizontal bar: outline, filled in proportion value/full (ints)."""
    fb.rect(x, y, w, h, 1)
    if full > 0 and value > 0:
        n = (w - 2) * value // full
        if n > w - 2:
            n = w - 2
        fb.fill_rect(x + 1, y + 1, n, h - 2, 1)


def battery(fb, x, y, pct):
    """12x7 battery icon with pct (0-100) filled."""
    fb.rect(x, y, 11, 7, 1)
    fb.fill_rect(x + 11, y + 2, 1, 3, 1)
    if pct < 0:
        pct = 0
    elif pct > 100:
        pct = 100
    fb.fill_rect(x + 1, y + 1, 9 * pct // 100, 5, 1)


def output_mark(fb, x, y):
    """Output-active mark: a filled diamond (SAFETY rule 12, the screen half of it)."""
    for i in range(4):
        fb.hline(x + 3 - i, y + i, 2 * i + 1, 1)
        fb.hline(x + 3 - i, y + 6 - i, 2 * i + 1, 1)


def lock_mark(fb, x, y):
    """Padlock, 7x8."""
    fb.rect(x + 1, y, 5, 4, 1)
    fb.fill_rect(x, y + 3, 7, 5, 1)


def run_graphics(fb, selected, battery_pct, output_on, locked):
    """The icons of the run screen on row 0: battery, output-active mark, lock. (Rows 3-4 are
    text: the current flowing and the level set per channel.)"""
    battery(fb, 116, 0, battery_pct)
    if output_on:
        output_mark(fb, 100, 0)
    if locked:
        lock_mark(fb, 90, 0)
