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
            # the scope: leg A above the axis, leg B below, never both at once
            sa, sx, sb = r["scope"]
            assert "▄" in sa and "▀" in sb and set(sx) == {"─"}, r["scope"]
            za, zx, zb = r["zoom"]
            ca = [i for i, c in enumerate(za) if c != " "]
            cb = [i for i, c in enumerate(zb) if c != " "]
            assert ca and cb and max(ca) < min(cb) and set(zx) == {"─"}, r["zoom"]
            # the amplitude beside the legs is what the DAC plays (pin level, and the firmware's
            # own read-back of its DAC)
            fw = firmware_app()
            assert abs(r["command_ma"] - fw.stage.amplitude_ma(1)) < 0.005
            assert abs(r["command_ma"] - eng.model.command_ma(1)) < 0.005
            sc = text(app, "#scope").split("\n")
            row_a = next(x for x in sc if x.startswith("ch1 A"))
            row_b = sc[sc.index(row_a) + 2]
            assert row_a.startswith("ch1 A %8s |%s|" % ("+%.1fmA" % r["command_ma"], sa)), row_a
            assert row_b.startswith("    B %8s |%s|" % ("-%.1fmA" % r["command_ma"], sb)), row_b
            assert r["command_ma"] > 5
            w = eng.world
            leg = eng.board.CHANNELS[1]["leg_a"]
            assert any(lv for c, lv in w.gpio.edges[leg])
            ro = text(app, "#readouts")
            assert "ch1 DAC" in ro and "session" in ro, ro

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
            s = await key(pilot, eng, "down", 40)
            assert s.holds == ("down",)
            assert eng.world.gpio.level_at(board.BUTTONS["down"], eng.world.now) == 0
            s = await key(pilot, eng, "down", 20)  # pressed again: released
            assert s.holds == ()
            assert eng.world.gpio.level_at(board.BUTTONS["down"], eng.world.now) == 1
            lv = simulator.battery_levels(board)
            s = await key(pilot, eng, "b", 20)
            assert s.physical["battery_mv"] == lv["warning"]
            s = await key(pilot, eng, "b", 20)
            assert s.physical["battery_mv"] == lv["full"]
            s = await key(pilot, eng, "B", 20)
            assert s.physical["battery_mv"] == lv["cutoff"]
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
            s = await key(pilot, eng, "shift+up", 40)
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


def start_tens(eng):
    """Coroutine factory: power-on, TENS (continuous 100 Hz) started, on the run screen."""
    async def go(pilot):
        await advance(pilot, eng, 2000)
        for _ in range(TENS_CONV):
            await key(pilot, eng, "down", 200)
        for gap in (500, 500, 600):
            await key(pilot, eng, "enter", gap)
        return await until(pilot, eng, lambda s: s.screen == "run", 1000)
    return go


def firmware_app():
    import sys

    return sys.modules["app"].current


def run_sim(tmp_path, body, size=(140, 60)):
    eng = simulator.SimEngine(speed="paused", flash_dir=str(tmp_path / "flash"))
    app = simulator.make_app(eng, out_dir=str(tmp_path / "png"))

    async def main():
        async with app.run_test(size=size) as pilot:
            await body(pilot, eng, app)
            await pilot.press("q")

    try:
        asyncio.run(main())
    finally:
        eng.stop()
    return eng


def test_press_timing_from_the_firmware():
    """The press and release a key event becomes are long enough for lib/buttons.py's debounce
    at the app's sampling interval with the board model's contact bounce, shorter than a long
    press, and UP/DOWN presses are spaced by the firmware's step interval."""
    t = simulator.press_timing()
    need = t["bounce"] + t["debounce_ms"] + 2 * t["sample"]
    assert t["down"] >= need and t["up"] >= need
    assert t["down"] < min(t["long_ms"], t["repeat_delay_ms"])
    assert t["step"] >= t["_MIN_STEP_MS"]
    assert t["sample"] * 2 == t["TICK_MS"]


