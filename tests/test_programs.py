"""firmware/programs.py: presets inside the PROGRAMS.md ranges, validation, flash round trip."""
# ruff: noqa: I001  (device modules import after tests.device_path puts firmware/ on sys.path)
import pytest

from tests import device_path  # noqa: F401

import programs
from programs import Program

# Each preset against its source's stated range (PROGRAMS.md and issue 12), the source named:
# key -> (source, rate_hz, phase_us, on_s, off_s, session_min); each a (lo, hi) range. For gait /
# hold programs on_s is the maximum on-time and off_s is unused.
RANGES = {
    "quad_acl": ("Nussbaum 2017 Table 7", (30, 50), (250, 400), (6, 10), (12, 50), (5, 30)),
    "quad_tka": ("Stevens-Lapsley, Sports Health 2021 T5", (50, 50), (250, 250), (15, 15),
                 (45, 45), (5, 30)),
    "strength": ("teaching tables", (35, 80), (200, 350), (6, 10), (30, 50), (5, 30)),
    "endurance": ("no source: our choice in Compex-style ranges", (20, 30), (250, 300), (2, 90),
                  (0, 90), (20, 30)),
    "disuse": ("Kho 2015 / Segers 2014 / Maffiuletti 2013", (8, 100), (250, 400), (5, 8),
               (10, 20), (25, 60)),
    "shoulder": ("Faghri 1994; reviews 2024", (10, 36), (200, 300), (10, 30), (2, 12), (30, 60)),
    "wrist": ("secondary sources", (20, 30), (300, 300), (2, 90), (0, 90), (30, 30)),
    "foot_drop": ("peroneal FES practice, INDISCAP 2.5/2.5 s", (25, 35), (400, 400), (2.5, 2.5),
                  (2.5, 2.5), (5, 60)),
    "spasm": ("teaching tables", (50, 50), (250, 250), (2, 5), (2, 5), (10, 30)),
    "tens_conv": ("BMC Syst Rev 2017 T1", (80, 150), (50, 250), (2, 90), (0, 0), (20, 60)),
    "tens_acu": ("BMC Syst Rev 2017 T1", (1, 5), (200, 250), (2, 90), (0, 0), (20, 30)),
    "tens_burst": ("Twin Stim / Enraf", (100, 100), (50, 300), (2, 90), (0, 0), (20, 30)),
    "tens_mod": ("Twin Stim M", (50, 150), (50, 300), (2, 90), (0, 0), (20, 30)),
    "russian": ("Kots via Ward & Shkuratova 2002", (2500, 2500), (50, 200), (10, 10), (50, 50),
                (10, 15)),
    "massage": ("no source: our choice in TENS ranges", (2, 10), (200, 250), (2, 90), (0, 0),
                (20, 20)),
    "gait_fes": ("peroneal FES practice (ODFS)", (25, 35), (400, 400), (0.5, 10), (0, 90),
                 (5, 120)),
    "sit_stand": ("no source: quadriceps ranges of PROGRAMS.md", (30, 50), (250, 400), (1, 90),
                  (0, 90), (5, 120)),
    "grasp": ("no source: wrist/hand extensor ranges", (20, 30), (300, 300), (1, 90), (0, 90),
              (5, 120)),
    "icu_multi": ("Kho 2015", (50, 50), (250, 250), (5, 5), (5, 5), (60, 60)),
    "icu_warm": ("Segers 2014", (50, 50), (300, 500), (8, 8), (20, 20), (25, 35)),
}


def test_every_preset_has_its_source_range():
    assert {p.key for p in programs.PRESETS} == set(RANGES)


@pytest.mark.parametrize("p", programs.PRESETS, ids=lambda p: p.key)
def test_preset_inside_its_source_range(p):
    p.validate(preset=True)
    src, rate, phase, on, off, minutes = RANGES[p.key]
    assert rate[0] <= p.rate_hz <= rate[1], src
    assert phase[0] <= p.phase_us <= phase[1], src
    assert 50 <= p.phase_us <= 400                      # docs/safety.md: presets stay in 50-400 us
    assert on[0] <= p.on_s <= on[1] and off[0] <= p.off_s <= off[1], src
    assert minutes[0] <= p.session_min <= minutes[1], src
    if p.trigger == "gait":
        assert 0 <= p.ramp_up_s <= 1 and 0 <= p.ramp_down_s <= 1 and 0 <= p.extend_ms <= 500
    elif p.trigger is None:
        assert 1 <= p.ramp_up_s <= 8 and 1 <= p.ramp_down_s <= 8
    assert len(p.name) <= 16 and len(p.source) > 20
    if p.modulation:
        m = p.modulation
        assert p.rate_hz * (1 - m["rate_depth"]) >= rate[0] or p.key == "tens_mod"


