"""firmware/settings.py: atomic writes, validated loads, corrupt files -> defaults + notice +
.bad copy (SAFETY rule 10), bounded usage log."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import json
import os

import pytest

from tests import device_path  # noqa: F401

import programs
import settings


@pytest.fixture()
def store(tmp_path):
    return settings.Store(str(tmp_path))


def _write(store, name, text):
    with open(store.path(name), "w") as f:
        f.write(text)


def test_defaults_when_nothing_stored(store):
    d = store.load_settings()
    assert d == settings.defaults() and store.notices == []
    assert d["cap_ma"] == [100, 100] and d["first_sessions_half"] is True
    assert store.load_programs() == [] and store.load_history() == []


def test_settings_round_trip(store):
    d = store.load_settings()
    d.update(contrast=10, sound=False, auto_off_min=30, keypad_lock=True, cap_ma=[40, 55])
    store.save_settings(d)
    assert store.load_settings() == d and store.notices == []


def test_save_refuses_bad_values(store):
    d = settings.defaults()
    d["cap_ma"] = [150, 10]
    with pytest.raises(ValueError, match="cap_ma"):
        store.save_settings(d)
    assert not os.path.exists(store.path("settings.json"))


def test_rule10_corrupt_settings_give_defaults_notice_and_bad_copy(store):
    _write(store, "settings.json", '{"contrast": 12, "sou')      # a power cut mid-write
    d = store.load_settings()
    assert d == settings.defaults()
    assert len(store.notices) == 1 and "settings.json" in store.notices[0]
    with open(store.path("settings.json.bad")) as f:
        assert f.read() == '{"contrast": 12, "sou'


def test_rule10_hand_edited_fields_validated_one_by_one(store):
    _write(store, "settings.json", json.dumps({
        "contrast": 300, "sound": 1, "auto_off_min": 20, "cap_ma": [50, "60"],
        "keypad_lock": True, "volume": 11}))
    d = store.load_settings()
    assert d["contrast"] == 128 and d["sound"] is True and d["cap_ma"] == [100, 100]
    assert d["auto_off_min"] == 20 and d["keypad_lock"] is True        # good fields kept
    assert "volume" not in d
    n = store.notices[0]
    for k in ("contrast", "sound", "cap_ma", "volume"):
        assert k in n
    assert os.path.exists(store.path("settings.json.bad"))
    store.notices.clear()
    assert store.load_settings() == d and store.notices == []        # cleaned file written back


@pytest.mark.parametrize("text", ["", "null", "[1, 2]", '"text"', "\xff\xfe", "{" * 5000,
                                  '{"contrast": NaN}', '{"contrast": 1e999}'])
def test_rule10_never_raises_on_bad_content(store, text):
    _write(store, "settings.json", text)
    assert store.load_settings() == settings.defaults() or store.notices
    _write(store, "programs.json", text)
    assert store.load_programs() == []
    _write(store, "history.json", text)
    assert store.load_history() == []


def test_too_big_file_is_not_read(store):
    _write(store, "settings.json", " " * (settings.FILE_MAX_BYTES + 1))
    assert store.load_settings() == settings.defaults()
    assert "too big" in store.notices[0]


def test_rule10_power_cut_during_write_leaves_old_file(store, monkeypatch):
    d = store.load_settings()
    d["contrast"] = 1
    store.save_settings(d)

    def cut(*a):
        raise OSError("power cut")
    monkeypatch.setattr(settings.os, "rename", cut)
    d["contrast"] = 2
    with pytest.raises(OSError):
        store.save_settings(d)
    monkeypatch.undo()
    assert store.load_settings()["contrast"] == 1          # the old file, whole
    assert not os.path.exists(store.path("settings.json.tmp"))   # stale .tmp removed on load


def test_write_goes_through_tmp_then_rename(store, monkeypatch):
    calls = []
    real = os.rename
    monkeypatch.setattr(settings.os, "rename", lambda a, b: (calls.append((a, b)), real(a, b)))
    store.save_settings(settings.defaults())
    p = store.path("settings.json")
    assert calls == [(p + ".tmp", p)]


def test_custom_programs_saved_loaded_and_validated(store):
    p = programs.custom_default()
    store.save_program(p)
    q = programs.custom_default()
    q.key, q.name, q.rate_hz = "my_tens", "My TENS", 120
    store.save_program(q)
    p.rate_hz = 60
    store.save_program(p)                                  # replaces by key
    got = {x.key: x for x in store.load_programs()}
    assert set(got) == {"custom", "my_tens"} and got["custom"].rate_hz == 60
    assert store.delete_program("my_tens") and [x.key for x in store.load_programs()] == ["custom"]
    with pytest.raises(ValueError):
        store.save_program(programs.preset("quad_acl"))    # preset keys are reserved
    bad = programs.custom_default()
    bad.phase_us = 2000
    with pytest.raises(ValueError):
        store.save_program(bad)


def test_bad_program_in_file_skipped_with_notice(store):
    good = programs.custom_default().to_dict()
    evil = dict(good, key="evil", phase_us=5000)
    _write(store, "programs.json", json.dumps([good, evil, 7]))
    got = store.load_programs()
    assert [p.key for p in got] == ["custom"]
    assert "evil" in store.notices[0] and os.path.exists(store.path("programs.json.bad"))


def test_usage_log_bounded_by_records_and_bytes(store):
    for i in range(130):
        store.append_session({"program": "quad_acl", "minutes": 12.5, "max_ma": [30, i % 90],
                              "faults": ["open_circuit"] * 3})
    h = store.load_history()
    assert len(h) == settings.HISTORY_MAX_RECORDS
    assert h[0]["n"] == 31 and h[-1]["n"] == 130
    assert os.path.getsize(store.path("history.json")) <= settings.HISTORY_MAX_BYTES
    s = store.usage_summary()
    assert s["sessions"] == 100 and s["max_ma"] == [30, 89] and s["minutes"] == 1250


def test_usage_log_rejects_and_drops_bad_records(store):
    with pytest.raises(ValueError):
        store.append_session({"program": "x", "minutes": -1, "max_ma": [0, 0], "faults": []})
    store.append_session({"program": "x", "minutes": 1, "max_ma": [0, 0], "faults": []})
    h = json.load(open(store.path("history.json")))
    h.append({"n": 2, "program": "x", "minutes": "lots", "max_ma": [0, 0], "faults": []})
    _write(store, "history.json", json.dumps(h))
    assert len(store.load_history()) == 1 and store.notices


def test_root_with_or_without_slash(tmp_path):
    a = settings.Store(str(tmp_path))
    b = settings.Store(str(tmp_path) + "/")
    assert a.path("x") == b.path("x") == str(tmp_path) + "/x"
    assert settings.Store().path("settings.json") == "/settings.json"


def test_old_settings_file_with_retired_keys_loads_without_a_notice(store):
    # firmware before issue 12 wrote sessions_done, last_program and language: nothing reads
    # them now; the file still loads, its other values kept, no notice, no .bad copy
    old = {"contrast": 40, "sound": False, "auto_off_min": 5, "keypad_lock": False,
           "clinician_lock": False, "cap_ma": [60, 70], "charge_cap_uc": 50,
           "first_sessions_half": True, "half_sessions": 2, "sessions_done": 7,
           "last_program": "quad_acl", "language": "en"}
    _write(store, settings.SETTINGS_FILE, json.dumps(old))
    d = store.load_settings()
    assert store.notices == [] and not os.path.exists(store.path("settings.json.bad"))
    assert d["contrast"] == 40 and d["cap_ma"] == [60, 70] and d["half_sessions"] == 2
    assert "language" not in d and "sessions_done" not in d and d["switch_nc"] is False
    store.save_settings(dict(d, language="en"))     # a stale copy saves too, without the key
    assert "language" not in json.loads(open(store.path("settings.json")).read())


def test_every_setting_is_read_by_the_firmware():
    # "every setting in the menu does what it says": each key is read somewhere in firmware/
    root = os.path.join(os.path.dirname(os.path.dirname(__file__)), "firmware")
    text = ""
    for name in os.listdir(root):
        if name.endswith(".py") and name != "settings.py":
            with open(os.path.join(root, name)) as f:
                text += f.read()
    for key in settings.SETTINGS_SCHEMA:
        assert '"%s"' % key in text, key
    for key in settings.RETIRED_SETTINGS:
        assert key not in settings.SETTINGS_SCHEMA


# --- the settings on the whole firmware: auto-off and sound do what the menu says -------------

def _scenario(files, steps, duration):
    from tests.scenario_harness import run, spec
    run_obj, r = run(spec(steps, duration, files))
    return run_obj, r


def test_auto_off_shows_the_sleep_screen_after_idle_minutes_and_a_key_wakes():
    from tests.scenario_harness import Steps, screen_at
    s = Steps().wait(75000).press("down", gap_ms=1000)
    _, r = _scenario({"settings.json": json.dumps({"auto_off_min": 1})}, s, s.t)
    assert "Sleeping" not in screen_at(r, 55000)
    asleep = screen_at(r, 70000)
    assert asleep[0].strip() == "Sleeping" and "output off" in asleep
    assert screen_at(r, s.t)[1] == ">Quad ACL"                  # the press woke it, and only that
    _, r = _scenario({"settings.json": json.dumps({"auto_off_min": 0})}, Steps().wait(75000),
                     75000)
    assert all("Sleeping" not in text for _, text in r["screens"])  # 0 = never


@pytest.mark.parametrize("sound", [True, False])
def test_sound_setting_drives_the_buzzer(sound):
    from tests.scenario_harness import Steps
    s = Steps().press("down").wait(500)
    run_obj, _ = _scenario({"settings.json": json.dumps({"sound": sound})}, s, s.t)
    w, board = run_obj.trace.boots[0][2], run_obj.trace.boots[0][3]
    duties = [d for _, d in w.pwm_log.get(board.BUZZER, [])]
    assert (max(duties or [0]) > 0) == sound
    assert not duties or duties[-1] == 0                        # and the beep ends
