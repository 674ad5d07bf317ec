"""Test order for `make test` (pytest-xdist, `-n JOBS --dist worksteal`): the long tests first,
spread over the workers so that the run ends with both cores busy.

Why: worksteal hands worker k the k-th contiguous slice of the collection (JOBS slices of equal
count) and, when a worker runs out, moves the tail of another worker's queue to it. A long test
that one worker reaches last leaves the other core idle for as long as it runs (the chip scenario
takes about 80 s), and a worker can take nothing from a test that is already running. So each
worker's slice starts with its share of the long tests (longest first, each to the worker with
the least estimated time so far) and goes on with the short tests in pytest's own order; the short
tails are what worksteal balances at the end.

Tests that share a module- or class-scoped fixture (for example the chip scenario of
tests/test_chip_firmware.py, run once for four tests) move together, in their order, as one unit:
the fixture is still set up once, on one worker. The order depends only on the collection and on
the worker count: every worker computes the same order, as xdist requires. Without xdist (or with
one worker, or another --dist mode) pytest's order is left alone.

Tests that keep real time (REALTIME below: the virtual device and the terminal simulator run at
the speed of the clock on the wall, so such a test mostly waits) get the marker `realtime`.
`make test` runs them in a process of their own beside the xdist workers (`-m realtime`; the
workers take `-m "not realtime"`), so their waiting no longer holds a worker, and a core, idle:
about 46 s of the 2 workers' time (measured with a per-test CPU/wall hook, docs/performance.md
"Test time"). Every test still runs in exactly one of the two processes.

EST_S: estimated seconds per test (setup + call), by "file::function" prefix, from
`.venv/bin/python -m pytest -q -n 0 --durations=0 tests/<file>` run one file at a time (docs/
performance.md "Test time" gives the figures and the date). A test not listed counts as short; a
stale entry only makes the packing a little worse, never a test fail or go missing.
"""
import pytest

EST_S = {
    # emulated RP2040 (rp2040py running the real MicroPython images)
    "test_chip_firmware.py::test_the_make_flash_image_boots_to_the_program_list": 57,  # `runs`
    "test_service_path.py::test_make_logs_on_the_emulated_pico_running_the_app": 48,
    "test_service_path.py::test_on_the_emulated_rp2040_a_serviced_unit": 48,
    "test_chip_firmware.py::test_without_a_display": 2.2,
    "test_chip_firmware.py::test_virtual_device_takes_mpremote": 3,
    "test_chip_pulse.py::test_train_every_edge_on_its_planned_cycle": 0.5,  # + 3 s boot / version
    "test_chip_pulse.py::test_mutant_old_engine": 3,
    "test_chip_pio_exact.py::": 0.7,
    # the virtual device and the terminal simulator keep real time (wall seconds, little CPU;
    # make test runs them outside the xdist workers: REALTIME below; these count for test-long)
    "test_service_path.py::test_logs_backup_restore": 10,
    "test_service_path.py::test_repl_on_a_running_unit": 7.5,
    "test_service_path.py::test_flash_onto": 4,
    "test_service_path.py::test_the_virtual_watchdog": 2,
    "test_simulator.py::test_operate_the_unit": 12,
    "test_simulator.py::": 3,
    "test_flash.py::test_real_firmware_boots_on_the_virtual_device": 6,
    "test_flash.py::": 1,
    # whole firmware on the host simulation
    "test_firmware_fuzz.py::test_random_buttons_and_faults_never_break_the_safety_rules": 14.5,
    "test_sim_fastforward.py::test_random_programs_same_edges": 6,
    "test_sim_fastforward.py::test_random": 4,
    "test_emg_scenarios.py::": 1,
    # pulse engines on the host simulation
    "test_pulse_property.py::test_random_parameter_sequences_pico": 7.6,
    "test_pulse_property.py::test_random_parameter_sequences_esp32": 1.2,
    "test_pulse_property.py::test_hypothesis_sequences": 1,
    "test_pulse_rmt.py::test_loop_clock_stays_anchored": 3,
}
# wall seconds spent waiting (wall - CPU, each measured alone) in brackets
REALTIME = (
    "test_service_path.py::test_logs_backup_restore_of_a_running_unit",  # 10.6
    "test_service_path.py::test_repl_on_a_running_unit",  # 8.6
    "test_service_path.py::test_flash_onto_a_",  # 3.0 + 2.9
    "test_service_path.py::test_the_virtual_watchdog",  # 1.6
    "test_simulator.py::",  # 5.0 operate, 3.6 queue, 1.6-2.0 for four more
    "test_flash.py::",  # 1.4 real firmware on the virtual device, 0.5 end to end, ...
    "test_virtual_device.py::",  # 1.1 pins, 0.6 friendly REPL
)
LONG_S = 2.0  # a unit at least this long is placed; shorter ones keep pytest's order
SHARED_SCOPES = ("module", "class")


