# The MicroPython side of the virtual device (host_tools/virtual_device.py starts it).
# Runs on the real MicroPython unix port, not CPython:
#
#     micropython -X heapsize=64M host_tools/vdev_agent.py ROOT DEVDIR RUN_MAIN CMD_FD
#
# ROOT: repository root (for host_tools.sim); DEVDIR: the device folder holding flash/ (the
# device's file system, mounted as "/"), state/ (world.json, written for tests) and config.json.
# RUN_MAIN: "1" runs boot.py then main.py (a friendly-REPL boot), "0" only boot.py (a soft reset
# in raw REPL, as on a board).
#
# Protocol with the bridge: commands arrive on file descriptor CMD_FD, one header line
# "<kind> <length>\n" then <length> bytes of source. kind: "E" exec (raw REPL), "S" single
# (friendly REPL line: expression values are printed), "D" dump the world state now.
# Output goes to stdout (fd 1) as it happens; the end of every command (and of the boot) is
# marked as the raw REPL marks it: \x04, the error text (a traceback, may be empty), \x04.
import io
import json
import os
import select
import sys
import time as _rt  # the real clock, kept before the simulated `time` is installed

import vfs

ROOT, DEVDIR, RUN_MAIN, CMD_FD = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
FLASH = DEVDIR + "/flash"
STATE = DEVDIR + "/state"

with open(DEVDIR + "/config.json") as _f:
    CFG = json.load(_f)

sys.path.insert(0, ROOT)
from host_tools.sim import install, world  # noqa: E402

# Import every sim module now: once the flash folder is mounted as "/", the repository is out of
# reach, so nothing may be imported lazily from it later.
for _n in sorted(os.listdir(ROOT + "/host_tools/sim")):
    if _n.endswith(".py") and not _n.startswith("_"):
        try:
            __import__("host_tools.sim." + _n[:-3])
        except ImportError:
            pass
from host_tools.sim import ssd1306_model  # noqa: E402

W = world.new_world()
OLED = ssd1306_model.SSD1306Model()
W.i2c_devices[0x3C] = OLED


EXIT_RESET = 3  # machine.reset(): the bridge restarts the process (run main.py)
EXIT_SOFT = 4  # machine.soft_reset()
EXIT_WATCHDOG = 5  # the watchdog expired: the bridge restarts the process, reset cause WDT


def _on_reset(reason):
    # machine.reset() and friends: the bridge restarts the process as a hard reset
    raise SystemExit(EXIT_WATCHDOG if reason == "watchdog" else EXIT_RESET)


W.on_reset = _on_reset
install.install(W)


# ---- the chip's watchdog ------------------------------------------------------------------------
# One hardware watchdog, as on an RP2040: every machine.WDT object feeds the same counter, a
# started watchdog cannot be stopped, and a soft reset (ctrl-D, mpremote's soft reset) does not
# stop it either: the bridge asks for the time left ("W" command) and the next process starts
# with it (config.json "wdt"). Only a hard reset (machine.reset(), the watchdog itself) clears it.
class _Watchdog:
    timeout_ms = 0
    handle = None


def _wd_arm(ms):
    if _Watchdog.handle is not None:
        _Watchdog.handle.cancel()
    _Watchdog.handle = W.schedule(W.now + W.cycles(ms * 1_000_000), _wd_expire)


def _wd_expire():
    _Watchdog.handle = None
    W.event("watchdog_reset", timeout_ms=_Watchdog.timeout_ms)
    raise SystemExit(EXIT_WATCHDOG)


