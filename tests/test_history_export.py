"""host_tools/history_export.py: history.json -> CSV and PNG, from the CLI."""
import csv
import json
import subprocess
import sys

import pytest
from PIL import Image

from host_tools import history_export as hx

RECORDS = [
    {"n": 1, "program": "quad_acl", "minutes": 0, "max_ma": [0, 0], "faults": []},  # old firmware
    {"n": 2, "program": "gait_fes", "minutes": 12.3, "max_ma": [22.5, 0.0], "contractions": 700,
     "end": "done", "faults": []},
    {"n": 3, "program": "shoulder", "minutes": 4.9, "max_ma": [18.0, 17.5], "contractions": 12,
     "end": "fault", "faults": ["open_circuit", "low_battery_warning"]},
]


def _write(tmp_path, data):
    p = tmp_path / "history.json"
    p.write_text(json.dumps(data))
    return p


def test_cli_writes_csv_rows_and_a_png(tmp_path):
    src = _write(tmp_path, RECORDS)
    out = tmp_path / "export"
    res = subprocess.run([sys.executable, "-m", "host_tools.history_export", str(src), "--out",
                          str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["n"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["end"] == "" and rows[0]["contractions"] == ""      # old record: what it has
    assert rows[1] == {"n": "2", "program": "gait_fes", "minutes": "12.3", "ch1_max_ma": "22.5",
                       "ch2_max_ma": "0.0", "contractions": "700", "end": "done", "faults": ""}
    assert rows[2]["faults"] == "open_circuit;low_battery_warning"
    img = Image.open(out / "history.png")
    assert img.size == (900, 550)
    # the bars are drawn: pixels of the "done" and "fault" colours are in the picture
    colours = {c for _, c in img.convert("RGB").getcolors(1 << 20)}
    assert (0x2A, 0x7F, 0x3F) in colours and (0xE6, 0x7E, 0x22) in colours


def test_empty_history_gives_a_header_and_a_plot_saying_so(tmp_path):
    c, p = hx.export(str(_write(tmp_path, [])))
    assert open(c).read().strip() == ",".join(hx.COLUMNS)
    assert Image.open(p).size == (900, 550)


@pytest.mark.parametrize("content,words", [
    ("{not json", "not JSON"), ('{"a": 1}', "list of session records"),
    ("[1, 2]", "record 0"),
])
def test_bad_files_named_with_exit_status_2(tmp_path, content, words, capsys):
    p = tmp_path / "history.json"
    p.write_text(content)
    assert hx.main([str(p)]) == 2
    assert words in capsys.readouterr().err


def test_missing_file_says_run_make_logs(tmp_path, capsys):
    assert hx.main([str(tmp_path / "nope.json")]) == 2
    assert "make logs" in capsys.readouterr().err


def test_make_logs_on_the_virtual_device_writes_the_csv_and_the_plot(tmp_path):
    # `make logs` (host_tools/flash.py logs) fetches history.json and calls the exporter on it
    from tests.test_flash import HAVE_MP, VDev

    if not HAVE_MP:
        pytest.skip("MicroPython unix port not installed")
    from host_tools import flash

    d = VDev(tmp_path / "dev")
    try:
        d.state(boot=1)
        (d.flash_dir / "history.json").write_text(json.dumps(RECORDS))
        logs = tmp_path / "logs"
        assert flash.main(["logs", "--port", d.port, "--out", str(logs)]) == 0
    finally:
        d.kill(15)
    assert json.loads((logs / "history.json").read_text()) == RECORDS
    with open(logs / "history.csv", newline="") as f:
        assert [r["program"] for r in csv.DictReader(f)] == ["quad_acl", "gait_fes", "shoulder"]
    assert Image.open(logs / "history.png").size == (900, 550)
