"""The virtual device as a person meets it: the friendly REPL on its port (ctrl-C stops main.py,
expressions print, compound statements, ctrl-D soft reset runs main.py again), and its pins read
from and driven through state/ (world.json, input.json)."""
import time

import pytest
import serial

from tests.test_flash import VDev, needs_mp

MAIN = """\
import time
from machine import Pin
button = Pin(18, Pin.IN, Pin.PULL_UP)
led = Pin(22, Pin.OUT)
print("main.py up")
while True:
    led.value(0 if button.value() else 1)
    time.sleep_ms(10)
"""


@pytest.fixture
def dev(tmp_path):
    (tmp_path / "d" / "flash").mkdir(parents=True)
    (tmp_path / "d" / "flash" / "main.py").write_text(MAIN)
    d = VDev(tmp_path / "d")
    yield d
    d.kill()


def read_until(ser, token, timeout=5.0):
    buf = b""
    end = time.monotonic() + timeout
    while not buf.endswith(token):
        if time.monotonic() > end:
            raise AssertionError("waited for %r, got %r" % (token, buf))
        buf += ser.read(ser.in_waiting or 1)
    return buf


@needs_mp
def test_pins_read_and_driven_through_state(dev):
    s = dev.state(boot=1, want=lambda s: s["pins"]["18"] == 1)
    assert s["pins"]["22"] == 0
    dev.drive([{"pin": 18, "level": 0}])
    s = dev.state(want=lambda s: s["pins"]["22"] == 1)
    assert s["pins"]["18"] == 0
    dev.drive([{"pin": 18, "release": True}])
    dev.state(want=lambda s: s["pins"]["22"] == 0 and s["pins"]["18"] == 1)


@needs_mp
def test_friendly_repl_on_the_port(dev):
    dev.state(boot=1)
    with serial.Serial(dev.port, 115200, timeout=0.1) as ser:
        ser.write(b"\x03")  # stop main.py
        out = read_until(ser, b">>> ")
        assert b"KeyboardInterrupt" in out
        ser.write(b"x = 6 * 7\r")
        read_until(ser, b">>> ")
        ser.write(b"x\r")
        assert read_until(ser, b">>> ").endswith(b"x\r\n42\r\n>>> ")
        ser.write(b"for i in range(2):\r    print('i', i)\r\r")
        assert b"i 0\r\ni 1\r\n>>> " in read_until(ser, b"i 1\r\n>>> ")
        ser.write(b"led.value()\r")  # main.py's globals survive the interrupt, as on a board
        assert read_until(ser, b">>> ").endswith(b"0\r\n>>> ")
        ser.write(b"1/0\r")
        assert b"ZeroDivisionError" in read_until(ser, b">>> ")
        ser.write(b"\x04")  # soft reset: main.py runs again
        assert b"main.py up" in read_until(ser, b"main.py up\r\n")
    dev.state(boot=2)
