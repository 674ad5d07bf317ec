# Puts the stand-ins into sys.modules under their MicroPython names and imports device modules
# with them in place.
#
#   from host_tools.sim import install, world
#   w = world.new_world()
#   app = install.load("app")        # fresh import of firmware/app.py with the stand-ins
#
# After load(), CPython's own `time` is back in sys.modules (pytest and the host keep working);
# device modules keep the stand-ins they imported at top level. machine, rp2, micropython (and
# framebuf on CPython) stay installed. On MicroPython the same happens: the built-in modules are
# shadowed by pre-filling sys.modules, which `import` honours.
#
# Common subset of CPython 3.11 and MicroPython 1.29.

import sys

from host_tools.sim import world as _world

_IS_MPY = sys.implementation.name == "micropython"

STANDIN_NAMES = ("machine", "rp2", "micropython", "time", "framebuf", "esp32")
_SIM_PREFIX = "host_tools"

_loaded = []  # module names brought in by the previous load()
_saved_time = []
_saved_os = []


def _repo_root():
    f = __file__
    # .../host_tools/sim/install.py -> ...
    for _ in range(3):
        i = f.rfind("/")
        if i < 0:
            f = ""
            break
        f = f[:i]
    return f


def _standins():
    from host_tools.sim import machine as _machine
    from host_tools.sim import micropython_mod as _mp
    from host_tools.sim import simtime as _time

    mods = {"machine": _machine, "micropython": _mp, "time": _time}
    try:
        from host_tools.sim import rp2 as _rp2

        mods["rp2"] = _rp2
    except ImportError as e:
        # rp2.py is written separately; without it `import rp2` fails in device code
        if "rp2" not in str(e):
            raise
    from host_tools.sim import esp32 as _esp32

    mods["esp32"] = _esp32
    if not _IS_MPY:
        try:
            from host_tools.sim import framebuf_mod as _fb

            mods["framebuf"] = _fb
        except ImportError as e:
            if "framebuf" not in str(e):
                raise
    return mods


def install(w=None, flash=None):
    """Make w (default: the current world, created if needed) current and put the stand-ins
    into sys.modules. Returns the world.

    flash (a host_tools.sim.flash.SimFlash, CPython only) is remembered on the world
    (w.flash): from then on load() imports device modules with flash.os as `os` (swapped in
    during the import like `time`, restored after) and sets each loaded module's global `open`
    to flash.open. Without a flash nothing about `os` or `open` changes."""
    if w is None:
        w = _world.current()
    else:
        _world.set_current(w)
    if flash is not None:
        w.flash = flash
    mods = _standins()
    cur = sys.modules.get("time")
    if cur is not mods["time"]:
        # remember the interpreter's own time (None: not in sys.modules, e.g. MicroPython)
        while _saved_time:
            _saved_time.pop()
        _saved_time.append(cur)
    for name in mods:
        sys.modules[name] = mods[name]
    if not hasattr(sys, "print_exception"):
        sys.print_exception = _print_exception  # MicroPython's, for device code on CPython
    return w


def _print_exception(exc, file=None):
    import traceback

    if file is None:
        file = sys.stdout
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=file)


def restore_time():
    """Put CPython's (or MicroPython's built-in) time back."""
    if not _saved_time:
        return
    real = _saved_time.pop()
    if real is None:
        if "time" in sys.modules:
            del sys.modules["time"]
    else:
        sys.modules["time"] = real


def _install_os(w):
    fl = getattr(w, "flash", None)
    if fl is None:
        return None
    cur = sys.modules.get("os")
    if cur is not fl.os:
        while _saved_os:
            _saved_os.pop()
        _saved_os.append(cur)
    sys.modules["os"] = fl.os
    return fl


def restore_os():
    """Put the interpreter's own os back (after a load() with a flash)."""
    if not _saved_os:
        return
    real = _saved_os.pop()
    if real is None:
        if "os" in sys.modules:
            del sys.modules["os"]
    else:
        sys.modules["os"] = real


def uninstall():
    """Remove every stand-in from sys.modules and restore time."""
    restore_time()
    restore_os()
    for name in STANDIN_NAMES:
        if name != "time" and name in sys.modules:
            m = sys.modules[name]
            n = getattr(m, "__name__", "")
            if n.startswith(_SIM_PREFIX):
                del sys.modules[name]


def _add_paths(paths):
    root = _repo_root()
    for p in reversed(paths):
        if p == ".":
            full = root if root else ""
        elif p.startswith("/") or not root:
            full = p
        else:
            full = root + "/" + p
        if full not in sys.path:
            sys.path.insert(0, full)


_DEVICE_DIRS = ("/firmware/", "/lib/", "/board_config/")


def forget_device_modules():
    """Drop the modules the previous load() imported, and any other device module (firmware/,
    lib/, board_config/) someone imported directly, so the next import is fresh: a device module
    left over from another test could hold another world's stand-ins or flash."""
    while _loaded:
        name = _loaded.pop()
        if name in sys.modules:
            del sys.modules[name]
    root = _repo_root()
    prefixes = [root + d for d in _DEVICE_DIRS]
    rel = [d[1:] for d in _DEVICE_DIRS]  # modules imported through relative sys.path entries
    pres = prefixes + rel
    if _IS_MPY:
        for name in list(sys.modules.keys()):
            f = getattr(sys.modules[name], "__file__", None) or ""
            for pre in pres:
                if f.startswith(pre):
                    del sys.modules[name]
                    break
        return
    pres = tuple(pres)  # CPython: str.startswith takes them all in one call
    mods = sys.modules
    for name in [n for n, m in list(mods.items())
                 if (getattr(m, "__file__", None) or "").startswith(pres)]:
        del mods[name]


