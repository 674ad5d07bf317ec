"""The service path on a unit that is running the app (issue 9, item 10): the REPL, make flash,
make logs and make backup, on the virtual device (the real MicroPython unix port with the
project's firmware, a watchdog that a soft reset does not stop, as on an RP2040, and a clock that
keeps running while the device waits at the prompt), and in the host simulation (a hang of the
app loop still resets the unit: the timer that feeds the watchdog in service mode is armed only
after the loop has ended)."""
import shutil
import threading
import time
from pathlib import Path

import pytest
import serial

from host_tools import flash
from host_tools.scenario import ocr
from tests import sim_runs
from tests.scenario_harness import TENS_CONV, Steps, amplitude, events, level_at, screen_at, spec
from tests.test_flash import VDev, needs_mp

ROOT = Path(__file__).resolve().parent.parent
ENABLE, LED, LEG_A = "9", "22", "2"  # board_config/pico.py: OUTPUT_ENABLE, OUTPUT_LED, ch 1 leg A


def text(state):
    return "\n".join(ocr([[c == "#" for c in row] for row in state["screen"]]))


def read_until(ser, token, timeout=10.0):
    buf = b""
    end = time.monotonic() + timeout
    while not buf.endswith(token):
        if time.monotonic() > end:
            raise AssertionError("waited for %r, got %r" % (token, buf[-400:]))
        buf += ser.read(ser.in_waiting or 1)
    return buf


