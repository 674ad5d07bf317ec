"""Benchmarks: `make bench`. The last line printed is one JSON object with the figures.

Figures that are counts (cycles, pulses, bytes) are exact and repeatable; speed figures are
wall-time ratios and depend on the machine. docs/performance.md records them and how to reproduce
them.
"""
import json
import random
import sys
import time


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


def sim_speed(board="pico", seconds=60):
    r = _rig(board)
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


def main(argv=None):
    board = "pico"
    results = {"board": board}
    q_ns = 1e9 / 125_000_000
    err, qerr, nsets = timing_grid(board)
    results["timing_quantum_ns"] = q_ns
    results["timing_max_error_ns"] = err
    results["timing_grid_sets"] = nsets
    results["quantisation_max_error_ns"] = qerr
    print("timing: %d parameter sets, max error vs quantised request %.1f ns, request->quantum "
          "%.1f ns" % (nsets, err, qerr))
    results["update_latency_pulses"] = update_latency(board)
    print("update latency: at most %d old pulse(s) after set()" % results["update_latency_pulses"])
    stop_c = stop_latency_cycles(board)
    results["engine_stop_latency_us"] = stop_c * q_ns / 1000
    print("stop latency (engine, from the stop write): %d cycles" % stop_c)
    # ESP32 (RMT engine) beside the RP2040 figures
    eb = "esp32"
    e_err, e_qerr, e_sets = timing_grid(eb)
    q_fine, q_coarse = rmt_quantum_range(eb)
    results["esp32_timing_quantum_ns"] = q_fine
    results["esp32_timing_quantum_max_ns"] = q_coarse
    results["esp32_timing_max_error_ns"] = e_err
    results["esp32_timing_grid_sets"] = e_sets
    results["esp32_quantisation_max_error_ns"] = e_qerr
    print("esp32 timing: %d parameter sets, max error vs quantised request %.1f ns, quantum "
          "%.1f ns (up to %.1f ns for slow trains), request->quantum %.1f ns" % (
              e_sets, e_err, q_fine, q_coarse, e_qerr))
    skew, residual = rmt_skew(eb)
    results["esp32_leg_start_skew_ns"] = skew
    results["esp32_leg_skew_residual_ns"] = residual
    print("esp32 leg skew: channels start %.1f ns apart, residual after compensation %.1f ns" % (
        skew, residual))
    results["esp32_update_latency_pulses"] = update_latency(eb)
    e_stop = stop_latency_cycles(eb, n=50)
    results["esp32_stop_latency_us"] = e_stop * 12.5 / 1000
    print("esp32 update latency: at most %d old pulse(s); stop latency %d cycles" % (
        results["esp32_update_latency_pulses"], e_stop))
    speed, npulses, wall = sim_speed(board)
    results["sim_speed_x_realtime"] = round(speed, 1)
    results["sim_pulses"] = npulses
    print("sim speed: 2 channels x 100 Hz x 60 s = %d pulses in %.2f s wall: %.0fx real time" % (
        npulses, wall, speed))
    from host_tools import bench_app

    results.update(bench_app.run())  # stop_latency_us: through the STOP button
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
