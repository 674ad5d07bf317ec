"""History (firmware/app.py App._track, firmware/settings.py): every session, however it ended,
gets a record (program, minutes stimulated with tenths, peak delivered mA per channel after every
factor, contractions, how it ended, faults); practice sessions counted by time stimulated; old
records still load. Whole-firmware scenarios read history.json from the simulated flash."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import json

import pytest

from tests import device_path  # noqa: F401

import programs
import settings
from tests.scenario_harness import Steps, run, spec

SHORT = programs.Program("short", "Short", 50, 250, on_s=4, off_s=4, ramp_up_s=1, ramp_down_s=1,
                         session_min=1).to_dict()
CUSTOM = len(programs.PRESETS)          # custom programs come after the presets in the list
FULL = json.dumps({"first_sessions_half": False})


def _files(settings_json=FULL, history=None):
    f = {"settings.json": settings_json, "programs.json": json.dumps([SHORT])}
    if history is not None:
        f["history.json"] = json.dumps(history)
    return f


def _history(steps, files=None, board="pico", extra_ms=1500):
    run_obj, r = run(spec(steps, steps.t + extra_ms, files or _files(), board=board))
    text = run_obj.flash.read_all().get("/history.json", b"[]")
    return json.loads(text), r


def _started(level=10):
    return Steps().start_program(CUSTOM).raise_level(level)


@pytest.mark.parametrize("board", ["pico", "esp32"])
def test_a_completed_session_records_minutes_peak_contractions_and_done(board):
    s = _started(10).wait(62000)
    hist, _ = _history(s, board=board)
    assert len(hist) == 1
    r = hist[0]
    assert r["program"] == "short" and r["end"] == "done" and r["n"] == 1
    assert r["minutes"] == 1.0                     # stimulated the whole minute, tenths
    assert r["max_ma"] == [10.0, 0.0]              # peak delivered, channel 2 never raised
    assert r["contractions"] == 6                  # 10 s cycles: 6 reach "on" in 60 s
    assert r["faults"] == []


def test_stop_records_the_stimulated_tenths():
    s = _started(8).wait(4500).press("stop")
    hist, _ = _history(s)
    r = hist[-1]
    assert r["end"] == "stop" and 0 < r["minutes"] <= 0.2 and r["max_ma"][0] == 8.0


def test_back_after_a_pause_records_back_and_pause_time_is_not_counted():
    s = _started(6).wait(6000).press("back").wait(20000).press("back")
    hist, _ = _history(s)
    r = hist[-1]
    assert r["end"] == "back" and r["minutes"] == 0.1       # ~7 s stimulated, 20 s paused
    assert r["contractions"] == 1


def test_a_fault_that_stops_the_output_is_the_end_and_is_listed():
    s = _started(10).wait(3000).add(over_current={"channel": 1, "on": True}, gap_ms=500)
    s.add(over_current={"channel": 1, "on": False}, gap_ms=300)
    s.press("ok", gap_ms=500)               # dismiss the alert: the pause screen
    s.press("back")                          # end the session
    hist, _ = _history(s)
    r = hist[-1]
    assert r["end"] == "fault" and "over_current" in r["faults"]


def test_low_battery_ends_as_battery():
    s = _started(5).wait(2000).add(battery_mv=3000, gap_ms=1000)
    s.press("ok", gap_ms=500).press("back")
    hist, _ = _history(s)
    r = hist[-1]
    assert r["end"] == "battery" and "low_battery" in r["faults"]


def test_usb_power_ends_as_usb():
    s = _started(5).wait(2000).add(usb=True, gap_ms=1000)
    s.press("ok", gap_ms=500).press("back")
    hist, _ = _history(s)
    r = hist[-1]
    assert r["end"] == "usb" and "usb_power" in r["faults"]


def test_first_sessions_record_the_delivered_half_not_the_level_set():
    s = _started(10).wait(3000).press("stop")
    hist, _ = _history(s, _files(json.dumps({"first_sessions_half": True, "half_sessions": 3})))
    assert hist[-1]["max_ma"] == [5.0, 0.0]


def test_practice_counts_sessions_by_time_stimulated_not_completion():
    # three earlier sessions stopped early but with >= 5 min stimulated: practice is over, full
    old = [{"n": i, "program": "quad_acl", "minutes": 5.2, "max_ma": [20, 0], "contractions": 6,
            "end": "stop", "faults": []} for i in (1, 2, 3)]
    s = _started(10).wait(3000).press("stop")
    hist, _ = _history(s, _files(json.dumps({"first_sessions_half": True, "half_sessions": 3}),
                                 old))
    assert hist[-1]["max_ma"] == [10.0, 0.0] and hist[-1]["n"] == 4
    # the same three at 4.9 min do not count: still half
    for r in old:
        r["minutes"] = 4.9
    s = _started(10).wait(3000).press("stop")
    hist, _ = _history(s, _files(json.dumps({"first_sessions_half": True, "half_sessions": 3}),
                                 old))
    assert hist[-1]["max_ma"] == [5.0, 0.0]


def test_counted_sessions_rule():
    rec = [{"program": "a", "minutes": 5.0, "end": "stop"},
           {"program": "a", "minutes": 4.9, "end": "done"},
           {"program": "b", "minutes": 0, "end": ""},          # older firmware: completed
           {"program": "a", "minutes": 12, "end": "fault"}]
    assert settings.counted_sessions(rec) == 3
    assert settings.counted_sessions(rec, "a") == 2


def test_old_records_without_the_new_keys_still_load(tmp_path):
    st = settings.Store(str(tmp_path))
    old = [{"n": 1, "program": "quad_acl", "minutes": 0, "max_ma": [0, 0], "faults": []}]
    (tmp_path / "history.json").write_text(json.dumps(old))
    hist = st.load_history()
    assert hist[0]["end"] == "" and hist[0]["contractions"] == 0 and st.notices == []
    r = st.append_session({"program": "gait_fes", "minutes": 12.3, "max_ma": [22.5, 0],
                           "contractions": 700, "end": "done", "faults": []})
    assert r["n"] == 2 and st.load_history()[1]["minutes"] == 12.3


def test_shoulder_progression_step_comes_from_the_counted_sessions():
    # 7 counted shoulder sessions: the second step (40 min, 15 s on / 10 s off)
    old = [{"n": i, "program": "shoulder", "minutes": 30.0, "max_ma": [20, 20],
            "contractions": 80, "end": "done", "faults": []} for i in range(1, 8)]
    shoulder = [p.key for p in programs.PRESETS].index("shoulder")
    s = Steps().start_program(shoulder).raise_level(3).wait(2000)
    _, r = run(spec(s, s.t, _files(FULL, old)))
    text = "\n".join("\n".join(t) for _, t in r["screens"])
    assert "39:5" in text or "left  39" in text      # the run screen counts down from 40 min