def test_ranges_chosen_say_so_in_source():
    for p in programs.PRESETS:
        if p.key not in ("quad_tka",):
            assert "Ours" in p.source or "our choice" in p.source, p.key


def test_unsourced_presets_say_so_on_the_unit():
    for key in ("endurance", "massage", "sit_stand", "grasp"):
        assert programs.preset(key).source.startswith("No source: our choice"), key


@pytest.mark.parametrize("p", programs.PRESETS, ids=lambda p: p.key)
def test_every_preset_carries_guidance_short_enough_for_the_screen(p):
    assert p.placement and p.position and p.intensity and p.sessions_week and p.source
    assert len(p.placement) <= 64 and len(p.position) <= 32 and len(p.intensity) <= 32
    assert len(p.sessions_week) <= 16 and type(p.seated_first) is bool
    assert p.trigger in (None, "gait", "hold")
    for word in (p.placement + " " + p.position + " " + p.intensity).split():
        assert len(word) <= 16, word                    # every word fits a row: no mid-word wrap


def test_intensity_targets_match_the_sources():
    assert programs.preset("quad_acl").intensity == programs.MAX_TOLERATED     # Nussbaum 2017
    assert programs.preset("quad_tka").intensity == programs.MAX_TOLERATED     # Stevens-Lapsley
    assert programs.preset("russian").intensity == programs.MAX_TOLERATED
    assert programs.preset("tens_conv").intensity == programs.STRONG_COMFORT


def test_shoulder_is_sync_with_a_progression_inside_faghri_and_the_30_60_min_range():
    p = programs.preset("shoulder")
    assert p.mode == "sync"                     # Faghri 1994: both muscles contract together
    steps = p.progression
    assert steps[0][1:] == (10, 12) and steps[-1][1:] == (30, 2)   # Faghri: 10/12 s -> 30/2 s
    for minutes, _on, _off in steps:
        assert 30 <= minutes <= 60
    ratios = [on / off for _, on, off in steps]
    assert ratios == sorted(ratios) and [m for m, _, _ in steps] == sorted(m for m, _, _ in steps)
    for k in range(len(steps) + 2):
        q = p.at_step(k)
        q.validate(preset=True)
        assert (q.session_min, q.on_s, q.off_s) == steps[min(k, len(steps) - 1)]
    assert p.at_step(0).placement == p.placement and p.session_min == steps[0][0]


def test_icu_multi_muscle_and_warm_up_variants():
    m = programs.preset("icu_multi")           # Kho 2015: quadriceps, TA, gastrocnemius
    assert (m.rate_hz, m.phase_us, m.on_s, m.off_s) == (50, 250, 5, 5)
    for muscle in ("quadriceps", "tibialis", "gastrocnemius"):
        assert muscle in m.placement
    w = programs.preset("icu_warm")            # Segers 2014: 5 min warm-up
    assert w.warmup_s == 300 and w.session_min * 60 - w.warmup_s == 25 * 60


def test_gait_and_hold_programs_are_switch_driven_and_the_exercise_stays_cyclic():
    g = programs.preset("gait_fes")
    assert g.trigger == "gait" and not g.triggered and g.seated_first
    assert programs.preset("sit_stand").trigger == "hold"
    assert programs.preset("grasp").trigger == "hold"
    f = programs.preset("foot_drop")
    assert f.trigger is None and not f.triggered and not f.continuous
    assert (f.on_s, f.off_s) == (2.5, 2.5)


