"""Measured cost of the PIO engine per executed instruction (CPU time, CPython).

    python -m host_tools.sim.pio_cost

Three programs on one state machine, each run for a fixed number of cycles; the figure is CPU
time (time.process_time, so other processes on the machine do not count) over instructions
executed (PioSystem.steps), best of three:
  nop      a wrap loop of `nop`: fetch, dispatch, advance (no pin write)
  set      `set pins, 1` / `set pins, 0`: every instruction writes a pin (an edge each)
  pulse    the biphasic pulse program of tests/test_sim_rp2.py, two channels at 100 Hz:
           straight-line instructions between closed-form delay loops (what the engine runs)
These three run with the periodic-orbit fast-forward off (PioSystem.fastforward), so every
instruction is stepped. A fourth line runs `pulse` with the fast-forward on (as the simulation
does by default) and gives CPU time per simulated second and x real time instead: after one
period the state machines' state repeats and whole periods are replayed from the recorded edges.
A fifth runs `pulse` with the world looking every 5 ms, as the whole firmware does (each look a
sync: run_until), fast-forward on (the orbit goes on through the looks) and off.
The numbers beside SmCore.run in pio_core.py come from here.

    python -m host_tools.sim.pio_cost --firmware

runs the whole firmware instead (host_tools.bench.steady_spec: boot, TENS at 100 Hz on both
channels) for 10 and for 40 device seconds and prints the CPU time per device second of the
difference (so boot is left out), in total and inside PioSystem.run_until.
"""
import sys
import time

from host_tools.sim import rp2, world

PIO = rp2.PIO
SYS_HZ = 125_000_000


@rp2.asm_pio()
def _nops():
    wrap_target()  # noqa: F821 - names of the PIO DSL
    nop()  # noqa: F821
    nop()  # noqa: F821
    wrap()  # noqa: F821


@rp2.asm_pio(set_init=PIO.OUT_LOW)
def _sets():
    wrap_target()  # noqa: F821
    set(pins, 1)  # noqa: F821
    set(pins, 0)  # noqa: F821
    wrap()  # noqa: F821


@rp2.asm_pio(sideset_init=(PIO.OUT_LOW, PIO.OUT_LOW), fifo_join=PIO.JOIN_TX)
def _biphasic():
    # noqa: F821 - the PIO DSL injects these names
    wrap_target()  # noqa: F821
    mov(x, status).side(0)  # noqa: F821
    jmp(not_x, "load").side(0)  # noqa: F821
    label("slot")  # noqa: F821
    jmp(pin, "play").side(0)  # noqa: F821
    nop().side(0)[3]  # noqa: F821
    label("play")  # noqa: F821
    mov(x, y).side(1)  # noqa: F821
    label("a")  # noqa: F821
    jmp(x_dec, "a").side(1)  # noqa: F821
    mov(x, isr).side(0)  # noqa: F821
    label("g")  # noqa: F821
    jmp(x_dec, "g").side(0)  # noqa: F821
    mov(x, y).side(2)  # noqa: F821
    label("b")  # noqa: F821
    jmp(x_dec, "b").side(2)  # noqa: F821
    irq(4).side(0)  # noqa: F821
    mov(x, osr).side(0)  # noqa: F821
    label("r")  # noqa: F821
    jmp(x_dec, "r").side(0)  # noqa: F821
    wrap()  # noqa: F821
    label("load")  # noqa: F821
    pull().side(0)  # noqa: F821
    mov(y, osr).side(0)  # noqa: F821
    pull().side(0)  # noqa: F821
    mov(isr, osr).side(0)  # noqa: F821
    pull().side(0)  # noqa: F821
    jmp("slot").side(0)  # noqa: F821


