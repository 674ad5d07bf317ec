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
