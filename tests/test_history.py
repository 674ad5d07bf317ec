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
from tests.scenario_harness import Steps, enabled, events, level_at, run, screen_at, spec

SHORT = programs.Program("short", "Short", 50, 250, on_s=4, off_s=4, ramp_up_s=1, ramp_down_s=1,
                         session_min=1).to_dict()
CUSTOM = len(programs.PRESETS)          # custom programs come after the presets in the list
FULL = json.dumps({"first_sessions_half": False})


def _files(settings_json=FULL, history=None):
    f = {"settings.json": settings_json, "programs.json": json.dumps([SHORT])}
    if history is not None:
        f["history.json"] = json.dumps(history)
    return f


def _history(steps, files=None, board="pico", extra_ms=1500, flash_out=None):
    run_obj, r = run(spec(steps, steps.t + extra_ms, files or _files(), board=board))
    on_flash = run_obj.flash.read_all()
    if flash_out is not None:
        flash_out.update(on_flash)
    text = on_flash.get("/history.json", b"[]")
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


# --- a session cut by a reset or a power cut (the session marker, App._record_cut_session) -------

MARK = "/" + settings.MARK_FILE
BOARDS = ["pico", "esp32"]


def _open_history(s):
    """From the program list (after a boot): UP wraps to the last entries, History is the one
    above EMG on both boards; OK opens it."""
    return s.press("up", gap_ms=250).press("up", gap_ms=250).press("ok", gap_ms=800)


@pytest.mark.parametrize("board", BOARDS)
def test_power_cut_mid_session_gives_a_reset_record_at_the_next_boot(board, capsys):
    s = _started(10).wait(3000)
    t_cut = s.t
    s.add(power_cut=True, gap_ms=2000).add(power_on=True, gap_ms=3000)
    _open_history(s)
    flash = {}
    hist, r = _history(s, board=board, extra_ms=200, flash_out=flash)
    assert [e["reason"] for e in events(r, "boot")] == ["power_on", "power_cut", "power_on"]
    assert level_at(enabled(r), t_cut - 10) is True                 # it was stimulating
    assert hist == [{"n": 1, "program": "short", "minutes": None, "max_ma": None,
                     "contractions": None, "end": "reset", "faults": []}]
    assert MARK not in flash                                         # made into the record
    assert "history: a session of short was cut by a reset or power cut; recorded as #1" \
        in capsys.readouterr().out
    # the history screen (as OCR'd): the program, minutes and mA not known, how it ended
    assert screen_at(r, s.t) == ["History (1)", "#1 Short", " ? min     reset", " max ? mA",
                                 "", "", "", "bk: back"]


@pytest.mark.parametrize("board", BOARDS)
def test_a_hang_mid_session_gives_a_reset_record_with_the_watchdog(board, capsys):
    s = _started(10).wait(3000).add(hang=True, gap_ms=3000)
    _open_history(s)
    flash = {}
    hist, r = _history(s, board=board, extra_ms=200, flash_out=flash)
    assert [e["reason"] for e in events(r, "reset")] == ["watchdog"]
    assert [(h["program"], h["end"], h["minutes"], h["faults"]) for h in hist] == \
        [("short", "reset", None, ["watchdog"])]
    assert MARK not in flash
    assert "cut by a watchdog reset; recorded as #1" in capsys.readouterr().out
    assert screen_at(r, s.t)[:5] == ["History (1)", "#1 Short", " ? min     reset",
                                     " max ? mA", " ! watchdog"]


@pytest.mark.parametrize("board", BOARDS)
def test_a_session_that_ends_normally_leaves_no_marker_and_one_record(board):
    s = _started(8).wait(4500).press("stop").press("ok")
    flash = {}
    hist, _ = _history(s, board=board, flash_out=flash)
    assert [(h["n"], h["program"], h["end"]) for h in hist] == [(1, "short", "stop")]
    assert MARK not in flash


def test_a_refused_start_leaves_no_marker_and_no_record():
    # battery below the cut-off: the supervisor refuses the start after the marker was written
    s = Steps().add(battery_mv=3000, gap_ms=300).start_program(CUSTOM).press("ok")
    s.add(power_cut=True, gap_ms=1000).add(power_on=True, gap_ms=3000)
    flash = {}
    hist, r = _history(s, flash_out=flash)
    assert [e["fault"] for e in events(r, "fault")][:1] == ["low_battery"]
    assert not any(v for _, v in enabled(r))
    assert hist == [] and MARK not in flash


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("content", ["{\"v\": 1, \"program\": \"short\", \"n", "", "{garbage",
                                     "{\"v\": 1, \"program\": \"\", \"n\": 0}", "[1, 2]"])
def test_a_corrupt_marker_is_discarded_with_a_console_line_and_boot_goes_on(board, content,
                                                                         capsys):
    files = _files()
    files[settings.MARK_FILE] = content
    s = _started(5).wait(1500)                  # the unit boots and a session runs as usual
    flash = {}
    hist, r = _history(s, files, board=board, flash_out=flash)
    out = capsys.readouterr().out
    assert "history: session marker session.mark unreadable (" in out
    assert "discarded, no record made" in out
    assert hist == [] and events(r, "fault") == []
    assert level_at(enabled(r), s.t - 10) is True                # booted, started, stimulates
    assert json.loads(flash[MARK]) == {"v": 1, "program": "short", "n": 1}   # the new one


