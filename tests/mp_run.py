# Runs the portable tests (tests/portable/test_*.py) on the MicroPython unix port:
#     .venv/bin/micropython tests/mp_run.py          (from the repository root)
# Every module-level function whose name starts with test_ is called without arguments; a failure
# prints its traceback. The last line reads "N passed, M failed"; the exit status is 1 on failure.
import gc
import os
import sys
import time

# The unix port starts with a 2 MB heap; the edge records of the longer simulations here need
# more. Re-run this script once in a child interpreter with a bigger heap (the simulation is
# host-only: the unit itself never holds these records). Right-sized, not generous: every
# gc.collect() sweeps the whole heap, so a 256 MB heap made the allocation tests (hundreds of
# collects) take 35 s instead of 3. Measured need: 16 MB fails (the 300 random pulse sequences:
# a 512 KB edge list cannot grow in a fragmented heap), 24 MB passes; 32 MB leaves a margin.
# MP_RUN_TIMES=1 prints each test's wall time and the heap in use after it.
HEAP = "32M"
if os.getenv("MP_RUN_CHILD") is None and gc.mem_free() + gc.mem_alloc() < 24 * 1024 * 1024:
    os.putenv("MP_RUN_CHILD", "1")
    status = os.system(sys.executable + " -X heapsize=" + HEAP + " " + sys.argv[0])
    sys.exit(1 if status else 0)

PORTABLE = "tests/portable"

for p in ("tests/portable", "lib", "firmware", ""):
    if p in sys.path:
        sys.path.remove(p)
    sys.path.insert(0, p)


def main():
    t_start = time.ticks_ms()
    names = [n for n in os.listdir(PORTABLE) if n.startswith("test_") and n.endswith(".py")]
    names.sort()
    passed = 0
    failed = 0
    for fname in names:
        modname = fname[:-3]
        try:
            mod = __import__(modname)
        except Exception as e:
            failed += 1
            print("FAIL", fname, "(import)")
            sys.print_exception(e)
            continue
        tests = [n for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n))]
        tests.sort()
        for tname in tests:
            gc.collect()
            t0 = time.ticks_ms()
            try:
                getattr(mod, tname)()
                passed += 1
                if os.getenv("MP_RUN_TIMES"):
                    ms = time.ticks_diff(time.ticks_ms(), t0)
                    print("%6d ms %s.%s  heap used %d KB" % (
                        ms, modname, tname, gc.mem_alloc() // 1024))
            except Exception as e:
                failed += 1
                print("FAIL", modname + "." + tname)
                sys.print_exception(e)
    print("portable tests on the unix port: %.1f s wall" % (
        time.ticks_diff(time.ticks_ms(), t_start) / 1000))
    print("%d passed, %d failed" % (passed, failed))
    return failed


if main():
    sys.exit(1)
