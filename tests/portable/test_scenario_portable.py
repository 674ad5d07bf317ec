# One full firmware scenario on both interpreters: firmware/main.py boots on the simulated Pico,
# a program is started, channel 1 raised to 5 mA, STOP pressed. On the MicroPython unix port the
# flash is a real folder (the port's own file system); on CPython the LittleFS image.
import os
import sys

from host_tools import scenario_core

_MPY = sys.implementation.name == "micropython"


def _spec():
    steps = []
    t = 1700
    for _ in range(9):  # TENS conventional: continuous, 2 s ramp
        steps.append({"at_ms": t, "press": "down", "hold_ms": 60})
        t += 200
    for _ in range(3):
        steps.append({"at_ms": t, "press": "ok", "hold_ms": 60})
        t += 450
    t += 2500
    for _ in range(5):
        steps.append({"at_ms": t, "press": "up", "hold_ms": 60})
        t += 150
    t += 1500
    t_stop = t
    steps.append({"at_ms": t, "press": "stop", "hold_ms": 80})
    return {"board": "pico", "duration_ms": t + 500, "steps": steps,
            "files": {"settings.json": "{\"first_sessions_half\": false}"}}, t_stop


def _run(spec):
    if _MPY:
        folder = "build/mp_scenario_flash"
        try:
            os.mkdir("build")
        except OSError:
            pass
        try:
            os.mkdir(folder)
        except OSError:
            pass
        for name in os.listdir(folder):
            os.remove(folder + "/" + name)
        # packages imported with a relative path keep it: import every sim module before chdir
        for m in ("world", "gpio", "simtime", "machine", "rp2", "pio_core", "micropython_mod",
                  "esp32", "board_pico", "ssd1306_model", "install"):
            __import__("host_tools.sim." + m)
        __import__("host_tools.pulse_analysis")
        here = os.getcwd()
        saved = list(sys.path)
        # the device's files live in the folder; the code stays importable from the repo
        sys.path[:] = [p if p.startswith("/") else (here + "/" + p if p else here)
                       for p in saved]
        os.chdir(folder)
        try:
            run = scenario_core.Run(spec, flash_dir=".")
            return scenario_core.trace_dict(run.run())
        finally:
            os.chdir(here)
            sys.path[:] = saved
    from host_tools.sim import flash as flash_mod

    run = scenario_core.Run(spec, flash_factory=flash_mod.SimFlash)
    return scenario_core.trace_dict(run.run())


def _at(record, t_ms):
    v = record[0][1]
    for t, x in record:
        if t > t_ms:
            break
        v = x
    return v


def test_full_scenario_start_raise_stop():
    spec, t_stop = _spec()
    r = _run(spec)
    kinds = [e["kind"] for e in r["events"]]
    assert "sim_error" not in kinds
    a = r["channels"]["1"]["amplitude_ma"]
    en = r["channels"]["1"]["enabled"]
    assert a[0][1] == 0.0
    assert 4.9 <= _at(a, t_stop - 10) <= 5.1  # 5 presses: 5 mA on the DAC after the ramp
    assert _at(en, t_stop - 10) is True
    assert _at(en, t_stop + 1) is False and _at(a, t_stop + 1) == 0.0
    p = r["channels"]["1"]["pulses"]
    assert p["violations"] == []
    assert p["pulse_count"] > 300  # 100 Hz for several seconds
    assert p["phase_ns"] == [150000]
