# EMG allocation figures on the MicroPython unix port (run by host_tools/bench_emg.py):
#   emg_alloc_per_tick_bytes      App.step with EMG sampling on: an EMG-triggered program waiting
#                                 for an effort (median of 200 ticks; _max the worst tick, which
#                                 includes the 10 Hz redraw of the run screen's EMG row)
#   emg_alloc_sample_irq_bytes    the sampling IRQ handler, 10 calls (one tick's worth of samples)
# The simulated ADCs (the EMG one included) hold their reading while measuring, so the
# simulator's own float arithmetic is not counted (as host_tools/bench_mp.py does).
# Prints one JSON line. Run from the repo root:
#     micropython -X heapsize=64M host_tools/bench_emg_mp.py
import gc
import json
import sys

sys.path[:0] = ["", "firmware", "lib"]
from host_tools.bench_mp import tick_allocations  # noqa: E402
from host_tools.sim import board_pico, install  # noqa: E402
from host_tools.sim import world as world_mod  # noqa: E402


def main():
    w = world_mod.new_world()
    install.install(w)
    board_config = install.load("board_config")
    board = board_config.load("pico")
    model = board_pico.PicoBoardModel(w, board)
    # a cheap resting EMG (a few uV of noise around the bias) instead of host_tools/sim/muscle.py,
    # whose artefact model costs the unix port a PIO catch-up per sample: the figures here are
    # allocations, and the blanking arithmetic runs the same on the pulse plan either way
    lcg = [12345]

    def rest_emg(cycle):
        lcg[0] = (lcg[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return 1.65 + ((lcg[0] >> 16) % 9 - 4) * 0.0008

    w.adc_source[board.EMG_ADC] = rest_emg
    import os

    for d in ("build", "build/bench_emg_"):
        try:
            os.mkdir(d)
        except OSError:
            pass
    f = open("build/bench_emg_/emg.json", "w")
    f.write(json.dumps({"rest_uv": 3, "max_uv": 200, "pct": 30}))
    f.close()
    app = install.load("app")  # with the simulation's time: the EMG IRQ reads ticks_us()

    a = app.App(board, root="build/bench_emg_")
    ms = w.sys_hz // 1000

    def run_ms(n):
        end = w.now + n * ms
        while w.now < end:
            w.advance_to(w.now + 10 * ms)
            a.step(w.ms())

    def press(name, n=1, gap=200):
        for _ in range(n):
            model.press(name, 60)
            run_ms(gap)

    run_ms(1700)
    while a.ui.lines()[0] != "Programs":  # the splash (and any notice) first
        press("back")
    press("up")
    press("ok")  # EMG menu
    press("down", 3)  # EMG wrist/finger
    press("ok", 3, 500)  # detail, check, start
    press("up", 5, 150)
    run_ms(1000)
    assert a.emg.running, ("EMG sampling is not on", a.ui.lines())
    assert a.emgc.run_line()[:3] == "try", a.emgc.run_line()
    stage = a.stage
    samples, _totals = tick_allocations(
        a, w, ms, (stage._sense[1], stage._sense[2], stage._vsys, a.emg._adc))
    # the IRQ handler alone: ten samples (the simulated clock stands still: the same ticks_us)
    e = a.emg
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    for _ in range(10):
        e._sample(None)
    irq = gc.mem_alloc() - m0
    gc.enable()
    print(json.dumps({
        "emg_alloc_per_tick_bytes": samples[len(samples) // 2],
        "emg_alloc_per_tick_bytes_max": samples[-1],
        "emg_alloc_sample_irq_bytes": irq,
        "emg_alloc_ticks": len(samples),
        "emg_samples_taken": e.samples,
    }))


if __name__ == "__main__":
    main()
