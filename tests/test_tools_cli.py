"""The host command lines a developer types: capture and scenario, good input and bad."""
import json
import os

import pytest

from host_tools import capture, scenario
from host_tools.vcd import read_vcd


def test_capture_writes_vcd_png_and_a_summary_of_the_measured_pulses(tmp_path, capsys):
    out = tmp_path / "cap"
    rc = capture.main(["--phase-us", "300", "--gap-us", "50", "--rate-hz", "50", "--ms", "200",
                       "--out", str(out)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    ch = report["channels"]["1"]
    assert ch["pulse_count"] == 10
    assert ch["phase_ns"] == [300_000] and ch["gap_ns"] == [50_000]
    assert ch["period_ns"] == [20_000_000] and ch["violations"] == []
    assert (out / "pulses.png").stat().st_size > 10_000
    wires = read_vcd(str(out / "pins.vcd"))
    assert set(wires) == {"ch1_a", "ch1_b", "ch2_a", "ch2_b", "enable"}
    rises_a = [t for t, lv in wires["ch1_a"][1:] if lv == 1]
    falls_a = [t for t, lv in wires["ch1_a"][1:] if lv == 0]
    assert len(rises_a) == 10
    assert falls_a[0] - rises_a[0] == 300_000  # ns, exact in the VCD too
    assert rises_a[1] - rises_a[0] == 20_000_000
    levels = [lv for _, lv in wires["enable"]]
    assert 1 in levels and levels[-1] == 0  # enabled for the capture, disabled after it


def test_capture_burst_on_both_channels(tmp_path, capsys):
    rc = capture.main(["--phase-us", "100", "--gap-us", "10", "--rate-hz", "2500",
                       "--burst-count", "25", "--burst-rate-hz", "50", "--channel", "both",
                       "--ms", "60", "--out", str(tmp_path), "--no-png"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    for ch in ("1", "2"):
        assert report["channels"][ch]["pulse_count"] == 75
        assert report["channels"][ch]["requested"]["burst_period_ns"] == 20_000_000


@pytest.mark.parametrize("args, text", [
    (["--phase-us", "5000"], "phase_us 5000.0 outside 20-1000 us"),
    (["--rate-hz", "300"], "rate_hz 300.0 outside 0.5-200 Hz"),
    (["--phase-us", "1000", "--gap-us", "1000", "--rate-hz", "200", "--burst-count", "3"],
     "needs burst_rate_hz"),
])
def test_capture_refuses_impossible_parameters_with_a_clear_message(tmp_path, capsys, args, text):
    rc = capture.main(args + ["--out", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("capture: bad pulse parameters:") and text in err
    assert not os.path.exists(tmp_path / "x")  # nothing written


@pytest.mark.parametrize("spec, text", [
    ({"board": "pico", "duration_ms": 1000, "steps": [{"at_ms": 10, "press": "upp"}]},
     "steps[0].press: 'upp' is not a button"),
    ({"board": "pico", "duration_ms": 1000, "steps": [{"at_ms": 10}]},
     "steps[0] needs exactly one action"),
    ({"board": "pico", "duration_ms": 1000,
      "steps": [{"at_ms": 50, "usb": True}, {"at_ms": 10, "usb": False}]},
     "is before the previous step"),
    ({"board": "nrf52", "duration_ms": 1000}, "board 'nrf52'"),
    ({"board": "pico", "duration_ms": -5}, "duration_ms must be"),
    ({"board": "pico", "duration_ms": 1000, "steps": [{"at_ms": 1, "electrode": {"channel": 3}}]},
     "needs {\"channel\": 1 or 2"),
])
def test_scenario_refuses_bad_files_naming_the_step(tmp_path, capsys, spec, text):
    f = tmp_path / "s.json"
    f.write_text(json.dumps(spec))
    rc = scenario.main([str(f), "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("scenario: ") and text in err
    assert not os.path.exists(tmp_path / "out")


def test_scenario_refuses_broken_json(tmp_path, capsys):
    f = tmp_path / "s.json"
    f.write_text('{"board": "pico", "steps": [')
    assert scenario.main([str(f), "--out", str(tmp_path / "o")]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


def test_scenario_cli_writes_every_output(tmp_path, capsys):
    spec = {"board": "pico", "duration_ms": 2600,
            "steps": [{"at_ms": 1800, "press": "down", "hold_ms": 80}]}
    f = tmp_path / "s.json"
    f.write_text(json.dumps(spec))
    out = tmp_path / "out"
    assert scenario.main([str(f), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["screens"] >= 3
    trace = json.loads((out / "trace.json").read_text())
    assert set(trace) == {"events", "channels", "screens"}
    assert any(">Quad knee repl." in line for _, text in trace["screens"] for line in text)
    assert set(trace["channels"]) == {"1", "2"}
    assert (out / "pins.vcd").exists() and (out / "contact_sheet.png").exists()
    assert len(os.listdir(out / "oled")) == summary["screens"]
    assert (out / "flash" / "board.txt").read_text().strip() == "pico"