def _run(kind, fastforward=False, look_ms=None):
    from host_tools.sim import pio_core

    w = world.new_world(sys_hz=SYS_HZ)
    pio_core.system_for(w).fastforward = fastforward
    if kind == "nop":
        rp2.StateMachine(0, _nops).active(1)
        cycles = 200_000
    elif kind == "set":
        rp2.StateMachine(0, _sets, set_base=5).active(1)
        cycles = 100_000
    else:
        prog = list(_biphasic)
        prog[1] = prog[2] = -1
        prog[-5] |= 3  # STATUS_SEL = 0 (TX level), STATUS_N = 3
        for ch in range(2):
            sm = rp2.StateMachine(ch, prog, sideset_base=2 + 2 * ch, jmp_pin=20)
            sm.put(300 * 125 - 1)
            sm.put(50 * 125 - 1)
            sm.put(SYS_HZ // 100 - 2 * 300 * 125 - 50 * 125 - 12)
            sm.active(1)
        w.gpio.drive_external(20, 1)
        cycles = 20 * SYS_HZ
    ps = pio_core.system_for(w)
    s0 = ps.steps
    t0 = time.process_time()
    if look_ms is None:
        w.advance_to(w.now + cycles)
    else:
        end = w.now + cycles
        step = SYS_HZ * look_ms // 1000
        while w.now + step <= end:
            w.advance_to(w.now + step)
            w.sync()
        w.advance_to(end)
    w.sync()
    dt = time.process_time() - t0
    return dt, ps.steps - s0


def measure(repeat=3):
    """{kind: (microseconds of CPU per instruction, instructions)}, best of `repeat`."""
    out = {}
    for kind in ("nop", "set", "pulse"):
        best = None
        for _ in range(repeat):
            dt, steps = _run(kind)
            us = dt / steps * 1e6
            if best is None or us < best[0]:
                best = (us, steps)
        out[kind] = best
    return out


def measure_fastforward(repeat=3, fastforward=True, look_ms=None):
    """(microseconds of CPU per simulated second, x real time) of `pulse` with the fast-forward
    on (or off), the world looking every look_ms (None: only at the end), best of `repeat`; 20
    simulated seconds each."""
    best = None
    for _ in range(repeat):
        dt, _steps = _run("pulse", fastforward, look_ms)
        if best is None or dt < best:
            best = dt
    return best / 20 * 1e6, 20 / best


def measure_firmware(short_ms=10000, long_ms=40000):
    """(ms of CPU per device second for the whole firmware, of it inside PioSystem.run_until),
    from a steady session of long_ms minus one of short_ms."""
    sys.path.insert(0, ".")
    from host_tools import bench, scenario_core
    from host_tools.sim import flash as flash_mod, pio_core

    acc = [0.0]
    orig = pio_core.PioSystem.run_until

    def timed(*a, **k):
        t = time.process_time()
        try:
            return orig(*a, **k)
        finally:
            acc[0] += time.process_time() - t

    def run(ms):
        r = scenario_core.Run(bench.steady_spec(ms), flash_factory=flash_mod.SimFlash)
        acc[0] = 0.0
        t = time.process_time()
        r.run()
        return time.process_time() - t, acc[0]

    pio_core.PioSystem.run_until = timed
    try:
        a, pa = run(short_ms)
        b, pb = run(long_ms)
    finally:
        pio_core.PioSystem.run_until = orig
    secs = (long_ms - short_ms) / 1000
    return (b - a) / secs * 1e3, (pb - pa) / secs * 1e3


def main():
    if "--firmware" in sys.argv[1:]:
        total, pio = measure_firmware()
        print("whole firmware: %.2f ms CPU per device s (%.1fx real time); PIO %.2f ms per "
              "device s" % (total, 1000 / total, pio))
        return 0
    for kind, (us, steps) in measure().items():
        print("%-6s %.3f us CPU per instruction (%d instructions)" % (kind, us, steps))
    us, x = measure_fastforward()
    print("pulse with fast-forward: %.1f us CPU per simulated second (%.0fx real time)" % (us, x))
    for ff in (True, False):
        us, x = measure_fastforward(fastforward=ff, look_ms=5)
        print("pulse, the world looking every 5 ms, fast-forward %s: %.1f us CPU per simulated "
              "second (%.0fx real time)" % ("on" if ff else "off", us, x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
