"""The emulated Pico running real MicroPython, on a pseudo-terminal: `make virtual-device`.

    python -m host_tools.chip_device                   # out/chip-device; prints the port
    python -m host_tools.chip_device --version 1.25.0 --fresh --tcp 2217

The device is the unmodified MicroPython image for RPI_PICO (host_tools/emuchip/image.py: the
folder ../shared/micropython/ or PICO_FIRMWARE) on the rp2040py emulator with the cycle-exact PIO
(host_tools/emuchip/), and the reference board around it (host_tools/emuchip/board.py: the OLED
model on I2C0, the buttons, the foot switch, the current sense, battery and USB inputs). Its USB
serial console is bridged byte for byte to a raw pseudo-terminal: MicroPython itself answers the
friendly REPL, the raw REPL and raw paste, so mpremote and `make flash PORT=<port>` work on it as
on a Pico. machine.reset() (or mpremote reset, or the end of make flash) resets the emulated
chip: the firmware boots again and runs main.py, i.e. the app once it is flashed. The watchdog is
the chip's own.

A fresh device has MicroPython and an empty filesystem, as a Pico just after the UF2 was copied:
`make flash PORT=...` puts the firmware on it. --preload starts with the files `make flash` would
copy already there. The filesystem persists in DIR/flash.img (the LittleFS region of the flash,
saved every few seconds while it changes and at exit; --fresh starts over).

Folder (DIR, default out/chip-device):
    DIR/flash.img          the LittleFS region (352 x 4096 bytes, MicroPython's RPI_PICO layout)
    DIR/state/port.txt     the pseudo-terminal path
    DIR/state/console.log  everything the device printed on its USB serial port
    DIR/state/world.json   about every second (wall): {"ms": emulated ms, "wall_s", "speed"
                           (emulated / wall time), "boots", "resets", "pins": {"enable", "led",
                           "ch1_a", ...}, "amplitude_ma": {"1", "2"}, "screen_text": OCR rows,
                           "screen": 64 strings of 128 '#'/'.'}
    DIR/state/input.json   written by you, read and removed by the device: a list of
                           {"press": "ok", "hold_ms": 100} (a button, with contact bounce),
                           {"pin": 18, "level": 0} / {"pin": 18, "release": true},
                           {"usb": true}, {"battery_mv": 3300},
                           {"electrode": {"channel": 1, "connected": false}},
                           {"load_ohm": {"channel": 1, "ohm": 20000}}

Speed: emulated time runs at most as fast as wall time (--speed 1), and much slower while the app
is busy: about 0.02-0.07x (rp2040py executes the Cortex-M0+ in a compiled loop; docs/
emulated_chip.md). Booting the app takes about 30 s wall; make flash of the whole firmware a few
minutes. `make virtual-device-unix` is the fast device (the MicroPython unix port with the
simulated pins, host_tools/virtual_device.py).
"""
import argparse
import hashlib
import json
import os
import select
import signal
import socket
import sys
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "out" / "chip-device"
CDC_FIFO = 256
STATE_EVERY_S = 1.0
SAVE_EVERY_S = 3.0
SLICE_MS = 2  # emulated time run between two looks at the serial port


