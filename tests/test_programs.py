"""firmware/programs.py: presets inside the PROGRAMS.md ranges, validation, flash round trip."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import pytest

from tests import device_path  # noqa: F401

import programs
from programs import Program

# PROGRAMS.md table: key -> (rate_hz range, phase_us range, on_s range, off_s range)
RANGES = {
    "quad_acl": ((30, 50), (250, 400), (6, 10), (12, 50)),
    "quad_tka": ((50, 50), (250, 250), (15, 15), (45, 45)),
    "strength": ((35, 80), (200, 350), (6, 10), (30, 50)),
    "endurance": ((20, 30), (250, 300), (2, 90), (0, 90)),
    "disuse": ((8, 100), (250, 400), (5, 8), (10, 20)),
    "shoulder": ((10, 36), (200, 300), (2, 90), (0, 90)),
    "wrist": ((20, 30), (300, 300), (2, 90), (0, 90)),
    "foot_drop": ((25, 35), (400, 400), (2, 90), (0, 90)),
    "spasm": ((50, 50), (250, 250), (2, 5), (2, 5)),
    "tens_conv": ((80, 150), (50, 250), (2, 90), (0, 0)),
    "tens_acu": ((1, 5), (200, 250), (2, 90), (0, 0)),
    "tens_burst": ((100, 100), (50, 300), (2, 90), (0, 0)),
    "tens_mod": ((50, 150), (50, 300), (2, 90), (0, 0)),
    "russian": ((2500, 2500), (50, 150), (10, 10), (50, 50)),
    "massage": ((2, 10), (200, 250), (2, 90), (0, 0)),
}


def test_every_table_row_has_a_preset():
    assert {p.key for p in programs.PRESETS} == set(RANGES)


@pytest.mark.parametrize("p", programs.PRESETS, ids=lambda p: p.key)
def test_preset_inside_published_ranges(p):
    p.validate(preset=True)
    (r0, r1), (w0, w1), (on0, on1), (off0, off1) = RANGES[p.key]
    assert r0 <= p.rate_hz <= r1
    assert w0 <= p.phase_us <= w1
    assert 50 <= p.phase_us <= 400                      # SAFETY.md: presets stay in 50-400 us
    assert on0 <= p.on_s <= on1 and off0 <= p.off_s <= off1
    assert 1 <= p.ramp_up_s <= 8 and 1 <= p.ramp_down_s <= 8
    assert len(p.name) <= 16 and len(p.source) > 20
    if p.modulation:
        m = p.modulation
        assert p.rate_hz * (1 - m["rate_depth"]) >= r0 or p.key == "tens_mod"


def test_ranges_chosen_say_so_in_source():
    for p in programs.PRESETS:
        if p.key not in ("quad_tka", "disuse", "foot_drop"):
            assert "Ours" in p.source or "our choice" in p.source, p.key


def test_tens_burst_100hz_in_2hz_bursts():
    p = programs.preset("tens_burst")
    assert (p.rate_hz, p.burst_rate_hz) == (100, 2)
    assert p.burst_count / p.rate_hz == pytest.approx(0.1)   # ~100 ms bursts
    assert p.average_rate_hz() == 20


def test_russian_current_2500hz_carrier_in_50hz_bursts_10ms_on():
    p = programs.preset("russian")
    assert (p.rate_hz, p.burst_count, p.burst_rate_hz) == (2500, 25, 50)
    assert p.burst_count / p.rate_hz == pytest.approx(0.010)
    assert 2 * p.phase_us + p.gap_us <= 1e6 / p.rate_hz


def test_foot_drop_is_triggered_and_shoulder_reciprocal():
    assert programs.preset("foot_drop").triggered
    assert programs.preset("shoulder").mode == "reciprocal"
    assert programs.preset("tens_conv").continuous


BAD = [
    ("phase_us", 19), ("phase_us", 1001), ("rate_hz", 0.4), ("rate_hz", 201),
    ("on_s", 1.9), ("on_s", 91), ("off_s", -0.1), ("off_s", 90.5), ("ramp_up_s", 0.9),
    ("ramp_up_s", 8.1), ("ramp_down_s", 0), ("ramp_down_s", 9), ("mode", "chaos"),
    ("gap_us", -1), ("session_min", 0), ("session_min", 121), ("burst_count", 0),
    ("burst_count", 2.5), ("rate_hz", "50"), ("phase_us", True), ("triggered", 1),
    ("name", "a name much too long for the list"), ("key", "Bad Key"), ("rate_hz", float("nan")),
    ("burst_rate_hz", 5),
]


@pytest.mark.parametrize("field,value", BAD)
def test_validate_rejects_impossible_parameter(field, value):
    d = programs.custom_default().to_dict()
    d[field] = value
    with pytest.raises(ValueError) as e:
        Program.from_dict(d)
    assert str(e.value)


@pytest.mark.parametrize("change,words", [
    (dict(rate_hz=3000, burst_count=10, burst_rate_hz=2), "rate_hz"),
    (dict(rate_hz=2500, burst_count=100, burst_rate_hz=50), "burst"),
    (dict(rate_hz=2500, burst_count=25, burst_rate_hz=50, phase_us=300), "period"),
    (dict(mode="alternating", on_s=10, off_s=5), "alternating"),
    (dict(warmup_s=600, cooldown_s=600, session_min=10), "fit"),
    (dict(modulation={"rate_depth": 0.95, "width_depth": 0, "period_s": 1}), "rate_depth"),
    (dict(modulation={"bogus": 1}), "unknown"),
])
def test_validate_messages_name_the_problem(change, words):
    d = programs.custom_default().to_dict()
    d.update(change)
    with pytest.raises(ValueError, match=words):
        Program.from_dict(d)


def test_custom_phase_range_wider_than_presets():
    p = programs.custom_default()
    p.phase_us = 1000
    p.rate_hz = 20
    p.validate()
    with pytest.raises(ValueError):
        p.validate(preset=True)


def test_to_dict_from_dict_round_trip_and_independent_copies():
    for p in programs.PRESETS:
        d = p.to_dict()
        q = Program.from_dict(d)
        assert q.to_dict() == d
        if d["modulation"]:
            d["modulation"]["rate_depth"] = 0.0
            assert p.modulation["rate_depth"] != 0.0 or q.modulation is not p.modulation


def test_from_dict_rejects_unknown_and_missing_fields():
    d = programs.custom_default().to_dict()
    d["volts"] = 3
    with pytest.raises(ValueError, match="unknown"):
        Program.from_dict(d)
    d = programs.custom_default().to_dict()
    del d["rate_hz"]
    with pytest.raises(ValueError, match="missing"):
        Program.from_dict(d)
    with pytest.raises(ValueError):
        Program.from_dict([1, 2])


def test_dict_like_access():
    p = programs.preset("quad_acl")
    assert p["rate_hz"] == p.rate_hz and p.get("nothing", 3) == 3
    with pytest.raises(KeyError):
        p["nothing"]
