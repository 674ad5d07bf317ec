# Drawing of the EMG screens on the 128x64 framebuf (emg_ui.py decides the text lines; screens.py
# draws them). Graphics only: the live envelope bar with its threshold line, the session peak
# mark, the "at threshold" mark. Nothing here allocates.
#
#   the live bar sits in text rows 5-6 (y 40-55, ticks included):  |#########   :   |   |
#   ":" the threshold line (full height), a short tick above and below the bar at the session
#   peak; at threshold the bar's outline is doubled.
from micropython import const

BAR_X = const(0)
BAR_Y = const(42)
BAR_W = const(128)
BAR_H = const(11)


def level_px(uv, full_uv, w=BAR_W):
    """Pixels of a bar w wide for uv out of full_uv (ints), clamped to the inside of the outline."""
    if full_uv <= 0 or uv <= 0:
        return 0
    n = (w - 2) * uv // full_uv
    return w - 2 if n > w - 2 else n


def envelope_bar(fb, env_uv, full_uv, thr_uv, peak_uv=0, at=False, x=BAR_X, y=BAR_Y, w=BAR_W,
                 h=BAR_H, ext=2):
    """The bar at (x, y), w x h, and its marks, which reach `ext` pixels above and below it."""
    fb.fill_rect(x, y - ext, w, h + 2 * ext, 0)
    fb.rect(x, y, w, h, 1)
    n = level_px(env_uv, full_uv, w)
    if n:
        fb.fill_rect(x + 1, y + 1, n, h - 2, 1)
    if thr_uv > 0:
        t = x + 1 + level_px(thr_uv, full_uv, w)
        # the threshold line: drawn inverted over the filled part so it stays visible
        fb.vline(t, y - ext, h + 2 * ext, 1)
        if n and t <= x + n:
            fb.vline(t, y + 1, h - 2, 0)
    if peak_uv:
        p = x + 1 + level_px(peak_uv, full_uv, w)
        fb.vline(p, y - ext, ext, 1)
        fb.vline(p, y + h, ext, 1)
    if at:
        fb.rect(x + 1, y + 1, w - 2, h - 2, 1)


def run_bar(fb, env_uv, full_uv, thr_uv):
    """The small envelope bar on the run screen of an EMG-triggered program (text row 5, right
    half), with its threshold line, all inside the row (y 40-47: rows 4 and 6 keep their text);
    the row's text says the state."""
    envelope_bar(fb, env_uv, full_uv, thr_uv, 0, False, 72, 41, 56, 6, 1)


def countdown_bar(fb, left_ms, total_ms, y=33):
    """A thin bar that empties as a calibration phase runs out (text row 4, left blank)."""
    fb.fill_rect(0, y, 128, 4, 0)
    fb.rect(0, y, 128, 4, 1)
    if total_ms > 0 and left_ms > 0:
        fb.fill_rect(1, y + 1, 126 * left_ms // total_ms, 2, 1)
