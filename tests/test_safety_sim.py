"""SafetySupervisor + Session driving the real lib/output_stage.py and pulse engine on the
simulated Pico: DAC duty, current-sense ADC, VBUS pin and VSYS ADC are the simulated ones."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import pytest

from host_tools.sim import install
from tests import device_path  # noqa: F401

import programs
import safety
import session

TICK_CYCLES_PER_MS = 125_000


@pytest.fixture()
def unit():
    w, board = install.board_world("pico")
    stage = install.load("output_stage").OutputStage(board)
    w.adc_source[board.VSYS_ADC] = lambda cyc: 4.0 / board.VSYS_DIVIDER       # 4.0 V battery
    load = {1: True, 2: True}

    def sense(ch):       # a connected load carries what the DAC commands; none when off
        return lambda cyc: (stage.amplitude_ma(ch) / board.SENSE_MA_PER_VOLT) if load[ch] else 0
    for ch in (1, 2):
        w.adc_source[board.CHANNELS[ch]["sense_adc"]] = sense(ch)
    sup = safety.SafetySupervisor(stage, board, {"cap_ma": [60, 60]})
    return w, board, stage, sup, load


def run(w, s, sup, t, ms, press_to=None):
    faults = []
    for _ in range(ms // 10):
        t += 10
        if press_to and t % 100 == 0:
            sup.set_user_level(1, min(press_to, sup.user_level(1) + 1), t)
        out = s.tick(t)
        sup.apply(out, t)
        faults += sup.tick(t)
        w.advance_to(w.now + 10 * TICK_CYCLES_PER_MS)
    return t, faults


def test_sim_session_drives_dac_and_stop_turns_everything_off(unit):
    w, board, stage, sup, load = unit
    s = session.Session(programs.preset("strength"))
    s.start(0)
    assert sup.start(s.tick(0).pulse, 0) is None
    assert w.gpio.level(board.OUTPUT_ENABLE) == 1 and w.gpio.level(board.OUTPUT_LED) == 1
    t, faults = run(w, s, sup, 0, 5000, press_to=20)
    assert faults == [] and sup.user_level(1) == 20
    # warm-up: half the level
    assert stage.amplitude_ma(1) == pytest.approx(10, abs=0.05)
    sup.stop()
    assert stage.amplitude_ma(1) == 0 and stage.amplitude_ma(2) == 0
    assert w.gpio.level(board.OUTPUT_ENABLE) == 0 and w.gpio.level(board.OUTPUT_LED) == 0


def test_sim_rule5_open_circuit_from_the_sense_adc(unit):
    w, board, stage, sup, load = unit
    s = session.Session(programs.preset("tens_conv"))
    s.start(0)
    sup.start(s.tick(0).pulse, 0)
    t, faults = run(w, s, sup, 0, 3000, press_to=15)
    assert faults == []
    load[1] = False
    t, faults = run(w, s, sup, t, 200)
    assert [(f.kind, f.channel) for f in faults] == [("open_circuit", 1)]
    assert stage.amplitude_ma(1) == 0 and stage.enabled     # channel 2 may go on


def test_sim_rule7_vbus_pin_stops_output(unit):
    w, board, stage, sup, load = unit
    s = session.Session(programs.preset("tens_conv"))
    s.start(0)
    sup.start(s.tick(0).pulse, 0)
    t, faults = run(w, s, sup, 0, 500, press_to=5)
    w.gpio.drive_external(board.VBUS_SENSE, 1)
    t, faults = run(w, s, sup, t, 20)
    assert [f.kind for f in faults] == ["usb_power"]
    assert w.gpio.level(board.OUTPUT_ENABLE) == 0