def test_five_up_key_events_50ms_apart_give_five_steps(tmp_path):
    """Five UP key events 50 ms apart (device time) raise channel 1 by exactly 5 steps.

    Why 5 and not fewer: the firmware (lib/buttons.py) steps at most once per 100 ms (docs/safety.md
    rule 3, <= 10 steps/s); a press that comes too soon is held back until the interval has
    passed, and a second too-soon press while one is held back is dropped. Five real presses
    50 ms apart would therefore give 4 steps. The terminal reports key presses but not
    releases, so the simulator cannot know how long the person pressed: it makes each key
    event one whole press, queued, each press of UP starting no sooner than the firmware's step
    interval after the previous one. Each one then becomes a step (the firmware holds none
    back and drops none), and the steps still come at most 10 per second: the rule is kept and
    nothing the person typed is lost. The key events are 200 ms apart in total; the steps play
    out over 400 ms."""
    seen = {}

    async def body(pilot, eng, app):
        s = await start_tens(eng)(pilot)
        fw = firmware_app()
        level0 = fw.sup.user_level(1)
        presses0 = len(eng.model.presses)
        lim0, drop0 = fw.buttons.rate_limited, fw.buttons.dropped
        t0 = s.t_ms
        rises = []  # (device ms, rise) of each change of the level, as the supervisor keeps it
        orig = fw.sup.set_user_level

        def watch(ch, ma, now_ms):
            before = fw.sup.user_level(ch)
            got = orig(ch, ma, now_ms)
            if ch == 1 and got != before:
                rises.append((now_ms, got - before))
            return got

        fw.sup.set_user_level = watch
        for _ in range(5):
            await pilot.press("up")
            await advance(pilot, eng, 50)
        queued_mid = eng.snapshot().queued
        await advance(pilot, eng, 800)
        fw.sup.set_user_level = orig
        s = eng.snapshot()
        seen.update(level0=level0, level=fw.sup.user_level(1), rises=rises, t0=t0,
                    presses=eng.model.presses[presses0:], world=eng.world,
                    limited=fw.buttons.rate_limited - lim0, dropped=fw.buttons.dropped - drop0,
                    queued=s.queued, screen=s.screen, lines=s.lines, queued_mid=queued_mid)

    run_sim(tmp_path, body)
    assert seen["screen"] == "run"
    assert seen["level"] - seen["level0"] == 5, seen
    assert [d for _, d in seen["rises"]] == [1.0] * 5, seen["rises"]
    times = [t for t, _ in seen["rises"]]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g >= 100 for g in gaps), gaps  # rule 3: <= 10 steps per second
    assert times[-1] - seen["t0"] <= 600, times  # and no slower than the queue's pace
    assert seen["limited"] == 0 and seen["dropped"] == 0  # the firmware threw nothing away
    assert seen["queued"] == 0 and seen["queued_mid"] > 0  # the queue did the pacing
    # the pin: five presses of UP, each down and up long enough for the debounce
    w = seen["world"]
    pr = [(t0, t1) for name, t0, t1 in seen["presses"] if name == "up"]
    assert len(pr) == 5
    ms = 1000.0 / w.sys_hz  # per cycle
    t = simulator.press_timing()
    for (a0, a1), (b0, _) in zip(pr, pr[1:], strict=False):
        assert (a1 - a0) * ms >= t["debounce_ms"]
        assert (b0 - a1) * ms >= t["debounce_ms"]
        assert (b0 - a0) * ms >= t["_MIN_STEP_MS"] - 0.5


def test_stop_drops_queued_presses(tmp_path):
    """STOP acts at once, ahead of the queue, and no queued UP plays after it."""
    seen = {}

    async def body(pilot, eng, app):
        await start_tens(eng)(pilot)
        fw = firmware_app()
        for _ in range(6):
            await pilot.press("up")
        await advance(pilot, eng, 5)
        q = eng.snapshot().queued
        level = fw.sup.user_level(1)
        await pilot.press("space")
        s = await advance(pilot, eng, 1000)
        seen.update(q=q, level=level, after=fw.sup.user_level(1), s=s)

    run_sim(tmp_path, body)
    s = seen["s"]
    assert seen["q"] >= 4, seen
    assert s.queued == 0 and not s.enabled and s.output != "running", (s.queued, s.output)
    assert seen["after"] <= seen["level"], seen


def test_battery_keys_warning_and_cutoff(tmp_path):
    """b: a level in the warning band (the screen warns, stimulation goes on); B: below the
    cut-off (the output goes off and the screen says why). Levels from the board config."""
    seen = {}

    async def body(pilot, eng, app):
        await start_tens(eng)(pilot)
        for _ in range(5):
            await key(pilot, eng, "up", 120)
        s = await advance(pilot, eng, 2500)
        assert s.enabled and s.output == "running"
        board = eng.board
        lv = simulator.battery_levels(board)
        assert board.BATTERY_CUTOFF_MV <= lv["warning"] < board.BATTERY_WARN_MV
        assert lv["cutoff"] < board.BATTERY_CUTOFF_MV

        s = await key(pilot, eng, "b", 20)
        assert s.physical["battery_mv"] == lv["warning"]
        assert "warning band" in text(app, "#readouts")
        s = await until(pilot, eng, lambda s: any("Battery low" in r
                                                  for r in scenario.ocr(s.pixels)), 2000)
        seen["warn_rows"] = scenario.ocr(s.pixels)
        seen["warn_faults"] = list(s.faults)
        s = await advance(pilot, eng, 200)
        seen["warn_enabled"] = (s.enabled, s.output, s.channels[1]["delivered_ma"])

        s = await key(pilot, eng, "B", 20)
        assert s.physical["battery_mv"] == lv["cutoff"]
        assert "below cut-off" in text(app, "#readouts")
        s = await until(pilot, eng, lambda s: not s.enabled, 1000)
        s = await advance(pilot, eng, 200)
        seen["cut"] = s
        seen["cut_rows"] = scenario.ocr(s.pixels)
        s = await key(pilot, eng, "B", 20)  # again: back to a full cell
        seen["full"] = s.physical["battery_mv"]

    run_sim(tmp_path, body)
    rows = seen["warn_rows"]
    assert any("Battery low soon" in r for r in rows), rows
    assert any("low_battery_warning" in f for f in seen["warn_faults"]), seen["warn_faults"]
    en, out, ma = seen["warn_enabled"]
    assert en and ma > 0, seen["warn_enabled"]  # a warning does not stop the output
    s = seen["cut"]
    assert not s.enabled and s.output != "running"
    assert s.channels[1]["delivered_ma"] == 0 and s.channels[1]["command_ma"] == 0
    assert any(f.startswith("low_battery ") or f.startswith("low_battery@") for f in s.faults), \
        s.faults
    rows = seen["cut_rows"]
    assert any("Battery low" in r and "soon" not in r for r in rows), rows
    from host_tools.sim import board_pico

    assert seen["full"] == board_pico.DEFAULT_BATTERY_MV


