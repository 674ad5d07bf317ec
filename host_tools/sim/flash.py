# The Pico's flash filesystem in the simulation: a real LittleFS v2 image (PyPI littlefs-python)
# with the geometry MicroPython's rp2 port uses, on a simulated NOR flash chip whose erases and
# programs take device time and can be cut by a power loss. CPython only (the MicroPython unix
# port runs device file I/O in a real folder instead; never import this module there).
#
#   from host_tools.sim import world, flash, install
#   w = world.new_world()
#   fl = flash.SimFlash(w)                     # geometry="pico"
#   fl.preload({"/settings.json": "{}"})
#   install.install(w, flash=fl)               # device modules get fl.os and fl.open
#   w.schedule(cut_cycle, fl.power_cut)        # a power cut at that moment
#   ... firmware runs; a file call raises flash.PowerCut ...
#   fl.power_on()                              # remount what is really on the chip
#   fl.read_all()                              # {"/settings.json": b"..."}
#
# Geometry ("pico"), as MicroPython mounts the RP2040 flash (ports/rp2/modules/_boot.py:
# vfs.VfsLfs2(rp2.Flash(), progsize=256); extmod/vfs_lfsx.c init_config):
#   block size      4096  (rp2_flash.c BLOCK_SIZE_BYTES = FLASH_SECTOR_SIZE, the erase unit)
#   block count      352  (boards/RPI_PICO/mpconfigboard.h MICROPY_HW_FLASH_STORAGE_BYTES =
#                          1408 * 1024; the top 1408 KiB of the 2 MiB W25Q16JV)
#   read size         32  (VfsLfs2 default readsize)
#   prog size        256  (_boot.py progsize=256: the flash page)
#   cache size      1024  (vfs_lfsx.c: 4 * max(read_size, prog_size))
#   lookahead         32  (VfsLfs2 default lookahead, bytes)
#   block cycles     100  (vfs_lfsx.c)
#   name max         255  (LFS_NAME_MAX)
#
# Timing of the chip (Winbond W25Q16JV on the Pico; W25Qxx-JV datasheet AC characteristics,
# typical values; the maxima are 400 ms and 3 ms):
#   sector erase (4 KiB)  ERASE_NS = 45 ms
#   page program (256 B)  PROGRAM_NS_PER_PAGE = 0.7 ms per started 256-byte page
#   reads                 free (XIP memcpy, a few us per block: not modelled)
# Each erase / program advances the world clock by that time, firing what is scheduled inside
# it (a power cut, button edges). As in ports/rp2/rp2_flash.c, erase and program run with
# interrupts disabled (begin_critical_flash_section): pin IRQ handlers that fall inside are held
# and run when the operation ends (hold_irqs=True), so a STOP press during a flash write is late
# by up to one erase on the real unit too. (machine.Timer callbacks are not held by the sim: they
# still run at their own time; on the chip they would wait too. A callback that touches the
# filesystem during a flash operation raises RuntimeError.)
#
# Power cut (power_cut(), usually from world.schedule): from that moment the chip gets no more
# power. The operation in progress is left half done (an erase has set the first part of the
# block to 0xFF in proportion to the time it ran, a program has programmed that share of its
# bytes); every later erase/program is dropped. LittleFS is in the middle of a C call and cannot
# be interrupted, so it finishes against a "dead device" view (a copy of the chip taken at the cut
# that takes the dropped writes, so LittleFS sees consistent data and does not start relocating
# blocks); the chip itself keeps only what was done before the cut. The file API then raises
# PowerCut (a BaseException, like SystemExit, so the firmware's `except Exception` handlers do not
# swallow a power loss), and every file call raises it until power_on(), which remounts the chip
# as it really is (MicroPython's _boot.py formats the flash if the mount fails; so does
# power_on(), recording it in formatted_on_boot).
#
# An exception raised by a scheduled callback during a flash operation (e.g. a watchdog reset
# raising SimReset) cannot cross the LittleFS C call: the CPU is treated as stopped (the chip
# finishes the operation in progress, later writes are dropped as above) and the exception is
# raised again once LittleFS returns.

import collections

from littlefs import LittleFSError, UserContext, lfs

