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
# CPython the pure ones that bind it at import (safety, session) are imported with the
# simulation's `time` stand-in, then CPython's own time module is put back for pytest. An import
# hook does it on every import, not once: host_tools.sim.install forgets device modules between
# firmware boots, and a test module imported after that (pytest-xdist orders them freely) imports
# them afresh.
import time as _time  # noqa: E402

SIM_TIME_MODULES = ("safety", "session")

if not hasattr(_time, "ticks_diff"):
    import importlib.abc
    import importlib.machinery

    class _SimTimeLoader(importlib.abc.Loader):
        def __init__(self, inner):
            self.inner = inner

        def create_module(self, spec):
            return self.inner.create_module(spec)

        def exec_module(self, module):
            from host_tools.sim import simtime

            saved = sys.modules.get("time")
            sys.modules["time"] = simtime
            try:
                self.inner.exec_module(module)
            finally:
                sys.modules["time"] = saved

    class _SimTimeFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name not in SIM_TIME_MODULES or sys.modules.get("time") is not _time:
                return None  # install.load() puts the stand-in in place itself
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _SimTimeLoader(spec.loader)
            return spec

    if not any(isinstance(f, _SimTimeFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SimTimeFinder())
