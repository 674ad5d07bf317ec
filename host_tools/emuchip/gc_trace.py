"""When MicroPython's garbage collector runs while the firmware runs a scenario on the emulated
chip, found from outside by sampling the CPU's program counter (nothing added to the firmware:
the timing stays exactly that of the unmodified run).

    python -m host_tools.emuchip.gc_trace                # the scenario of test_chip_firmware.py
    python -m host_tools.emuchip.gc_trace FILE.json      # a scenario JSON (host format)
        [--root DIR]      the device files of another checkout (e.g. a git worktree)
        [--version V]     the MicroPython image (default: image.DEFAULT_VERSION)
        [--json OUT]      the result (collections, frames, enable record) as JSON

How: calibrate() boots a bare MicroPython (no main.py) and samples the program counter every
10 us of emulated time (a clock alarm: no emulated cycle is spent) while the REPL runs
gc.collect() 15 times over a heap of 1,500 small lists, then while it runs code that only
allocates and code that only computes; the 32-byte blocks of code seen in the collections and in
neither of the others are the collector's (v1.28.0: 46 blocks, about 90 % of the collections'
samples). trace() runs the scenario (host_tools.emuchip.scenario.ChipRun) with the same sampler
and groups the samples that fall in those blocks: a run of them with gaps under 1 ms holding at
least 5 ms of samples is one collection, reported as (start ms, end ms, ms in the collector) on
the scenario clock. Shorter runs are the collector's helpers called elsewhere and are left out.
About 70 s of CPU for the chip test's scenario, 15 s more for the calibration.
"""
import argparse
import collections
import json
import sys

SAMPLE_NS = 10_000  # 10 us of emulated time between samples
BLOCK_SHIFT = 5  # 32-byte code blocks
GAP_MS = 1.0  # samples closer than this belong to the same collection
MIN_MS = 5.0  # a collection holds at least this much collector time (they take 20-25 ms)

_CALIBRATE_SETUP = ("import gc\n"
                    "def f2(a):\n    return a & 5\n"
                    "def ctl():\n    x = 0\n    for i in range(3000):\n"
                    "        x += (i * 3) % 7 + f2(i)\n    return x\n"
                    "L = [[i, str(i)] for i in range(1500)]\n")
_CALIBRATE_GC = "for _ in range(15):\n    gc.collect()\n"
_CALIBRATE_PLAIN = "ctl()\nctl()\n"
_CALIBRATE_ALLOC = "for i in range(400):\n    M.append([i, i])\n    M.append((i, 1, 2))\n"

_blocks = {}  # version -> frozenset of collector code blocks


class _Sampler:
    def __init__(self, chip, on_sample):
        self.chip = chip
        self.on_sample = on_sample
        self.alarm = chip.simulator.clock.create_alarm(self._fire)
        self.alarm.schedule(SAMPLE_NS)

    def _fire(self):
        self.on_sample(self.chip.mcu.core.pc >> BLOCK_SHIFT)
        self.alarm.schedule(SAMPLE_NS)


def calibrate(version=None):
    """The collector's code blocks (frozenset of pc >> 5) in the image of `version`."""
    from host_tools.emuchip import chip as chip_mod
    from host_tools.emuchip.image import DEFAULT_VERSION

    version = version or DEFAULT_VERSION
    if version in _blocks:
        return _blocks[version]
    c = chip_mod.boot(version, files={})
    hist = collections.Counter()
    on = [False]

    def sample(block):
        if on[0]:
            hist[block] += 1

    _Sampler(c, sample)

    def sampled(code):
        hist.clear()
        on[0] = True
        c.exec(code, timeout=600)
        on[0] = False
        return set(hist)

    try:
        c.exec(_CALIBRATE_SETUP)
        in_gc = sampled(_CALIBRATE_GC)
        other = sampled(_CALIBRATE_PLAIN)
        c.exec("gc.collect()\nM = []\n")  # room for the allocations: no collection in them
        other |= sampled(_CALIBRATE_ALLOC)
    finally:
        c.close()
    _blocks[version] = frozenset(in_gc - other)
    return _blocks[version]


def trace(spec, root=None, version=None, blocks=None):
    """Run spec on the chip with the sampler; the ChipRun result with "collections" added."""
    from host_tools.emuchip import scenario as cs

    blocks = calibrate(version) if blocks is None else blocks
    r = cs.ChipRun(json.loads(json.dumps(spec)), version=version, root=root)
    r._make_chip()
    w = r.board.world
    hits = []

    def sample(block):
        if block in blocks:
            hits.append(w.now)

    _Sampler(r.board.chip, sample)
    res = r.run()
    res["collections"] = collections_of(hits, r.epoch)
    return res


def collections_of(cycles, epoch):
    """[(start ms, end ms, ms of collector samples)] on the scenario clock (from the START of
    the app's display init, scenario.py; negative: during the boot and imports)."""
    runs = []
    for cy in cycles:
        t = (cy - epoch) * 8 / 1e6
        if runs and t - runs[-1][1] < GAP_MS:
            runs[-1][1] = t
            runs[-1][2] += 1
        else:
            runs.append([t, t, 1])
    per = SAMPLE_NS / 1e6
    return [(round(a, 1), round(b, 1), round(n * per, 1)) for a, b, n in runs if n * per >= MIN_MS]


def main(argv=None):
    from host_tools.emuchip.scenario import screen_name

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", nargs="?", help="scenario JSON (default: the chip test's scenario)")
    ap.add_argument("--root", default=None)
    ap.add_argument("--version", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.spec:
        with open(a.spec) as f:
            spec = json.load(f)
    else:
        from tests.test_chip_firmware import SPEC as spec
    res = trace(spec, root=a.root, version=a.version)
    out = sys.stdout
    out.write("frames (ms on the scenario clock, screen):\n")
    for t, rows in res["screens"]:
        out.write("  %6d  %s\n" % (t, screen_name(rows)))
    en = res["channels"]["1"]["enabled"]
    out.write("output enable: %s\n" % en)
    out.write("garbage collections (start ms, end ms, ms in the collector):\n")
    for c in res["collections"]:
        out.write("  %8.1f  %8.1f  %5.1f\n" % c)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"screens": res["screens"], "enabled": en,
                       "collections": res["collections"], "epoch_ms": res["epoch_ms"]}, f)


if __name__ == "__main__":
    main()
