"""`make flash` end to end against the virtual device (real MicroPython unix port on a pty, real
mpremote), and one test per flashing failure with its message. No hardware."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from host_tools import flash
from host_tools.virtual_device import micropython_exe

ROOT = Path(__file__).resolve().parent.parent

try:
    micropython_exe()
    HAVE_MP = True
except SystemExit:
    HAVE_MP = False
needs_mp = pytest.mark.skipif(not HAVE_MP, reason="MicroPython unix port not installed")

TEST_MAIN = '''\
import time
from machine import I2C, Pin
import board_config
import ssd1306

b = board_config.load()
led = Pin(b.OUTPUT_LED, Pin.OUT)
led.value(1)
i2c = I2C(b.I2C_ID, sda=Pin(b.I2C_SDA), scl=Pin(b.I2C_SCL), freq=b.I2C_HZ)
oled = ssd1306.SSD1306_I2C(b.OLED_WIDTH, b.OLED_HEIGHT, i2c)
oled.fill(0)
oled.text("FLASH OK", 0, 0)
oled.show()
print("test main running on", b.NAME)
while True:
    time.sleep_ms(20)
'''


@pytest.fixture
def tree(tmp_path):
    """A small source tree: the real board config and OLED driver, a test main.py."""
    t = tmp_path / "src"
    (t / "firmware").mkdir(parents=True)
    (t / "lib").mkdir()
    (t / "board_config").mkdir()
    for f in ("__init__.py", "pico.py"):
        shutil.copy(ROOT / "board_config" / f, t / "board_config" / f)
    shutil.copy(ROOT / "lib" / "ssd1306.py", t / "lib" / "ssd1306.py")
    (t / "firmware" / "main.py").write_text(TEST_MAIN)
    (t / "firmware" / "hello.py").write_text("GREETING = 'hello from hello.mpy'\n")
    return t


class VDev:
    def __init__(self, devdir, *args):
        self.dir = Path(devdir)
        port_txt = self.dir / "state" / "port.txt"
        if port_txt.exists():
            port_txt.unlink()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "host_tools.virtual_device", "--dir", str(devdir), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("virtual device on "), line
        self.port = line.split()[-1]
        self.flash_dir = self.dir / "flash"

    def state(self, boot=None, timeout=10, want=lambda s: True):
        """world.json once it belongs to boot (if given) and want(state) holds."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                last = json.loads((self.dir / "state" / "world.json").read_text())
                if (boot is None or last["boot"] >= boot) and want(last):
                    return last
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError("virtual device state not reached; last: %r" % (last,))

    def drive(self, actions, timeout=5):
        """Write state/input.json and wait until the device has taken it."""
        f = self.dir / "state" / "input.json"
        f.write_text(json.dumps(actions))
        end = time.monotonic() + timeout
        while f.exists():
            assert time.monotonic() < end, "virtual device did not take input.json"
            time.sleep(0.02)

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(5)
        self.proc.stdout.close()
        pid = self.dir / "state" / "agent.pid"
        if pid.exists():
            try:
                os.kill(int(pid.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


@pytest.fixture
def vdev(tmp_path):
    devs = []

    def start(*args, devdir=None):
        d = VDev(devdir or tmp_path / ("dev%d" % len(devs)), *args)
        devs.append(d)
        return d

    yield start
    for d in devs:
        d.kill(signal.SIGTERM)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def expected_files(tree, tmp_path):
    return flash.plan_files(tree, tmp_path / "expect", "x64")


def run_flash(port, tree, **kw):
    lines = []
    res = flash.flash(port, tree, log=lines.append, **kw)
    return res, lines


def error_of(fn, *a, **kw):
    with pytest.raises(flash.FlashError) as ei:
        fn(*a, **kw)
    return str(ei.value)


# ---- end to end ---------------------------------------------------------------------------------
@needs_mp
def test_flash_virtual_device_end_to_end(tree, vdev, tmp_path):
    d = vdev()
    d.state(boot=1)
    res, lines = run_flash(d.port, tree)
    files = expected_files(tree, tmp_path)
    assert sorted(res["copied"]) == sorted(p for p, _ in files)
    assert res["board"] == "pico" and res["march"] == "x64" and res["mpy"] == "6.3"
    for p, data in files:
        assert sha((d.flash_dir / p[1:]).read_bytes()) == sha(data), p
    assert (d.flash_dir / "main.py").read_text() == TEST_MAIN  # main.py stays source
    assert not list(d.flash_dir.rglob("*.tmp"))
    assert lines[-1] == "reset: the board starts main.py"

    # after the reset the board runs the deployed main.py: screen and pins
    s = d.state(boot=2, want=lambda s: s["screen_lit"])  # no soft reset: one reset at the end
    assert s["pins"]["22"] == 1
    top = s["screen"][:8]
    assert sum(r.count("#") for r in top) > 50  # "FLASH OK" in the top text row
    assert all("#" not in r for r in s["screen"][8:])
    deadline = time.monotonic() + 5
    while b"test main running on pico" not in (d.dir / "state" / "console.log").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # a second flash copies nothing
    res2, _ = run_flash(d.port, tree, reset=False)
    assert res2["copied"] == [] and len(res2["unchanged"]) == len(files)

    # the real mpremote command line works on it too
    r = subprocess.run([flash.mpremote_exe(), "connect", d.port, "exec",
                        "import hello, os; print(hello.GREETING, os.uname().machine)"],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout.strip() == "hello from hello.mpy Raspberry Pi Pico with RP2040", r


@needs_mp
def test_logs_backup_restore(vdev, tmp_path):
    d = vdev()
    d.state(boot=1)
    (d.flash_dir / "settings.json").write_text('{"contrast": 7}')
    (d.flash_dir / "crash.log").write_text("Traceback: boom\n")
    logs = tmp_path / "logs"
    assert flash.main(["logs", "--port", d.port, "--out", str(logs)]) == 0
    assert (logs / "crash.log").read_text() == "Traceback: boom\n"
    bk = tmp_path / "backup"
    assert flash.main(["backup", "--port", d.port, "--out", str(bk)]) == 0
    assert (bk / "settings.json").read_text() == '{"contrast": 7}'
    assert not (bk / "programs.json").exists()  # not on the board: reported, not an error
    (d.flash_dir / "settings.json").write_text('{"contrast": 1}')
    assert flash.main(["restore", "--port", d.port, "--out", str(bk)]) == 0
    assert (d.flash_dir / "settings.json").read_text() == '{"contrast": 7}'


# ---- failures -----------------------------------------------------------------------------------
def _port(dev, vid, pid, desc=""):
    return SimpleNamespace(device=dev, vid=vid, pid=pid, description=desc)


def test_no_device():
    msg = error_of(flash.find_port, [_port("/dev/ttyS0", None, None)])
    assert msg.splitlines()[0] == (
        "no MicroPython board found: no serial port has a MicroPython USB id "
        "(2e8a:0005 for a Raspberry Pi Pico).")
    assert "hold BOOTSEL" in msg and "make flash PORT=/dev/ttyACM0" in msg


def test_no_device_lists_other_usb_serial_ports(capsys):
    ports = [_port("/dev/ttyUSB0", 0x1A86, 0x7523, "USB2.0-Serial")]
    msg = error_of(flash.find_port, ports)
    assert msg.splitlines()[-1] == (
        "Other serial ports seen: /dev/ttyUSB0 (1a86:7523, USB2.0-Serial)")
    assert flash.main(["flash"], ports=ports) == 2
    assert capsys.readouterr().err.startswith("flash: error: no MicroPython board found")


def test_several_devices():
    ports = [_port("/dev/ttyACM0", 0x2E8A, 0x0005), _port("/dev/ttyACM1", 0x2E8A, 0x0005),
             _port("/dev/ttyS0", None, None)]
    msg = error_of(flash.find_port, ports)
    assert msg == (
        "several MicroPython boards found: "
        "/dev/ttyACM0 (2e8a:0005, Raspberry Pi RP2040/RP2350 running MicroPython), "
        "/dev/ttyACM1 (2e8a:0005, Raspberry Pi RP2040/RP2350 running MicroPython).\n"
        "What to do: choose one, e.g. make flash PORT=/dev/ttyACM0")


def test_one_device_is_found():
    ports = [_port("/dev/ttyS0", None, None), _port("/dev/ttyACM3", 0x2E8A, 0x0005)]
    assert flash.find_port(ports) == "/dev/ttyACM3"


@needs_mp
def test_wrong_micropython_version(tree, vdev):
    d = vdev("--version", "1.18.0", "--mpy", str(5 | (4 << 10)))
    msg = error_of(flash.flash, d.port, tree, log=lambda s: None)
    assert msg.splitlines()[0] == (
        "wrong MicroPython version on %s: the board runs MicroPython 1.18.0 (.mpy v5); this "
        "build needs MicroPython 1.23.0 or newer (.mpy v6, made by mpy-cross 1.29.0)." % d.port)
    assert "https://micropython.org/download/RPI_PICO/" in msg
    assert [p.name for p in d.flash_dir.iterdir()] == ["board.txt"]  # nothing copied


@needs_mp
def test_wrong_board(tree, vdev):
    d = vdev("--board", "esp32_devkitc", "--machine", "Generic ESP32 module with ESP32")
    msg = error_of(flash.flash, d.port, tree, log=lambda s: None)
    assert msg.splitlines()[0] == (
        "wrong board on %s: the board is 'Generic ESP32 module with ESP32', board.txt says "
        "'esp32_devkitc'; this build has board configs for: pico." % d.port)
    assert msg.splitlines()[1].startswith("What to do: flash a board this build supports")


@needs_mp
def test_pico_w_is_refused(tree, vdev):
    """A Pico W reports itself as a Pico W; its GP24/GP29 belong to the wireless chip, so the
    Pico config's USB and battery sensing would read the wrong signals: refused, nothing copied."""
    d = vdev("--machine", "Raspberry Pi Pico W with RP2040", "--board", "")
    msg = error_of(flash.flash, d.port, tree, log=lambda s: None)
    assert msg.splitlines()[0] == (
        "unsupported board on %s: the board is a Raspberry Pi Pico W ('Raspberry Pi Pico W with "
        "RP2040'). On a Pico W, GP24 and GP29 belong to the wireless chip (CYW43), but "
        "board_config/pico.py reads USB power on GP24 (VBUS sense) and the battery on GP29 "
        "(VSYS/3): the USB lockout and the battery cut-off would read the wrong signals. Nothing "
        "was copied." % d.port)
    assert msg.splitlines()[1].startswith(
        "What to do: use a Raspberry Pi Pico without W (MicroPython for RPI_PICO).")
    assert list(d.flash_dir.iterdir()) == []  # nothing copied
    # naming the board does not get round it; a config for the W (WIRELESS = True) would
    msg = error_of(flash.flash, d.port, tree, board="pico", log=lambda s: None)
    assert msg.startswith("unsupported board on %s: the board is a Raspberry Pi Pico W" % d.port)
    assert list(d.flash_dir.iterdir()) == []
    assert flash.WIRELESS_RE.search("Raspberry Pi Pico 2 W with RP2350")
    assert not flash.WIRELESS_RE.search("Raspberry Pi Pico with RP2040")


@needs_mp
def test_wrong_board_chip(tree, vdev):
    # board.txt names pico, but the chip is not an RP2040
    d = vdev("--machine", "Raspberry Pi Pico2 with RP2350")
    msg = error_of(flash.flash, d.port, tree, log=lambda s: None)
    assert msg.splitlines()[0] == (
        "wrong board on %s: board_config/pico.py is for a RP2040 but the board is "
        "'Raspberry Pi Pico2 with RP2350', board.txt says 'pico'." % d.port)


@needs_mp
def test_not_enough_space(tree, vdev):
    d = vdev("--flash-kb", "16")
    msg = error_of(flash.flash, d.port, tree, log=lambda s: None)
    first = msg.splitlines()[0]
    assert first.startswith("not enough space on the board: this flash needs ")
    assert first.endswith("Nothing was copied.")
    assert "but only 8 KiB are free (5 changed files, " in first
    assert [p.name for p in d.flash_dir.iterdir()] == ["board.txt"]


@needs_mp
def test_interrupted_copy_is_detected_and_repaired(tree, vdev, tmp_path):
    devdir = tmp_path / "unit"
    d = vdev(devdir=devdir)

    def unplug(dest, done, total):
        if dest == "/lib/ssd1306.mpy":
            d.kill()  # the board vanishes half way through this file

    msg = error_of(flash.flash, d.port, tree, progress=unplug, log=lambda s: None)
    assert msg.startswith("copy interrupted while writing /lib/ssd1306.mpy on %s: " % d.port)
    assert msg.splitlines()[-1] == ("What to do: reconnect the board and run make flash "
                                    "again: it finds the unfinished copy and repairs it.")
    lib = devdir / "flash" / "lib"
    assert (lib / "ssd1306.mpy.tmp").exists() and not (lib / "ssd1306.mpy").exists()

    d2 = vdev(devdir=devdir)  # plugged in again (a new pty)
    res, lines = run_flash(d2.port, tree, reset=False)
    assert res["repaired"] == ["/lib/ssd1306.mpy"]
    assert lines[0] == ("found unfinished copies from an interrupted flash: "
                        "/lib/ssd1306.mpy.tmp; removing them and copying those files again")
    assert "/lib/ssd1306.mpy" in res["copied"]
    for p, data in expected_files(tree, tmp_path):
        assert sha((devdir / "flash" / p[1:]).read_bytes()) == sha(data), p
    assert not list((devdir / "flash").rglob("*.tmp"))


@needs_mp
def test_stale_py_next_to_mpy_is_removed(tree, vdev):
    d = vdev()
    (d.flash_dir / "lib").mkdir()
    (d.flash_dir / "lib" / "ssd1306.py").write_text("raise ImportError('old copy')\n")
    res, lines = run_flash(d.port, tree, reset=False)
    assert res["removed"] == ["/lib/ssd1306.py"]
    assert "removed /lib/ssd1306.py: it would be imported instead of /lib/ssd1306.mpy" in lines


@needs_mp
@pytest.mark.skipif(not (ROOT / "firmware" / "main.py").exists(), reason="no firmware/main.py")
def test_real_firmware_boots_on_the_virtual_device(vdev):
    """The project's own firmware, flashed like a Pico, runs its UI: the screen lights up and
    a button press changes it."""
    d = vdev()
    d.state(boot=1)
    res, _ = run_flash(d.port, ROOT)
    assert "/main.py" in res["copied"]
    n0 = len((d.dir / "state" / "console.log").read_bytes())  # what the flash itself printed
    s = d.state(boot=2, want=lambda s: s["screen_lit"] and any("#" in r for r in s["screen"]))
    log = (d.dir / "state" / "console.log").read_bytes()
    assert b"Traceback" not in log[n0:], log[-2000:]
    before = s["screen"]
    down = 17  # board_config.pico.BUTTONS["down"]
    d.drive([{"pin": down, "level": 0}])
    time.sleep(0.2)
    d.drive([{"pin": down, "release": True}])
    d.state(want=lambda s: s["screen"] != before)


def test_syntax_error_stops_before_copying(tree, tmp_path):
    (tree / "lib" / "broken.py").write_text("def f(:\n")
    msg = error_of(flash.plan_files, tree, tmp_path / "b", None)
    assert msg.startswith("mpy-cross failed, nothing was copied:\nlib/broken.py:")
    assert msg.splitlines()[-1].startswith("What to do: fix the syntax error above")


@needs_mp
def test_flash_an_esp32_board(tree, vdev, tmp_path):
    """make flash handles an ESP32: the board named on the device (board.txt) picks
    board_config/esp32_devkitc.py, whose chip must appear in the device's machine string."""
    shutil.copy(ROOT / "board_config" / "esp32_devkitc.py", tree / "board_config")
    d = vdev("--board", "esp32_devkitc", "--machine", "Generic ESP32 module with ESP32")
    res, lines = run_flash(d.port, tree, reset=False)
    assert res["board"] == "esp32_devkitc"
    files = expected_files(tree, tmp_path)
    assert sorted(res["copied"]) == sorted(p for p, _ in files)
    for p, data in files:
        assert sha((d.flash_dir / p[1:]).read_bytes()) == sha(data), p
    assert (d.flash_dir / "board.txt").read_text().strip() == "esp32_devkitc"
