"""The simulated Pico flash (host_tools/sim/flash.py): a real LittleFS image with the rp2 port's
geometry, device time for erases/programs, power cuts inside writes, MicroPython's os/open API.

What LittleFS does with a power cut (observed here, and documented in flash.py / the littlefs
design notes): every change is committed copy-on-write, as an append to a metadata log with a
CRC, so a file is either as it was at its last commit or as in the new commit; a half-written
commit is ignored at mount. A file opened with "w" is only truncated on flash when it is
committed (close() or flush()), so even a direct overwrite without flush() keeps the old content
or gets the new one. What goes wrong without the tmp-then-rename pattern: a writer that flushes
part-way (or writes a big file in several syncs) leaves a file holding only the first part: a
well-formed file with broken content. The rename pattern commits the new content under another
name first, and the rename is one metadata commit, so the target is old or new, never partial.
"""
import sys

import pytest

from host_tools.sim import flash as flash_mod
from host_tools.sim import install, world

CUT_FILES = {"/settings.json": '{"contrast": 128, "sound": true}', "/other.txt": "keep me",
             "/log/usage.json": '{"sessions": 3}'}
OLD = CUT_FILES["/settings.json"].encode()


def _new(record_ops=True, files=CUT_FILES):
    w = world.new_world()
    fl = flash_mod.SimFlash(w, record_ops=record_ops)
    fl.preload(files)
    w.advance_to(w.cycles(1_000_000))  # 1 ms after boot
    return w, fl


def _atomic_write(fl, data):
    f = fl.open("/settings.tmp", "w")
    f.write(data)
    f.close()
    fl.os.rename("/settings.tmp", "/settings.json")


def _direct_write(fl, data, flush_at=None):
    with fl.open("/settings.json", "w") as f:
        if flush_at is None:
            f.write(data)
        else:
            f.write(data[:flush_at])
            f.flush()
            f.write(data[flush_at:])


