# Puts firmware/ and lib/ on sys.path and makes `micropython` importable (the sim's stand-in on
# CPython), so pure device modules (programs, session, safety, settings) import directly:
#     from tests import device_path  # noqa: F401
# Common subset of CPython and MicroPython (no os.path).
import sys


def _root():
    f = __file__                    # <root>/tests/device_path.py
    i = f.rfind("/tests/")
    if i < 0:
        return "" if f.startswith("tests/") or "/" not in f else "."
    return f[:i]


ROOT = _root()
for _d in ("lib", "firmware"):
    _p = (ROOT + "/" + _d) if ROOT else _d
    if _p not in sys.path:
        sys.path.insert(0, _p)

try:
    import micropython  # noqa: F401
except ImportError:
    from host_tools.sim import micropython_mod

    sys.modules["micropython"] = micropython_mod

# Device modules use MicroPython's time API (ticks_diff, ticks_add) with no CPython fallback: on
# CPython the pure ones (safety, session) are imported here once with the simulation's `time`
# stand-in, then CPython's own time module is put back for pytest.
import time as _time  # noqa: E402

if not hasattr(_time, "ticks_diff"):
    from host_tools.sim import simtime as _simtime

    sys.modules["time"] = _simtime
    try:
        import safety  # noqa: F401
        import session  # noqa: F401
    finally:
        sys.modules["time"] = _time
