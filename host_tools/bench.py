"""Benchmarks: `make bench`. Prints a table of measured figures, a separate table of the
configuration values they rest on, and as its last line one JSON object with both.

Every figure in "measured" comes from the simulation's records (pin edges, I2C transfers, DAC
log, counters) or from the wall clock and the kernel (speed, memory); "configuration" holds the
values that are set, not measured (board config and model constants). Counts are exact and
repeatable; speed and memory depend on the machine and its load (printed with them).

    python -m host_tools.bench            # as make bench
    python -m host_tools.bench --long     # also the 4-hour session (peak RSS), several minutes
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def progress(msg):
    """Progress on stderr (stdout is the table and the JSON line)."""
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def _rig(board="pico"):
    from tests.pulse_harness import Rig

    return Rig(board)


def timing_grid(board="pico", n_random=220, seed=1):
    """Phase, gap and period measured from edges against the quantised request, over a grid of
    extremes plus random sets. Returns (max_error_ns, max_quantisation_error_ns, n_sets)."""
    rnd = random.Random(seed)
    extremes_phase = (20, 1000)
    extremes_rate = (0.5, 200)
    sets = []
    for ph in extremes_phase:
        for rate in extremes_rate:
            for gap in (1, 1000):
                sets.append((ph, gap, rate, 1, None, False))
    sets.append((1000, 1000, 200, 1, None, True))
    sets.append((20, 1, 0.5, 1, None, True))
    sets.append((100, 1, 2500, 25, 50, False))  # burst extremes
    sets.append((20, 1, 2500, 2, 0.5, False))
    while len(sets) < n_random:
        burst = rnd.random() < 0.15
        ph = round(rnd.uniform(20, 1000), 3)
        gap = round(rnd.uniform(1, 1000), 3)
        if burst:
            rate = rnd.choice([100, 250, 1000, 2500])
            ph = min(ph, 1e6 / rate / 2.2 - 1)
            gap = min(gap, 1e6 / rate / 10)
            if ph < 20 or gap < 1:
                continue
            count = rnd.randint(2, 20)
            brate = rnd.choice([0.5, 1, 2, 5, 10, 50])
            if rate / brate <= count:
                continue
            sets.append((ph, gap, rate, count, brate, False))
        else:
            rate = round(rnd.uniform(0.5, 200), 3)
            sets.append((ph, gap, rate, 1, None, rnd.random() < 0.3))
    max_err = 0
    max_q = 0
    used = 0
    for ph, gap, rate, count, brate, alt in sets:
        r = _rig(board)
        ch = r.channel(1)
        try:
            plan = ch.set(phase_us=ph, gap_us=gap, rate_hz=rate, burst_count=count,
                          burst_rate_hz=brate, alternate=alt)
        except ValueError:
            continue  # pulse does not fit the period: not a timing case
        used += 1
        max_q = max(max_q, abs(plan.phase_ns - ph * 1000), abs(plan.gap_ns - gap * 1000))
        ch.start()
        slots = plan.burst_slots if count > 1 else 1
        r.run_cycles(plan.period_cycles * (slots + 3))
        ch.stop()
        pulses, violations = r.pulses(1)
        if violations or len(pulses) < 3:
            raise AssertionError("timing grid: %r gave %r %r" % ((ph, gap, rate), violations,
                                                                  pulses[:3]))
        ns = 1e9 / r.w.sys_hz
        for i, p in enumerate(pulses):
            max_err = max(max_err, abs(p.phase1 - plan.phase_cycles) * ns,
                          abs(p.phase2 - plan.phase_cycles) * ns,
                          abs(p.gap - plan.gap_cycles) * ns)
            if i and (count == 1 or i % count):
                max_err = max(max_err, abs(p.start - pulses[i - 1].start - plan.period_cycles) * ns)
            if count > 1 and i >= count and i % count == 0:
                dist = p.start - pulses[i - count].start
                max_err = max(max_err, abs(dist - plan.period_cycles * plan.burst_slots) * ns)
    return max_err, max_q, used


def update_latency(board="pico", n=300, seed=2):
    """Most pulses that still start with the old values after set() returned."""
    rnd = random.Random(seed)
    worst = 0
    r = _rig(board)
    ch = r.channel(1)
    plan = ch.set(phase_us=200, gap_us=50, rate_hz=200)
    ch.start()
    for k in range(n):
        r.run_cycles(rnd.randint(1, plan.period_cycles))
        new_phase = 100 + (k % 2) * 50  # alternate between two recognisable shapes
        t_put = r.w.now
        new = ch.set(phase_us=new_phase, gap_us=50, rate_hz=200)
        r.run_cycles(3 * plan.period_cycles)
        pulses, _ = r.pulses(1)
        late = [p for p in pulses if p.start >= t_put]
        old_after = 0
        for p in late:
            if p.phase1 == new.phase_cycles:
                break
            old_after += 1
        worst = max(worst, old_after)
        plan = new
    ch.stop()
    return worst


def stop_latency_cycles(board="pico", n=200, seed=3):
    """Cycles from stop() to both legs low, at random moments (inside phases, gaps and rests)."""
    rnd = random.Random(seed)
    worst = 0
    for _ in range(n):
        r = _rig(board)
        ch = r.channel(1)
        plan = ch.set(phase_us=1000, gap_us=100, rate_hz=200)
        ch.start()
        r.run_cycles(rnd.randint(1, 3 * plan.period_cycles))
        t = r.w.now
        ch.stop()
        r.run_cycles(10)
        a, b = r.legs(1)
        after = [(c, lv) for c, lv in a[1:] + b[1:] if c >= t]
        assert all(lv == 0 for _, lv in after), "a leg went high after stop()"
        low_at = max([c for c, _ in after] or [t])  # both legs low from this cycle on
        worst = max(worst, low_at - t)
    return worst


def sim_speed(board="pico", seconds=60, fastforward=True):
    """PIO-only speed: (x real time, pulses, wall s). fastforward=False: every instruction
    stepped (pio_core's periodic-orbit fast-forward off; the edges are the same)."""
    r = _rig(board)
    if board == "pico":
        from host_tools.sim import pio_core

        pio_core.system_for(r.w).fastforward = fastforward
    c1, c2 = r.channel(1), r.channel(2)
    c1.set(phase_us=300, gap_us=50, rate_hz=100)
    c2.set(phase_us=250, gap_us=50, rate_hz=100)
    t0 = time.perf_counter()
    c1.start()
    c2.start()
    r.run_cycles(r.w.sys_hz * seconds)
    c1.stop()
    c2.stop()
    wall = time.perf_counter() - t0
    pulses1, v1 = r.pulses(1)
    pulses2, v2 = r.pulses(2)
    assert not v1 and not v2
    return seconds / wall, len(pulses1) + len(pulses2), wall


def measured_quantum_ns(board="pico"):
    """The smallest step between measured phase widths: requests from 100.000 us up in 0.5 ns
    steps; each phase is measured from the recorded edges, and the quantum is the smallest
    non-zero difference between two measured widths (a measurement, not 1e9 / SYS_HZ)."""
    widths = set()
    for k in range(60):
        r = _rig(board)
        ch = r.channel(1)
        ch.set(phase_us=100 + k * 0.0005, gap_us=50, rate_hz=100)
        ch.start()
        r.run_cycles(r.w.sys_hz // 50)
        ch.stop()
        pulses, _v = r.pulses(1)
        widths.add(pulses[0].phase1 * 1e9 / r.w.sys_hz)
    ws = sorted(widths)
    return min(ws[i + 1] - ws[i] for i in range(len(ws) - 1))


def rmt_quantum_range(board="esp32"):
    """ESP32 RMT engine: (finest, coarsest) tick in ns over the request space (the engine takes
    the finest divider whose pattern fits the channel memory; slow trains need coarser ticks)."""
    r = _rig(board)
    ch = r.channel(1)
    divs = set()
    for rate in (200, 100, 50, 20, 10, 5, 2, 1, 0.5):
        for alt in (False, True):
            for ph in (20, 1000):
                divs.add(ch._choose(ph, 50, rate, 1, None, alt).div)
    for brate in (0.5, 1, 50):
        divs.add(ch._choose(100, 10, 2500, 5, brate, False).div)
    ns = 1e9 / r.w.sys_hz
    return min(divs) * ns, max(divs) * ns


def rmt_skew(board="esp32"):
    """ESP32 RMT engine: (start skew between the leg channels in ns, residual skew in ns after the
    engine's compensation) measured on the recorded edges of the simulated RMT."""
    r = _rig(board)
    ch = r.channel(1)
    plan = ch.set(phase_us=300, gap_us=50, rate_hz=100)
    ch.start()
    start_a = ch._rmt_a._tx["start"]
    start_b = ch._rmt_b._tx["start"]
    r.run_cycles(plan.period_cycles * 3)
    ch.stop()
    a, b = r.legs(1)
    rise_a = [c for c, lv in a[1:] if lv == 1][0]
    rise_b = [c for c, lv in b[1:] if lv == 1][0]
    ns = 1e9 / r.w.sys_hz
    residual = rise_b - rise_a - plan.phase_cycles - plan.gap_cycles
    return (start_b - start_a) * ns, residual * ns


def steady_spec(duration_ms):
    """A steady session: boot, start TENS conventional (continuous 100 Hz on both channels),
    raise channel 1 eight steps, then nothing but the session for the rest of the time."""
    from tests import scenario_harness as sh

    st = sh.Steps()
    st.start_program(sh.TENS_CONV).raise_level(8)
    spec = sh.spec(st, duration_ms, board="pico")
    spec["files"] = {"settings.json": "{\"first_sessions_half\": false}"}
    return spec


def scenario_run(duration_s, png=True, every_tick=False):
    """The scenario runner (python -m host_tools.scenario, streaming to a temporary folder) in a
    fresh process on a steady session: its own report of wall time, x real time, peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-scenario-") as d:
        path = os.path.join(d, "steady.json")
        with open(path, "w") as f:
            json.dump(steady_spec(int(duration_s * 1000)), f)
        cmd = [sys.executable, "-m", "host_tools.scenario", path, "--out", os.path.join(d, "out")]
        if not png:
            cmd.append("--no-png")
        if every_tick:
            cmd.append("--every-tick")
        r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("scenario run failed: %s" % r.stdout)
        return json.loads(r.stdout.strip().splitlines()[-1])


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


# (key, unit, what it is) of each measured figure, in table order
MEASURED = [
    ("timing_quantum_ns", "ns", "smallest step between measured phase widths (RP2040, PIO)"),
    ("timing_max_error_ns", "ns", "max |measured - quantised request| over the timing grid"),
    ("timing_grid_sets", "sets", "parameter sets in that grid"),
    ("quantisation_max_error_ns", "ns", "max |request - quantised plan| over the grid"),
    ("update_latency_pulses", "pulses", "old pulses after set() returned, 300 updates"),
    ("engine_stop_latency_us", "us", "stop() write to both legs low, 200 random moments"),
    ("esp32_timing_quantum_ns", "ns", "smallest step between measured phase widths (ESP32 RMT)"),
    ("esp32_timing_quantum_max_ns", "ns", "coarsest tick the RMT engine picks (slow trains)"),
    ("esp32_timing_max_error_ns", "ns", "max |measured - quantised request|, ESP32 grid"),
    ("esp32_timing_grid_sets", "sets", "parameter sets in that grid"),
    ("esp32_quantisation_max_error_ns", "ns", "max |request - quantised plan|, ESP32"),
    ("esp32_leg_start_skew_ns", "ns", "leg B's RMT start after leg A's, recorded by the sim RMT"
     " (follows esp32_model_write_pulses_ns)"),
    ("esp32_leg_skew_residual_ns", "ns", "leg B's first rise - leg A's - phase - gap"),
    ("esp32_update_latency_pulses", "pulses", "old pulses after set(), ESP32"),
    ("esp32_stop_latency_us", "us", "stop() to both legs low, ESP32"),
    ("pio_sim_x_realtime", "x", "PIO-only: 2 channels x 100 Hz x 60 s, device time / wall"),
    ("pio_sim_pulses", "pulses", "pulses measured from the edges of that run"),
    ("pio_sim_wall_s", "s", "wall time of that run"),
    ("pio_sim_x_realtime_stepwise", "x", "the same with the fast-forward off (every instruction"
     " stepped)"),
    ("firmware_sim_x_realtime", "x", "whole firmware, steady 10-minute session, device / wall"),
    ("firmware_sim_wall_s", "s", "wall time of that run (streaming VCD, trace.json, PNGs)"),
    ("firmware_sim_ticks_left_out_pct", "%", "loop ticks of that run left out as quiet"),
    ("firmware_sim_x_realtime_every_tick", "x", "the same run with every loop tick run"
     " (--every-tick)"),
    ("firmware_sim_30min_wall_s", "s", "wall time of a steady 30-minute session, same outputs"),
    ("peak_rss_mb_10s", "MB", "peak RSS of the scenario runner, 10 s steady session"),
    ("peak_rss_mb_10min", "MB", "... 10-minute steady session"),
    ("peak_rss_mb_4h", "MB", "... 4-hour steady session (--long only)"),
    ("firmware_sim_x_realtime_4h", "x", "whole firmware over the 4-hour session (--long only)"),
    ("button_to_screen_ms", "ms", "first contact -> last I2C byte of the new frame, max of 12"),
    ("stop_latency_us", "us", "STOP contact -> output enable low, max of 6"),
    ("heap_after_boot_kb", "KB", "heap held after boot, MicroPython unix port (64-bit)"),
    ("alloc_per_loop_bytes", "bytes", "allocated per steady App.step, unix port (median)"),
    ("emg_sample_rate_hz", "Hz", "EMG ADC reads per second of firmware time (EMG program)"),
    ("emg_trigger_latency_ms", "ms", "envelope over the threshold -> first ramp DAC step (median)"),
    ("emg_trigger_latency_ms_max", "ms", "... max of the efforts"),
    ("emg_effort_to_ramp_ms", "ms", "effort onset -> first ramp DAC step, median"),
    ("emg_alloc_per_tick_bytes", "bytes", "allocated per App.step with EMG sampling on, unix port"),
    ("emg_alloc_sample_irq_bytes", "bytes", "allocated by the EMG sampling IRQ handler, unix port"),
    ("load_average_1min", "", "1-minute load average when the speed figures were taken"),
]


def table(rows):
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    out = []
    for k, v, unit, what in [(r[0], r[1], r[2], r[3]) for r in rows]:
        out.append("  %-*s  %*s %-6s %s" % (w0, k, w1, v, unit, what))
    return "\n".join(out)


def fmt(v):
    """Six significant digits for the table (the JSON line keeps every digit)."""
    if isinstance(v, float):
        return "%.6g" % v
    return str(v)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    long_run = "--long" in argv
    board = "pico"
    m = {}
    steps = 12 + (1 if long_run else 0)
    n = [0]

    def step(what):
        n[0] += 1
        progress("[%d/%d] %s" % (n[0], steps, what))

    step("RP2040 engine: timing grid, quantum, update and stop latency")
    err, qerr, nsets = timing_grid(board)
    m["timing_quantum_ns"] = measured_quantum_ns(board)
    m["timing_max_error_ns"] = err
    m["timing_grid_sets"] = nsets
    m["quantisation_max_error_ns"] = qerr
    m["update_latency_pulses"] = update_latency(board)
    m["engine_stop_latency_us"] = stop_latency_cycles(board) * 1e6 / 125_000_000
    step("ESP32 engine: timing grid, quantum, skew, latencies")
    eb = "esp32"
    e_err, e_qerr, e_sets = timing_grid(eb)
    _q_fine, q_coarse = rmt_quantum_range(eb)
    m["esp32_timing_quantum_ns"] = measured_quantum_ns(eb)
    m["esp32_timing_quantum_max_ns"] = q_coarse
    m["esp32_timing_max_error_ns"] = e_err
    m["esp32_timing_grid_sets"] = e_sets
    m["esp32_quantisation_max_error_ns"] = e_qerr
    skew, residual = rmt_skew(eb)
    m["esp32_leg_start_skew_ns"] = skew
    m["esp32_leg_skew_residual_ns"] = residual
    m["esp32_update_latency_pulses"] = update_latency(eb)
    m["esp32_stop_latency_us"] = stop_latency_cycles(eb, n=50) * 12.5 / 1000
    step("PIO-only simulation speed (60 s of two 100 Hz channels)")
    m["load_average_1min"] = load_average()
    speed, npulses, wall = sim_speed(board)
    m["pio_sim_x_realtime"] = speed
    m["pio_sim_pulses"] = npulses
    m["pio_sim_wall_s"] = wall
    m["pio_sim_x_realtime_stepwise"] = sim_speed(board, fastforward=False)[0]
    step("scenario runner: 10 s steady session (peak RSS)")
    m["peak_rss_mb_10s"] = scenario_run(10)["peak_rss_mb"]
    step("scenario runner: 10-minute steady session (speed, peak RSS)")
    r = scenario_run(600)
    m["peak_rss_mb_10min"] = r["peak_rss_mb"]
    m["firmware_sim_x_realtime"] = r["x_realtime"]
    m["firmware_sim_wall_s"] = r["wall_s"]
    m["firmware_sim_ticks_left_out_pct"] = round(100 * r["ticks_left_out"] / 60000, 1)
    step("scenario runner: the same with every loop tick run")
    m["firmware_sim_x_realtime_every_tick"] = scenario_run(600, every_tick=True)["x_realtime"]
    step("scenario runner: 30-minute steady session")
    m["firmware_sim_30min_wall_s"] = scenario_run(1800)["wall_s"]
    if long_run:
        step("scenario runner: 4-hour steady session (peak RSS)")
        r = scenario_run(4 * 3600)
        m["peak_rss_mb_4h"] = r["peak_rss_mb"]
        m["firmware_sim_x_realtime_4h"] = r["x_realtime"]
    from host_tools import bench_app

    step("the unit as a whole: button to screen, STOP, heap (unix port)")
    m.update(bench_app.run())
    from host_tools import bench_emg

    step("EMG: sample rate, trigger latency, allocation (host_tools/bench_emg.py)")
    m.update(bench_emg.measure(board))
    step("emulated RP2040 (host_tools/bench_chip.py)")
    chip = chip_figures()
    step("done")
    from host_tools.sim import esp32 as esp32_sim

    config = {
        "pio_clock_hz": 125_000_000,
        "esp32_rmt_source_hz": 80_000_000,
        "esp32_model_write_pulses_ns": esp32_sim.WRITE_PULSES_NS,
        "esp32_rmt_start_skew_ns": _board_value("esp32_devkitc", "RMT_START_SKEW_NS"),
        "app_tick_ms": 10,
        "i2c_hz": _board_value("pico", "I2C_HZ"),
    }
    config_what = {
        "pio_clock_hz": "the board config's system clock (PIO divider 1)",
        "esp32_rmt_source_hz": "APB clock the simulated RMT counts",
        "esp32_model_write_pulses_ns": "model assumption: CPU time of one write_pulses() call",
        "esp32_rmt_start_skew_ns": "board config: leg B's calibrated start skew",
        "app_tick_ms": "main loop tick of the firmware",
        "i2c_hz": "OLED bus clock in the board config (the bus time of every transfer)",
    }
    rows = [(k, fmt(m[k]), unit, what) for k, unit, what in MEASURED if k in m]
    print("Measured (simulation records, wall clock, kernel):")
    print(table(rows))
    print("Configuration values (set, not measured):")
    print(table([(k, fmt(v), "", config_what[k]) for k, v in config.items()]))
    if chip:
        from host_tools import bench_chip

        print("Measured on the emulated RP2040 (host_tools/bench_chip.py; docs/emulated_chip.md):")
        if hasattr(bench_chip, "table"):
            print(bench_chip.table(chip))
        else:
            print(table([(k, fmt(v), "", "") for k, v in chip.items()]))
    out = {"board": board, "measured": m, "configuration": config}
    if chip:
        out["emulated_rp2040"] = chip
    print(json.dumps(out))
    return 0


def _board_value(name, key):
    from host_tools.sim import install

    _w, b = install.board_world(name)
    return getattr(b, key)


def chip_figures():
    """Figures measured on the emulated RP2040 (host_tools/bench_chip.py, when present)."""
    try:
        from host_tools import bench_chip
    except ImportError:
        return {}
    return bench_chip.measure()


if __name__ == "__main__":
    sys.exit(main())