def test_scope_rows_biphasic_pulse():
    """A biphasic pulse (leg A 300 us, 50 us gap, leg B 300 us) at 50 Hz over 50 ms: leg A marks
    the row above the axis, leg B the row below, with different glyphs; the axis marks nothing
    (the legs were never high together) even where both phases fall in one column. Legs high at
    the same instant mark the axis with '!'."""
    us = 125  # cycles per microsecond at 125 MHz
    ea, eb = [], []
    for k in range(3):
        t = 1000 * us + k * 20000 * us
        ea += [(t, 1), (t + 300 * us, 0)]
        eb += [(t + 350 * us, 1), (t + 650 * us, 0)]
    a, axis, b = simulator.scope_rows(ea, eb, 0, 50000 * us, 50)
    assert len(a) == len(axis) == len(b) == 50
    assert set(a) == {" ", "▄"} and set(b) == {" ", "▀"} and set(axis) == {"─"}
    assert [i for i, c in enumerate(a) if c != " "] == [1, 21, 41]
    assert [i for i, c in enumerate(b) if c != " "] == [1, 21, 41]
    # zoomed to one pulse: A's columns come first, B's after, none in common
    a, axis, b = simulator.scope_rows(ea, eb, 900 * us, 1900 * us, 50)
    ca = [i for i, c in enumerate(a) if c != " "]
    cb = [i for i, c in enumerate(b) if c != " "]
    assert ca and cb and max(ca) < min(cb) and set(axis) == {"─"}, (a, b)
    # a short through the bridge: both legs high for 20 us
    eb2 = [(1280 * us, 1), (1500 * us, 0)]
    a, axis, b = simulator.scope_rows(ea, eb2, 900 * us, 1900 * us, 50)
    assert axis.count("!") == 1 and axis.index("!") == (1290 - 900) // 20, axis


def test_queue_is_bounded(tmp_path):
    """A key held down in the terminal repeats ~30 times a second; queued at 10 steps a second
    those would go on rising long after the key was let go. At most MAX_QUEUED presses wait: 15
    UP events at one instant give 1 + MAX_QUEUED steps (one starts at once), the rest are
    refused, counted and shown."""
    seen = {}

    async def body(pilot, eng, app):
        await start_tens(eng)(pilot)
        fw = firmware_app()
        level0 = fw.sup.user_level(1)
        for _ in range(15):
            await pilot.press("up")
        s = await advance(pilot, eng, 2500)
        seen.update(rise=fw.sup.user_level(1) - level0, refused=s.refused, queued=s.queued,
                    ro=text(app, "#readouts"))

    run_sim(tmp_path, body)
    n = simulator.MAX_QUEUED
    assert seen["rise"] == n + 1 and seen["refused"] == 15 - n - 1, seen
    assert seen["queued"] == 0
    assert "(%d refused: %d at most)" % (15 - n - 1, n) in seen["ro"], seen["ro"]


def test_e_key_makes_the_muscle_contract_and_the_status_shows_its_envelope(tmp_path):
    """e: the simulated muscle under the EMG electrodes makes a 1.5 s effort (issue 10: a key for
    "try to contract"); the readouts show its envelope rising to EFFORT_UV and back to rest."""
    seen = {}

    async def body(pilot, eng, app):
        s = await advance(pilot, eng, 1500)
        seen["rest"] = s.physical["emg_uv"]
        s = await key(pilot, eng, "e", 20)
        s = await advance(pilot, eng, 500)
        seen["effort"] = s.physical["emg_uv"]
        seen["text"] = text(app, "#readouts")
        s = await advance(pilot, eng, 2000)
        seen["after"] = s.physical["emg_uv"]

    run_sim(tmp_path, body)
    rest = seen["rest"]
    assert rest is not None and rest < 10
    assert seen["effort"] == rest + simulator.EFFORT_UV
    assert "EMG envelope %d uV" % seen["effort"] in seen["text"]
    assert seen["after"] == rest
