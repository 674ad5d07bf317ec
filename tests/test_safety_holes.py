"""Issue 9: the safety holes found by adversarial use, each as a whole-firmware scenario on both
boards (firmware/main.py on the simulated Pico with its PIO engine, and on the simulated ESP32 with
its RMT engine). Every test here failed on the firmware before the fix (commit 6279144); the
assertions read what a user would notice: the enable pin, the DAC record, the pulse edges, the
text on the OLED and the flash."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import json

import pytest

from host_tools import scenario_core
from tests import scenario_harness
from tests.scenario_harness import (
    TENS_CONV,
    Steps,
    amplitude,
    enabled,
    events,
    level_at,
    run,
    screen_at,
    screen_text_between,
    spec,
)

from tests import device_path  # noqa: E402, F401  (firmware/ on sys.path)
import programs  # noqa: E402

N_PRESETS = len(programs.PRESETS)  # custom programs and Settings come after the presets

FULL = {"settings.json": json.dumps({"first_sessions_half": False})}
TENS_ACU = 10  # preset index: 2 Hz continuous, 200 us, 2 s ramp
QUAD_ACL = 0  # preset index: 40 Hz, 60 s warm-up at 5 Hz
CUSTOM = N_PRESETS  # the first custom program, after the presets


@pytest.fixture(autouse=True, params=["pico", "esp32"])
def board(request):
    scenario_harness.CURRENT_BOARD[0] = request.param
    yield request.param
    scenario_harness.CURRENT_BOARD[0] = "pico"


def _custom(**kw):
    p = {"key": "c1", "name": "Custom test", "rate_hz": 50, "phase_us": 250, "on_s": 10,
         "off_s": 0, "ramp_up_s": 2, "ramp_down_s": 2, "session_min": 20, "mode": "sync"}
    p.update(kw)
    return p


def _files(settings=None, progs=None):
    f = {"settings.json": json.dumps(settings if settings is not None
                                     else {"first_sessions_half": False})}
    if progs is not None:
        f["programs.json"] = json.dumps(progs)
    return f


def _never_on_after(r, t_ms):
    en = enabled(r)
    return level_at(en, t_ms) is False and all(not on for t, on in en if t >= t_ms)


def _ms(run_obj, cycle):
    return cycle * 1000 // run_obj.trace.boots[0][2].sys_hz


def _pulse_starts_ms(run_obj, ch):
    """Start (ms) of every pulse on a channel: rising edges of leg A or leg B."""
    b = run_obj.trace.board
    out = []
    for leg in ("leg_a", "leg_b"):
        for c, lv in scenario_core.merged_edges(run_obj.trace, b.CHANNELS[ch][leg]):
            if lv:
                out.append(_ms(run_obj, c))
    return sorted(out)


def _zero_after(record, t_ms):
    for t, ma in record:
        if t >= t_ms and ma == 0.0:
            return t
    return None


# --- 1. a held STOP keeps the output off ----------------------------------------------------------

def test_stop_held_from_power_on_blocks_any_start():
    s = Steps(0).add(press="stop", hold_ms=12000, gap_ms=1800)  # down before the chip boots
    s.start_program(TENS_CONV).raise_level(8).wait(2500)
    _, r = run(spec(s, s.t, FULL))
    assert all(on is False for _, on in enabled(r))
    assert all(ma == 0.0 for _, ma in amplitude(r, 1))
    assert "STOP is down" in screen_text_between(r, 0, s.t)


def test_stop_held_while_restarting_keeps_the_output_off():
    s = Steps().start_program(TENS_CONV).raise_level(6).wait(2500)
    t_stop = s.t
    s.add(press="stop", hold_ms=9000, gap_ms=1200)  # pressed, then held down
    s.press("ok", gap_ms=800)  # dismiss "Stopped"
    s.start_program(0).raise_level(6).wait(2500)  # the same program again, STOP still down
    _, r = run(spec(s, s.t, FULL))
    assert level_at(enabled(r), t_stop - 10) is True  # it was running
    assert _never_on_after(r, t_stop + 1)
    assert all(ma == 0.0 for t, ma in amplitude(r, 1) if t > t_stop + 1)
    assert "STOP is down" in screen_text_between(r, t_stop, s.t)


# --- 9. STOP as a hard IRQ; a STOP in the middle of start() wins ----------------------------------

def test_stop_irq_inside_start_before_enable_keeps_the_output_off(monkeypatch):
    """The STOP edge lands inside SafetySupervisor.start, while the pulses are being configured
    (before the output is enabled): start() must not enable the output afterwards."""
    import sys

    hit = []
    orig_schedule = scenario_core.Run._schedule_steps

    def schedule(self, w):
        orig_schedule(self, w)
        runner = self

        def arm():
            sup_cls = sys.modules["safety"].SafetySupervisor
            orig_configure = sup_cls._configure

            def configure(sup, *args):
                if not hit:
                    hit.append(runner.world.ms())
                    runner.model.press("stop", 100)  # the STOP edge: its IRQ runs right here
                return orig_configure(sup, *args)

            monkeypatch.setattr(sup_cls, "_configure", configure)

        if not hit:
            w.schedule(w.cycle_at_ns(1_000_000_000), arm)

    monkeypatch.setattr(scenario_core.Run, "_schedule_steps", schedule)
    s = Steps().start_program(TENS_CONV).wait(1500)
    _, r = run(spec(s, s.t, FULL))
    assert hit, "start() never configured the pulses"
    en = enabled(r)
    assert all(on is False for _, on in en)  # not even for a moment
    assert [e for e in events(r, "fault")] and events(r, "fault")[0]["fault"] == "stop_held"


def test_stop_irq_is_armed_as_a_hard_irq_where_the_port_has_them(monkeypatch, board):
    from host_tools.sim import machine as sim_machine

    calls = []
    orig = sim_machine.Pin.irq

    def irq(self, handler=None, trigger=3, hard=False):
        calls.append((self.id, hard))
        return orig(self, handler, trigger, hard)

    monkeypatch.setattr(sim_machine.Pin, "irq", irq)
    run_obj, r = run(spec(Steps().wait(10), 600, FULL))
    stop_pin = run_obj.trace.board.BUTTONS["stop"]
    hard = [h for pin, h in calls if pin == stop_pin]
    assert hard == [board == "pico"]  # rp2: hard IRQ; esp32: the port has only scheduled ones


# --- 2. electrode detection at every non-zero level, never a resume ------------------------------

@pytest.mark.parametrize("level", [19, 1])
def test_open_electrode_detected_at_low_current_and_never_resumes(level):
    # first session at half (settings default) in the warm-up (x 0.5 at 5 Hz): level 19 gives
    # 4.75 mA, level 1 gives 0.25 mA
    files = {"settings.json": json.dumps({"first_sessions_half": True})}
    s = Steps().start_program(QUAD_ACL).raise_level(level).wait(3000)
    t_off = s.t
    s.add(electrode={"channel": 1, "connected": False}, gap_ms=4000)
    s.add(electrode={"channel": 1, "connected": True}, gap_ms=1000)
    t_ok = s.t
    s.press("ok", gap_ms=2000)  # dismiss the alert: the run screen
    t_screen = s.t
    s.press("up", gap_ms=1500)  # an explicit press restarts channel 1, from 0 mA
    t_rearm = s.t
    s.raise_level(2).wait(1000)
    _, r = run(spec(s, s.t, files))
    a = amplitude(r, 1)
    on_ma = level_at(a, t_off - 1)
    assert 0 < on_ma <= level * 0.25 + 0.01
    faults = events(r, "fault")
    assert [f["fault"] for f in faults] == ["open_circuit"] and faults[0]["channel"] == 1
    t_zero = _zero_after(a, t_off)
    assert t_zero is not None and t_zero - t_off <= 200 + 50  # 5 Hz: one period + 50 ms
    # electrode back: no current returns by itself, only after the UP that restarts the channel
    assert all(ma == 0.0 for t, ma in a if t_zero <= t < t_rearm)
    assert "Electrode off" in "\n".join(screen_at(r, t_ok - 10))  # the alert stays
    run_screen = "\n".join(screen_at(r, t_screen - 10))
    assert "1 no electrode" in run_screen and "up: restart ch1" in run_screen
    assert "no electrode" not in "\n".join(screen_at(r, t_rearm))
    assert 0 < level_at(a, s.t - 10) <= 2 * 0.25 + 0.01  # the two presses after the restart


# --- 3. electrode off at low rates: the first pulse that finds no current -------------------------

@pytest.mark.parametrize("rate", [2, 4])
def test_electrode_off_stops_at_the_first_pulse_without_current(rate):
    progs = None
    idx = TENS_ACU
    if rate != 2:
        progs = [_custom(rate_hz=rate, phase_us=200)]
        idx = CUSTOM
    period = 1000 // rate
    worst = []
    for shift in (0, period // 4):
        s = Steps().start_program(idx).raise_level(10)
        s.press("ok", gap_ms=200).raise_level(10).wait(2500)  # channel 2 too
        t1 = s.t + shift
        t2 = t1 + period // 2
        s.at(t1).add(electrode={"channel": 1, "connected": False})
        s.at(t2).add(electrode={"channel": 2, "connected": False}, gap_ms=period + 500)
        run_obj, r = run(spec(s, s.t, _files(progs=progs)))
        assert sorted(f["channel"] for f in events(r, "fault")) == [1, 2]
        for ch, t_off in ((1, t1), (2, t2)):
            t_zero = _zero_after(amplitude(r, ch), t_off)
            first_dead = [p for p in _pulse_starts_ms(run_obj, ch) if p > t_off][0]
            assert first_dead <= t_zero <= first_dead + 50, (ch, t_off, first_dead, t_zero)
            assert t_zero - t_off <= period + 50
            worst.append(t_zero - t_off)
    if rate >= 4:
        assert max(worst) <= 500


# --- 4. one owner of the pulse limits: refused where loaded or edited, never at start ------------

@pytest.mark.parametrize("gap", [0, 1])
def test_program_the_engine_cannot_play_is_refused_at_load_with_a_notice(gap, board):
    # the board's shortest inter-phase gap: the Pico's dead time (1 us); the ESP32 adds the
    # tolerance of its two RMT channels' start skew (2 us)
    refused = gap < (1 if board == "pico" else 2)
    progs = [_custom(name="Gap test", gap_us=gap)]
    s = Steps(2800)
    if refused:
        s.press("back", gap_ms=600)  # dismiss the notice (BACK does nothing on the list)
    s.start_program(CUSTOM).raise_level(3).wait(2500)  # where the program is (or would be)
    run_obj, r = run(spec(s, s.t, _files(progs=progs)))
    text = screen_text_between(r, 0, s.t)
    assert "ERROR" not in text
    flash = run_obj.flash.read_all()
    assert "crash.log" not in flash and "/crash.log" not in flash
    if refused:
        notice = "\n".join(screen_at(r, 2700))
        assert "File problem" in notice and "programs.json" in notice
        assert "Gap test" not in text
        assert all(on is False for _, on in enabled(r))
    else:
        assert "File problem" not in text and "Gap test" in text
        assert level_at(enabled(r), s.t - 10) is True  # it plays
        assert r["channels"]["1"]["pulses"]["violations"] == []


def test_the_validator_editor_and_loader_ask_the_board_engine(board):
    """Program.validate() (the editor's check and the loader's) asks the pulse engine of the
    board the app built: the same program is refused or accepted as the engine would play it."""
    from host_tools.sim import install

    w, b = install.board_world(board)
    stage = install.load("output_stage", w=w).OutputStage(b)
    progs = install.load("programs", w=w)
    settings = install.load("settings", w=w)
    progs.set_pulse_check(stage.check_pulse)
    p = progs.Program.from_dict(_custom(gap_us=2))
    p.gap_us = 0
    with pytest.raises(ValueError, match="dead time"):
        p.validate()  # what the editor calls after every step
    with pytest.raises(ValueError, match="dead time"):
        settings.Store("/nonexistent").save_program(p)
    for pre in progs.PRESETS:
        pre.validate(preset=True)  # every preset plays on both boards


# --- 5. bad files: a notice on the screen at boot until dismissed ---------------------------------

def test_corrupt_settings_file_shows_a_notice_until_dismissed():
    files = {"settings.json": "{\"contrast\": 300, garbage"}
    s = Steps().wait(8000)
    t_ok = s.t
    s.press("ok", gap_ms=1000)
    _, r = run(spec(s, s.t, files))
    for t in (2500, 5000, t_ok - 10):
        text = "\n".join(screen_at(r, t))
        assert "File problem" in text and "settings.json" in text and "ok: dismiss" in text
    assert "Programs" in "\n".join(screen_at(r, s.t - 10))
    assert all(on is False for _, on in enabled(r))


# --- 6. every setting from the file to the output -------------------------------------------------

def test_charge_cap_setting_limits_the_dac():
    files = _files({"first_sessions_half": False, "charge_cap_uc": 10},
                   [_custom(rate_hz=20, phase_us=1000)])
    s = Steps().start_program(CUSTOM).raise_level(15).wait(2500)
    _, r = run(spec(s, s.t, files))
    top = max(ma for _, ma in amplitude(r, 1))
    assert 9.0 < top <= 10.0  # 10 uC / 1000 us = 10 mA, not the 15 mA level (15 uC)


def test_half_sessions_setting_counts_the_first_sessions_at_half():
    hist = [{"n": 1, "program": "quad_acl", "minutes": 12, "max_ma": [10, 0], "faults": []}]
    for half, want in ((1, 6.0), (2, 3.0)):
        files = {"settings.json": json.dumps({"first_sessions_half": True,
                                              "half_sessions": half}),
                 "history.json": json.dumps(hist)}
        s = Steps().start_program(TENS_CONV).raise_level(6).wait(2500)
        _, r = run(spec(s, s.t, files))
        assert level_at(amplitude(r, 1), s.t - 10) == pytest.approx(want, abs=0.07)


def test_display_and_lock_settings_reach_the_unit():
    files = {"settings.json": json.dumps({"contrast": 32, "keypad_lock": True})}
    s = Steps().start_program(TENS_CONV).raise_level(4).wait(1000)
    run_obj, r = run(spec(s, s.t, files))
    assert run_obj.oled.contrast == 32
    assert "[L]" in "\n".join(screen_at(r, 2500))
    assert all(on is False for _, on in enabled(r))  # locked: the presses start nothing


def test_clinician_lock_keeps_the_caps():
    files = {"settings.json": json.dumps({"first_sessions_half": False, "clinician_lock": True,
                                          "cap_ma": [8, 100]})}
    s = Steps()
    for _ in range(CUSTOM):
        s.press("down", gap_ms=200)  # Settings, after the presets
    s.press("ok", gap_ms=400)
    for _ in range(4):
        s.press("down", gap_ms=200)  # Cap ch1
    s.press("ok", gap_ms=400).press("ok", gap_ms=400)  # would step it down twice
    s.press("back", gap_ms=600)
    t_list = s.t
    for _ in range(15 - TENS_CONV):
        s.press("up", gap_ms=200)
    s.press("ok", gap_ms=500).press("ok", gap_ms=500).press("ok", gap_ms=600)
    s.raise_level(12).wait(2500)
    _, r = run(spec(s, s.t, files))
    assert "Cap ch1 8mA" in screen_text_between(r, 0, t_list)
    assert max(ma for _, ma in amplitude(r, 1)) == pytest.approx(8.0, abs=0.07)


# --- 7. caps hold after the DAC's quantisation ----------------------------------------------------

def test_caps_hold_after_dac_quantisation():
    files = _files({"first_sessions_half": False, "cap_ma": [30, 100]})
    s = Steps().start_program(TENS_CONV).raise_level(32, gap_ms=110).wait(2500)
    s.press("ok", gap_ms=200).press("up", hold_ms=10500, gap_ms=12000)  # ch2 to the board max
    _, r = run(spec(s, s.t, files))
    top1 = max(ma for _, ma in amplitude(r, 1))
    top2 = max(ma for _, ma in amplitude(r, 2))
    assert 29.9 < top1 <= 30.0
    assert 99.9 < top2 <= 100.0


# --- 8. a reset the firmware cannot catch ---------------------------------------------------------

def test_a_1010_ms_stall_resets_the_unit_with_the_output_off():
    s = Steps().start_program(TENS_CONV).raise_level(8).wait(2500)
    t_stall = s.t
    s.add(stall_ms=1010, gap_ms=3000)
    run_obj, r = run(spec(s, s.t, FULL))
    resets = events(r, "reset")
    assert resets and resets[0]["reason"] == "watchdog"
    assert resets[0]["t_ms"] - t_stall <= 1010
    t_reset = resets[0]["t_ms"]
    assert level_at(enabled(r), t_reset + 1) is False and _never_on_after(r, t_reset + 1)
    assert level_at(amplitude(r, 1), t_reset + 1) == 0.0
    assert [b["reason"] for b in events(r, "boot")] == ["power_on", "watchdog"]
    assert "ERROR" not in screen_text_between(r, t_stall, s.t)
    flash = run_obj.flash.read_all()
    assert "crash.log" not in flash and "/crash.log" not in flash


# --- 8 (static half). Every firmware handler is `except Exception` or narrower ------------------

def test_no_device_code_catches_a_reset(board):
    """A chip reset (the simulation's SimReset, a BaseException) must reach the simulator: no
    device module may have a bare `except:` or catch BaseException."""
    import os
    import re

    from host_tools.sim import world

    assert not issubclass(world.SimReset, Exception)
    root = os.path.join(os.path.dirname(__file__), "..")
    bad = []
    for folder in ("firmware", "lib", "board_config"):
        for name in sorted(os.listdir(os.path.join(root, folder))):
            if not name.endswith(".py"):
                continue
            with open(os.path.join(root, folder, name)) as f:
                for i, line in enumerate(f, 1):
                    if re.search(r"except\s*:|except\s*\(?[^)]*BaseException", line):
                        bad.append("%s/%s:%d" % (folder, name, i))
    assert bad == []


# --- 4 (mid-session). A program that validates plays its whole session: Russian current's 5 Hz
# warm-up (single pulses) -> 2500 Hz bursts is a change of burst shape the engines cannot take
# while running: the supervisor stops that channel's pulses at the envelope's zero and starts them
# again with the new shape (before: PulseParamError, the ERROR screen).

def test_warmup_to_bursts_switch_plays_on():
    s = Steps().start_program(13).raise_level(5).wait(64000)  # 60 s warm-up, then work
    _, r = run(spec(s, s.t, FULL))
    assert events(r, "fault") == []
    assert "ERROR" not in screen_text_between(r, 0, s.t)
    states = [e["state"] for e in events(r, "session")]
    assert states[:4] == ["none", "warmup", "ramp_up", "on"]
    assert level_at(amplitude(r, 1), s.t - 10) == pytest.approx(5.0, abs=0.07)
    p = r["channels"]["1"]["pulses"]
    assert p["violations"] == [] and p["pulse_count"] > 5000  # 25-pulse bursts at 50 Hz


def test_charge_and_rms_caps_hold_for_the_quantised_pulse(board):
    """The engine rounds phase and period to its clock (the ESP32's coarse ticks at low rates):
    the caps are computed for what it plays, so charge and rms stay under them."""
    import math

    from host_tools.sim import board_pico, install

    w, b = install.board_world(board)
    board_pico.PicoBoardModel(w, b)  # battery and USB as on the bench
    safety = install.load("safety", w=w)
    stage_mod = install.load("output_stage", w=w)
    stage = stage_mod.OutputStage(b, install.load(b.PULSE_ENGINE, w=w))
    for phase, rate in ((1000, 0.5), (999, 0.7), (333, 3.3), (777, 190), (21, 200)):
        for charge_cap, rms_cap in ((50, 50), (7.5, 50), (100, 3.3)):
            sup = safety.SafetySupervisor(stage, b, {"charge_cap_uc": charge_cap,
                                                     "rms_ma": rms_cap})
            p = {"phase_us": phase, "gap_us": 50, "rate_hz": rate, "burst_count": 1,
                 "burst_rate_hz": None, "alternate": False}
            assert sup.start([None, p, dict(p)], 0) is None
            plan = stage.pulses(1).plan
            lim = sup.limit_ma(1)
            played_phase_us = plan.phase_ns / 1000
            assert lim * played_phase_us / 1000 <= charge_cap + 1e-9, (phase, rate, plan)
            rms = lim * math.sqrt(2 * played_phase_us * 1e-6 * plan.pulses_per_s)
            assert rms <= rms_cap + 1e-9, (phase, rate, plan)
            sup.stop()
