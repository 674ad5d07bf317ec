"""A Raspberry Pi Pico running the real, unmodified MicroPython firmware on the rp2040py emulator,
with the project's files in its flash filesystem as `make flash` puts them.

    from host_tools.emuchip.chip import boot
    chip = boot("1.28.0")                    # ~0.7 s wall: image + LittleFS, runs to the REPL
    chip.exec("import pulse_pio")            # raw REPL; returns stdout (str), raises ChipError
    rec = chip.record([2, 3])                # GPIO edges from now on: rec.edges
                                             #   [(cycle, pin, level)]
    chip.run(ms=25)                          # let emulated time pass (REPL idle, PIO running)
    chip.cycles                              # clk_sys cycles since power-on (125 MHz)
    chip.close()

boot(version="1.28.0", files=None, extra=None, omit=(), root=ROOT, exact_pio=True, timeout=60)
    version    MicroPython release of the image (host_tools.emuchip.image.available_versions()).
    files      None: the device files of `root` laid out as `make flash` lays them out for an
               RP2040 (host_tools.flash.plan_files with -march=armv6m: firmware/main.py and
               boot.py as source at /, other firmware/*.py as /*.mpy, lib/** as /lib/**.mpy,
               board_config/** as /board_config/**.mpy; no /board.txt, as make flash writes
               none when the board's machine string names the Pico). A dict {device path: bytes
               or str} instead gives exactly those files.
    extra      {device path: bytes or str} written on top (added or replacing).
    omit       device paths left out (e.g. ("/main.py",) to boot to a bare REPL).
    exact_pio  True: PIO blocks made cycle-exact by host_tools.emuchip.pio_exact (pads read their
               own output back through the input synchroniser). False: rp2040py's PIO as shipped.
    A main.py on the image runs at boot, as on the unit; exec() interrupts it (Ctrl-C) first.

Chip (what boot() returns):
    exec(code, timeout=30.0) -> str     run code on the raw REPL; stdout; ChipError(stderr) on a
                                        traceback; ChipTimeout after `timeout` wall seconds.
    exec_raw(code, timeout=30.0) -> (stdout, stderr)
    run(cycles=None, ms=None, us=None)  advance emulated time by exactly that much (the REPL
                                        waits for input meanwhile; PIO, timers, IRQs run).
    cycles                              clk_sys cycles since power-on (the PIO's own count when
                                        exact_pio; nanos // 8 otherwise)
    nanos                               emulated nanoseconds (rp2040py's clock)
    set_input(pin, level)               drive a GPIO input from outside (0/1; None: release to its
                                        pulls), seen by the PIO on the current cycle
    record(pins) -> Recorder            GPIO level changes with cycle stamps; .edges is a list of
                                        (cycle, pin, level), level 0/1 (a pad not driven reads its
                                        input); .stop() detaches. PIO-driven edges carry the cycle
                                        of the PIO instruction that drove them.
    console                             bytes the firmware printed on USB serial outside exec()
    mcu, device, simulator, pio         rp2040py's RP2040, MicroPythonDevice, Simulator and the
                                        pio_exact.ExactPio (None when exact_pio=False), for board
                                        attachments (buttons, I2C targets, ADC: board.py).
    version, files                      the firmware version, {device path: bytes} on the image
    close()                             stop and drop the emulator.

Time: rp2040py runs the CPU at 125 MHz (8 ns per cycle); flash XIP misses are not modelled.
"""
import hashlib
import tempfile
import time
from pathlib import Path

from host_tools.emuchip.image import DEFAULT_VERSION, image_path

ROOT = Path(__file__).resolve().parents[2]
MARCH = "armv6m"  # the RP2040's Cortex-M0+ (mpy-cross -march)
FS_OFFSET = 0xA0000  # MicroPython RPI_PICO: LittleFS at 640 KiB into flash ...
FS_BLOCKS = 352  # ... 352 blocks of 4096 bytes (1408 KiB)
FS_BLOCK_SIZE = 4096
FS_PROG_SIZE = 256
CYCLE_NS = 8  # 125 MHz

CTRL_A, CTRL_B, CTRL_C, CTRL_D = b"\x01", b"\x02", b"\x03", b"\x04"
_RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"

_compiled = {}  # (root, sources hash) -> [(device path, bytes)]


class ChipError(RuntimeError):
    """Code run with exec() raised on the chip; the message is MicroPython's traceback."""


class ChipTimeout(TimeoutError):
    """The chip did not answer in time (wall seconds)."""