class ChipDevice:
    def __init__(self, devdir, version=None, fresh=False, preload=False, tcp_port=None,
                 speed=1.0):
        from host_tools.emuchip import chip as chip_mod
        from host_tools.emuchip.board import attach
        from host_tools.emuchip.image import DEFAULT_VERSION, image_path

        self.devdir = Path(devdir)
        (self.devdir / "state").mkdir(parents=True, exist_ok=True)
        self.version = version or DEFAULT_VERSION
        image_path(self.version)  # FirmwareNotFound names PICO_FIRMWARE
        self.img_path = self.devdir / "flash.img"
        self.region = (chip_mod.FS_OFFSET, chip_mod.FS_OFFSET + chip_mod.FS_BLOCKS
                       * chip_mod.FS_BLOCK_SIZE)
        files = chip_mod.make_flash_files() if preload else {}
        self.chip = chip_mod.Chip(self.version, files, exact_pio=True)
        if self.img_path.exists() and not fresh and not preload:
            data = self.img_path.read_bytes()
            if len(data) != self.region[1] - self.region[0]:
                raise SystemExit("%s is %d bytes, not a %d-byte LittleFS region: start with "
                                 "--fresh" % (self.img_path, len(data),
                                              self.region[1] - self.region[0]))
            self.chip.mcu.flash[self.region[0]:self.region[1]] = data
        self.board = attach(self.chip)
        self.speed = speed
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.listener = None
        self.client = None
        if tcp_port is not None:
            self.listener = socket.socket()
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", tcp_port))
            self.listener.listen(1)
        self.log = open(self.devdir / "state" / "console.log", "ab")
        self.pending = bytearray()  # host bytes not yet in the CDC FIFO
        self.connected = False
        self.boots = 1
        self._flash_hash = self._hash()
        self._chain_hooks()
        (self.devdir / "state" / "port.txt").write_text(self.port + "\n")

    # -- hooks ---------------------------------------------------------------------------------
    def _chain_hooks(self):
        c = self.chip
        serial_in = c._on_serial

        def on_serial(data):
            serial_in(data)
            self.to_host(bytes(data))

        c.cdc.on_serial_data = on_serial
        conn = c._on_connected

        def on_connected():
            conn()
            self.connected = True

        c.cdc.on_device_connected = on_connected
        wd = c.mcu.watchdog
        trigger = wd.on_watchdog_trigger

        def on_reset():
            trigger()  # board.py records it; the chip resets and drops off USB
            self.connected = False
            self.boots += 1
            c._pending_reads.clear()  # reads armed by the firmware before the reset are gone

        wd.on_watchdog_trigger = on_reset

    def _hash(self):
        a, b = self.region
        return hashlib.sha1(bytes(self.chip.mcu.flash[a:b])).digest()

    def save_flash(self, force=False):
        h = self._hash()
        if force or h != self._flash_hash:
            a, b = self.region
            tmp = self.img_path.with_suffix(".tmp")
            tmp.write_bytes(bytes(self.chip.mcu.flash[a:b]))
            os.replace(tmp, self.img_path)
            self._flash_hash = h

    # -- serial ------------------------------------------------------------------------------------
    def to_host(self, data):
        self.log.write(data)
        self.log.flush()
        try:
            os.write(self.master, data)
        except (BlockingIOError, OSError):
            pass  # nobody reading: dropped, as USB CDC output with no host attached
        if self.client is not None:
            try:
                self.client.sendall(data)
            except OSError:
                self.client = None

    def from_host(self):
        fds = [self.master]
        if self.listener is not None:
            fds.append(self.listener)
        if self.client is not None:
            fds.append(self.client)
        busy = bool(self.pending) or not self.connected
        r, _, _ = select.select(fds, [], [], 0)
        for fd in r:
            if fd is self.listener:
                self.client, _ = self.listener.accept()
            elif fd is self.client:
                data = self.client.recv(4096)
                if not data:
                    self.client = None
                self.pending.extend(data)
            else:
                try:
                    self.pending.extend(os.read(self.master, 4096))
                except (BlockingIOError, OSError):
                    pass
        return busy or bool(r)

    def feed(self):
        if not self.connected or not self.pending:
            return
        fifo = self.chip.cdc.tx_fifo
        room = CDC_FIFO - fifo.item_count
        if room <= 0:
            return
        chunk = self.pending[:room]
        del self.pending[:room]
        for b in chunk:
            self.chip.cdc.send_serial_byte(b)
        self.chip._serve_reads()

    # -- the world ---------------------------------------------------------------------------------
    def inputs(self):
        p = self.devdir / "state" / "input.json"
        if not p.exists():
            return
        try:
            items = json.loads(p.read_text())
        except ValueError:
            return  # being written: next time
        p.unlink()
        m = self.board.model
        for it in items if isinstance(items, list) else [items]:
            if "press" in it:
                m.press(it["press"], it.get("hold_ms", 100))
            elif "pin" in it:
                self.board.world.gpio.drive_external(
                    it["pin"], None if it.get("release") else it.get("level", 0))
            elif "usb" in it:
                m.usb(bool(it["usb"]))
            elif "battery_mv" in it:
                m.battery(it["battery_mv"])
            elif "electrode" in it:
                m.electrode(it["electrode"]["channel"], it["electrode"]["connected"])
            elif "load_ohm" in it:
                m.load_ohm(it["load_ohm"]["channel"], it["load_ohm"]["ohm"])

    def state(self, wall0):
        from host_tools.scenario import ocr

        b = self.board
        pins = {"enable": b.board.OUTPUT_ENABLE, "led": b.board.OUTPUT_LED}
        for n, c in b.board.CHANNELS.items():
            pins["ch%d_a" % n] = c["leg_a"]
            pins["ch%d_b" % n] = c["leg_b"]
        ms = self.chip.nanos / 1e6
        wall = time.monotonic() - wall0
        px = b.oled.pixels()
        st = {"ms": round(ms, 1), "wall_s": round(wall, 1),
              "speed": round(ms / 1000 / wall, 4) if wall > 0 else None,
              "boots": self.boots, "resets": b.resets,
              "pins": {k: b.level(v) for k, v in pins.items()},
              "amplitude_ma": {str(n): round(b.amplitude_ma(n), 2) for n in b.board.CHANNELS},
              "screen_text": ocr(px),
              "screen": ["".join("#" if v else "." for v in row) for row in px]}
        p = self.devdir / "state" / "world.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(st))
        os.replace(tmp, p)

    # -- the loop ----------------------------------------------------------------------------------
    def serve(self, ready=None):
        from rp2040py.memory_map import FLASH_START_ADDRESS

        self.chip.mcu.core.pc = FLASH_START_ADDRESS
        if ready is not None:
            ready(self)
        wall0 = time.monotonic()
        emu0 = self.chip.nanos
        t_state = t_save = 0.0
        while True:
            self.from_host()
            self.feed()
            ahead = (self.chip.nanos - emu0) / 1e9 - (time.monotonic() - wall0) * self.speed
            if self.speed > 0 and ahead > 0.002:
                select.select([self.master], [], [], min(ahead, 0.05))
            else:
                # a slice of emulated time (its end is a clock alarm: time flows even while the
                # CPU sleeps with nothing else scheduled, as a real chip's timers do)
                self.chip.run(ms=SLICE_MS)
            now = time.monotonic()
            if now - t_state > STATE_EVERY_S:
                t_state = now
                self.inputs()
                self.state(wall0)
            if now - t_save > SAVE_EVERY_S:
                t_save = now
                self.save_flash()

    def close(self):
        try:
            self.save_flash()
        finally:
            self.log.close()
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dir", default=str(DEFAULT_DIR), help="device folder (flash.img, state/)")
    ap.add_argument("--version", default=None, help="MicroPython version of the image "
                    "(host_tools/emuchip/image.py; default 1.28.0)")
    ap.add_argument("--fresh", action="store_true", help="start with an empty filesystem")
    ap.add_argument("--preload", action="store_true",
                    help="start with the files make flash would copy (the app runs at once)")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="at most this much emulated time per wall second; 0 = unpaced")
    ap.add_argument("--tcp", type=int, default=None, help="also serve socket://127.0.0.1:PORT")
    a = ap.parse_args(argv)
    dev = ChipDevice(a.dir, a.version, a.fresh, a.preload, a.tcp, a.speed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def ready(d):
        print("emulated Pico (rp2040py) running MicroPython %s on %s" % (d.version, d.port),
              flush=True)
        if a.tcp is not None:
            print("also on socket://127.0.0.1:%d" % a.tcp, flush=True)
        print("filesystem %s; state %s" % (d.img_path, d.devdir / "state"), flush=True)
        print("try: make flash PORT=%s   or   mpremote connect %s" % (d.port, d.port),
              flush=True)
        print("(emulated time runs at 0.02-0.07x while the app is busy: be patient)", flush=True)

    try:
        dev.serve(ready)
    except KeyboardInterrupt:
        pass
    finally:
        dev.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