ERASE_NS = 45_000_000
PROGRAM_NS_PER_PAGE = 700_000
PAGE = 256

GEOMETRIES = {
    "pico": dict(block_size=4096, block_count=352, read_size=32, prog_size=256, cache_size=1024,
                 lookahead_size=32, block_cycles=100, name_max=255),
}

ENOENT = 2
EIO = 5
EBADF = 9
EEXIST = 17
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
ENOSPC = 28
ENOTEMPTY = 39

_ERRNAMES = {2: "ENOENT", 5: "EIO", 9: "EBADF", 12: "ENOMEM", 17: "EEXIST", 20: "ENOTDIR",
             21: "EISDIR", 22: "EINVAL", 27: "EFBIG", 28: "ENOSPC", 36: "ENAMETOOLONG",
             39: "ENOTEMPTY", 84: "EILSEQ"}

S_IFDIR = 0x4000
S_IFREG = 0x8000


class PowerCut(BaseException):
    """The unit lost power during (or before) this file operation."""


def oserror(code):
    """OSError as MicroPython raises it: args[0] and errno are the number (CPython also gets the
    name as text, like MicroPython prints "[Errno 2] ENOENT")."""
    return OSError(code, _ERRNAMES.get(code, "E%d" % code))


class _Chip(UserContext):
    """The NOR flash behind LittleFS: data is what the chip holds; view (after a power cut) is
    what the dead device looks like to LittleFS while it finishes its call."""

    def __init__(self, owner, size):
        # erased NOR flash (0xFF); one bytearray repeated in place, not littlefs's
        # bytearray([0xFF] * n) (8.6 ms) nor bytearray(bytes * n) (1.3 ms, two copies): 0.05 ms
        # per board (every whole-firmware scenario run makes one)
        UserContext.__init__(self, buffer=bytearray(b"\xff") * size)
        self.owner = owner
        self.data = self.buffer
        self.view = None  # bytearray after a cut / CPU stop
        self.erases = 0
        self.programs = 0

    def read(self, cfg, block, off, size):
        buf = self.view if self.view is not None else self.data
        start = block * cfg.block_size + off
        return buf[start:start + size]

    def prog(self, cfg, block, off, data):
        start = block * cfg.block_size + off
        n = len(data)
        if self.view is not None:
            self._program(self.view, start, data, n)
            return 0
        self.programs += 1
        pages = (n + PAGE - 1) // PAGE
        t0, t1, cut = self.owner._busy(pages * PROGRAM_NS_PER_PAGE, ("prog", block, off, n))
        if cut is None:
            self._program(self.data, start, data, n)
        else:
            done = self._share(n, t0, t1, cut)
            self._program(self.data, start, data, done)
            self._program(self.view, start, data, n)
        return 0

    def erase(self, cfg, block):
        bs = cfg.block_size
        start = block * bs
        if self.view is not None:
            self.view[start:start + bs] = b"\xff" * bs
            return 0
        self.erases += 1
        t0, t1, cut = self.owner._busy(ERASE_NS, ("erase", block))
        if cut is None:
            self.data[start:start + bs] = b"\xff" * bs
        else:
            done = self._share(bs, t0, t1, cut)
            self.data[start:start + done] = b"\xff" * done
            self.view[start:start + bs] = b"\xff" * bs
        return 0

    def sync(self, cfg):
        return 0

    @staticmethod
    def _share(n, t0, t1, cut):
        """Bytes done by the cut when the operation ran from t0 to t1 (None: ran to the end)."""
        if cut is True or t1 <= t0:
            return n  # the CPU stopped but the chip kept power: the operation completed
        done = (cut - t0) * n // (t1 - t0)
        return 0 if done < 0 else (n if done > n else done)

    @staticmethod
    def _program(buf, start, data, n):
        # NOR programming only clears bits
        for i in range(n):
            buf[start + i] &= data[i]


