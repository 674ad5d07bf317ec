"""host_tools.sim.install keeps device modules' compiled code between loads (CPython): every
load() must still give fresh module objects with fresh state, run the module body again, and read
a file again once it changed on disk."""
import sys

import pytest

from host_tools.sim import install


def test_each_load_is_a_fresh_module_with_the_same_code():
    install.board_world("pico")
    m1 = install.load("pulse_plan")
    m1.sentinel_left_by_a_previous_boot = True
    m2 = install.load("pulse_plan")
    assert m2 is not m1
    assert not hasattr(m2, "sentinel_left_by_a_previous_boot")
    # the functions are new objects over the one cached code object
    f1 = [v for v in vars(m1).values()
          if type(v).__name__ == "function" and v.__module__ == "pulse_plan"]
    assert f1
    for f in f1:
        g = getattr(m2, f.__name__)
        assert g is not f and g.__code__ is f.__code__
        assert g.__globals__ is vars(m2)


@pytest.fixture
def device_dir(tmp_path, monkeypatch):
    """A folder treated like firmware/: on sys.path, its modules' code cached (load() forgets
    the modules it imported itself)."""
    d = str(tmp_path) + "/"
    install.board_world("pico")
    install.load("pulse_plan")  # the finder installed
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(install, "_code_dirs", install._code_dirs + [d])
    yield tmp_path
    sys.modules.pop("h11_probe", None)


def test_module_body_runs_at_every_load(device_dir):
    (device_dir / "h11_probe.py").write_text(
        "import sys\ncount = []\nsys.h11_probe_runs = getattr(sys, 'h11_probe_runs', 0) + 1\n")
    sys.h11_probe_runs = 0
    try:
        a = install.load("h11_probe")
        a.count.append(1)
        b = install.load("h11_probe")
        assert b.count == [] and sys.h11_probe_runs == 2
        assert type(b.__spec__.loader).__name__ == "_CachedLoader"  # the cache is in use
    finally:
        del sys.h11_probe_runs


def test_a_changed_file_is_read_again(device_dir):
    f = device_dir / "h11_probe.py"
    f.write_text("VALUE = 1\n")
    assert install.load("h11_probe").VALUE == 1
    f.write_text("VALUE = 22\n")  # another size
    assert install.load("h11_probe").VALUE == 22
    st = f.stat()
    f.write_text("VALUE = 33\n")  # the same size, a later time
    import os

    # (2 s later: CPython's own bytecode cache, which a cache miss reads, keeps whole seconds)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert install.load("h11_probe").VALUE == 33


def test_forget_drops_every_device_module_and_nothing_else():
    """forget_device_modules(): a device module imported by hand (absolute or through a relative
    sys.path entry) is dropped; a host module, one without a file and one in another tree's lib/
    stay."""
    import types

    root = install._repo_root()
    files = {"h11_abs_lib": root + "/lib/h11.py", "h11_abs_fw": root + "/firmware/h11.py",
             "h11_abs_cfg": root + "/board_config/h11.py", "h11_rel_lib": "lib/h11.py",
             "h11_rel_fw": "firmware/h11.py", "h11_host": root + "/host_tools/h11.py",
             "h11_other": "/elsewhere/lib/h11.py", "h11_nofile": None}
    for name, f in files.items():
        m = types.ModuleType(name)
        if f is not None:
            m.__file__ = f
        sys.modules[name] = m
    try:
        install.forget_device_modules()
        left = sorted(n for n in files if n in sys.modules)
        assert left == ["h11_host", "h11_nofile", "h11_other"]
    finally:
        for name in files:
            sys.modules.pop(name, None)


def test_a_device_name_found_elsewhere_later_is_imported_from_there(device_dir, tmp_path_factory,
                                                                   monkeypatch):
    """load() puts a finder first for names that were device modules (skipping the finders that
    decline them); once such a name resolves to a file outside the device folders it is imported
    from there as usual, and the finder is gone from sys.meta_path after every load()."""
    f = device_dir / "h11_probe.py"
    f.write_text("WHERE = 'device'\n")
    assert install.load("h11_probe").WHERE == "device"
    f.unlink()
    other = tmp_path_factory.mktemp("host")
    (other / "h11_probe.py").write_text("WHERE = 'host'\n")
    monkeypatch.syspath_prepend(str(other))
    m = install.load("h11_probe")
    assert m.WHERE == "host"
    assert type(m.__spec__.loader).__name__ == "SourceFileLoader"
    assert not any(type(x).__name__ == "_FrontFinder" or getattr(x, "__name__", "") ==
                   "_FrontFinder" for x in sys.meta_path)
