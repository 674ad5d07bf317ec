"""Measured cost of the scenario runner's outputs and of the board models, per device second of a
steady session (CPU time, CPython).

    python -m host_tools.scenario_cost [--reps N]

Runs host_tools.scenario.run_spec (streaming pins.vcd, trace.json and one PNG per OLED frame to a
temporary folder, as `python -m host_tools.scenario FILE --out DIR` does) on the bench's steady
session (host_tools.bench.steady_spec: boot, TENS conventional 100 Hz on both channels) for 70 s
and for 10 s of device time, and gives the difference over the 60 device seconds between them,
so boot and start-up are left out. Each part is timed with time.process_time around its calls
(other processes on the machine do not count): the run with the most economical difference of
`--reps` runs (default 2) is printed. Parts nest: an indented line is included in the line above
it. The current-sense read is timed after its PIO catch-up (world.sync), which any other read
would do anyway. The whole run's figure (first line) is measured with the same wrappers in
place (they add about 0.1 ms per device second); x real time = device seconds / CPU seconds.
"""
import argparse
import functools
import os
import tempfile
import time

# (owner module, class or None, function, label); an indented label is part of the line above
PARTS = [
    ("host_tools.sim.board_pico", "PicoBoardModel", "sense_ma", "board_pico.sense_ma (a read)"),
    ("host_tools.sim.ssd1306_model", "SSD1306Model", "pixels", "ssd1306_model.pixels()"),
    ("host_tools.sim.framebuf_mod", "FrameBuffer", "fill", "framebuf fill"),
    ("host_tools.sim.framebuf_mod", "FrameBuffer", "fill_rect", "framebuf fill_rect"),
    ("host_tools.sim.framebuf_mod", "FrameBuffer", "text", "framebuf text"),
    ("host_tools.scenario_core", "Run", "_observe", "observer (every 5 ms)"),
    ("host_tools.scenario_core", "Run", "_observe_oled", "  OLED frame check"),
    ("host_tools.scenario", "FrameSink", "add", "    frame: packed copy + PNG file"),
    ("PIL.Image", "Image", "save", "      PNG encoding (PIL)"),
    ("host_tools.scenario", None, "ocr", "    OCR of the frame"),
    ("host_tools.scenario", "FrameSink", "ocr", "    OCR of the frame (packed copy)"),
    ("host_tools.scenario_core", "Recorder", "piece", "records, once a device second"),
    ("host_tools.sim.gpio", "GpioBank", "drain", "  edges handed out (drain)"),
    ("host_tools.vcd", "VcdWriter", "add", "  VCD writer"),
    ("host_tools.pulse_analysis", "Analyser", "feed", "  pulse statistics"),
]


_IN_FRAME = [0]  # > 0 inside FrameSink.add: only the frames' PNG encoding is counted


def _wrap(owner, name, acc, before=None, counted=None):
    f = getattr(owner, name)
    frame = name == "add" and getattr(owner, "__name__", "") == "FrameSink"

    @functools.wraps(f)
    def timed(*args, **kw):
        if before is not None:
            before(*args)
        if counted is not None and not counted():
            return f(*args, **kw)
        if frame:
            _IN_FRAME[0] += 1
        t = time.process_time()
        try:
            return f(*args, **kw)
        finally:
            acc[0] += time.process_time() - t
            acc[1] += 1
            if frame:
                _IN_FRAME[0] -= 1

    setattr(owner, name, timed)


def install():
    """Wrap every part present in this checkout; returns {label: [cpu s, calls]}."""
    import importlib

    acc = {}
    for mod, cls, fn, label in PARTS:
        m = importlib.import_module(mod)
        owner = getattr(m, cls, None) if cls else m
        if owner is None or getattr(owner, fn, None) is None:
            continue  # not in this version of the code
        acc[label] = [0.0, 0]
        before = counted = None
        if fn == "sense_ma":
            def before(model, *_args):
                model.world.sync()
        if fn == "save":  # the contact sheet at the end is not a frame
            def counted():
                return _IN_FRAME[0] > 0
        _wrap(owner, fn, acc[label], before, counted)
    return acc


def run(ms, acc):
    from host_tools import bench, scenario

    for v in acc.values():
        v[0] = 0.0
        v[1] = 0
    with tempfile.TemporaryDirectory(prefix="scenario-cost-") as d:
        t0 = time.process_time()
        scenario.run_spec(bench.steady_spec(ms), os.path.join(d, "out"))
        total = time.process_time() - t0
    return total, {k: tuple(v) for k, v in acc.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args(argv)
    acc = install()
    best = None
    for _ in range(a.reps):
        short, s = run(10_000, acc)
        long_, lg = run(70_000, acc)
        if best is None or long_ - short < best[0]:
            best = (long_ - short, s, lg)
    d, s, lg = best
    print("steady session, streaming outputs: %.2f ms of CPU per device second = %.1fx real time"
          % (d / 60 * 1000, 60 / d))
    for label in acc:
        dt = lg[label][0] - s[label][0]
        n = lg[label][1] - s[label][1]
        if n:
            print("%-36s %6.3f ms per device s  (%4.0f calls, %7.1f us each)" % (
                label, dt / 60 * 1000, n / 60, dt / n * 1e6))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
