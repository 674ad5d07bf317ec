"""A unit with no display on its I2C bus (issue 8): the app cannot start, so the unit says so on
the serial console (the display, its I2C address and pins), blinks a fault pattern on the output
LED (never steady: a steady LED means "output on"), keeps the output off, feeds no watchdog, and
restarts on OK. The whole firmware in the host simulation, on both boards."""
import pytest

from tests import sim_runs
from tests.scenario_harness import Steps, events, spec

BOARDS = ["pico", "esp32"]
EXPECTED = {
    "pico": "no display: the SSD1306 OLED at I2C address 0x3C on I2C0 (SDA GP0, SCL GP1) does "
            "not answer (OSError: [Errno 19] ENODEV).",
    "esp32": "no display: the SSD1306 OLED at I2C address 0x3C on I2C0 (SDA GPIO21, SCL GPIO22) "
             "does not answer (OSError: [Errno 19] ENODEV).",
}
PATTERN_MS = [100, 150, 100, 150, 100, 900]  # on, off, on, off, on, off: three flashes per 1.5 s


def lines(out):
    return [ln for ln in out.splitlines() if ln.startswith("no display:")]


def high(r, pin):
    return [t for t, lv in sim_runs.edges_ms(r, pin) if lv]


@pytest.mark.parametrize("board", BOARDS)
def test_no_display_console_line_fault_blink_output_off(board, capsys):
    r, res = sim_runs.run(spec(Steps(), 12_000, board=board), display=False)
    said = lines(capsys.readouterr().out)
    assert said[0].startswith(EXPECTED[board]), said
    assert said[0].endswith("The app cannot run without its screen; output is off. Check the "
                            "display's wiring and power, then press OK to restart.")
    assert len(said) == 2  # again after 10 s, for a terminal opened later
    b = r.board
    led = sim_runs.edges_ms(r, b.OUTPUT_LED)
    first = next(i for i, (_, lv) in enumerate(led) if lv)
    seg = [(lv, led[i + 1][0] - t) for i, (t, lv) in enumerate(led[first:-1], first)]
    assert len(seg) >= 6 * 7  # seven whole patterns in 12 s
    assert seg[:42] == [(1 - i % 2, PATTERN_MS[i % 6]) for i in range(42)]
    assert led[first][0] < 200  # from boot on
    # output off all along, no pulses, no DAC, no watchdog (nothing runs that could hang)
    assert high(r, b.OUTPUT_ENABLE) == []
    for ch in (1, 2):
        c = b.CHANNELS[ch]
        assert high(r, c["leg_a"]) == [] and high(r, c["leg_b"]) == []
        assert all(ma == 0 for _, ma in res["channels"][str(ch)]["amplitude_ma"])
    assert not events(res, "reset")
    assert [e for e in r.world.events if e["kind"] == "watchdog_reset"] == []
    # and the crash log says it too (make logs)
    log = r.flash.read_all().get("/crash.log", b"")
    assert b"ENODEV" in log, log


@pytest.mark.parametrize("board", BOARDS)
def test_no_display_ok_restarts_the_unit(board, capsys):
    st = Steps(t_ms=3000).press("ok", hold_ms=120)
    r, res = sim_runs.run(spec(st, 6000, board=board), display=False)
    resets = events(res, "reset")
    assert [e["reason"] for e in resets] == ["soft"]  # machine.reset() on OK
    assert 3000 <= resets[0]["t_ms"] <= 3000 + 60  # read every 50 ms
    assert len(lines(capsys.readouterr().out)) == 2  # and it says so again after the restart


@pytest.mark.parametrize("board", BOARDS)
def test_with_a_display_no_fault_line_and_the_led_stays_dark(board, capsys):
    """The control: the same boot with the display attached shows the program list."""
    r, res = sim_runs.run(spec(Steps(), 3000, board=board))
    assert lines(capsys.readouterr().out) == []
    assert high(r, r.board.OUTPUT_LED) == []
    assert any("Programs" in t for _, t in res["screens"])


@pytest.mark.parametrize("board", BOARDS)
def test_no_display_is_found_before_the_app_is_loaded(board, capsys):
    """startup.py asks the display for a NOP before it imports the app: without an answer the
    unit never loads the app (0.9 s of an RP2040's boot) or builds its output stage; the fault
    blinks from power-on (the first flash within 50 ms of the host's boot)."""
    import sys

    sys.modules.pop("app", None)
    r, res = sim_runs.run(spec(Steps(), 1000, board=board), display=False)
    assert "app" not in sys.modules and "output_stage" not in sys.modules
    led = sim_runs.edges_ms(r, r.board.OUTPUT_LED)
    assert [t for t, lv in led if lv][0] < 50, led
    assert lines(capsys.readouterr().out)