def estimate(item):
    """Estimated seconds of one test item (EST_S, longest matching prefix)."""
    name = item.nodeid.split("[", 1)[0]
    name = name.rsplit("/", 1)[-1]
    best, s = -1, 0.0
    for prefix, v in EST_S.items():
        if name.startswith(prefix) and len(prefix) > best:
            best, s = len(prefix), v
    return s


def unit_key(item):
    """Items with the same key share a module/class-scoped fixture instance: they stay together
    (None: the item is a unit of its own)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    shared = []
    for name in info.names_closure:
        defs = info.name2fixturedefs.get(name)
        if defs and str(getattr(defs[-1], "scope", "function")) in SHARED_SCOPES:
            shared.append((name, repr(params.get(name))))
    if not shared:
        return None
    return (item.nodeid.split("::", 1)[0], tuple(sorted(shared)))


def arrange(items, workers):
    """The order in which worksteal's first split gives each of `workers` workers a slice that
    starts with its share of the long units (see the module docstring)."""
    units, by_key = [], {}
    for it in items:
        k = unit_key(it)
        if k is not None and k in by_key:
            by_key[k].append(it)
            continue
        u = [it]
        units.append(u)
        if k is not None:
            by_key[k] = u
    est = [sum(estimate(it) for it in u) for u in units]
    long_ids = sorted((i for i in range(len(units)) if est[i] >= LONG_S),
                      key=lambda i: (-est[i], i))
    load = [0.0] * workers
    bins = [[] for _ in range(workers)]
    for i in long_ids:
        w = min(range(workers), key=lambda k: (load[k], k))
        bins[w].append(i)
        load[w] += est[i]
    placed = set(long_ids)
    short = [it for i, u in enumerate(units) if i not in placed for it in u]
    # worksteal's first split: worker k gets len(pending) // (workers - k) of what is left
    out, left = [], len(items)
    for k in range(workers):
        size = left // (workers - k)
        chunk = [it for i in bins[k] for it in units[i]]
        take = max(0, size - len(chunk))
        chunk += short[:take]
        del short[:take]
        out += chunk
        left -= len(chunk)
    return out + short


def pytest_configure(config):
    config.addinivalue_line("markers", "realtime: keeps real time, mostly waits (REALTIME in "
                            "tests/conftest.py; make test runs these in a process of their own)")


def pytest_itemcollected(item):
    name = item.nodeid.split("[", 1)[0].rsplit("/", 1)[-1]
    if name.startswith(REALTIME):
        item.add_marker(pytest.mark.realtime)


def pytest_collection_modifyitems(config, items):
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if workers < 2 or config.getoption("dist", None) != "worksteal":
        return
    order = arrange(items, workers)
    # a reordering, nothing dropped or doubled
    assert sorted(map(id, order)) == sorted(map(id, items)), "tests/conftest.py lost a test"
    items[:] = order
