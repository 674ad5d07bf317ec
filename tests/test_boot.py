"""Boot: the app starts on a normal power-on; BACK held at power-on gives safe mode (the app does
not start, the REPL stays free, nothing can enable the output)."""
from tests.scenario_harness import Steps, enabled, events, run, spec


def test_normal_boot_shows_the_splash_then_the_program_list():
    _, r = run(spec(Steps(), 2500))
    texts = ["\n".join(t) for _, t in r["screens"]]
    assert any("NMES handheld" in t for t in texts)
    assert any("Programs" in t for t in texts)
    assert all(on is False for _, on in enabled(r))


def test_back_held_at_power_on_is_safe_mode():
    s = Steps().at(0).press("back", hold_ms=2500, gap_ms=3000)
    s.press("ok").press("ok").press("ok").press("up").press("up")
    run_obj, r = run(spec(s, s.t + 1000))
    assert r["screens"] == [] or all(t == [] for _, t in r["screens"])  # the app never drew
    assert all(on is False for _, on in enabled(r))
    assert all(ma == 0.0 for _, ma in r["channels"]["1"]["amplitude_ma"])
    assert not [e for e in events(r, "screen")]  # no UI running
    assert not events(r, "sim_error")


def test_the_pico_config_refuses_a_pico_w_at_boot(monkeypatch):
    """A Pico W flashed by hand (not through make flash): board_config.load() refuses the plain
    Pico config, whose USB (GP24) and battery (GP29) sensing would read the wireless chip's
    pins; main.py stops there with the message on the console, before the app starts."""
    import sys

    import pytest

    import board_config

    monkeypatch.setattr(sys.implementation, "_machine", "Raspberry Pi Pico W with RP2040",
                        raising=False)
    with pytest.raises(ValueError) as ei:
        board_config.load("pico")
    assert str(ei.value) == (
        "board_config/pico.py is not for a Raspberry Pi Pico W with RP2040: on it GP24 (VBUS "
        "sense) and GP29 (VSYS/3) belong to the wireless chip, so the USB lockout and the battery "
        "cut-off would read the wrong signals. Use a Pico without W (docs/flashing.md).")
    monkeypatch.setattr(sys.implementation, "_machine", "Raspberry Pi Pico 2 W with RP2350")
    with pytest.raises(ValueError):
        board_config.load("pico")
    monkeypatch.setattr(sys.implementation, "_machine", "Raspberry Pi Pico with RP2040")
    assert board_config.load("pico").NAME == "pico"


def test_the_boot_collects_the_import_garbage_once_before_the_loop_on_micropythons_gc():
    """startup.main() runs gc.collect() once after App() (the heap after the imports is nearly
    full of garbage, docs/performance.md). On the host the firmware sees MicroPython's gc API
    over no heap (host_tools/sim/gc_mod.py), never CPython's gc, which is back afterwards; safe
    mode starts no app and collects nothing."""
    import gc as cpython_gc
    import sys

    from host_tools.sim import gc_mod

    n0 = gc_mod.collections
    s = Steps().at(3000).add(hang=True, gap_ms=1500)  # the watchdog resets the unit
    _, r = run(spec(s, s.t))
    assert [e["reason"] for e in events(r, "boot")] == ["power_on", "watchdog"]
    assert gc_mod.collections - n0 == 2  # one per boot
    assert sys.modules["gc"] is cpython_gc
    n0 = gc_mod.collections
    run(spec(Steps().at(0).press("back", hold_ms=1500, gap_ms=2000), 2000))
    assert gc_mod.collections == n0


def test_the_emg_modules_load_when_the_emg_menu_first_opens_not_at_boot():
    """The EMG input and its menu (lib/emg.py, emg_ui, emg_session, emg_screens: 15 % of the
    RP2040's boot) are built at the EMG menu's first opening (App._make_emg); a unit that never
    opens it never loads them. The menu opens as before, and again from the built controller."""
    import sys

    EMG_MODULES = ("emg", "emg_ui", "emg_session", "emg_screens")
    _, r = run(spec(Steps().at(1700).press("down"), 2500))  # the list: not the EMG menu
    assert any("Programs" in rows[0] for _, rows in r["screens"] if rows)
    assert [m for m in EMG_MODULES if m in sys.modules] == []
    s = Steps().at(1700).press("up").press("ok", gap_ms=300).press("back").press("ok")
    _, r = run(spec(s, s.t + 300))
    heads = [rows[0] for _, rows in r["screens"] if rows]
    assert heads.count("EMG") == 2, heads  # opened, left, opened again
    assert [m for m in EMG_MODULES if m not in sys.modules] == []