@pytest.mark.parametrize("change,words", [
    (dict(trigger="gait", ramp_up_s=1.1), "rise"),
    (dict(trigger="gait", ramp_down_s=1.5), "fall"),
    (dict(trigger="gait", on_s=0.4), "max on-time"),
    (dict(trigger="gait", on_s=11), "max on-time"),
    (dict(trigger="gait", extend_ms=501), "extend_ms"),
    (dict(trigger="gait", extend_ms=1.5), "extend_ms"),
    (dict(trigger=None, extend_ms=100), "gait"),
    (dict(trigger="hold", on_s=0.5), "max hold"),
    (dict(trigger="walk"), "trigger"),
    (dict(trigger="gait", warmup_s=60), "warm-up"),
    (dict(trigger="gait", mode="reciprocal"), "reciprocal"),
    (dict(placement="x" * 65), "placement"),
    (dict(seated_first=1), "seated_first"),
])
def test_switch_program_limits(change, words):
    d = programs.custom_default().to_dict()
    if change.get("trigger") in ("gait", "hold"):
        d.update(ramp_up_s=0.5, ramp_down_s=0.5, on_s=2)   # a valid switch program, then:
    d.update(change)
    with pytest.raises(ValueError, match=words):
        Program.from_dict(d)


def test_a_swing_phase_can_be_expressed():
    d = programs.custom_default().to_dict()
    d.update(trigger="gait", on_s=0.5, ramp_up_s=0, ramp_down_s=0, extend_ms=0, off_s=0)
    Program.from_dict(d)                       # 0 s rise/fall, 0.5 s max on-time: accepted
    d.update(ramp_up_s=1, ramp_down_s=1, extend_ms=500, on_s=10)
    Program.from_dict(d)


def test_old_programs_file_entries_without_new_fields_still_load():
    d = programs.custom_default().to_dict()
    for k in ("trigger", "extend_ms", "placement", "position", "intensity", "sessions_week",
              "seated_first"):
        del d[k]
    p = Program.from_dict(d)
    assert p.trigger is None and p.placement == ""


@pytest.mark.parametrize("board,gap", [("pico", 1), ("esp32", 2)])
def test_russian_plays_the_engines_smallest_gap(board, gap):
    # the Pico's engine refuses a gap under DEAD_TIME_NS (1 us: both legs off); the ESP32 adds
    # its RMT skew tolerance (2 us). Neither can play 0: that would short the H-bridge.
    from tests.pulse_harness import Rig
    r = Rig(board)

    def chk(phase_us, gap_us, rate_hz, burst_count, burst_rate_hz, alternate):
        r.channel(1).quantise(phase_us, gap_us, rate_hz, burst_count, burst_rate_hz, alternate)

    p = programs.preset("russian")
    try:
        programs.set_pulse_check(chk)
        assert p.gap_us == gap
        with pytest.raises(ValueError):
            chk(p.phase_us, gap - 1, p.rate_hz, p.burst_count, p.burst_rate_hz, False)
        # current flows 2 x 198 us of every 400 us carrier period (Kots: a continuous sine)
        assert 2 * p.phase_us + p.gap_us <= 400 and 2 * p.phase_us >= 0.99 * 400
        p.validate(preset=True)
    finally:
        programs.set_pulse_check(None)
        p.gap_us = 2


def test_tens_burst_100hz_in_2hz_bursts():
    p = programs.preset("tens_burst")
    assert (p.rate_hz, p.burst_rate_hz) == (100, 2)
    assert p.burst_count / p.rate_hz == pytest.approx(0.1)   # ~100 ms bursts
    assert p.average_rate_hz() == 20


def test_russian_current_2500hz_carrier_in_50hz_bursts_10ms_on_kots_attribution():
    p = programs.preset("russian")
    assert (p.rate_hz, p.burst_count, p.burst_rate_hz) == (2500, 25, 50)
    assert p.burst_count / p.rate_hz == pytest.approx(0.010)
    assert 2 * p.phase_us + p.gap_us <= 1e6 / p.rate_hz
    assert (p.on_s, p.off_s) == (10, 50)      # Kots' scheme
    assert "Kots" in p.source and "Ward & Shkuratova" in p.source and "Nussbaum" not in p.source
    cycle = p.ramp_up_s + p.on_s + p.ramp_down_s + p.off_s
    assert (p.session_min * 60 - p.warmup_s) // cycle >= 10   # 10 contractions fit


def test_tens_conv_is_continuous():
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
