"""The MONO_VLSB (SSD1306) fast paths of host_tools/sim/framebuf_mod.py against drawing one pixel
at a time: text (a string's font columns shifted into one or two pages at once) and fill_rect
(a page at a time), at every vertical offset, at the edges and off them, in buffers whose height
is not a multiple of 8. tests/test_sim_world.py compares the whole module with MicroPython's own
framebuf on random scenes; this one walks the edge cases exhaustively."""
import random

from host_tools.sim import framebuf_mod as fbm

SIZES = [(37, 21), (16, 8), (128, 64), (9, 3)]


def _new(w, h, rnd):
    buf = bytearray(rnd.getrandbits(8) for _ in range(w * ((h + 7) // 8)))
    return buf, fbm.FrameBuffer(buf, w, h, fbm.MONO_VLSB)


def _text_one_by_one(fb, s, x0, y0, c):
    fnt = fbm.font()
    for ch in s.encode("utf-8"):
        ch = ch if 32 <= ch <= 127 else 127
        for j in range(8):
            v = fnt[(ch - 32) * 8 + j]
            for k in range(8):
                if v >> k & 1 and 0 <= x0 < fb.width and 0 <= y0 + k < fb.height:
                    fb._set(x0, y0 + k, c)
            x0 += 1


def _fill_one_by_one(fb, x, y, w, h, c):
    for yy in range(max(y, 0), min(y + h, fb.height)):
        for xx in range(max(x, 0), min(x + w, fb.width)):
            fb._set(xx, yy, c)


def test_text_at_every_offset_matches_pixel_by_pixel():
    rnd = random.Random(1)
    n = 0
    for w, h in SIZES:
        for y in range(-9, h + 2):
            for x in sorted({-17, -9, -8, -7, -1, 0, 1, 2, 7, w - 9, w - 8, w - 1, w, w + 1}):
                for c in (0, 1):
                    s = "".join(chr(rnd.randrange(32, 128)) for _ in range(rnd.randrange(0, 5)))
                    if rnd.random() < 0.1:
                        s += "\u00e9\n"  # drawn as character 127
                    seed = rnd.getrandbits(32)
                    buf, fb = _new(w, h, random.Random(seed))
                    ref, fbr = _new(w, h, random.Random(seed))
                    fb.text(s, x, y, c)
                    _text_one_by_one(fbr, s, x, y, c)
                    assert buf == ref, (w, h, s, x, y, c)
                    n += 1
    assert n > 3000


def test_fill_rect_and_fill_match_pixel_by_pixel():
    rnd = random.Random(2)
    for w, h in SIZES:
        for y in range(-9, h + 2):
            for hh in (0, 1, 2, 7, 8, 9, 15, 16, 17, h + 20):
                x = rnd.randrange(-5, w + 2)
                ww = rnd.randrange(-1, w + 6)
                c = rnd.randrange(2)
                seed = rnd.getrandbits(32)
                buf, fb = _new(w, h, random.Random(seed))
                ref, fbr = _new(w, h, random.Random(seed))
                fb.fill_rect(x, y, ww, hh, c)
                _fill_one_by_one(fbr, x, y, ww, hh, c)
                assert buf == ref, (w, h, x, y, ww, hh, c)
        for c in (0, 1):
            buf, fb = _new(w, h, rnd)
            ref = bytearray(buf)
            fb.fill(c)
            _fill_one_by_one(fbm.FrameBuffer(ref, w, h, fbm.MONO_VLSB), 0, 0, w, h, c)
            assert buf == ref
