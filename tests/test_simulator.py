"""The interactive simulator (host_tools/simulator.py, `make sim`), driven headless through
Textual's test driver (App.run_test / Pilot).

The tests run the simulator paused and grant device time in explicit steps, so every press
lands at a known device time and the screens are deterministic.

Golden files: tests/golden/simulator_splash.txt (the half-block OLED text the widget shows for the
splash at device time 1000 ms) and tests/golden/simulator_splash.png (scenario.frame_image of the
same frame). Regenerate them with
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_simulator.py
and review the PNG by eye before committing.
"""
import asyncio
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("textual")

from host_tools import scenario, simulator  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
TENS_CONV = 9  # index in programs.PRESETS (tests/scenario_harness.py)


async def advance(pilot, eng, ms, timeout=30.0):
    """Let the paused device run ms more and wait until it is there; refresh the UI."""
    target = eng.snapshot().t_ms + ms
    eng.step(ms)
    end = time.monotonic() + timeout
    while eng.snapshot().t_ms < target:
        s = eng.snapshot()
        assert s.running, s.error
        assert time.monotonic() < end, "device stuck at %d ms (want %d)" % (s.t_ms, target)
        await pilot.pause(0.005)
    pilot.app.refresh_view()
    return eng.snapshot()


async def until(pilot, eng, pred, max_ms, step_ms=50):
    t0 = eng.snapshot().t_ms
    s = eng.snapshot()
    while not pred(s):
        assert s.t_ms - t0 <= max_ms, "not within %d ms: screen %s %r" % (
            max_ms, s.screen, scenario.ocr(s.pixels))
        s = await advance(pilot, eng, step_ms)
    return s


async def key(pilot, eng, name, then_ms):
    await pilot.press(name)
    return await advance(pilot, eng, then_ms)


def text(app, wid):
    return str(app.query_one(wid).content)


def test_operate_the_unit(tmp_path):
    eng = simulator.SimEngine(speed="paused", flash_dir=str(tmp_path / "flash"))
    app = simulator.make_app(eng, out_dir=str(tmp_path / "png"))

    async def body():
        async with app.run_test(size=(140, 60)) as pilot:
            # power-on: the splash, then the program list
            s = await advance(pilot, eng, 500)
            assert s.screen == "splash"
            assert "NMES" in " ".join(scenario.ocr(s.pixels)), scenario.ocr(s.pixels)
            s = await until(pilot, eng, lambda s: s.screen == "list", 3000)
            s = await advance(pilot, eng, 100)  # the frame is on the panel
            rows = scenario.ocr(s.pixels)
            assert rows[0] == "Programs" and rows[1].startswith(">"), rows
            assert "Programs" in text(app, "#oled") or "▀" in text(app, "#oled")

            # TENS (continuous 100 Hz, 2 s ramp, no warm-up): detail, pre-start check, start
            for _ in range(TENS_CONV):
                await key(pilot, eng, "down", 200)
            assert "TENS" in " ".join(scenario.ocr(eng.snapshot().pixels))
            for gap in (500, 500, 600):
                s = await key(pilot, eng, "enter", gap)
            s = await until(pilot, eng, lambda s: s.screen == "run", 1000)
            edges0 = s.channels[1]["edges"]
            for _ in range(12):  # channel 1 up 12 steps (1 mA each; first sessions at half)
                s = await key(pilot, eng, "up", 200)
            s = await advance(pilot, eng, 4000)  # past the ramp
            r = s.channels[1]
            assert s.screen == "run", scenario.ocr(s.pixels)
            assert s.enabled and s.output == "running", (s.enabled, s.output)
            assert r["level_ma"] >= 10 and r["command_ma"] >= 5.5, r
            assert 90 <= r["rate_hz"] <= 110, r
            assert r["phase_us"] and r["rate_hz"] and r["playing"], r
            assert r["edges"] > edges0 + 20  # pulses on the legs of channel 1
            assert r["scope"].count("_") < len(r["scope"]), r["scope"]  # pulses in the scope
            assert "▔" in r["zoom"] and "▁" in r["zoom"], r["zoom"]
            w = eng.world
            leg = eng.board.CHANNELS[1]["leg_a"]
            assert any(lv for c, lv in w.gpio.edges[leg])
            ro = text(app, "#readouts")
            assert "ch1 DAC" in ro and "session" in ro, ro
            assert "█" in text(app, "#scope") or "▀" in text(app, "#scope")

            # electrode off on channel 1: the alert, output off on that channel
            s = await key(pilot, eng, "1", 50)
            assert s.physical["connected"][1] is False
            s = await until(pilot, eng, lambda s: s.screen == "alert", 3000)
            s = await advance(pilot, eng, 100)
            assert any("Electrode off" in row for row in scenario.ocr(s.pixels)), \
                scenario.ocr(s.pixels)
            assert any("open_circuit" in f for f in s.faults), s.faults
            await key(pilot, eng, "1", 50)  # electrode back on

            # STOP: output disabled
            s = await key(pilot, eng, "space", 300)
            assert not s.enabled and s.output != "running", (s.enabled, s.output)
            assert s.channels[1]["delivered_ma"] == 0

            # save the screen as PNG: exactly scenario.frame_image of the snapshot
            await pilot.press("c")
            path = app.last_png
            assert path and os.path.exists(path)
            assert os.path.basename(path) == "screen_%d.png" % eng.snapshot().t_ms
            from PIL import Image

            got = Image.open(path).convert("RGB")
            want = scenario.frame_image(eng.snapshot().pixels)
            assert got.size == want.size and got.tobytes() == want.tobytes()

            # speed keys
            await pilot.press("r")
            assert eng.speed == "1x"
            await pilot.press("0")
            assert eng.speed == "10x"
            await pilot.press("f")
            assert eng.speed == "max"
            await pilot.press("p")
            assert eng.speed == "paused"

            await pilot.press("q")
        assert not eng.thread.is_alive()

    try:
        asyncio.run(body())
    finally:
        eng.stop()
    assert not eng.thread.is_alive()