def make_flash_files(root=ROOT):
    """{device path: bytes} exactly as `make flash` deploys `root` to a Pico (compiled once per
    content of the device files)."""
    from host_tools.build import device_files
    from host_tools.flash import plan_files

    root = Path(root)
    h = hashlib.sha256()
    for p in device_files(root):
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    key = (str(root), h.hexdigest())
    if key not in _compiled:
        with tempfile.TemporaryDirectory(prefix="emuchip-mpy-") as bd:
            _compiled[key] = plan_files(root, bd, MARCH)
    return dict(_compiled[key])


def littlefs_image(files):
    """A MicroPython RPI_PICO LittleFS image (bytes) holding {device path: bytes}."""
    from littlefs import LittleFS, UserContext

    fs = LittleFS(context=UserContext(buffsize=FS_BLOCK_SIZE * FS_BLOCKS),
                  block_size=FS_BLOCK_SIZE, block_count=FS_BLOCKS, prog_size=FS_PROG_SIZE)
    for path in sorted(files):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            try:
                fs.mkdir(d)
            except Exception:  # exists
                pass
        data = files[path]
        with fs.open(path.strip("/"), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else bytes(data))
    fs.unmount()
    return bytes(fs.context.buffer)


class Recorder:
    """GPIO level changes of some pins, stamped with chip cycles."""

    def __init__(self, chip, pins):
        self.chip = chip
        self.pins = list(pins)
        self.edges = []
        self._undo = []
        for n in self.pins:
            self._undo.append(chip.mcu.gpio[n].add_listener(self._listener(n)))
        self.start_cycle = chip.cycles
        self.initial = {n: self.level(n) for n in self.pins}

    def level(self, n):
        st = int(self.chip.mcu.gpio[n].value)  # GPIOPinState: LOW 0, HIGH 1, inputs >= 2
        if st < 2:
            return st
        return int(bool(self.chip.mcu.gpio[n].input_value))

    def _listener(self, n):
        def cb(value, last):
            self.edges.append((self.chip.now_cycle(), n, self.level(n)))
        return cb

    def stop(self):
        for u in self._undo:
            u()
        self._undo = []