def _wd_left():
    h = _Watchdog.handle
    if h is None or not h.pending():
        return None
    return {"timeout_ms": _Watchdog.timeout_ms,
            "left_ms": max(0, (W.ns(h.cycle) - W.ns()) // 1_000_000)}


class _ChipWDT:
    def __init__(self, id=0, timeout=5000):
        timeout = int(timeout)
        if timeout > 8388:
            raise ValueError("timeout exceeds 8388 ms")
        _Watchdog.timeout_ms = max(1, timeout)
        self.feed()

    def feed(self):
        _wd_arm(_Watchdog.timeout_ms)


_machine_mod = sys.modules["machine"]
_machine_mod.WDT = _ChipWDT
_RESET = CFG.get("reset") or "power-on"  # why this process started: power-on, soft, hard, watchdog
if _RESET == "watchdog":
    W.reset_cause = _machine_mod.WDT_RESET
if CFG.get("wdt"):
    _Watchdog.timeout_ms = CFG["wdt"]["timeout_ms"]
    _wd_arm(CFG["wdt"]["left_ms"])

# rising edges per pin since this process started (world.json "rises"): what a logic analyser on
# the enable or LED pin would have caught between two state dumps
_RISES = [0] * 30


def _count_rise(pin, level, cycle):
    if level and pin < 30:
        _RISES[pin] += 1


W.gpio.add_listener(_count_rise)

_real_sys = sys
_real_os = os


class _Impl:
    """sys.implementation as the configured device reports it (virtual_device.py --version)."""

    def __init__(self, real, cfg):
        self.name = real.name
        v = cfg.get("version")
        self.version = tuple(v) if v else real.version
        self._machine = cfg.get("machine") or real._machine
        m = cfg.get("mpy")
        self._mpy = m if m is not None else real._mpy
        self._build = cfg.get("build", "RPI_PICO")

    def __repr__(self):
        return "(name=%r, version=%r, _machine=%r, _mpy=%d, _build=%r)" % (
            self.name, self.version, self._machine, self._mpy, self._build)


class _SysProxy:
    """`import sys` on the virtual device: the real sys, except implementation."""

    def __init__(self):
        self.implementation = _Impl(_real_sys.implementation, CFG)

    def __getattr__(self, name):
        return getattr(_real_sys, name)


class _Uname:
    def __init__(self, cfg, impl):
        v = impl.version
        rel = "%d.%d.%d" % (v[0], v[1], v[2])
        self.sysname = cfg.get("sysname", "rp2")
        self.nodename = self.sysname
        self.release = rel
        self.version = "v%s on virtual device" % rel
        self.machine = impl._machine

    def __getitem__(self, i):
        return (self.sysname, self.nodename, self.release, self.version, self.machine)[i]

    def __repr__(self):
        return "(sysname=%r, nodename=%r, release=%r, version=%r, machine=%r)" % (
            self.sysname, self.nodename, self.release, self.version, self.machine)


BLOCK = 4096


def _used_blocks(path):
    n = 1
    for ent in _real_os.ilistdir(path):
        name, typ = ent[0], ent[1]
        full = (path.rstrip("/") + "/" + name)
        if typ == 0x4000:
            n += _used_blocks(full)
        else:
            size = _real_os.stat(full)[6]
            n += (size + BLOCK - 1) // BLOCK or 1
    return n


class _OsProxy:
    """`import os` on the virtual device: the unix port's os (paths inside the flash folder),
    plus uname() like a board and statvfs() of a flash of the configured size."""

    def __init__(self, sysproxy):
        self._uname = _Uname(CFG, sysproxy.implementation)

    def uname(self):
        return self._uname

    def statvfs(self, path="/"):
        total = CFG.get("flash_kb", 1408) * 1024 // BLOCK
        free = max(0, total - _used_blocks("/"))
        return (BLOCK, BLOCK, total, free, free, 0, 0, 0, 0, 255)

    def ilistdir(self, path=""):
        # littlefs on a board gives (name, type, inode, size); VfsPosix omits the size
        base = path if path else ""
        for ent in _real_os.ilistdir(path) if path else _real_os.ilistdir():
            size = 0
            if ent[1] != 0x4000:
                try:
                    size = _real_os.stat((base.rstrip("/") + "/" + ent[0]) if base
                                         else ent[0])[6]
                except OSError:
                    pass
            yield (ent[0], ent[1], 0, size)

    def rename(self, old, new):
        # VfsPosix with a root folder mangles a rename of two absolute paths (both end up as
        # the new name): hand it paths relative to the current folder instead.
        _real_os.rename(_relative(old), _relative(new))

    def __getattr__(self, name):
        return getattr(_real_os, name)


def _relative(p):
    if not p.startswith("/"):
        return p
    depth = len([c for c in _real_os.getcwd().split("/") if c])
    return "../" * depth + p[1:] if (depth or p[1:]) else "."


_SYS = _SysProxy()
sys.modules["sys"] = _SYS
sys.modules["os"] = _OsProxy(_SYS)

# The flash folder becomes the whole file system, as on a board.
vfs.umount("/")
vfs.mount(vfs.VfsPosix(FLASH), "/")
_real_os.chdir("/")
while sys.path:
    sys.path.pop()
sys.path.append("")
sys.path.append("/lib")
_real_rt = _rt

_out = open(1, "wb")


def _w(b):
    # the agent's own markers must get through even when a ctrl-C lands during the write
    if isinstance(b, str):
        b = b.encode()
    while True:
        try:
            _out.write(b)
            return
        except KeyboardInterrupt:
            pass


# ---- world state for tests (state/world.json) ----------------------------------------------
_boot_id = CFG.get("boot_count", 0)


_last_sig = [None]


def dump_state(only_if_changed=False):
    pins = {}
    W.sync()
    for p in range(30):
        try:
            pins[str(p)] = W.gpio.level(p)
        except Exception:
            pass
    sig = (W.now, len(W.events), tuple(pins.values()))
    if only_if_changed and sig == _last_sig[0]:
        return  # nothing moved: skip the (slow) screen rendering
    _last_sig[0] = sig
    st = {"boot": _boot_id, "reset": _RESET, "cycle": W.now, "ms": W.ms(), "pins": pins,
          "rises": {str(p): n for p, n in enumerate(_RISES) if n},
          "watchdog": _wd_left(),
          "screen_lit": OLED.lit(), "screen": OLED.text().split("\n"),
          "events": W.events[-20:]}
    cwd = _real_os.getcwd()
    vfs.mount(vfs.VfsPosix(STATE), "/.vdev-state")
    try:
        _real_os.chdir("/.vdev-state")
        with open("world.json.tmp", "w") as f:
            json.dump(st, f)
        _real_os.rename("world.json.tmp", "world.json")
        _take_input()
    finally:
        _real_os.chdir(cwd)
        vfs.umount("/.vdev-state")


def _take_input():
    # state/input.json (written by a test or a tool, then consumed): a list of
    # {"pin": n, "level": 0|1} (drive the pin from outside, like a pressed button) or
    # {"pin": n, "release": true} (let go: the pull-up or the device drives it again)
    try:
        with open("input.json") as f:
            actions = json.load(f)
    except (OSError, ValueError):
        return
    _real_os.remove("input.json")
    for a in actions:
        if a.get("release"):
            W.gpio.release_external(a["pin"])
        else:
            W.gpio.drive_external(a["pin"], a["level"])


# ---- real-time pacing of the virtual clock, and periodic state dumps ------------------------
SPEED = CFG.get("speed", 1.0)  # 1.0: virtual time follows wall time; 0: as fast as possible
DUMP_MS = CFG.get("dump_ms", 200)
TICK_NS = 5_000_000
_pace = [_rt.ticks_us(), 0, _rt.ticks_ms()]  # wall us at base, virtual ns at base, last dump


KEEP = 2000  # records kept per list: a unit runs for hours, the heap is finite


def _trim():
    for lst in W.gpio.edges:
        if len(lst) > 2 * KEEP:
            del lst[:-KEEP]
    for lst in W.pwm_log.values():
        if len(lst) > 2 * KEEP:
            del lst[:-KEEP]
    if len(W.events) > 2 * KEEP:
        del W.events[:-KEEP]


_tick_h = [None]


def _tick():
    # the next tick first: a ctrl-C landing in here (most of the wall time is spent in the pacing
    # sleep below) must not end the ticks
    _tick_h[0] = W.schedule(W.now + W.cycles(TICK_NS), _tick)
    vns = W.ns()
    if SPEED > 0 and not _catching_up[0]:
        wall = _rt.ticks_diff(_rt.ticks_us(), _pace[0])
        ahead_us = int((vns - _pace[1]) / 1000 / SPEED) - wall
        if ahead_us > 1000:
            _rt.sleep_us(ahead_us)
        elif ahead_us < -100_000:  # code that does not sleep ran long: do not race to catch up
            _pace[0] = _rt.ticks_us()
            _pace[1] = vns
    now = _rt.ticks_ms()
    if _rt.ticks_diff(now, _pace[2]) >= DUMP_MS:
        _pace[2] = now
        _trim()
        try:
            dump_state()
        except Exception:
            pass


_tick_h[0] = W.schedule(W.now + W.cycles(TICK_NS), _tick)

_catching_up = [False]
IDLE_POLL_MS = 20


def _catch_up():
    """Virtual time to where wall time says it is. While the device waits for a command (at
    the prompt, between two raw-REPL commands of a host tool) or after a command that did not
    sleep, a chip's clock, timers and watchdog keep counting: so do ours (at --speed, or at
    wall-clock rate with --speed 0)."""
    if _tick_h[0] not in W._queue:  # a ctrl-C took it between the queue and its call
        _tick_h[0] = W.schedule(W.now + W.cycles(TICK_NS), _tick)
    now = _rt.ticks_us()
    target = _pace[1] + int(_rt.ticks_diff(now, _pace[0]) * 1000 * (SPEED if SPEED > 0 else 1))
    _pace[0] = now
    _pace[1] = target
    if target > W.ns():
        _catching_up[0] = True
        try:
            W.advance_to(W.cycle_at_ns(target))
        finally:
            _catching_up[0] = False
    else:
        _pace[1] = W.ns()


def _rebase():
    _pace[0] = _rt.ticks_us()
    _pace[1] = W.ns()


_poll = select.poll()
_poll.register(CMD_FD, select.POLLIN)


def _wait_for_command():
    if SPEED <= 0:
        _rebase()  # unpaced while code runs; idle time still follows the wall clock
    else:
        _catch_up()
    while not _poll.poll(IDLE_POLL_MS):
        _catch_up()
    _catch_up()


# ---- running code -----------------------------------------------------------------------------
G = {"__name__": "__main__"}


def _tb(e):
    s = io.StringIO()
    _real_sys.print_exception(e, s)
    # drop this file's own frames: the traceback reads as on a board
    return "".join(ln + "\n" for ln in s.getvalue().split("\n")
                   if ln and "vdev_agent.py" not in ln)


def run(src, name, mode, report_errors_as_output):
    err = ""
    try:
        code = compile(src, name, mode)
        exec(code, G)
    except SystemExit as e:
        code = e.args[0] if e.args else 0
        if code in (EXIT_RESET, EXIT_SOFT, EXIT_WATCHDOG):  # the bridge restarts us
            raise
        err = ""
    except BaseException as e:  # noqa: B036 - KeyboardInterrupt included, as on a board
        err = _tb(e)
        if report_errors_as_output:
            _w(err)
            err = ""
    # (no gc.collect() here: a ctrl-C from the host arrives as SIGINT at any moment, and one that
    # lands inside gc.collect() leaves the unix port's heap locked - the next allocation raised
    # "MemoryError: heap is locked" and the device restarted under a tool in the raw REPL)
    return err


def _run_file(name):
    try:
        _real_os.stat(name)
    except OSError:
        return
    with open(name) as f:
        src = f.read()
    run(src, name, "exec", True)


def main():
    try:
        _w(b"\x06")  # to the bridge: set up, ctrl-C may interrupt from here on
        _run_file("boot.py")
        if RUN_MAIN:
            _run_file("main.py")
    except KeyboardInterrupt:
        pass
    except SystemExit as e:
        _real_sys.exit(e.args[0] if e.args else 0)
    try:
        dump_state()
    except BaseException:  # noqa: B036 - a late ctrl-C must not end the device
        pass
    _w(b"\x04\x04")
    cmd = open(CMD_FD, "rb")
    while True:
        head = src = None
        interrupted = False
        while src is None:
            # a ctrl-C (SIGINT) may land anywhere in here: keep what was read, and if it came
            # with a command, report the command as interrupted instead of running it
            try:
                if head is None:
                    _wait_for_command()
                    head = cmd.readline()
                    if not head:
                        return
                kind, n = head.decode().split()
                src = cmd.read(int(n)).decode() if int(n) else ""
            except KeyboardInterrupt:
                if head is not None:
                    interrupted = True
            except SystemExit as e:  # the watchdog expired while the device waited
                _real_sys.exit(e.args[0] if e.args else 0)
        if interrupted and kind != "D":
            _w(b"\x04KeyboardInterrupt: \n\x04")
            continue
        if kind == "W":  # the bridge is about to soft-reset us: what the watchdog has left
            _w(b"\x04" + json.dumps(_wd_left()).encode() + b"\x04")
            continue
        if kind == "D":
            try:
                dump_state()
            except Exception as e:
                _w(_tb(e))
            _w(b"\x04\x04")
            continue
        try:
            err = run(src, "<stdin>", "single" if kind == "S" else "exec", False)
        except SystemExit as e:
            _real_sys.exit(e.args[0] if e.args else 0)
        except KeyboardInterrupt:
            err = "KeyboardInterrupt: \n"
        try:
            dump_state(only_if_changed=True)
        except BaseException:  # noqa: B036 - a late ctrl-C must not end the device
            pass
        _w(b"\x04")
        _w(err)
        _w(b"\x04")


main()