class SimFlash:
    def __init__(self, world, geometry="pico", hold_irqs=True, image=None, record_ops=False):
        self.world = world
        # record_ops: ops_log gets (kind, detail, start_cycle, end_cycle) per timed erase/program
        self.ops_log = [] if record_ops else None
        self.geometry_name = geometry
        self.geometry = dict(GEOMETRIES[geometry])
        g = self.geometry
        self.size = g["block_size"] * g["block_count"]
        self.hold_irqs = hold_irqs
        self.timing = True
        self.dead = False  # power lost
        self.cut_cycle = None
        self.formatted_on_boot = False
        self._pending = None  # exception raised by a callback during a flash operation
        self._op = None  # operation in progress (for power_cut)
        self._gen = 0  # mount generation (file objects of an earlier mount are stale)
        self.chip = _Chip(self, self.size)
        self.cwd = "/"
        self.os = _OsModule(self)
        self.open = self._open
        if image is not None:
            if len(image) != self.size:
                raise ValueError("image of %d bytes, geometry needs %d" % (len(image), self.size))
            self.chip.data[:] = image
            self._mount(format_if_needed=False)
        else:
            self._format()

    # ---- LittleFS plumbing ------------------------------------------------------------------
    def _cfg(self, context):
        g = self.geometry
        return lfs.LFSConfig(context=context, block_size=g["block_size"],
                             block_count=g["block_count"], read_size=g["read_size"],
                             prog_size=g["prog_size"], cache_size=g["cache_size"],
                             lookahead_size=g["lookahead_size"], block_cycles=g["block_cycles"],
                             name_max=g["name_max"])

    def _format(self):
        self.cfg = self._cfg(self.chip)
        self.fs = lfs.LFSFilesystem()
        was = self.timing
        self.timing = False
        try:
            lfs.format(self.fs, self.cfg)
            lfs.mount(self.fs, self.cfg)
        finally:
            self.timing = was
        self._gen += 1

    def _mount(self, format_if_needed=True):
        self.cfg = self._cfg(self.chip)
        self.fs = lfs.LFSFilesystem()
        try:
            lfs.mount(self.fs, self.cfg)
        except LittleFSError:
            if not format_if_needed:
                raise
            # ports/rp2/modules/_boot.py: a failed mount formats the flash
            self.formatted_on_boot = True
            self.world.event("flash_formatted")
            self._format()
        self._gen += 1

    def _busy(self, ns, what):
        """Let an erase/program take its time. Returns (start, end, cut): cut is None if power
        stayed on, the cycle of the cut, or True if a callback raised (CPU stopped)."""
        w = self.world
        t0 = w.now
        if not self.timing:
            return t0, t0, None
        t1 = t0 + w.cycles(ns)
        self._op = (what, t0, t1)
        if self.ops_log is not None:
            self.ops_log.append((what[0], what[1:], t0, t1))
        irq_state = w.irq_enabled
        if self.hold_irqs:
            w.irq_enabled = False
        try:
            w.advance_to(t1)
        except BaseException as e:  # noqa: B036 - must not cross the C call
            if self._pending is None:
                self._pending = e
            if self.chip.view is None:
                self.chip.view = bytearray(self.chip.data)
        finally:
            self._op = None
            if self.hold_irqs:
                self._restore_irqs(irq_state)
        if self.dead and self.cut_cycle is not None and t0 <= self.cut_cycle < t1:
            return t0, t1, self.cut_cycle
        if self.chip.view is not None:
            return t0, t1, True
        return t0, t1, None

    def _restore_irqs(self, state):
        w = self.world
        w.irq_enabled = state
        if state and w._held_irqs:
            held = w._held_irqs
            w._held_irqs = []
            for pin, pin_obj, handler in held:
                try:
                    w.gpio._call_irq(pin, pin_obj, handler)
                except BaseException as e:  # noqa: B036
                    if self._pending is None:
                        self._pending = e

    # ---- power ---------------------------------------------------------------------------------
    def power_cut(self):
        """The unit loses power now (call it from world.schedule to cut inside a write)."""
        if self.dead:
            return
        self.dead = True
        self.cut_cycle = self.world.now
        if self.chip.view is None:
            self.chip.view = bytearray(self.chip.data)
        op = self._op[0] if self._op is not None else None
        self.world.event("flash_power_cut", during=op)

    def reboot(self):
        """A reset without power loss (watchdog, soft reset): remount the chip as it is."""
        self.power_on()

    def schedule_power_cut(self, cycle):
        return self.world.schedule(cycle, self.power_cut)

    def power_on(self):
        """Power comes back: forget the dead view, remount the chip as it really is."""
        self.dead = False
        self.cut_cycle = None
        self._pending = None
        self.chip.view = None
        self.cwd = "/"
        self._mount()

    def _call(self, fn, *args):
        """Run one LittleFS call for the file API: PowerCut before it if the power is gone,
        errors as MicroPython's OSError, PowerCut / a callback's exception after it."""
        if self.dead:
            raise PowerCut("flash: no power")
        if self.chip.view is not None:
            # the CPU stopped during an earlier call (exception already raised once); the
            # runner calls reboot() / power_on() when it restarts the firmware
            raise PowerCut("flash: device stopped")
        if self._op is not None:
            # a scheduled callback (machine.Timer, scenario action) touched the filesystem
            # while LittleFS is inside an erase/program: impossible on the chip (interrupts are
            # off during flash writes) and it would corrupt LittleFS's state here
            raise RuntimeError("flash: file access from a callback during a flash write")
        try:
            r = fn(self.fs, *args)
        except LittleFSError as e:
            self._after()
            raise oserror(-e.code) from None
        self._after()
        return r

    def sync_check(self):
        """Raise PowerCut if the power is gone (what the next file call would do)."""
        if self.dead:
            raise PowerCut("flash: no power")

    def _after(self):
        p = self._pending
        if p is not None:
            self._pending = None
            raise p
        if self.dead:
            raise PowerCut("flash: power cut during a write")

    # ---- host-side access (no device time) -------------------------------------------------
    def _abs(self, path):
        if not isinstance(path, str):
            raise TypeError("path must be str")
        if not path.startswith("/"):
            path = (self.cwd if self.cwd.endswith("/") else self.cwd + "/") + path
        parts = []
        for p in path.split("/"):
            if p == "" or p == ".":
                continue
            if p == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(p)
        return "/" + "/".join(parts)

    def preload(self, files):
        """Write files (path -> str or bytes) into the image before boot, creating folders.
        Takes no device time."""
        was = self.timing
        self.timing = False
        try:
            for path in files:
                content = files[path]
                if isinstance(content, str):
                    content = content.encode()
                full = self._abs(path)
                parts = full.split("/")[1:-1]
                d = ""
                for p in parts:
                    d += "/" + p
                    try:
                        lfs.mkdir(self.fs, d)
                    except LittleFSError as e:
                        if e.code != -EEXIST:
                            raise
                fh = lfs.file_open(self.fs, full, "w")
                lfs.file_write(self.fs, fh, bytes(content))
                lfs.file_close(self.fs, fh)
        finally:
            self.timing = was

    def image(self):
        """The chip's bytes as they are (after a cut: what survived)."""
        return bytes(self.chip.data)

    def _walk(self, fs, path, out, dirs):
        dh = lfs.dir_open(fs, path)
        try:
            while True:
                st = lfs.dir_read(fs, dh)
                if st is None:
                    break
                if st.name in (".", ".."):
                    continue
                full = (path.rstrip("/") + "/" + st.name)
                if st.type == lfs.LFSStat.TYPE_DIR:
                    dirs.append(full)
                    self._walk(fs, full, out, dirs)
                else:
                    fh = lfs.file_open(fs, full, "r")
                    out[full] = bytes(lfs.file_read(fs, fh, st.size))
                    lfs.file_close(fs, fh)
        finally:
            lfs.dir_close(fs, dh)

    def _mount_copy(self):
        ctx = UserContext(buffer=bytearray(self.chip.data))
        fs = lfs.LFSFilesystem()
        cfg = self._cfg(ctx)
        lfs.mount(fs, cfg)
        self._copy_cfg = cfg  # LittleFS keeps a pointer to it: keep it alive while fs is used
        return fs

    def read_all(self, with_dirs=False):
        """Every file really on the chip: {"/path": bytes}, read from a copy of the chip (open
        files show what they have committed, a cut shows what survived). with_dirs: also return
        the list of folders, as (files, dirs)."""
        fs = self._mount_copy()
        out = {}
        dirs = []
        self._walk(fs, "/", out, dirs)
        if with_dirs:
            return out, dirs
        return out

    def dump_to(self, folder):
        """Write the chip's files into a host folder (created), folders included."""
        import os as _os

        files, dirs = self.read_all(with_dirs=True)
        _os.makedirs(folder, exist_ok=True)
        for d in dirs:
            _os.makedirs(_os.path.join(folder, d.lstrip("/")), exist_ok=True)
        for path in files:
            dest = _os.path.join(folder, path.lstrip("/"))
            _os.makedirs(_os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(files[path])
        return sorted(files)

    def fs_used_blocks(self):
        return lfs.fs_size(self.fs)

    # ---- device-side open() ---------------------------------------------------------------
    def _open(self, path, mode="r", *args, **kwargs):
        return SimFile(self, path, mode)


# ---- device file objects ----------------------------------------------------------------------

_F = lfs.LFSFileFlag


def _flags(mode):
    m = mode.replace("b", "").replace("t", "")
    table = {
        "r": _F.rdonly,
        "w": _F.wronly | _F.creat | _F.trunc,
        "a": _F.wronly | _F.creat | _F.append,
        "x": _F.wronly | _F.creat | _F.excl,
        "r+": _F.rdwr,
        "w+": _F.rdwr | _F.creat | _F.trunc,
        "a+": _F.rdwr | _F.creat | _F.append,
        "x+": _F.rdwr | _F.creat | _F.excl,
    }
    if m not in table or ("b" in mode and "t" in mode):
        raise ValueError("invalid mode: %r" % mode)
    return table[m]


class SimFile:
    """A file on the simulated flash with MicroPython's file semantics (vfs_lfsx_file.c)."""

    def __init__(self, flash, path, mode="r"):
        self.flash = flash
        self.binary = "b" in mode
        self.mode = mode
        self.name = path
        flags = _flags(mode)
        self.readable = "r" in mode or "+" in mode
        self.writable = "w" in mode or "a" in mode or "x" in mode or "+" in mode
        self._gen = flash._gen
        self._fh = None
        self._fh = flash._call(lfs.file_open, flash._abs(path), flags)

    # -- plumbing --
    def _check(self):
        if self._fh is None:
            raise oserror(EBADF)
        if self._gen != self.flash._gen:
            raise oserror(EBADF)  # opened before a power cut / remount

    def _call(self, fn, *args):
        self._check()
        return self.flash._call(fn, self._fh, *args)

    # -- reading --
    def _read_bytes(self, n):
        if n is None or n < 0:
            size = self._call(lfs.file_size)
            pos = self._call(lfs.file_tell)
            n = size - pos if size > pos else 0
        if n == 0:
            return b""
        return bytes(self._call(lfs.file_read, n))

    def _decode(self, data):
        # text mode: complete a UTF-8 sequence cut by the byte count
        for _ in range(3):
            try:
                return data.decode()
            except UnicodeDecodeError as e:
                if e.end < len(data) or e.reason != "unexpected end of data":
                    raise
                more = self._read_bytes(1)
                if not more:
                    raise
                data += more
        return data.decode()

    def read(self, n=-1):
        if not self.readable:
            raise oserror(EBADF)
        data = self._read_bytes(n)
        return data if self.binary else self._decode(data)

    def readinto(self, buf, n=None):
        if n is None:
            n = len(buf)
        data = self._read_bytes(n)
        buf[:len(data)] = data
        return len(data)

    def readline(self, limit=-1):
        if not self.readable:
            raise oserror(EBADF)
        out = b""
        while limit < 0 or len(out) < limit:
            want = 64 if limit < 0 else min(64, limit - len(out))
            chunk = bytes(self._call(lfs.file_read, want))
            if not chunk:
                break
            i = chunk.find(b"\n")
            if i >= 0:
                extra = len(chunk) - i - 1
                out += chunk[:i + 1]
                if extra:
                    self._call(lfs.file_seek, -extra, 1)
                break
            out += chunk
        return out if self.binary else self._decode(out)

    def readlines(self):
        lines = []
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    # -- writing --
    def write(self, data):
        if not self.writable:
            raise oserror(EBADF)
        if isinstance(data, str):
            if self.binary:
                raise TypeError("object with buffer protocol required")
            data = data.encode()
        return self._call(lfs.file_write, bytes(data))

    def flush(self):
        self._call(lfs.file_sync)

    # -- position --
    def seek(self, offset, whence=0):
        self._call(lfs.file_seek, offset, whence)
        return self._call(lfs.file_tell)

    def tell(self):
        return self._call(lfs.file_tell)

    # -- closing --
    def close(self):
        if self._fh is None:
            return
        fh = self._fh
        self._fh = None
        if self._gen != self.flash._gen:
            return  # stale handle after a remount: nothing to commit
        self.flash._call(lfs.file_close, fh)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc and exc[0] is not None and issubclass(exc[0], PowerCut):
            self._fh = None  # no power: nothing more reaches the chip
            return False
        self.close()
        return False

    def __del__(self):
        # MicroPython does not close files on garbage collection either; just drop the handle
        self._fh = None


# ---- device-side os module -------------------------------------------------------------------

_Uname = collections.namedtuple("uname_result", ["sysname", "nodename", "release", "version",
                                                 "machine"])


class _OsModule:
    """The `os` module the firmware imports, backed by the simulated flash (MicroPython rp2)."""

    __name__ = "os"
    sep = "/"

    def __init__(self, flash):
        self._flash = flash
        self._rng = 0x2545F491

    def _abs(self, path):
        return self._flash._abs(path)

    def listdir(self, path=""):
        return [e[0] for e in self.ilistdir(path)]

    def ilistdir(self, path=""):
        fl = self._flash
        full = fl._abs(path) if path else fl.cwd
        dh = fl._call(lfs.dir_open, full)
        out = []
        try:
            while True:
                st = fl._call(lfs.dir_read, dh)
                if st is None:
                    break
                if st.name in (".", ".."):
                    continue
                kind = S_IFDIR if st.type == lfs.LFSStat.TYPE_DIR else S_IFREG
                out.append((st.name, kind, 0, st.size))
        finally:
            if not fl.dead:
                lfs.dir_close(fl.fs, dh)
        return iter(out)

    def stat(self, path):
        st = self._flash._call(lfs.stat, self._abs(path))
        mode = S_IFDIR if st.type == lfs.LFSStat.TYPE_DIR else S_IFREG
        return (mode, 0, 0, 0, 0, 0, st.size, 0, 0, 0)

    def statvfs(self, path="/"):
        fl = self._flash
        used = fl._call(lfs.fs_size)
        g = fl.geometry
        free = g["block_count"] - used
        return (g["block_size"], g["block_size"], g["block_count"], free, free, 0, 0, 0, 0,
                g["name_max"])

    def remove(self, path):
        self._flash._call(lfs.remove, self._abs(path))

    def rmdir(self, path):
        fl = self._flash
        full = self._abs(path)
        st = fl._call(lfs.stat, full)
        if st.type != lfs.LFSStat.TYPE_DIR:
            raise oserror(ENOTDIR)
        fl._call(lfs.remove, full)

    def rename(self, old, new):
        self._flash._call(lfs.rename, self._abs(old), self._abs(new))

    def mkdir(self, path):
        self._flash._call(lfs.mkdir, self._abs(path))

    def getcwd(self):
        return self._flash.cwd

    def chdir(self, path):
        fl = self._flash
        full = self._abs(path)
        if full != "/":
            try:
                st = fl._call(lfs.stat, full)
            except OSError:
                raise oserror(ENOENT) from None
            if st.type != lfs.LFSStat.TYPE_DIR:
                raise oserror(ENOENT)
        fl.cwd = full

    def sync(self):
        if self._flash.dead:
            raise PowerCut("flash: no power")

    def uname(self):
        return _Uname("rp2", "rp2", "1.29.0", "v1.29.0 on 2026-01-01 (simulated)",
                      "Raspberry Pi Pico with RP2040")

    def urandom(self, n):
        out = bytearray(n)
        for i in range(n):
            x = self._rng
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            self._rng = x
            out[i] = x & 0xFF
        return bytes(out)

    def dupterm(self, *args):
        return None