def test_hold_and_faults_keys(tmp_path):
    """Holding, battery, USB and foot switch keys reach the board model."""
    eng = simulator.SimEngine(speed="paused", flash_dir=str(tmp_path / "flash"))
    app = simulator.make_app(eng, out_dir=str(tmp_path / "png"))

    async def body():
        async with app.run_test(size=(140, 60)) as pilot:
            await advance(pilot, eng, 2000)
            board = eng.board
            s = await key(pilot, eng, "h", 0)
            s = await key(pilot, eng, "down", 20)
            assert s.holds == ("down",)
            assert eng.world.gpio.level_at(board.BUTTONS["down"], eng.world.now) == 0
            s = await key(pilot, eng, "down", 20)  # pressed again: released
            assert s.holds == ()
            assert eng.world.gpio.level_at(board.BUTTONS["down"], eng.world.now) == 1
            s = await key(pilot, eng, "b", 20)
            assert s.physical["battery_mv"] == 3300
            s = await key(pilot, eng, "u", 20)
            assert s.physical["usb"] is True
            s = await key(pilot, eng, "t", 20)
            assert s.physical["trigger"] is True
            s = await advance(pilot, eng, 400)
            assert s.physical["trigger"] is False  # a foot switch press lasts 300 ms
            s = await key(pilot, eng, "T", 20)  # shift+t: foot switch held down
            assert s.physical["trigger"] is True
            s = await key(pilot, eng, "T", 20)
            assert s.physical["trigger"] is False
            s = await key(pilot, eng, "3", 20)
            assert s.physical["load_ohm"][1] == simulator.LOAD_HIGH_OHM
            s = await key(pilot, eng, "2", 20)
            assert s.physical["connected"][2] is False
            s = await key(pilot, eng, "shift+up", 20)
            assert s.holds == ("up",)
            s = await key(pilot, eng, "shift+up", 20)
            assert s.holds == ()
            t = s.t_ms
            await pilot.press("full_stop")  # one 10 ms step while paused
            for _ in range(500):
                s = eng.snapshot()
                if s.t_ms >= t + 10:
                    break
                await pilot.pause(0.01)
            assert s.t_ms == t + 10
            await pilot.press("ctrl+c")
        assert not eng.thread.is_alive()

    try:
        asyncio.run(body())
    finally:
        eng.stop()


def test_splash_matches_golden(tmp_path):
    """The OLED widget's half-block text (and the PNG of the same frame) for the splash at device
    time 1000 ms equal the committed golden files."""
    eng = simulator.SimEngine(speed="paused", flash_dir=str(tmp_path / "flash"))
    app = simulator.make_app(eng, out_dir=str(tmp_path / "png"))
    result = {}

    async def body():
        async with app.run_test(size=(140, 60)) as pilot:
            s = await advance(pilot, eng, 1000)
            assert s.t_ms == 1000 and s.screen == "splash"
            result["widget"] = text(app, "#oled")
            result["pixels"] = s.pixels
            await pilot.press("q")

    try:
        asyncio.run(body())
    finally:
        eng.stop()
    lines = simulator.halfblock_lines(result["pixels"])
    assert len(lines) == 32 and all(len(x) == 128 for x in lines)
    assert result["widget"] == "\n".join(lines)  # the widget shows exactly this text
    gtxt = GOLDEN / "simulator_splash.txt"
    gpng = GOLDEN / "simulator_splash.png"
    img = scenario.frame_image(result["pixels"])
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        gtxt.write_text("\n".join(lines) + "\n", encoding="utf-8")
        img.save(gpng)
    assert gtxt.exists(), "no golden file: run with UPDATE_GOLDEN=1 once and review it"
    assert gtxt.read_text(encoding="utf-8") == "\n".join(lines) + "\n"
    from PIL import Image

    want = Image.open(gpng).convert("RGB")
    assert want.size == img.size and want.tobytes() == img.tobytes()


def test_halfblock_lines_pixel_exact():
    px = [[0] * 128 for _ in range(64)]
    px[0][0] = 1  # top half only
    px[3][1] = 1  # bottom half of row 1
    px[4][2] = px[5][2] = 1  # both
    lines = simulator.halfblock_lines(px)
    assert lines[0][0] == "▀" and lines[1][1] == "▄" and lines[2][2] == "█"
    assert lines[0][1:].strip() == "" and len(lines) == 32
