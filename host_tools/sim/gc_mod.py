# The `gc` stand-in for the firmware on CPython: MicroPython's gc API (collect, mem_free,
# mem_alloc, enable, disable, isenabled, threshold) over no heap at all. The host simulation does
# not model MicroPython's heap (the emulated RP2040 runs the real one: docs/emulated_chip.md), and
# CPython's own gc.collect() would cost the host up to a second per call with a test session's
# objects, for nothing the firmware can observe. Swapped in for CPython's gc while the firmware
# runs (scenario_core.Run._load_main), like the simulated time and flash.
#
# Common subset of CPython 3.11 and MicroPython 1.29.

HEAP_BYTES = 245888  # what MicroPython 1.28 gives the RP2040 (gc.mem_free() + gc.mem_alloc())

collections = 0  # gc.collect() calls (tests)
_enabled = True
_threshold = -1


def collect():
    global collections
    collections += 1
    return 0


def mem_alloc():
    return 0


def mem_free():
    return HEAP_BYTES


def enable():
    global _enabled
    _enabled = True


def disable():
    global _enabled
    _enabled = False


def isenabled():
    return _enabled


def threshold(amount=None):
    global _threshold
    if amount is None:
        return _threshold
    _threshold = amount
    return None