def test_a_marker_whose_record_was_written_is_dropped(capsys):
    # a cut between the record and the marker's removal: the record is there, no second one
    old = [{"n": 4, "program": "short", "minutes": 0.5, "max_ma": [8, 0], "contractions": 3,
            "end": "stop", "faults": []}]
    files = _files(history=old)
    files[settings.MARK_FILE] = json.dumps({"v": 1, "program": "short", "n": 4})
    flash = {}
    hist, _ = _history(Steps().wait(500), files, flash_out=flash)
    assert hist == old and MARK not in flash
    assert "session marker of short #4 already recorded: removed" in capsys.readouterr().out


def test_reset_records_load_count_and_summarise(tmp_path):
    st = settings.Store(str(tmp_path))
    st.append_session({"program": "short", "minutes": 6.0, "max_ma": [10, 0],
                       "contractions": 9, "end": "stop", "faults": []})
    r = st.append_session({"program": "short", "minutes": None, "max_ma": None,
                           "contractions": None, "end": "reset", "faults": ["watchdog"]})
    assert r["n"] == 2 and st.load_history()[1] == r and st.notices == []
    assert settings.counted_sessions(st.load_history()) == 1     # not known: not counted
    assert st.usage_summary() == {"sessions": 2, "minutes": 6.0, "max_ma": [10, 0], "faults": 1}


def test_make_logs_exports_a_reset_record(tmp_path):
    """host_tools/history_export.py (make logs) takes the new end kind as it is: the unknown
    values are empty CSV cells (not 0), the plot draws the session with no bar."""
    import csv

    from host_tools import history_export

    hist = [{"n": 1, "program": "short", "minutes": 2.5, "max_ma": [8.0, 0.0], "contractions": 4,
             "end": "stop", "faults": []},
            {"n": 2, "program": "gait_fes", "minutes": None, "max_ma": None,
             "contractions": None, "end": "reset", "faults": ["watchdog"]}]
    src = tmp_path / "history.json"
    src.write_text(json.dumps(hist))
    c, p = history_export.export(str(src))
    with open(c, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[1] == {"n": "2", "program": "gait_fes", "minutes": "", "ch1_max_ma": "",
                       "ch2_max_ma": "", "contractions": "", "end": "reset",
                       "faults": "watchdog"}
    assert (tmp_path / "history.png").stat().st_size > 1000


def test_the_marker_is_written_before_the_output_is_enabled_and_what_it_costs():
    """20 sessions started and stopped (host simulation, the simulated LittleFS flash with its
    erase and page-program times): at every start the marker's flash writes are over before the
    enable pin rises, never more than a littlefs compaction (2 erases); no timing fault. Prints
    the figures docs/usage.md quotes: `pytest -q -s tests/test_history.py -k costs`."""
    from host_tools import scenario, scenario_core
    from host_tools.sim import flash as flash_mod

    n = 20
    s = Steps()
    for _ in range(CUSTOM):
        s.press("down", gap_ms=220)
    starts, stops = [], []
    for _ in range(n):
        s.press("ok", gap_ms=500).press("ok", gap_ms=500)
        starts.append(s.t)
        s.press("ok", gap_ms=600).raise_level(3).wait(1000)
        stops.append(s.t)
        s.press("stop", gap_ms=600).press("ok", gap_ms=600)
    sp = spec(s, s.t + 500, _files(), board="pico")
    run_obj = scenario_core.Run(sp, ocr=scenario.ocr, flash_factory=lambda w: flash_mod.SimFlash(
        w, record_ops=True))
    r = scenario_core.trace_dict(run_obj.run())
    hz = run_obj.world.sys_hz
    ops = [(kind, what, c0 * 1000 / hz, c1 * 1000 / hz) for kind, what, c0, c1
           in run_obj.flash.ops_log]
    rises = [c * 1000 / hz for c, on in
             scenario_core.merged_edges(run_obj.trace, run_obj.board.OUTPUT_ENABLE) if on]
    assert events(r, "fault") == [] and len(rises) == n

    def cost(t0, t1):
        sel = [o for o in ops if t0 <= o[2] < t1]
        return (sum(o[1][2] for o in sel if o[0] == "prog"),
                sum(1 for o in sel if o[0] == "erase"), sum(o[3] - o[2] for o in sel), sel)
    per_start, to_enable = [], []
    for t0, rise in zip(starts, rises, strict=True):
        nbytes, erases, busy, sel = cost(t0, rise + 1)
        assert sel and max(o[3] for o in sel) <= rise          # written, then enabled
        assert erases <= 2
        per_start.append((nbytes, erases, busy))
        to_enable.append(rise - t0)
    ends = [cost(t0, t0 + 400)[:3] for t0 in stops]

    def mean(rows, i):
        return sum(x[i] for x in rows) / len(rows)
    print("\nmarker per start: %d-%d bytes programmed (mean %.0f), %d-%d erases, %.1f-%.1f ms "
          "flash busy (mean %.1f); start press to enable %.1f-%.1f ms; session end (record + "
          "marker removal): mean %.0f bytes, %.1f ms" % (
              min(x[0] for x in per_start), max(x[0] for x in per_start), mean(per_start, 0),
              min(x[1] for x in per_start), max(x[1] for x in per_start),
              min(x[2] for x in per_start), max(x[2] for x in per_start), mean(per_start, 2),
              min(to_enable), max(to_enable), mean(ends, 0), mean(ends, 2)))
