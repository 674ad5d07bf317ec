"""Application benchmarks (part of `make bench`, called by host_tools/bench.py).

    button_to_screen_ms   press (first contact) -> last I2C byte of the updated frame, I2C at
                          400 kHz as the simulated bus times it; max over 12 presses
    stop_latency_us       STOP contact -> output enable low, through the button and its IRQ,
                          in the simulation (the IRQ handler runs at the edge); max over 6 stops
    heap_after_boot_kb,   on the MicroPython unix port (host_tools/bench_mp.py)
    alloc_per_loop_bytes
"""
import json
import os
import subprocess
import sys

from host_tools import scenario_core
from host_tools.sim import flash as flash_mod

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(steps, duration_ms, on_frame=None):
    spec = {"board": "pico", "duration_ms": duration_ms, "steps": steps,
            "files": {"settings.json": "{\"first_sessions_half\": false}"}}
    run = scenario_core.Run(spec, flash_factory=flash_mod.SimFlash, on_frame=on_frame)
    trace = run.run()
    return run, trace


def button_to_screen_ms():
    """Press (first contact) -> the last I2C byte of the next complete frame, in ms with the
    cycle's precision (the frame end is the bus time of its last byte, not the observer's ms)."""
    steps = []
    t = 2000
    for i in range(12):
        name = "down" if i % 4 != 3 else "up"
        steps.append({"at_ms": t, "press": name, "hold_ms": 80})
        t += 400
    frame_ends = []  # cycle of the last I2C byte of each complete frame
    holder = []

    def on_frame(_t_ms, _px):
        frame_ends.append(holder[0]._oled_end)

    spec = {"board": "pico", "duration_ms": t + 500, "steps": steps,
            "files": {"settings.json": "{\"first_sessions_half\": false}"}}
    run = scenario_core.Run(spec, flash_factory=flash_mod.SimFlash, on_frame=on_frame)
    holder.append(run)
    trace = run.run()
    w = trace.boots[0][2]
    lat = []
    for (_name, c_press, _c_rel) in run.model.presses:
        after = [c for c in frame_ends if c > c_press]
        if not after:
            raise AssertionError("no screen update after the press at cycle %d" % c_press)
        lat.append((after[0] - c_press) * 1000.0 / w.sys_hz)
    return max(lat), lat


def stop_latency_us():
    steps = []
    t = 1800
    for _ in range(9):
        steps.append({"at_ms": t, "press": "down", "hold_ms": 60})
        t += 200
    stops = []
    for k in range(6):
        for _ in range(3):
            steps.append({"at_ms": t, "press": "ok", "hold_ms": 60})
            t += 500
        for _ in range(4):
            steps.append({"at_ms": t, "press": "up", "hold_ms": 60})
            t += 150
        t += 1000 + 37 * k  # stop at different moments of the pulse train
        steps.append({"at_ms": t, "press": "stop", "hold_ms": 80})
        stops.append(t)
        t += 600
        steps.append({"at_ms": t, "press": "ok", "hold_ms": 60})  # dismiss the alert
        t += 600
    run, trace = _run(steps, t + 500)
    b = trace.board
    en = scenario_core.merged_edges(trace, b.OUTPUT_ENABLE)
    w = trace.boots[0][2]
    worst = 0
    n = 0
    for (name, c_press, _c_rel) in run.model.presses:
        if name != "stop":
            continue
        on_before = [lv for c, lv in en if c < c_press]
        if not on_before or not on_before[-1]:
            continue  # output was not on: nothing to measure
        falls = [c for c, lv in en if c >= c_press and not lv]
        worst = max(worst, falls[0] - c_press)
        n += 1
    if n == 0:
        raise AssertionError("no STOP press met a running output")
    return worst * 1e6 / w.sys_hz, n


def heap_figures():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    r = subprocess.run([exe, "-X", "heapsize=64M", "host_tools/bench_mp.py"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("bench_mp.py failed on the unix port:\n" + r.stderr + r.stdout)
    return json.loads(r.stdout.strip().splitlines()[-1])


def run():
    out = {}
    b2s, lat = button_to_screen_ms()
    out["button_to_screen_ms"] = b2s
    print("button to screen: max %.3f ms over %d presses (%s)" % (
        b2s, len(lat), ", ".join("%.2f" % x for x in lat)), file=sys.stderr)
    stop_us, n = stop_latency_us()
    out["stop_latency_us"] = stop_us
    print("STOP button to output off: max %.3f us over %d stops" % (stop_us, n), file=sys.stderr)
    heap = heap_figures()
    out["heap_after_boot_kb"] = heap["heap_after_boot_kb"]
    out["alloc_per_loop_bytes"] = heap["alloc_per_loop_bytes"]
    print("MicroPython unix port: heap after boot %.1f KB, %d bytes allocated per loop tick "
          "(median of %d; %d with the simulator's own)" % (
              heap["heap_after_boot_kb"], heap["alloc_per_loop_bytes"],
              heap["alloc_loop_ticks"], heap.get("alloc_per_loop_bytes_with_sim", -1)),
          file=sys.stderr)
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
