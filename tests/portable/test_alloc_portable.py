# The steady parts of the main-loop tick allocate nothing on MicroPython (floats are boxed there:
# every new float result is a heap block). Run by tests/mp_run.py on the unix port; on CPython
# (no gc.mem_alloc) only the behaviour half runs. The whole tick is measured by
# host_tools/bench_mp.py (alloc_per_loop_bytes).
import gc

from tests import device_path  # noqa: F401  (firmware/ and lib/ on sys.path)

import programs
import safety
import session

_MP = hasattr(gc, "mem_alloc")
TICK = 10


def _alloc(fn, *args):
    """Bytes fn(*args) allocated (0 on CPython)."""
    if not _MP:
        fn(*args)
        return 0
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    fn(*args)
    m1 = gc.mem_alloc()
    gc.enable()
    return m1 - m0


class RawStage:
    """An output stage with raw current-sense readings (lib/output_stage.py contract):
    reading = raw * 0.01 mA; the reading follows the command."""

    def __init__(self):
        self.amp = {1: 0, 2: 0}
        self.raw = {1: 0, 2: 0}
        self.enabled = False

    def enable(self, on):
        self.enabled = bool(on)

    def set_amplitude_ma(self, ch, ma):
        self.amp[ch] = ma
        self.raw[ch] = int(ma * 100 + 0.5)

    def configure_pulses(self, ch, *args):
        return None

    def start_pulses(self, ch):
        pass

    def stop_pulses(self, ch):
        pass

    def read_current_ma(self, ch):
        return self.raw[ch] * 0.01

    def read_current_raw(self, ch):
        return self.raw[ch]

    def current_raw_threshold(self, ma, strict=False):
        r = int(ma * 100) - 2
        if r < 0:
            r = 0
        while not (r * 0.01 > ma if strict else r * 0.01 >= ma):
            r += 1
        return r

    def battery_mv(self):
        return 3900

    def usb_present(self):
        return False


def _run(sup, s, t, until, presses=0, chs=(1, 2)):
    """Loop ticks up to `until` ms; one + press per channel every 100 ms, `presses` times."""
    while t < until:
        t += TICK
        if presses and t % 100 == 0:
            presses -= 1
            for ch in chs:
                sup.set_user_level(ch, sup.user_level(ch) + 1, t)
        sup.apply(s.tick(t), t)
        sup.tick(t)
    return t


def _steady(prog, scale, t_from, n):
    s = session.Session(prog, intensity_scale=scale)
    s.start(0)
    t = 0
    while t < t_from:
        s.tick(t)
        t += TICK
    worst = 0
    for _ in range(n):
        t += TICK
        a = _alloc(s.tick, t)
        worst = a if a > worst else worst
    return s, t, worst


def test_session_tick_allocates_nothing_when_flat():
    cont = programs.Program("c", "C", 100, 150, on_s=10, off_s=0, ramp_up_s=2, ramp_down_s=2,
                            session_min=5, warmup_s=60, cooldown_s=60)
    cyc = programs.Program("y", "Y", 50, 300, on_s=4, off_s=6, ramp_up_s=2, ramp_down_s=2,
                           session_min=5)
    for scale in (1.0, 0.5):
        s, t, worst = _steady(cont, scale, 30000, 50)        # warm-up plateau
        assert s.out.state == "warmup" and worst == 0, worst
        assert s.out.envelope[1] == session.WARMUP_ENVELOPE * scale
        s, t, worst = _steady(cont, scale, 70000, 50)        # continuous "on"
        assert s.out.state == "on" and worst == 0, worst
        assert s.out.envelope[1] == scale
        s, t, worst = _steady(cyc, scale, 2500, 50)          # cycle: on
        assert s.out.state == "on" and worst == 0, worst
        s, t, worst = _steady(cyc, scale, 8500, 50)          # cycle: off
        assert s.out.state == "off" and worst == 0, worst
        assert s.out.envelope[1] == 0.0


def test_supervisor_apply_and_tick_allocate_nothing_in_steady_stimulation():
    prog = programs.Program("c", "C", 100, 150, on_s=10, off_s=0, ramp_up_s=2, ramp_down_s=2,
                            session_min=5)
    st = RawStage()
    sup = safety.SafetySupervisor(st, None)
    s = session.Session(prog, intensity_scale=0.5)
    s.start(0)
    out = s.tick(0)
    assert sup.start(out.pulse, 0) is None
    t = _run(sup, s, 0, 4000, presses=12)
    assert sup.state == "running" and sup.delivered_ma(1) == 6.0, sup.delivered_ma(1)
    worst = 0
    for _ in range(50):
        t += TICK
        a = _alloc(sup.apply, s.tick(t), t) + _alloc(sup.tick, t)
        worst = a if a > worst else worst
    assert worst == 0, worst
    assert sup.state == "running" and not sup.faults


def test_supervisor_raw_current_checks_still_fault():
    # the raw-count thresholds find what the mA readings did: electrode off, over current
    prog = programs.Program("c", "C", 100, 150, on_s=10, off_s=0, ramp_up_s=1, ramp_down_s=1,
                            session_min=5)
    for kind, reading in (("open_circuit", 0), ("cannot_reach_current", 300),
                          ("over_current", 2000)):
        st = RawStage()
        sup = safety.SafetySupervisor(st, None)
        s = session.Session(prog)
        s.start(0)
        assert sup.start(s.tick(0).pulse, 0) is None
        t = _run(sup, s, 0, 2000, presses=10, chs=(1,))
        assert sup.delivered_ma(1) == 10.0 and not sup.faults
        st.raw[1] = reading      # 0 mA, 3 mA (< 70 % of 10), 20 mA (> 10 x 1.1 + 5)
        t = _run(sup, s, t, t + 200)
        kinds = [f.kind for f in sup.faults]
        assert kind in kinds, (kind, kinds)