def in_time(seconds, fn, *args, **kw):
    """fn(*args, **kw), or a test failure if it has not returned after seconds (a unit that
    resets half way through leaves mpremote waiting for an answer that never comes)."""
    out, err = [], []

    def call():
        try:
            out.append(fn(*args, **kw))
        except BaseException as e:  # noqa: B036 - handed to the test's thread
            err.append(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(seconds)
    if err:
        raise err[0]
    assert out, "%s did not finish within %d s" % (fn.__name__, seconds)
    return out[0]


def console(d):
    return (d.dir / "state" / "console.log").read_bytes()


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The firmware as make flash lays it out for the virtual device (.mpy for x64)."""
    return flash.plan_files(ROOT, tmp_path_factory.mktemp("build"), "x64")


@pytest.fixture
def unit(tmp_path, build):
    """A virtual Pico with the firmware on its flash, running the app (program list shown)."""
    devdir = tmp_path / "unit"
    for p, data in build:
        dest = devdir / "flash" / p[1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    (devdir / "flash" / "board.txt").write_text("pico\n")
    d = VDev(devdir)
    d.state(boot=1, want=lambda s: "Programs" in text(s), timeout=20)
    yield d
    d.kill()


@needs_mp
def test_repl_on_a_running_unit_stays_up_with_the_output_off(unit):
    d = unit
    with serial.Serial(d.port, 115200, timeout=0.1) as ser:
        ser.write(b"\x03")  # what a person does in make repl
        said = read_until(ser, b">>> ")
        t0 = d.state()["ms"]
        # the README's example at the prompt (the engine only times the legs)
        for line in (b"import pulse_pio", b"ch = pulse_pio.channel(1)",
                     b"ch.set(phase_us=300, gap_us=50, rate_hz=50)", b"ch.start()"):
            ser.write(line + b"\r")
            assert b"Traceback" not in read_until(ser, b">>> ")
        rises0 = d.state()["rises"].get(LEG_A, 0)
        # and waiting: three times the watchdog's 1 s
        s = d.state(want=lambda s: s["ms"] > t0 + 3000, timeout=15)
        assert s["boot"] == 1 and s["reset"] == "power-on", s["reset"]
        assert s["watchdog"]["timeout_ms"] == 8000  # long while serviced, fed by the timer
        assert s["pins"][ENABLE] == 0 and s["pins"][LED] == 0
        assert ENABLE not in s["rises"] and LED not in s["rises"]  # never on, not even briefly
        assert s["rises"].get(LEG_A, 0) - rises0 > 100  # 50 Hz for > 2 s: the pulses play
        ser.write(b"ch.running\r")
        assert read_until(ser, b">>> ").endswith(b"True\r\n>>> ")
        # what the person sees: on the console and on the unit
        assert b"service mode: the app stopped (ctrl-C), output off" in said, said
        assert "SERVICE MODE" in text(s) and "OUTPUT OFF" in text(s)
        # ctrl-D: a soft reset runs main.py again; the app feeds the watchdog it inherits
        ser.write(b"\x04")
        read_until(ser, b"soft reboot\r\n")
    s = d.state(boot=2, want=lambda s: "Programs" in text(s), timeout=20)
    assert s["reset"] == "soft"
    assert s["watchdog"]["timeout_ms"] == 1000  # the app has its 1 s watchdog again
    t1 = s["ms"]
    s = d.state(want=lambda s: s["ms"] > t1 + 2500, timeout=15)
    assert s["boot"] == 2 and s["reset"] == "soft"
    assert b"watchdog reset" not in console(d)


@needs_mp
def test_flash_onto_a_running_unit(unit, build, tmp_path):
    d = unit
    # the unit runs an older build: every library file differs, so the copy takes seconds
    old = sorted(p for p, _ in build if p.startswith("/lib/"))
    for p in old:
        (d.flash_dir / p[1:]).write_bytes(b"# an older build\n")
    res = in_time(60, flash.flash, d.port, ROOT, log=lambda s: None)
    assert sorted(res["copied"]) == old
    s = d.state(boot=2, want=lambda s: "Programs" in text(s), timeout=20)
    assert s["reset"] == "hard"  # the reset at the end of make flash, not the watchdog
    assert b"watchdog reset" not in console(d)
    for p, data in build:
        assert (d.flash_dir / p[1:]).read_bytes() == data, p


# main.py as it was before the service path: ctrl-C turns the output off and ends in the REPL,
# leaving the app's watchdog running unfed
LEGACY_MAIN = """import board_config
import app
b = board_config.load()
a = app.App(b)
try:
    a.run()
except KeyboardInterrupt:
    a.sup.emergency_off()
    raise
"""


@needs_mp
def test_flash_onto_a_unit_running_older_firmware(tmp_path, build):
    """Units in the field run firmware without the service path: make flash feeds their app's
    watchdog itself (flash.SERVICE_CODE), so they can be updated while running too."""
    devdir = tmp_path / "unit"
    for p, data in build:
        dest = devdir / "flash" / p[1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    (devdir / "flash" / "main.py").write_text(LEGACY_MAIN)
    (devdir / "flash" / "board.txt").write_text("pico\n")
    newer = tmp_path / "newer"  # a newer build: every library module changed
    for sub in ("firmware", "lib", "board_config"):
        shutil.copytree(ROOT / sub, newer / sub, ignore=shutil.ignore_patterns("__pycache__"))
    for f in (newer / "lib").glob("*.py"):
        f.write_text(f.read_text() + "\nNEWER = 1\n")
    d = VDev(devdir)
    try:
        d.state(boot=1, want=lambda s: "Programs" in text(s), timeout=20)
        res = in_time(60, flash.flash, d.port, newer, log=lambda s: None)
        assert "/main.py" in res["copied"] and "/lib/pulse_pio.mpy" in res["copied"]
        s = d.state(boot=2, want=lambda s: "Programs" in text(s), timeout=20)
        assert s["reset"] == "hard"
        assert b"watchdog reset" not in console(d)
    finally:
        d.kill()


@needs_mp
def test_logs_backup_restore_of_a_running_unit(unit, tmp_path):
    d = unit
    (d.flash_dir / "crash.log").write_text("--- crash ---\nboom\n")
    (d.flash_dir / "settings.json").write_text('{"contrast": 9}')
    time.sleep(1.5)
    assert in_time(30, flash.main, ["logs", "--port", d.port, "--out", str(tmp_path / "logs")]) == 0
    assert (tmp_path / "logs" / "crash.log").read_text() == "--- crash ---\nboom\n"
    # the unit was running the app: it runs it again (a reset, not the watchdog)
    s = d.state(boot=2, want=lambda s: "Programs" in text(s), timeout=20)
    assert s["reset"] == "hard"
    time.sleep(1.5)
    assert in_time(30, flash.main, ["backup", "--port", d.port, "--out", str(tmp_path / "bk")]) == 0
    assert (tmp_path / "bk" / "settings.json").read_text() == '{"contrast": 9}'
    s = d.state(boot=3, want=lambda s: "Programs" in text(s), timeout=20)
    assert s["reset"] == "hard"
    (d.flash_dir / "settings.json").write_text('{"contrast": 1}')
    time.sleep(1.5)
    bk = str(tmp_path / "bk")
    assert in_time(30, flash.main, ["restore", "--port", d.port, "--out", bk]) == 0
    assert (d.flash_dir / "settings.json").read_text() == '{"contrast": 9}'
    s = d.state(boot=4, want=lambda s: "Programs" in text(s), timeout=20)
    assert s["reset"] == "hard"
    assert b"watchdog reset" not in console(d)


@needs_mp
def test_the_virtual_watchdog_survives_a_soft_reset(tmp_path):
    """The model the tests above rely on: a started watchdog goes on counting at the prompt and
    through a soft reset (as on an RP2040), and resets the device when nobody feeds it."""
    (tmp_path / "d" / "flash").mkdir(parents=True)
    d = VDev(tmp_path / "d")
    try:
        d.state(boot=1)
        with serial.Serial(d.port, 115200, timeout=0.1) as ser:
            ser.write(b"\r\x03")
            read_until(ser, b">>> ")
            ser.write(b"from machine import WDT; w = WDT(timeout=1500)\r")
            read_until(ser, b">>> ")
            ser.write(b"\x04")  # soft reset: the watchdog goes on
            read_until(ser, b"soft reboot\r\n")
        s = d.state(boot=2)
        assert s["reset"] == "soft" and s["watchdog"]["timeout_ms"] == 1500
        s = d.state(boot=3, timeout=10)  # nobody feeds it at the prompt
        assert s["reset"] == "watchdog"
        assert b"[virtual device: watchdog reset]" in console(d)
    finally:
        d.kill()


# ---- the same in the host simulation, on both boards -----------------------------------------
BOARDS = ["pico", "esp32"]


def stimulating(board):
    """A session with current flowing on channel 1 (TENS, 100 Hz, about 4 mA)."""
    st = Steps().start_program(TENS_CONV).raise_level(8).wait(4000)
    return st


@pytest.mark.parametrize("board", BOARDS)
def test_ctrl_c_during_stimulation_output_off_and_the_unit_stays_up(board):
    st = stimulating(board)
    t_int = st.t
    r, res = sim_runs.run(spec(st, t_int + 6000, board=board), interrupt_ms=t_int)
    en = res["channels"]["1"]["enabled"]
    assert level_at(en, t_int - 1) is True and level_at(amplitude(res, 1), t_int - 1) > 3
    assert [on for t, on in en if t >= t_int] == [False]  # off at the interrupt, never again
    assert level_at(amplitude(res, 1), t_int) == 0 and level_at(amplitude(res, 2), t_int) == 0
    led = sim_runs.edges_ms(r, r.board.OUTPUT_LED)
    assert [lv for t, lv in led if t >= t_int] == [0]
    assert not events(res, "reset")  # 6 s in the REPL: the timer feeds the 1 s watchdog
    assert [e for e in r.world.events if e["kind"] == "watchdog_reset"] == []
    assert "SERVICE MODE" in screen_at(res, t_int + 5000)
    assert "OUTPUT OFF" in screen_at(res, t_int + 5000)


@pytest.mark.parametrize("board", BOARDS)
def test_ctrl_c_at_the_error_screen_keeps_the_unit_up(board, capsys):
    """After a crash the error screen waits for OK, feeding the watchdog; ctrl-C there (make
    logs, to fetch crash.log) gives service mode too, not a watchdog reset 1 s later."""
    st = stimulating(board)
    t_crash = st.t
    st.add(crash=True)
    t_int = t_crash + 2000
    r, res = sim_runs.run(spec(st, t_int + 4000, board=board), interrupt_ms=t_int)
    assert "ERROR" in screen_at(res, t_int - 1)
    assert not events(res, "reset")
    assert "SERVICE MODE" in screen_at(res, t_int + 3000)
    assert [on for t, on in res["channels"]["1"]["enabled"] if t >= t_crash] == [False]
    out = capsys.readouterr().out
    assert "the app stopped on an error; output off; the traceback is in /crash.log:" in out
    assert "RuntimeError: fault injected by the scenario" in out  # the traceback, on the console


@pytest.mark.parametrize("board", BOARDS)
def test_a_hang_of_the_running_app_still_resets_the_unit(board):
    """The service timer is armed only after ctrl-C has ended the loop: a loop that hangs is fed
    by nothing and the watchdog resets the unit, output off (mutant: arming the timer when the
    app starts makes this fail)."""
    st = stimulating(board)
    t_hang = st.t
    st.add(hang=True)
    r, res = sim_runs.run(spec(st, t_hang + 3000, board=board))
    resets = events(res, "reset")
    assert [e["reason"] for e in resets] == ["watchdog"]
    assert 985 <= resets[0]["t_ms"] - t_hang <= 1005  # 1 s after the last feed (a tick)
    en = res["channels"]["1"]["enabled"]
    assert level_at(en, resets[0]["t_ms"] + 1) is False


# ---- on the emulated RP2040: the real MicroPython and its real watchdog -----------------------
def _chip_version():
    from host_tools.emuchip import image

    v = image.available_versions()
    return v[-1] if v else None


@pytest.mark.skipif(_chip_version() is None, reason="no MicroPython image for the emulated chip")
def test_on_the_emulated_rp2040_a_serviced_unit_stays_up_with_its_real_watchdog():
    """The make-flash image on the real MicroPython (emulated RP2040, host_tools/emuchip): the
    raw-REPL entry make flash does (ctrl-C, no soft reset) stops the app; 1.5 s later the real
    watchdog has not reset the chip, the enable never rose and the panel says SERVICE MODE. Then
    ctrl-D: main.py starts the app again and takes the watchdog over, no reset for 2.5 s.
    (Firmware from before the service path: the watchdog resets the chip 1 s after ctrl-C.)"""
    from host_tools.emuchip.board import attach
    from host_tools.emuchip.chip import boot

    chip = boot(_chip_version())
    try:
        b = attach(chip)
        for _ in range(25):  # up to 2.5 s: the list shows about 2.4 s after power-on
            chip.run(ms=100)
            if ocr(b.oled.pixels())[:1] == ["Programs"]:
                break
        assert ocr(b.oled.pixels())[0] == "Programs"
        c0 = chip.cycles
        service = chip.exec("import sys; print(sys.modules['startup'].SERVICE_MODE)").strip()
        chip.run(ms=1500)  # the app's watchdog would have fired 1 s after its last feed
        assert b.resets == []
        assert service == "True"
        assert [lv for c, lv in b.world.gpio.edges[9] if c >= c0 and lv] == []
        screen = ocr(b.oled.pixels())
        assert screen[0] == "SERVICE MODE" and "OUTPUT OFF" in screen
        chip._raw = False  # leave the raw REPL (ctrl-B), then soft-reset from the friendly one
        chip._send(b"\x02", 30)
        chip.run(ms=50)
        chip._send(b"\x04", 30)
        chip.run(ms=2500)
        assert b.resets == []
        assert ocr(b.oled.pixels())[0] == "Programs"
    finally:
        chip.close()


@pytest.mark.skipif(_chip_version() is None, reason="no MicroPython image for the emulated chip")
def test_make_logs_on_the_emulated_pico_running_the_app(tmp_path):
    """make logs through the emulated Pico's serial port (host_tools/chip_device.py: the real
    MicroPython answers the REPL, the real watchdog runs) while the app runs: the logs come, the
    only reset is the tool's own at the end (the app runs again), none by the watchdog."""
    import json
    import subprocess
    import sys

    devdir = tmp_path / "chip"
    proc = subprocess.Popen([sys.executable, "-m", "host_tools.chip_device", "--dir", str(devdir),
                             "--preload", "--fresh", "--version", _chip_version()], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = proc.stdout.readline().split()[-1]

        def state(want, timeout):
            end = time.monotonic() + timeout
            last = None
            while time.monotonic() < end:
                try:
                    last = json.loads((devdir / "state" / "world.json").read_text())
                    if want(last):
                        return last
                except (OSError, ValueError):
                    pass
                time.sleep(0.2)
            raise AssertionError("chip device state not reached; last: %r" % (last,))

        state(lambda s: s["screen_text"][:1] == ["Programs"], 240)
        out = tmp_path / "logs"
        assert in_time(240, flash.main, ["logs", "--port", port, "--out", str(out)]) == 0
        s = state(lambda s: s["boots"] == 2 and s["screen_text"][:1] == ["Programs"], 240)
        assert [r["reason"] for r in s["resets"]] == ["soft"]  # machine.reset(), not the watchdog
        assert s["pins"]["enable"] == 0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.stdout.close()
