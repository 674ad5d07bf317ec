# Heap figures of the firmware, measured on the MicroPython unix port (run by host_tools/bench_app):
#   heap_after_boot_kb    heap held after importing the app and building it (as main.py does),
#                         gc.collect()ed, over the simulated board set up before it
#   alloc_per_loop_bytes  bytes allocated by one main-loop tick (App.step) in steady stimulation
#                         (median of 200 ticks; the simulated ADCs hold their reading meanwhile,
#                         so the simulator's own arithmetic is not counted)
# Prints one JSON line. Run from the repo root: micropython -X heapsize=64M host_tools/bench_mp.py
# The unix port is 64-bit: objects holding pointers are about twice their RP2040 size.
import gc
import json
import sys

sys.path[:0] = ["", "firmware", "lib"]
from host_tools.sim import board_pico, install  # noqa: E402
from host_tools.sim import world as world_mod  # noqa: E402

TICKS = 200


def tick_allocations(a, w, ms, adcs, ticks=TICKS):
    """Bytes each of `ticks` App.step calls allocates: (the firmware's own, the total), both
    sorted. The simulated ADCs in `adcs` compute their reading from the pulse record (which
    allocates, in the simulator): each is held at its current reading meanwhile, so what is
    counted is the firmware's allocation. What the tick asks of the other stand-ins (pin reads,
    the watchdog) allocates in the simulator, not on a chip: measured alone in every tick and
    subtracted. (host_tools/bench_emg_mp.py uses it too.)"""
    for adc in adcs:
        adc.read_u16 = (lambda v: (lambda: v))(adc.read_u16())
    pins = [p for p in a.buttons._pins if p is not None] + [a._trigger]
    samples = []
    totals = []
    for _ in range(ticks):
        w.advance_to(w.now + 10 * ms)
        now = w.ms()
        w.sync()  # the PIO catch-up (edge records) is the simulator's, done before measuring
        gc.collect()
        gc.disable()
        m0 = gc.mem_alloc()
        for p in pins:
            p.value()
        a.wdt.feed()
        sim = gc.mem_alloc() - m0
        m1 = gc.mem_alloc()
        a.step(now)
        m2 = gc.mem_alloc()
        gc.enable()
        samples.append(m2 - m1 - sim)
        totals.append(m2 - m1)
    samples.sort()
    totals.sort()
    return samples, totals


def main(patch=None):
    w = world_mod.new_world()
    install.install(w)
    board_config = install.load("board_config")
    board = board_config.load("pico")
    model = board_pico.PicoBoardModel(w, board)
    gc.collect()
    base = gc.mem_alloc()
    import app  # noqa: F401 - what main.py imports after the safe-mode check

    if patch is not None:
        patch(app)

    a = app.App(board, root="build/bench_mp_")
    gc.collect()
    heap_after_boot = gc.mem_alloc() - base

    ms = w.sys_hz // 1000

    def run_ms(n):
        end = w.now + n * ms
        while w.now < end:
            w.advance_to(w.now + 10 * ms)
            a.step(w.ms())

    def press(name, n=1):
        for _ in range(n):
            model.press(name, 60)
            run_ms(200)

    run_ms(1700)
    while a.ui.sel < 9:  # TENS conventional: continuous 100 Hz
        press("down")
    press("ok", 3)
    run_ms(500)
    press("up", 10)
    run_ms(3000)  # past the ramp: steady stimulation at 10 mA
    stage = a.stage
    samples, totals = tick_allocations(a, w, ms, (stage._sense[1], stage._sense[2], stage._vsys))
    assert a.sup.state == "running", a.sup.state
    print(json.dumps({
        "heap_after_boot_kb": round(heap_after_boot / 1024, 3),
        "alloc_per_loop_bytes": samples[len(samples) // 2],
        "alloc_per_loop_bytes_max": samples[-1],
        "alloc_per_loop_bytes_with_sim": totals[len(totals) // 2],
        "alloc_loop_ticks": len(samples),
        "delivered_ma": a.stage.amplitude_ma(1),
    }))


if __name__ == "__main__":
    main()
