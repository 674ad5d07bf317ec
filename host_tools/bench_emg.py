"""EMG benchmarks (issue 10), for `make bench` (host_tools/bench.py calls measure()).

    emg_sample_rate_hz         EMG ADC reads per second of firmware time while an EMG-triggered
                               program runs (the whole firmware in the host simulation: the
                               muscle model counts the reads of the EMG ADC pin)
    emg_trigger_latency_ms     the muscle's scripted envelope crossing the threshold -> the first
                               non-zero DAC step of the contraction's ramp (median of 8 efforts
                               at different phases of the 10 ms loop), and its max
    emg_effort_to_ramp_ms      the effort's onset -> that DAC step (what "within 100 ms" means)
    emg_alloc_per_tick_bytes   bytes App.step allocates with EMG sampling on, on the MicroPython
                               unix port (host_tools/bench_emg_mp.py): median and max of 200 ticks
                               of an EMG program waiting for an effort, plus the sampling IRQ
                               handler (10 samples: one tick's worth) measured alone

    python -m host_tools.bench_emg [--board esp32]   prints the dict as JSON
"""
import copy
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAL = {"rest_uv": 3, "max_uv": 200, "pct": 30}
EFFORT_UV = 100
RISE_MS = 20


def _spec(board, efforts, duration_ms):
    from tests.scenario_harness import Steps

    st = Steps(1800)
    st.press("up", gap_ms=150).press("ok", gap_ms=300)  # main list -> EMG menu
    for _ in range(3):
        st.press("down", gap_ms=120)  # EMG wrist/finger
    st.press("ok", gap_ms=400).press("ok", gap_ms=400).press("ok", gap_ms=500)
    st.raise_level(10, gap_ms=120)
    t = st.t + 1000
    at = []
    for k in range(efforts):
        x = t + k * 17_300 + k * 13 % 10  # phases spread over the 10 ms loop
        st.at(x).add(0, emg={"uv": EFFORT_UV, "ms": 1000, "rise_ms": RISE_MS})
        at.append(x)
    spec = {"board": board, "duration_ms": at[-1] + duration_ms, "steps": st.steps,
            "files": {"emg.json": json.dumps(CAL)}}
    return spec, at, st


def trigger_figures(board="pico", efforts=8):
    from host_tools import scenario

    spec, at, st = _spec(board, efforts, 1500)
    run, tr = scenario.run_spec(copy.deepcopy(spec), None, png=False)
    amp = tr["channels"]["1"]["amplitude_ma"]
    rises = []
    prev = 0.0
    for t, ma in amp:
        if prev == 0 and ma > 0:
            rises.append(t)
        prev = ma
    thr = CAL["rest_uv"] + (CAL["max_uv"] - CAL["rest_uv"]) * CAL["pct"] // 100
    # the scripted envelope (rest + a linear rise of RISE_MS) reaches the threshold here
    cross = (thr - run.muscle.rest_uv) * RISE_MS / EFFORT_UV
    lat = []
    onset = []
    for x in at:
        r = [t for t in rises if t >= x][0]
        onset.append(r - x)
        lat.append(r - x - cross)
    lat.sort()
    onset.sort()
    m = run.muscle
    reads = [c for c in m.read_cycles]
    w = run.world
    span_s = (reads[-1] - reads[0]) / w.sys_hz if len(reads) > 1 else 0
    rate = (len(reads) - 1) / span_s if span_s else 0
    return {
        "emg_sample_rate_hz": round(rate, 1),
        "emg_trigger_latency_ms": round(lat[len(lat) // 2], 1),
        "emg_trigger_latency_ms_max": round(lat[-1], 1),
        "emg_effort_to_ramp_ms": onset[len(onset) // 2],
        "emg_effort_to_ramp_ms_max": onset[-1],
        "emg_efforts": len(at),
    }


def alloc_figures():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    r = subprocess.run([exe, "-X", "heapsize=64M", "host_tools/bench_emg_mp.py"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("bench_emg_mp.py failed on the unix port:\n" + r.stderr + r.stdout)
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(board="pico", unix_port=True):
    """The EMG figures as a dict (host_tools/bench.py puts them in its table and JSON)."""
    d = trigger_figures(board)
    d["emg_board"] = board
    if unix_port:
        d.update(alloc_figures())
    return d


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    board = "esp32" if "--board" in args and args[args.index("--board") + 1] == "esp32" else "pico"
    print(json.dumps(measure(board, "--no-unix-port" not in args)))


if __name__ == "__main__":
    main()
