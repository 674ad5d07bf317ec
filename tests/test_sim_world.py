"""CPython-only tests of the sim core: install/load, and the pure-Python framebuf against the real
one on the MicroPython unix port (byte-for-byte on random scenes).

The portable checks of world/time/machine live in tests/portable/test_sim_portable.py and run on
both interpreters."""

import os
import random
import subprocess
import sys

import pytest

from host_tools.sim import framebuf_mod, install, world

MPY = framebuf_mod.find_micropython()
needs_mpy = pytest.mark.skipif(MPY is None, reason="MicroPython unix port not found")

FORMATS = {
    "MONO_VLSB": (framebuf_mod.MONO_VLSB, 1),
    "MONO_HLSB": (framebuf_mod.MONO_HLSB, 1),
    "MONO_HMSB": (framebuf_mod.MONO_HMSB, 1),
    "RGB565": (framebuf_mod.RGB565, 0xFFFF),
    "GS8": (framebuf_mod.GS8, 0xFF),
    "GS4_HMSB": (framebuf_mod.GS4_HMSB, 0xF),
    "GS2_HMSB": (framebuf_mod.GS2_HMSB, 3),
}


def _size(fmt, w, h):
    if fmt == framebuf_mod.MONO_VLSB:
        return w * ((h + 7) // 8)
    if fmt in (framebuf_mod.MONO_HLSB, framebuf_mod.MONO_HMSB):
        return ((w + 7) // 8) * h
    if fmt == framebuf_mod.RGB565:
        return w * h * 2
    if fmt == framebuf_mod.GS8:
        return w * h
    if fmt == framebuf_mod.GS4_HMSB:
        return ((w + 1) // 2) * h
    return ((w + 3) // 4) * h


def _scene(rnd, w, h, cmax, n=40):
    """A random list of (method, args) drawing calls, coordinates partly off-screen."""

    def cx():
        return rnd.randint(-20, w + 20)

    def cy():
        return rnd.randint(-20, h + 20)

    def col():
        return rnd.choice([0, cmax, rnd.randint(0, cmax)])

    ops = [("fill", (rnd.choice([0, 0, cmax]),))]
    for _ in range(n):
        k = rnd.choice(["pixel", "hline", "vline", "line", "line", "rect", "rectf",
                        "fill_rect", "ellipse", "ellipsef", "ellipsem", "text", "text",
                        "scroll", "poly", "polyf"])
        if k == "pixel":
            ops.append(("pixel", (cx(), cy(), col())))
        elif k == "hline":
            ops.append(("hline", (cx(), cy(), rnd.randint(-5, w), col())))
        elif k == "vline":
            ops.append(("vline", (cx(), cy(), rnd.randint(-5, h), col())))
        elif k == "line":
            ops.append(("line", (cx(), cy(), cx(), cy(), col())))
        elif k == "rect":
            ops.append(("rect", (cx(), cy(), rnd.randint(0, w), rnd.randint(0, h), col())))
        elif k == "rectf":
            ops.append(("rect", (cx(), cy(), rnd.randint(0, w), rnd.randint(0, h), col(), True)))
        elif k == "fill_rect":
            ops.append(("fill_rect", (cx(), cy(), rnd.randint(-3, w), rnd.randint(-3, h), col())))
        elif k == "ellipse":
            ops.append(("ellipse", (cx(), cy(), rnd.randint(0, 40), rnd.randint(0, 30), col())))
        elif k == "ellipsef":
            ops.append(("ellipse", (cx(), cy(), rnd.randint(0, 40), rnd.randint(0, 30), col(),
                                    True)))
        elif k == "ellipsem":
            ops.append(("ellipse", (cx(), cy(), rnd.randint(0, 30), rnd.randint(0, 30), col(),
                                    rnd.random() < 0.5, rnd.randint(0, 15))))
        elif k == "text":
            s = "".join(chr(rnd.randint(32, 127)) for _ in range(rnd.randint(0, 12)))
            if rnd.random() < 0.2:
                s += "\u00e9\n"  # non-ASCII and control bytes draw as character 127
            ops.append(("text", (s, cx(), cy(), col())))
        elif k == "scroll":
            ops.append(("scroll", (rnd.randint(-w - 2, w + 2) // 4,
                                   rnd.randint(-h - 2, h + 2) // 4)))
        else:
            pts = []
            for _ in range(rnd.randint(1, 6)):
                pts += [rnd.randint(-10, 60), rnd.randint(-10, 50)]
            ops.append(("poly", (cx() // 2, cy() // 2, pts, col(), k == "polyf")))
    return ops


_MP_SCRIPT = r"""
import framebuf, sys
from array import array
def run(fmt, w, h, size, ops):
    buf = bytearray(size)
    fb = framebuf.FrameBuffer(buf, w, h, fmt)
    for name, args in ops:
        if name == "poly":
            args = (args[0], args[1], array("h", args[2])) + tuple(args[3:])
        getattr(fb, name)(*args)
    return buf
cases = eval(sys.stdin.read())
for c in cases:
    print(run(*c).hex())
"""


def _run_cpython(fmt, w, h, size, ops):
    buf = bytearray(size)
    fb = framebuf_mod.FrameBuffer(buf, w, h, fmt)
    for name, args in ops:
        getattr(fb, name)(*args)
    return bytes(buf)


def _run_mpy(cases):
    out = subprocess.run([MPY, "-X", "heapsize=64M", "-c", _MP_SCRIPT], input=repr(cases),
                         capture_output=True, text=True, check=True)
    return [bytes.fromhex(line) for line in out.stdout.split()]


@needs_mpy
def test_font_generated_from_the_unix_port():
    f = framebuf_mod.font()
    assert len(f) == 96 * 8
    assert f[0:8] == bytes(8)  # space
    assert os.path.exists(framebuf_mod.FONT_CACHE)


@needs_mpy
@pytest.mark.parametrize("fmt_name", sorted(FORMATS))
def test_framebuf_matches_micropython(fmt_name):
    fmt, cmax = FORMATS[fmt_name]
    rnd = random.Random(fmt_name)
    cases = []
    for _ in range(12):
        w, h = rnd.choice([(128, 64), (128, 64), (37, 21), (8, 8), (64, 48)])
        ops = _scene(rnd, w, h, cmax)
        cases.append((fmt, w, h, _size(fmt, w, h), ops))
    expected = _run_mpy(cases)
    assert len(expected) == len(cases)
    for case, exp in zip(cases, expected, strict=True):
        got = _run_cpython(*case)
        if got != exp:
            # find the first operation that diverges, for a readable failure
            fmt_, w, h, size, ops = case
            for k in range(1, len(ops) + 1):
                sub = (fmt_, w, h, size, ops[:k])
                if _run_cpython(*sub) != _run_mpy([sub])[0]:
                    pytest.fail("framebuf %s %dx%d differs after %r" % (fmt_name, w, h, ops[k - 1]))
            pytest.fail("framebuf differs")


@needs_mpy
def test_blit_key_and_palette_match_micropython():
    rnd = random.Random(7)
    script = r"""
import framebuf
src = bytearray(%(ssize)d)
s = framebuf.FrameBuffer(src, 13, 11, framebuf.GS2_HMSB)
for i in range(13 * 11):
    s.pixel(i %% 13, i // 13, (i * 7) %% 4)
pal = bytearray(4)
p = framebuf.FrameBuffer(pal, 4, 1, framebuf.GS8)
for i in range(4):
    p.pixel(i, 0, [0, 200, 7, 255][i])
dst = bytearray(40 * 30)
d = framebuf.FrameBuffer(dst, 40, 30, framebuf.GS8)
d.fill(9)
for x, y, key, usepal in %(calls)r:
    d.blit(s, x, y, key, p if usepal else None)
d.blit((src, 13, 11, framebuf.GS2_HMSB), 2, 3)
print(dst.hex())
"""
    calls = [(rnd.randint(-15, 42), rnd.randint(-12, 32), rnd.choice([-1, 0, 1, 2, 3, 200]),
              rnd.random() < 0.5) for _ in range(25)]
    ssize = ((13 + 3) // 4) * 11
    out = subprocess.run([MPY, "-c", script % {"ssize": ssize, "calls": calls}],
                         capture_output=True, text=True, check=True)
    fb = framebuf_mod
    src = bytearray(ssize)
    s = fb.FrameBuffer(src, 13, 11, fb.GS2_HMSB)
    for i in range(13 * 11):
        s.pixel(i % 13, i // 13, (i * 7) % 4)
    pal = bytearray(4)
    p = fb.FrameBuffer(pal, 4, 1, fb.GS8)
    for i in range(4):
        p.pixel(i, 0, [0, 200, 7, 255][i])
    dst = bytearray(40 * 30)
    d = fb.FrameBuffer(dst, 40, 30, fb.GS8)
    d.fill(9)
    for x, y, key, usepal in calls:
        d.blit(s, x, y, key, p if usepal else None)
    d.blit((src, 13, 11, fb.GS2_HMSB), 2, 3)
    assert bytes(dst) == bytes.fromhex(out.stdout.strip())


def test_framebuf_rejects_short_buffer():
    with pytest.raises(ValueError):
        framebuf_mod.FrameBuffer(bytearray(100), 128, 64, framebuf_mod.MONO_VLSB)


# ---- install / load ----------------------------------------------------------------------------

def test_load_installs_standins_and_restores_time(tmp_path):
    import time as real_time

    dev = tmp_path / "devdir"
    dev.mkdir()
    (dev / "sim_probe_dev.py").write_text(
        "import time\nimport machine\nimport framebuf\nfrom micropython import const\n"
        "N = const(3)\ndef ms():\n    return time.ticks_ms()\n"
    )
    w = world.new_world()
    mod = install.load("sim_probe_dev", paths=(str(dev),))
    assert sys.modules["time"] is real_time
    assert mod.time.__name__ == "host_tools.sim.simtime"
    assert mod.machine.__name__ == "host_tools.sim.machine"
    assert mod.framebuf is framebuf_mod
    assert mod.N == 3
    mod.time.sleep_ms(7)
    assert mod.ms() == 7 and w.ms() == 7
    again = install.load("sim_probe_dev", paths=(str(dev),))
    assert again is not mod  # fresh import each call


def test_schedule_many_in_order():
    w = world.new_world()
    rnd = random.Random(1)
    fired = []
    expected = []
    for i in range(500):
        c = rnd.randint(0, 10_000)
        expected.append((c, i))
        w.schedule(c, lambda c=c, i=i: fired.append((w.now, i)))
    w.advance_to(10_000)
    assert fired == sorted(expected)  # time order, stable for equal cycles
