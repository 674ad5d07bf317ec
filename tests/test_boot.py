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
