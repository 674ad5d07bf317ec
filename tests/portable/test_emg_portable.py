# EMG (issue 10) on the MicroPython unix port (tests/mp_run.py) and CPython: the sampling IRQ
# handler, the blanking arithmetic, process() and the mode ticks allocate nothing in the steady
# state with sampling on; and the simulated board's blanking works on this interpreter too.
#
# The allocation half gives lib/emg.py the interpreter's own `time` (ticks_us/ticks_diff/ticks_add
# are native and allocation-free on MicroPython; the simulation's stand-in computes nanoseconds
# with big integers) and an ADC whose read_u16() returns preset ints: what is measured is the
# device code, not the simulation around it.
import gc

from tests.emg_harness import EmgRig

_MP = hasattr(gc, "mem_alloc")


def _alloc(fn, *args):
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


class _Adc:
    """read_u16() from a preset array of 12-bit counts (<< 4, like the rp2 port)."""

    def __init__(self, counts):
        self.counts = counts
        self.i = 0

    def read_u16(self):
        c = self.counts[self.i]
        self.i += 1
        if self.i >= len(self.counts):
            self.i = 0
        return c << 4


def _native_time():
    """MicroPython's own time module (the simulation may have its stand-in in sys.modules under
    the name "time"; "utime" is the built-in's other name), or None on CPython."""
    try:
        t = __import__("utime")
    except ImportError:
        return None
    return t if hasattr(t, "ticks_us") and not hasattr(t, "_world") else None


class _Plan:
    """A PulsePlan's timing fields (lib/pulse_plan.py): 50 Hz, 300 us phases, at 125 MHz."""
    sys_hz = 125_000_000
    phase_cycles = 37_500
    gap_cycles = 6_250
    period_cycles = 2_500_000
    burst_count = 1
    burst_slots = 1
    alternate = False


def _samples(e, n):
    i = 0
    while i < n:
        e._sample(None)
        i += 1


def test_sampling_and_processing_allocate_nothing():
    r = EmgRig("pico")
    e = r.emg
    mod = r.emg_mod
    nt = _native_time()
    if nt is not None:
        mod.time = nt  # module global: the device's own ticks
    counts = [2048 + ((k * 37) % 21) - 10 for k in range(200)]  # rest-like noise
    e._adc = _Adc(counts)
    # trains started 5 ms ago: the samples below (a few ms of this interpreter's time) fall
    # between pulses, and the blanking steps from the first pulse to the next one
    t0 = mod.time.ticks_add(mod.time.ticks_us(), -5000)
    e.pulses_started(0, _Plan(), t0)
    e.pulses_started(1, _Plan(), t0)
    _samples(e, 300)  # fill the ring, first process() sets the baseline
    e.process()
    worst = 0
    for _ in range(20):
        a = _alloc(_samples, e, 10)  # one loop tick's worth of IRQs
        b = _alloc(e.process)
        worst = max(worst, a, b)
    assert worst == 0, worst
    assert e.samples == 500 and e.fault == 0
    # the envelope in uV: counts spread +-10 around 2048 -> about 5 counts ARV x 1.611 uV
    assert 3 <= e.envelope_uv <= 12, e.envelope_uv


def test_mode_ticks_allocate_nothing():
    from tests.emg_harness import import_device

    es = import_device("emg_session")
    programs = import_device("programs")
    session = import_device("session")

    p = programs.Program("t", "T", 35, 300, on_s=3, off_s=5, ramp_up_s=1, ramp_down_s=1,
                         session_min=30, triggered=True)
    s = session.Session(p, channels=1)
    trig = es.EmgTrigger(s, 5, 205)
    trig.start(0)
    fb = es.EmgFeedback(5, 205)
    fb.start(0)
    cal = es.EmgCalibration()
    cal.start(0)
    t = 0
    for _ in range(20):
        trig.tick(t, 5)
        s.tick(t)
        fb.tick(t, 5)
        cal.tick(t, 5)
        t += 10
    assert trig.state == es.T_WAIT
    worst = 0
    for k in range(50):
        t += 10
        env = 100 if k % 10 == 5 else 5  # feedback crossings on the way
        worst = max(worst, _alloc(trig.tick, t, 20), _alloc(fb.tick, t, env),
                    _alloc(cal.tick, t, env))
    assert worst == 0, worst
    assert fb.crossings == 5


def test_blanking_on_this_interpreter():
    r = EmgRig("pico")
    r.emg.start()
    ch = r.channel(1)
    ch.set(300, 50, 50)
    r.enable.value(1)
    ch.start()
    peak = r.run_ms(1000)
    assert r.muscle.artefact_reads >= 45 and peak <= 8, (r.muscle.artefact_reads, peak)
    assert r.emg.samples == 1000


class _FakeEmg:
    envelope_uv = 5
    fault = 0
    running = False

    def start(self):
        self.running = True

    def stop(self):
        self.running = False

    def reset_envelope(self):
        pass

    def process(self):
        return 0


def test_emg_control_tick_allocates_nothing_during_a_triggered_session():
    from host_tools.sim import install

    emg_ui = install.load("emg_ui")
    programs = install.load("programs")
    session = install.load("session")
    e = _FakeEmg()
    ctl = emg_ui.EmgControl(e, "/nonexistent-dir")
    ctl.rest_uv, ctl.max_uv, ctl.calibrated = 5, 205, True
    p = programs.Program("emg_t", "T", 35, 300, on_s=3, off_s=5, ramp_up_s=1, ramp_down_s=1,
                         session_min=30, triggered=True)
    s = session.Session(p, channels=1)
    s.start(0)
    t = 0
    for _ in range(30):
        ctl.tick(t, s)
        s.tick(t)
        t += 10
    assert ctl.trigger_state() == "try now" and ctl.run_line() == "try   30%"
    worst = 0
    for _ in range(50):
        t += 10
        worst = max(worst, _alloc(ctl.tick, t, s), _alloc(ctl.changed, True))
    assert worst == 0, worst


def test_blanking_with_the_ports_own_large_ticks():
    """The unix port's ticks_us() counts 62 bits: an anchor above 2**31 must not be truncated
    (an array("i") did: each sample then stepped through an hour of pulses)."""
    nt = _native_time()
    if nt is None:
        return  # CPython: no native ticks
    r = EmgRig("pico")
    mod = r.emg_mod
    mod.time = nt
    e = r.emg
    big = 3_000_000_000 + 123  # above 2**31; ticks_add/diff of this port keep it
    e.pulses_started(0, _Plan(), big)
    assert e.blanked_at(nt.ticks_add(big, 500))  # inside the pulse (650 us)
    assert not e.blanked_at(nt.ticks_add(big, 5000))  # between pulses (period 20 ms)
    assert e.blanked_at(nt.ticks_add(big, 20_000 - 50))  # 50 us before the next one
    assert e._next[0] == nt.ticks_add(big, 20_000)
