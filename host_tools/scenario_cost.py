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
would do anyway. The whole run's figure (first line) comes from runs without the timing
wrappers (x real time = device seconds / CPU seconds). A timed call costs a few us more (two
process_time calls), measured at start on an empty function and taken out of each part: the
share that falls between the part's two clock reads once per call, and the whole of it for
every timed call of the parts inside it.
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


def _overhead():
    """(inner, outer) seconds a timed call adds: what the wrapper counts of an empty function,
    and what the whole wrapped call costs more than the bare one."""
    class Empty:
        def f(self):
            return None

    e = Empty()
    n = 20_000
    best = None
    for _ in range(3):
        t = time.process_time()
        for _ in range(n):
            e.f()
        bare = time.process_time() - t
        acc = [0.0, 0]
        _wrap(Empty, "f", acc)
        t = time.process_time()
        for _ in range(n):
            e.f()
        wrapped = time.process_time() - t
        Empty.f = Empty.__dict__["f"].__wrapped__
        r = (acc[0] / n, max(0.0, wrapped - bare) / n)
        if best is None or r[1] < best[1]:
            best = r
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args(argv)
    whole = None
    for _ in range(a.reps):
        short = run(10_000, {})[0]  # first: it also takes the imports and first-use costs
        d = run(70_000, {})[0] - short
        whole = d if whole is None or d < whole else whole
    print("steady session, streaming outputs: %.2f ms of CPU per device second = %.1fx real time"
          % (whole / 60 * 1000, 60 / whole))
    inner, outer = _overhead()
    acc = install()
    best = None
    for _ in range(a.reps):
        short, s = run(10_000, acc)
        long_, lg = run(70_000, acc)
        if best is None or long_ - short < best[0]:
            best = (long_ - short, s, lg)
    _d, s, lg = best
    labels = list(acc)
    calls = {k: lg[k][1] - s[k][1] for k in labels}
    depth = {k: len(k) - len(k.lstrip()) for k in labels}
    print("(a timed call adds %.2f us, %.2f us of it inside the part: taken out below)" % (
        outer * 1e6, inner * 1e6))
    for i, label in enumerate(labels):
        n = calls[label]
        if not n:
            continue
        dt = lg[label][0] - s[label][0] - n * inner
        for child in labels[i + 1:]:  # the parts inside this one, up to its next sibling
            if depth[child] <= depth[label]:
                break
            dt -= calls[child] * outer
        print("%-36s %6.3f ms per device s  (%4.0f calls, %7.1f us each)" % (
            label, dt / 60 * 1000, n / 60, dt / n * 1e6))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