_code_cache = {}  # (file, mtime_ns, size) -> code object of a device module (CPython)
_code_finder = []  # the finder that fills it, once installed
_code_dirs = []  # folders whose modules it caches (the device folders)
_device_names = set()  # module names found in them


def _cache_code():
    """CPython: device modules' compiled code is kept in memory between loads (a new boot of the
    firmware imports 25 modules again). Each load still executes every module body afresh into
    a new module object, so no state carries over; only reading, unmarshalling (or compiling)
    the same file is left out. A file changed on disk (mtime or size) is read again. Installed
    just before the path finder, so finders put ahead of it (tests/device_path.py) still see
    every import first."""
    if _IS_MPY or _code_finder:
        return
    import importlib.machinery as _mach
    import os as _os

    if not _code_dirs:
        _code_dirs.extend(_repo_root() + d for d in _DEVICE_DIRS)

    class _CachedLoader(_mach.SourceFileLoader):
        def get_code(self, fullname):
            st = _os.stat(self.path)
            key = (self.path, st.st_mtime_ns, st.st_size)
            code = _code_cache.get(key)
            if code is None:
                code = super().get_code(fullname)
                _code_cache[key] = code
            return code

    class _CachedFinder:
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            spec = _mach.PathFinder.find_spec(name, path, target)
            if spec is None or type(spec.loader) is not _mach.SourceFileLoader:
                return spec
            origin = spec.origin or ""
            if origin.startswith(tuple(_code_dirs)):
                spec.loader = _CachedLoader(spec.loader.name, spec.loader.path)
                _device_names.add(name)
            return spec

    class _FrontFinder:
        """First in sys.meta_path during load(): a name that was a device module before is
        looked up by the path finder at once (the finders ahead of it - pytest's assertion
        rewriter, tests/device_path.py's, the builtin and frozen importers - decline device
        modules, the latter two because a builtin name never reaches the path finder). A name
        that no longer resolves to a device file is left to them."""

        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name not in _device_names:
                return None
            spec = _CachedFinder.find_spec(name, path, target)
            if spec is None or type(spec.loader) is not _CachedLoader:
                return None
            return spec

    mp = sys.meta_path
    i = mp.index(_mach.PathFinder) if _mach.PathFinder in mp else len(mp)
    mp.insert(i, _CachedFinder)
    _code_finder.append(_CachedFinder)
    _code_finder.append(_FrontFinder)


def load(modname, paths=("firmware", "lib", "."), w=None):
    """Import device module modname freshly with the stand-ins installed; returns the module.
    Modules imported by the previous load() are dropped first (fresh state every call)."""
    _cache_code()
    forget_device_modules()
    if modname in sys.modules:
        del sys.modules[modname]
    _add_paths(paths)
    w = install(w)
    fl = _install_os(w)  # only with a flash (install(w, flash=...)): its os during the import
    before = set(sys.modules.keys())
    new = []
    front = None
    if _code_finder and _code_finder[1] not in sys.meta_path:
        front = _code_finder[1]
        sys.meta_path.insert(0, front)
    try:
        __import__(modname)
        mod = sys.modules[modname]
    finally:
        if front is not None and front in sys.meta_path:
            sys.meta_path.remove(front)
        for name in sys.modules.keys():
            if name in before or name in STANDIN_NAMES or name.startswith(_SIM_PREFIX):
                continue
            _loaded.append(name)
            new.append(name)
        if modname not in _loaded:
            _loaded.append(modname)
        restore_time()
        if fl is not None:
            restore_os()
    if fl is not None:
        # a module attribute `open` shadows the builtin for the code of that module
        for name in new + [modname]:
            m = sys.modules.get(name)
            if m is not None and name != "os":
                m.open = fl.open
    return mod


BOARD_ALIASES = {"esp32": "esp32_devkitc"}


def board_world(board_name="pico"):
    """A fresh world shaped for a board (its clock, GPIO count, chip flavour), with the stand-ins
    installed; returns (world, board module). The board config names the world's time base:
    SIM_HZ (default SYS_HZ), GPIO_COUNT (default 30), CHIP ("rp2040" / "esp32"); on the ESP32
    the cycle is the 80 MHz RMT source clock and machine.freq() reports SYS_HZ (the CPU)."""
    board_name = BOARD_ALIASES.get(board_name, board_name)
    w = _world.new_world()
    install(w)
    board = load("board_config").load(board_name)
    hz = getattr(board, "SIM_HZ", board.SYS_HZ)
    n_pins = getattr(board, "GPIO_COUNT", 30)
    if hz != w.sys_hz or n_pins != w.gpio.n_pins:
        w = _world.new_world(hz, n_pins)
        install(w)
        restore_time()  # like load(): the host keeps its own time until device code is loaded
    w.chip = getattr(board, "CHIP", "rp2040")
    if hz != board.SYS_HZ:
        w.cpu_hz = board.SYS_HZ
    return w, board