class Chip:
    def __init__(self, version, files, exact_pio=True):
        from rp2040py.boards import BOARDS, resolve_firmware
        from rp2040py.device import MicroPythonDevice

        self.version = version
        self.files = files
        spec = resolve_firmware(BOARDS["pico"], "micropython", str(image_path(version)))
        self.device = MicroPythonDevice(board=spec)
        self.mcu = self.device.mcu
        self.simulator = self.device.simulator
        self.cdc = self.device.cdc
        img = littlefs_image(files)
        self.mcu.flash[FS_OFFSET:FS_OFFSET + len(img)] = img
        self.pio = None
        if exact_pio:
            from host_tools.emuchip.pio_exact import install

            self.pio = install(self.mcu)
        self.console = bytearray()
        self._rx = bytearray()  # serial output not yet consumed by exec()
        self._capture = False
        self._connected = False
        self._raw = False
        self.cdc.on_serial_data = self._on_serial
        self.cdc.on_device_connected = self._on_connected
        # rp2040py's host side answers a read of the CDC OUT endpoint at once, with 0 bytes when
        # it has nothing to send; the firmware re-arms it and the USB IRQ fires again every
        # 10 us: the CPU never idles (measured: 67,000 instructions per emulated ms at the REPL).
        # A real host NAKs until it has data; so does this one: reads wait for data.
        self._pending_reads = []
        self._usb_read = self.mcu.usb_ctrl.on_endpoint_read
        self.mcu.usb_ctrl.on_endpoint_read = self._on_endpoint_read
        self._stop_alarm = self.simulator.clock.create_alarm(self._stop)

    # -- plumbing ------------------------------------------------------------------------
    def _on_serial(self, data):
        self._rx.extend(data)
        if not self._capture:
            self.console.extend(data)

    def _on_endpoint_read(self, endpoint, size):
        if endpoint == self.cdc._out_endpoint and (self._pending_reads
                                                   or self.cdc.tx_fifo.item_count == 0):
            self._pending_reads.append((endpoint, size))
            return
        self._usb_read(endpoint, size)

    def _serve_reads(self):
        while self._pending_reads and self.cdc.tx_fifo.item_count:
            self._usb_read(*self._pending_reads.pop(0))

    def _on_connected(self):
        self._connected = True

    def _stop(self):
        self.simulator.stopped = True

    def _step(self):
        sim = self.simulator
        sim.stopped = False
        if self._pending_reads and self.cdc.tx_fifo.item_count:
            self._serve_reads()
        sim._execute_batch()

    def _until(self, cond, timeout, what):
        t_end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > t_end:
                raise ChipTimeout("%s: no answer within %.0f s wall (%.3f ms emulated); serial "
                                  "so far: %r" % (what, timeout, self.nanos / 1e6,
                                                  bytes(self._rx[-300:])))
            self._step()

    def _send(self, data, timeout):
        fifo = self.cdc.tx_fifo
        t_end = time.monotonic() + timeout
        i = 0
        while i < len(data):
            room = 256 - fifo.item_count
            for b in data[i:i + max(0, room)]:
                self.cdc.send_serial_byte(b)
            i += max(0, room)
            self._serve_reads()
            if i < len(data):
                if time.monotonic() > t_end:
                    raise ChipTimeout("sending to the chip took over %.0f s wall" % timeout)
                self._step()

    def start(self, timeout):
        from rp2040py.memory_map import FLASH_START_ADDRESS

        self.mcu.core.pc = FLASH_START_ADDRESS
        self._until(lambda: self._connected, timeout, "USB enumeration")
        self._send(b"\r\n", timeout)

    # -- public ----------------------------------------------------------------------------
    @property
    def nanos(self):
        return self.simulator.clock.nanos

    @property
    def cycles(self):
        if self.pio is not None:
            self.pio.current()
            return self.pio.cyc
        return int(self.nanos) // CYCLE_NS

    def now_cycle(self):
        """The cycle of what is happening right now: inside a PIO step, that step's cycle."""
        if self.pio is not None:
            return self.pio.current()
        return int(self.nanos) // CYCLE_NS

    def run(self, cycles=None, ms=None, us=None):
        """Let exactly that much emulated time pass (one of cycles, ms, us)."""
        ns = cycles * CYCLE_NS if cycles is not None else (ms * 1e6 if ms is not None else us * 1e3)
        end = self.nanos + ns
        self._stop_alarm.schedule(ns)
        if self.pio is not None:
            self.pio.set_timed(True)  # the PIO woken by a clock alarm, not after every instruction
        try:
            while self.nanos < end:
                self._step()
        finally:
            self._stop_alarm.cancel()
            if self.pio is not None:
                self.pio.set_timed(False)

    def exec_raw(self, code, timeout=30.0):
        """Run code on the raw REPL; (stdout, stderr) as str."""
        self._capture = True
        try:
            if not self._raw:
                self._rx.clear()
                self._send(CTRL_C + CTRL_C + CTRL_A, timeout)
                self._until(lambda: self._rx.endswith(_RAW_BANNER), timeout, "raw REPL")
                self._raw = True
            self._rx.clear()
            self._send(code.encode() + CTRL_D, timeout)
            self._until(lambda: len(self._rx) >= 2, timeout, "raw REPL OK")
            if bytes(self._rx[:2]) != b"OK":
                self._raw = False
                raise ChipError("raw REPL did not accept the code: %r" % bytes(self._rx[:200]))
            self._until(lambda: self._rx.count(CTRL_D) >= 2 and self._rx.endswith(b">"), timeout,
                        "running %r" % code[:60])
            body = bytes(self._rx[2:])
            out, err, _ = body.split(CTRL_D, 2)
            self._rx.clear()
            return out.decode(errors="replace"), err.decode(errors="replace")
        finally:
            self._capture = False

    def exec(self, code, timeout=30.0):
        out, err = self.exec_raw(code, timeout)
        if err:
            raise ChipError("MicroPython %s raised:\n%s%s" % (self.version, out, err))
        return out

    def eval(self, expr, timeout=30.0):
        """repr(expr) evaluated on the chip, read back with ast.literal_eval."""
        import ast

        return ast.literal_eval(self.exec("print(repr(%s))" % expr, timeout).strip())

    def record(self, pins):
        return Recorder(self, pins)

    def set_input(self, pin, level):
        """Drive GPIO `pin` from outside (level 0/1) from the current cycle; None releases it to
        its pulls."""
        g = self.mcu.gpio[pin]
        if self.pio is not None:
            self.pio.sync()
        if level is None:
            g.release_input()
        else:
            g.set_input_value(bool(level))
        if self.pio is not None:
            self.pio._renext()

    def close(self):
        self.simulator.stopped = True
        self.device = self.mcu = self.simulator = None


def boot(version=DEFAULT_VERSION, files=None, extra=None, omit=(), root=ROOT, exact_pio=True,
         timeout=60.0):
    """A Chip running MicroPython `version` with the files on its flash, booted to the REPL (or
    into main.py when the image has one). See the module docstring."""
    fs = make_flash_files(root) if files is None else {
        p: (d.encode() if isinstance(d, str) else bytes(d)) for p, d in files.items()}
    for p, d in (extra or {}).items():
        fs[p] = d.encode() if isinstance(d, str) else bytes(d)
    for p in omit:
        fs.pop(p, None)
    chip = Chip(version, fs, exact_pio=exact_pio)
    chip.start(timeout)
    return chip