def _cut_instants(write, data):
    """Run write once without a cut; return cut instants covering every timed flash operation
    (its first cycle, middle, last cycle) and the gaps between them."""
    w, fl = _new()
    t0 = w.now
    write(fl, data)
    t1 = w.now
    assert fl.ops_log, "the write took no flash operation"
    pts = {t0, t1, t1 + 1}
    for _kind, _detail, s, e in fl.ops_log:
        pts.update((s, s + 1, (s + e) // 2, e - 1, e))
    return sorted(pts), fl.read_all()


def _run_with_cut(write, data, cut):
    w, fl = _new(record_ops=False)
    fl.schedule_power_cut(cut)
    cut_seen = False
    try:
        write(fl, data)
    except flash_mod.PowerCut:
        cut_seen = True
    if not fl.dead:
        # the cut falls after the write: let it happen
        w.advance_to(cut)
        assert fl.dead
    fl.power_on()
    return fl.read_all(), cut_seen


@pytest.mark.parametrize("size", [40, 900, 6000, 20000])
def test_atomic_write_survives_a_cut_anywhere(size):
    new = (b'{"contrast": 200, "pad": "' + b"x" * size + b'"}')
    instants, final = _cut_instants(_atomic_write, new)
    assert final["/settings.json"] == new
    outcomes = set()
    cuts_inside = 0
    for cut in instants:
        files, cut_seen = _run_with_cut(_atomic_write, new, cut)
        cuts_inside += cut_seen
        got = files["/settings.json"]
        assert got in (OLD, new), "cut at %d: broken settings (%d bytes)" % (cut, len(got))
        outcomes.add(got == new)
        # nothing else lost or changed; a leftover tmp file is the only extra allowed
        for path in CUT_FILES:
            if path != "/settings.json":
                assert files[path] == CUT_FILES[path].encode()
        assert set(files) - set(CUT_FILES) <= {"/settings.tmp"}
        if "/settings.tmp" in files:
            assert got == OLD  # the rename had not happened
    assert outcomes == {False, True}  # some cuts keep the old file, some the new one
    assert cuts_inside >= len(instants) // 2


def test_direct_overwrite_without_flush_is_still_old_or_new():
    new = b'{"contrast": 7, "pad": "' + b"y" * 3000 + b'"}'
    instants, _ = _cut_instants(_direct_write, new)
    for cut in instants:
        files, _ = _run_with_cut(_direct_write, new, cut)
        assert files["/settings.json"] in (OLD, new)


def test_direct_overwrite_with_a_flush_can_leave_a_broken_file():
    new = b'{"contrast": 7, "pad": "' + b"z" * 3000 + b'"}'

    def write(fl, data):
        _direct_write(fl, data, flush_at=len(data) // 2)

    instants, _ = _cut_instants(write, new)
    partial = []
    for cut in instants:
        files, _ = _run_with_cut(write, new, cut)
        got = files["/settings.json"]
        if got not in (OLD, new):
            partial.append(got)
    assert partial, "expected a cut that leaves only the flushed half"
    assert all(p == new[:len(new) // 2] for p in partial)


def test_power_cut_semantics():
    w, fl = _new(record_ops=True)
    f = fl.open("/big.bin", "wb")
    f.write(b"a" * 5000)
    start = w.now
    n_ops = len(fl.ops_log)
    fl.schedule_power_cut(start + 1)  # inside the first flash operation of close()
    with pytest.raises(flash_mod.PowerCut):
        f.close()
    assert fl.dead
    assert fl.ops_log[n_ops][2] == start  # close() did start a write that the cut fell into
    with pytest.raises(flash_mod.PowerCut):
        fl.open("/other.txt")
    with pytest.raises(flash_mod.PowerCut):
        fl.os.listdir("/")
    assert [e for e in w.events if e["kind"] == "flash_power_cut"]
    fl.power_on()
    files = fl.read_all()
    # LittleFS commits a new file's entry at open(); its content was never committed
    assert files.get("/big.bin", b"") == b""
    assert files["/other.txt"] == b"keep me"
    with pytest.raises(OSError) as e:
        f.write(b"x")  # a handle of the previous boot
    assert e.value.errno == flash_mod.EBADF
    assert not fl.formatted_on_boot


def _write_8k(fl):
    with fl.open("/f.bin", "wb") as f:
        f.write(b"q" * 8192)


def test_flash_time():
    w, fl = _new(record_ops=True)
    t0 = w.now
    _write_8k(fl)
    erases = [op for op in fl.ops_log if op[0] == "erase"]
    progs = [op for op in fl.ops_log if op[0] == "prog"]
    assert len(erases) >= 2 and sum(op[1][2] for op in progs) >= 8192
    for _k, _d, s, e in erases:
        assert e - s == w.cycles(flash_mod.ERASE_NS)
    for _k, d, s, e in progs:
        pages = (d[2] + 255) // 256
        assert e - s == w.cycles(pages * flash_mod.PROGRAM_NS_PER_PAGE)
    busy = sum(e - s for _k, _d, s, e in fl.ops_log)
    assert w.now - t0 == busy  # only flash operations take device time


def test_pin_irq_held_during_erase():
    w, fl = _new(record_ops=True)
    _write_8k(fl)
    erase = [op for op in fl.ops_log if op[0] == "erase"][0]
    press_at = (erase[2] + erase[3]) // 2
    # the same run again (deterministic) with a button edge in the middle of that erase
    w, fl = _new(record_ops=True)
    from host_tools.sim import machine

    pin = machine.Pin(16, machine.Pin.IN, machine.Pin.PULL_UP)
    seen = []
    pin.irq(lambda p: seen.append(w.now), trigger=machine.Pin.IRQ_FALLING)
    w.schedule(press_at, lambda: w.gpio.drive_external(16, 0))
    _write_8k(fl)
    assert fl.ops_log[[op[0] for op in fl.ops_log].index("erase")][2:] == erase[2:]
    # interrupts are off during the erase (rp2_flash.c): the handler runs when it ends
    assert seen == [erase[3]]
    assert w.gpio.level_at(16, press_at) == 0  # the pin itself fell on time


def test_file_access_from_a_callback_during_a_write_is_refused():
    w, fl = _new(record_ops=True)
    _write_8k(fl)
    erase = [op for op in fl.ops_log if op[0] == "erase"][0]
    w, fl = _new(record_ops=True)
    errors = []

    def sneaky():
        try:
            fl.os.listdir("/")
        except RuntimeError as e:
            errors.append(e)

    w.schedule((erase[2] + erase[3]) // 2, sneaky)
    _write_8k(fl)
    assert len(errors) == 1
    assert fl.read_all()["/f.bin"] == b"q" * 8192


def test_preload_read_back_and_dump(tmp_path):
    w, fl = _new(files={"/a.txt": "alpha", "/d/e/f.json": b"\x00\x01", "/lib/x.py": "pass\n"})
    assert w.now == w.cycles(1_000_000)  # preload takes no device time
    files = fl.read_all()
    assert files == {"/a.txt": b"alpha", "/d/e/f.json": b"\x00\x01", "/lib/x.py": b"pass\n"}
    names = fl.dump_to(str(tmp_path / "flash"))
    assert names == sorted(files)
    assert (tmp_path / "flash" / "d" / "e" / "f.json").read_bytes() == b"\x00\x01"
    # the image remounts as itself
    img = fl.image()
    assert len(img) == 352 * 4096
    fl2 = flash_mod.SimFlash(world.new_world(), image=img)
    assert fl2.read_all() == files


def test_statvfs_matches_the_geometry():
    w = world.new_world()
    fl = flash_mod.SimFlash(w)
    st = fl.os.statvfs("/")
    assert st[0] == st[1] == 4096
    assert st[2] == 352 and 352 * 4096 == 1408 * 1024
    assert st[3] == st[4] == 352 - fl.fs_used_blocks()
    assert st[9] == 255
    before = st[3]
    with fl.open("/big.bin", "wb") as f:
        f.write(b"b" * 3 * 4096)
    assert fl.os.statvfs("/")[3] <= before - 3
    g = fl.geometry
    assert (g["read_size"], g["prog_size"], g["cache_size"], g["lookahead_size"]) == (32, 256,
                                                                                     1024, 32)


def test_errors_match_micropython():
    w, fl = _new()
    os_ = fl.os
    cases = [
        (lambda: fl.open("/nope.txt"), 2),
        (lambda: fl.open("/nodir/x.txt", "w"), 2),
        (lambda: os_.remove("/nope"), 2),
        (lambda: os_.stat("/nope"), 2),
        (lambda: os_.rename("/nope", "/x"), 2),
        (lambda: os_.chdir("/nope"), 2),
        (lambda: os_.listdir("/nope"), 2),
        (lambda: os_.mkdir("/log"), 17),
        (lambda: fl.open("/other.txt", "x"), 17),
        (lambda: os_.rmdir("/log"), 39),
        (lambda: os_.listdir("/other.txt"), 20),
        (lambda: fl.open("/log"), 21),
    ]
    for fn, code in cases:
        with pytest.raises(OSError) as e:
            fn()
        assert e.value.errno == code and e.value.args[0] == code
    with pytest.raises(OSError) as e:
        fl.open("/other.txt").write("x")  # read-only handle
    assert e.value.errno == flash_mod.EBADF


def test_file_api():
    w, fl = _new()
    with fl.open("/t.txt", "w") as f:
        assert f.write("line 1\nline 2\n") == 14
        f.write("last")
    with fl.open("/t.txt") as f:
        assert f.readline() == "line 1\n"
        assert [x for x in f] == ["line 2\n", "last"]
    with fl.open("/t.txt", "a") as f:
        f.write("\nmore")
    with fl.open("/t.txt", "rb") as f:
        data = f.read()
        assert data == b"line 1\nline 2\nlast\nmore"
        assert f.seek(5) == 5 and f.read(3) == b"1\nl" and f.tell() == 8
        assert f.seek(-4, 2) == len(data) - 4 and f.read() == b"more"
    with fl.open("/t.txt", "r+") as f:
        f.write("LINE")
        f.seek(0)
        assert f.read(6) == "LINE 1"
    with fl.open("/b.bin", "wb") as f:
        with pytest.raises(TypeError):
            f.write("text")
        f.write(bytearray(b"\x01\x02"))
    with fl.open("/u.txt", "w") as f:
        f.write("caf\u00e9 \u2713")
    with fl.open("/u.txt") as f:
        assert f.read(4) == "caf\u00e9"  # 4 bytes end inside the 2-byte \u00e9: completed
    with fl.open("/u.txt") as f:
        assert f.read() == "caf\u00e9 \u2713"
    os_ = fl.os
    assert sorted(os_.listdir()) == ["b.bin", "log", "other.txt", "settings.json", "t.txt",
                                     "u.txt"]
    entries = {e[0]: e for e in os_.ilistdir("/")}
    assert entries["log"][1] == 0x4000 and entries["b.bin"][1] == 0x8000
    assert entries["b.bin"][3] == 2
    assert os_.stat("/b.bin")[0] == 0x8000 and os_.stat("/b.bin")[6] == 2
    assert os_.stat("/log")[0] == 0x4000
    os_.chdir("log")
    assert os_.getcwd() == "/log" and os_.listdir() == ["usage.json"]
    with fl.open("usage.json") as f:
        assert f.read() == '{"sessions": 3}'
    os_.chdir("..")
    assert os_.getcwd() == "/"
    os_.mkdir("/new")
    os_.rmdir("/new")
    os_.remove("/t.txt")
    assert "t.txt" not in os_.listdir("/")
    os_.sync()
    u = os_.uname()
    assert u.sysname == "rp2" and u[0] == "rp2" and "RP2040" in u.machine


def test_install_swaps_os_and_open_for_device_modules(tmp_path):
    import os as real_os

    (tmp_path / "sim_flash_devmod.py").write_text(
        "import os\n"
        "def names():\n    return sorted(os.listdir('/'))\n"
        "def read(p):\n    with open(p) as f:\n        return f.read()\n")
    w, fl = _new(files={"/board.txt": "pico", "/hello.txt": "hi"})
    install.install(w, flash=fl)
    try:
        mod = install.load("sim_flash_devmod", paths=(str(tmp_path), "firmware", "lib", "."))
        assert sys.modules["os"] is real_os  # restored after the import
        assert mod.os is fl.os
        assert mod.names() == ["board.txt", "hello.txt"]
        assert mod.read("/hello.txt") == "hi"
        # board_config reads /board.txt through the injected open
        bc = install.load("board_config")
        assert bc.load().NAME == "pico"
    finally:
        install.forget_device_modules()
    # a new world without a flash: default behaviour
    w2 = world.new_world()
    install.install(w2)
    mod = install.load("sim_flash_devmod", paths=(str(tmp_path), "firmware", "lib", "."))
    assert mod.os is real_os and not hasattr(mod, "open")
    install.forget_device_modules()


def _store_world():
    w = world.new_world()
    fl = flash_mod.SimFlash(w, record_ops=True)
    install.install(w, flash=fl)
    settings = install.load("settings")
    store = settings.Store("/")
    old = settings.defaults()
    store.save_settings(old)
    w.advance_to(w.now + w.cycles(1_000_000))
    fl.ops_log[:] = []
    return w, fl, settings, store, old


def test_settings_store_on_the_simulated_flash_survives_cuts():
    """firmware/settings.py (json + os.rename) through install(world, flash=): a power cut at
    any flash operation of save_settings leaves the old or the new settings, and load_settings
    after the remount gives one of them with no notice."""
    try:
        w, fl, settings, store, old = _store_world()
        new = dict(old)
        new["contrast"] = 7
        t0 = w.now
        store.save_settings(new)
        pts = {t0}
        for _k, _d, s, e in fl.ops_log:
            pts.update((s + 1, (s + e) // 2, e - 1))
        assert len(pts) > 3
        outcomes = set()
        for cut in sorted(pts):
            w, fl, settings, store, old = _store_world()
            fl.schedule_power_cut(cut)
            with pytest.raises(flash_mod.PowerCut):
                store.save_settings(new)
                w.advance_to(cut)
                fl.sync_check()
            fl.power_on()
            store = settings.Store("/")
            got = store.load_settings()
            assert got in (old, new), cut
            assert not store.notices
            outcomes.add(got["contrast"])
            assert "settings.json.tmp" not in fl.os.listdir("/")  # removed by the load
        assert outcomes == {old["contrast"], 7}
    finally:
        install.forget_device_modules()


def test_a_new_chip_is_erased_flash():
    """The chip behind a new SimFlash starts as erased NOR flash: every byte 0xFF, the
    geometry's size, a bytearray LittleFS writes into (host_tools/sim/flash._Chip)."""
    chip = flash_mod._Chip(None, 4096 * 7)
    assert type(chip.data) is bytearray and chip.data is chip.buffer
    assert chip.data == b"\xff" * (4096 * 7)
