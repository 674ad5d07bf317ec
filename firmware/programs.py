# Stimulation programs: the Program record, its validation, and the presets of
# /work/shared/PROGRAMS.md (docs: PROGRAMS.md in the shared folder).
#
# A Program only describes *what* to play. The Session (session.py) turns it into an envelope over
# time, the SafetySupervisor (safety.py) turns envelope x user level into milliamps and enforces the
# caps of SAFETY.md (peak, charge per phase, rms). Nothing here touches hardware.
#
# Pulse parameters:
#   rate_hz        pulse rate. With bursts (burst_count > 1) it is the rate *inside* a burst (the
#                  carrier), up to BURST_INNER_MAX_HZ; otherwise 0.5-200 Hz.
#   burst_count    pulses per burst (1 = plain pulse train), burst_rate_hz bursts per second.
#   phase_us       width of each of the two (equal, opposite) phases of the biphasic pulse.
#   gap_us         inter-phase gap.
# Work cycle (see session.py): ramp_up_s -> on_s -> ramp_down_s -> off_s, repeated.
#   off_s == 0 means "continuous": after the first ramp up the output stays on (TENS programs).
#   triggered: FES; each trigger plays one ramp_up -> on -> ramp_down burst (off_s informative).
# modulation: None or dict(rate_depth=0..0.9, width_depth=0..0.9, period_s=0.1..60): rate and phase
#   width are swept down by that fraction and back (triangle) once per period, never above base.

from micropython import const

PHASE_MIN_US = const(20)
PHASE_MAX_US = const(1000)
PRESET_PHASE_MIN_US = const(50)
PRESET_PHASE_MAX_US = const(400)
GAP_MAX_US = const(1000)
GAP_DEFAULT_US = const(50)
RATE_MIN_HZ = 0.5
RATE_MAX_HZ = 200.0
BURST_INNER_MAX_HZ = 2500.0
BURST_COUNT_MAX = const(100)
ON_MIN_S = 2.0
ON_MAX_S = 90.0
OFF_MIN_S = 0.0
OFF_MAX_S = 90.0
RAMP_MIN_S = 1.0
RAMP_MAX_S = 8.0
WARMUP_MAX_S = const(600)
COOLDOWN_MAX_S = const(600)
SESSION_MIN_MIN = 1.0
SESSION_MAX_MIN = 120.0
NAME_MAX_CHARS = const(16)
KEY_MAX_CHARS = const(16)
MODULATION_DEPTH_MAX = 0.9
MODULATION_PERIOD_MIN_S = 0.1
MODULATION_PERIOD_MAX_S = 60.0
SOURCE_MAX_CHARS = const(400)

MODES = ("sync", "alternating", "reciprocal")
WARMUP_RATE_HZ = 5.0       # warm-up and cool-down pulse rate, or the program's if lower (session)

# The board's pulse engine limits (dead time, shortest rest, pattern memory) are owned by the
# engine: the app installs its check at boot (set_pulse_check(output_stage.check_pulse)) and
# validate() asks it about every pulse the program will play, so a program the engine cannot play
# is refused where it is written (editor) or loaded (programs.json), never at start.
_pulse_check = None


def set_pulse_check(fn):
    """fn(phase_us, gap_us, rate_hz, burst_count, burst_rate_hz, alternate) raises ValueError
    naming the limit when the board cannot play it; None: SAFETY.md ranges only."""
    global _pulse_check
    _pulse_check = fn

# Field order used by to_dict()/from_dict() and the settings schema.
FIELDS = (
    "key", "name", "rate_hz", "phase_us", "gap_us", "on_s", "off_s", "ramp_up_s", "ramp_down_s",
    "warmup_s", "cooldown_s", "session_min", "mode", "burst_count", "burst_rate_hz",
    "modulation", "triggered", "source", "alternate",
)

_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _is_number(v):
    # bool is an int subclass on both interpreters; a hand-edited "true" is not a number.
    return (type(v) is int or type(v) is float) and v == v  # v == v rejects NaN


def _check_range(name, value, lo, hi, unit):
    if not _is_number(value):
        raise ValueError("%s must be a number, got %r" % (name, value))
    if value < lo or value > hi:
        raise ValueError("%s = %s %s outside %s-%s %s" % (name, value, unit, lo, hi, unit))


def _own(p, name, v):
    d = getattr(Program, name)
    if type(v) is not type(d) or v != d:
        setattr(p, name, v)


class Program:
    """One stimulation program. Plain attributes; dict-like access through p["rate_hz"]."""

    # The defaults live on the class: an instance stores only the fields given a value other
    # than the default (RAM: every preset is built at import). Reads are the same.
    on_s = 10
    off_s = 10
    ramp_up_s = 2
    ramp_down_s = 2
    warmup_s = 0
    cooldown_s = 0
    session_min = 20
    mode = "sync"
    burst_count = 1
    burst_rate_hz = None
    modulation = None
    triggered = False
    source = ""
    alternate = False
    gap_us = GAP_DEFAULT_US

    def __init__(self, key, name, rate_hz, phase_us, on_s=10, off_s=10, ramp_up_s=2,
                 ramp_down_s=2, warmup_s=0, cooldown_s=0, session_min=20, mode="sync",
                 burst_count=1, burst_rate_hz=None, modulation=None, triggered=False, source="",
                 alternate=False, gap_us=GAP_DEFAULT_US):
        self.key = key
        self.name = name
        self.rate_hz = rate_hz
        self.phase_us = phase_us
        # a value of the default's type and value reads the same from the class
        _own(self, "gap_us", gap_us)
        _own(self, "on_s", on_s)
        _own(self, "off_s", off_s)
        _own(self, "ramp_up_s", ramp_up_s)
        _own(self, "ramp_down_s", ramp_down_s)
        _own(self, "warmup_s", warmup_s)
        _own(self, "cooldown_s", cooldown_s)
        _own(self, "session_min", session_min)
        _own(self, "mode", mode)
        _own(self, "burst_count", burst_count)
        _own(self, "burst_rate_hz", burst_rate_hz)
        _own(self, "modulation", modulation)
        _own(self, "triggered", triggered)
        _own(self, "source", source)
        _own(self, "alternate", alternate)

    # dict-like access (the contract calls a program "a dict-like object")
    def __getitem__(self, name):
        if name not in FIELDS:
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name, default=None):
        return getattr(self, name, default) if name in FIELDS else default

    @property
    def continuous(self):
        """True when there is no rest: ramp up once, then stay on (TENS style)."""
        return self.off_s == 0 and not self.triggered

    def average_rate_hz(self):
        """Pulses per second averaged over time (what the rms formula needs)."""
        if self.burst_count > 1:
            return self.burst_count * self.burst_rate_hz
        return self.rate_hz

    def validate(self, preset=False):
        """Raise ValueError naming the first impossible parameter. preset=True also applies the
        narrower preset phase range (50-400 us). Returns self so it can be chained."""
        if type(self.key) is not str or not 0 < len(self.key) <= KEY_MAX_CHARS:
            raise ValueError("key must be 1-%d characters" % KEY_MAX_CHARS)
        for c in self.key:
            if c not in _KEY_CHARS:
                raise ValueError("key %r: only a-z, 0-9 and _ allowed" % self.key)
        if type(self.name) is not str or not 0 < len(self.name) <= NAME_MAX_CHARS:
            raise ValueError("name must be 1-%d characters" % NAME_MAX_CHARS)
        if type(self.source) is not str or len(self.source) > SOURCE_MAX_CHARS:
            raise ValueError("source must be text of at most %d characters" % SOURCE_MAX_CHARS)
        if preset:
            _check_range("phase_us", self.phase_us, PRESET_PHASE_MIN_US, PRESET_PHASE_MAX_US, "us")
        else:
            _check_range("phase_us", self.phase_us, PHASE_MIN_US, PHASE_MAX_US, "us")
        _check_range("gap_us", self.gap_us, 0, GAP_MAX_US, "us")
        if type(self.burst_count) is not int or not 1 <= self.burst_count <= BURST_COUNT_MAX:
            raise ValueError("burst_count must be an integer 1-%d" % BURST_COUNT_MAX)
        if self.burst_count > 1:
            _check_range("rate_hz (inside a burst)", self.rate_hz, RATE_MIN_HZ,
                         BURST_INNER_MAX_HZ, "Hz")
            _check_range("burst_rate_hz", self.burst_rate_hz, RATE_MIN_HZ, RATE_MAX_HZ, "Hz")
            burst_us = self.burst_count * 1000000.0 / self.rate_hz
            if burst_us >= 1000000.0 / self.burst_rate_hz:
                raise ValueError("burst of %d pulses at %s Hz does not fit in a %s Hz burst period"
                                 % (self.burst_count, self.rate_hz, self.burst_rate_hz))
        else:
            _check_range("rate_hz", self.rate_hz, RATE_MIN_HZ, RATE_MAX_HZ, "Hz")
            if self.burst_rate_hz is not None:
                raise ValueError("burst_rate_hz given without burst_count > 1")
        period_us = 1000000.0 / self.rate_hz
        if 2 * self.phase_us + self.gap_us > period_us:
            raise ValueError("pulse 2 x %s us + %s us gap longer than the %d us period at %s Hz"
                             % (self.phase_us, self.gap_us, period_us, self.rate_hz))
        _check_range("on_s", self.on_s, ON_MIN_S, ON_MAX_S, "s")
        _check_range("off_s", self.off_s, OFF_MIN_S, OFF_MAX_S, "s")
        _check_range("ramp_up_s", self.ramp_up_s, RAMP_MIN_S, RAMP_MAX_S, "s")
        _check_range("ramp_down_s", self.ramp_down_s, RAMP_MIN_S, RAMP_MAX_S, "s")
        _check_range("warmup_s", self.warmup_s, 0, WARMUP_MAX_S, "s")
        _check_range("cooldown_s", self.cooldown_s, 0, COOLDOWN_MAX_S, "s")
        _check_range("session_min", self.session_min, SESSION_MIN_MIN, SESSION_MAX_MIN, "min")
        if (self.warmup_s + self.cooldown_s + self.ramp_up_s + self.ramp_down_s
                > self.session_min * 60):
            raise ValueError("warm-up, cool-down and ramps do not fit in %s min" % self.session_min)
        if self.mode not in MODES:
            raise ValueError("mode %r not one of %s" % (self.mode, ", ".join(MODES)))
        work_s = self.ramp_up_s + self.on_s + self.ramp_down_s
        if self.mode == "alternating" and self.off_s < work_s:
            raise ValueError("alternating: off_s must cover the other channel's ramp up + on + "
                             "ramp down (%s s)" % (self.ramp_up_s + self.on_s + self.ramp_down_s))
        if self.mode != "sync" and (self.off_s == 0 or self.triggered):
            raise ValueError("mode %s needs a cyclic (not continuous or triggered) program"
                             % self.mode)
        if type(self.triggered) is not bool:
            raise ValueError("triggered must be true or false")
        if type(self.alternate) is not bool:
            raise ValueError("alternate must be true or false")
        m = self.modulation
        if m is not None:
            if not isinstance(m, dict):
                raise ValueError("modulation must be None or a dict")
            for k in m:
                if k not in ("rate_depth", "width_depth", "period_s"):
                    raise ValueError("modulation: unknown field %r" % k)
            _check_range("modulation rate_depth", m.get("rate_depth", 0), 0,
                         MODULATION_DEPTH_MAX, "")
            _check_range("modulation width_depth", m.get("width_depth", 0), 0,
                         MODULATION_DEPTH_MAX, "")
            _check_range("modulation period_s", m.get("period_s", 0.5), MODULATION_PERIOD_MIN_S,
                         MODULATION_PERIOD_MAX_S, "s")
            if self.burst_count > 1:
                raise ValueError("modulation and bursts cannot be combined")
            if self.rate_hz * (1 - m.get("rate_depth", 0)) < RATE_MIN_HZ:
                raise ValueError("modulation takes rate_hz below %s Hz" % RATE_MIN_HZ)
            if self.phase_us * (1 - m.get("width_depth", 0)) < PHASE_MIN_US:
                raise ValueError("modulation takes phase_us below %d us" % PHASE_MIN_US)
        if _pulse_check is not None:
            self._check_engine(_pulse_check)
        return self

    def _check_engine(self, chk):
        # every pulse the session plays: the work pulses, the warm-up / cool-down ones, and the
        # far end of a modulation sweep (the rate and width go down together)
        chk(self.phase_us, self.gap_us, self.rate_hz, self.burst_count, self.burst_rate_hz,
            self.alternate)
        if self.warmup_s or self.cooldown_s:
            warm = WARMUP_RATE_HZ if WARMUP_RATE_HZ < self.rate_hz else self.rate_hz
            chk(self.phase_us, self.gap_us, warm, 1, None, self.alternate)
        m = self.modulation
        if m is not None:
            rate = int(self.rate_hz * (1 - m.get("rate_depth", 0)) * 10 + 0.5) / 10
            phase = int(self.phase_us * (1 - m.get("width_depth", 0)) + 0.5)
            chk(phase, self.gap_us, rate, 1, None, self.alternate)

    def to_dict(self):
        d = {}
        for f in FIELDS:
            v = getattr(self, f)
            if f == "modulation" and v is not None:
                v = dict(v)
            d[f] = v
        return d

    @staticmethod
    def from_dict(d):
        """Build and validate a Program from a dict (e.g. JSON from flash). Raises ValueError
        on any missing, unknown or impossible field."""
        if not isinstance(d, dict):
            raise ValueError("program must be a dict")
        for k in d:
            if k not in FIELDS:
                raise ValueError("unknown program field %r" % k)
        for k in ("key", "name", "rate_hz", "phase_us"):
            if k not in d:
                raise ValueError("program field %r missing" % k)
        kw = {}
        for k in FIELDS:
            if k in d and k not in ("key", "name", "rate_hz", "phase_us"):
                kw[k] = d[k]
        mod = kw.get("modulation")
        if mod is not None and isinstance(mod, dict):
            kw["modulation"] = dict(mod)
        p = Program(d["key"], d["name"], d["rate_hz"], d["phase_us"], **kw)
        p.validate()
        return p

    def __repr__(self):
        return "Program(%r)" % self.key


# --- presets (PROGRAMS.md). "our choice" marks values picked inside a published range. ---------

PRESETS = [
    Program("quad_acl", "Quad ACL", 40, 300, on_s=8, off_s=32, ramp_up_s=2, ramp_down_s=2,
            warmup_s=60, session_min=12,
            source="Nussbaum et al. 2017, Physiotherapy Canada, Table 7: 30-50 Hz, 250-400 us, "
                   "6-10 s on / 12-50 s off, ramp ~2 s, 12-15 contractions at max tolerated "
                   "intensity, 3x/week. Ours: 40 Hz, 300 us, 8/32 s (1:4), 15 contractions."),
    Program("quad_tka", "Quad knee repl.", 50, 250, on_s=15, off_s=45, ramp_up_s=3, ramp_down_s=2,
            warmup_s=60, session_min=16,
            source="Stevens-Lapsley protocol (Sports Health 2021, Table 5): 50 Hz, 250 us, "
                   "15 s on / 45 s off, 3 s ramp up, max tolerated. Ramp down 2 s our choice."),
    Program("strength", "Strengthening", 50, 300, on_s=8, off_s=40, ramp_up_s=2, ramp_down_s=2,
            warmup_s=60, session_min=15,
            source="Physiotherapy teaching tables (secondary source): 35-80 Hz, 200-350 us "
                   "(large muscles), 6-10 s on / 30-50 s off (1:5), ramp >= 2 s, 10-20 "
                   "contractions. Ours: 50 Hz, 300 us, 8/40 s."),
    Program("endurance", "Endurance", 25, 250, on_s=12, off_s=18, ramp_up_s=2, ramp_down_s=2,
            warmup_s=60, cooldown_s=60, session_min=25,
            source="Compex-style program family: 20-30 Hz, 250-300 us, 1:1-1:2 cycles, 20-30 "
                   "min. Parameters our choice within literature ranges: 25 Hz, 250 us, 12/18 s."),
    Program("disuse", "Disuse atrophy", 50, 400, on_s=5, off_s=10, ramp_up_s=2, ramp_down_s=2,
            session_min=30,
            source="Maffiuletti 2013 review; Kho 2015 (50 Hz, 400 us, 5/10 s, 60 min); Segers "
                   "2014 (50 Hz, 300-500 us, 8/20 s, 25 min). Ours: 30 min (range 25-60)."),
    Program("shoulder", "Shoulder sublux", 30, 250, on_s=10, off_s=10, ramp_up_s=2,
            ramp_down_s=2, session_min=30, mode="reciprocal",
            source="Faghri 1994; systematic reviews 2024; Odstock protocol: 30 Hz (10-36), "
                   "250 us (200-300), contraction/rest progressed over weeks, 30-60 min/day. "
                   "Reciprocal: ch2 ramps up as ch1 ramps down. 10/10 s start our choice."),
    Program("wrist", "Wrist/hand ext", 25, 300, on_s=8, off_s=12, ramp_up_s=2, ramp_down_s=2,
            session_min=30,
            source="Secondary sources only: 20-30 Hz, 300 us, cyclic, 30 min. Ours: 25 Hz, "
                   "8/12 s cycles."),
    Program("foot_drop", "Foot drop FES", 30, 400, on_s=2.5, off_s=2.5, ramp_up_s=1,
            ramp_down_s=1, session_min=30, triggered=True,
            source="Peroneal-nerve FES practice: ~30 Hz, 400 us, one ramped burst per step from "
                   "a foot switch or button. INDISCAP calibration 2.5 s on / 2.5 s off."),
    Program("spasm", "Spasm/oedema", 50, 250, on_s=4, off_s=4, ramp_up_s=1, ramp_down_s=1,
            session_min=20,
            source="Physiotherapy teaching tables (secondary source): 50 Hz, 250 us, 2-5 s on / "
                   "2-5 s off (1:1), ramp >= 1 s, 10-30 min. Ours: 4/4 s, 20 min."),
    Program("tens_conv", "TENS conventnl", 100, 150, on_s=10, off_s=0, ramp_up_s=2,
            ramp_down_s=2, session_min=30,
            source="TENS reviews (BMC Systematic Reviews 2017, Table 1): 80-150 Hz, 50-250 us, "
                   "continuous, 20-60 min. Ours: 100 Hz, 150 us, 30 min."),
    Program("tens_acu", "TENS acu-like", 2, 200, on_s=10, off_s=0, ramp_up_s=2, ramp_down_s=2,
            session_min=25,
            source="TENS reviews (BMC Systematic Reviews 2017, Table 1): 1-5 Hz, 200-250 us, "
                   "continuous, 20-30 min. Ours: 2 Hz, 200 us, 25 min."),
    Program("tens_burst", "TENS burst", 100, 200, on_s=10, off_s=0, ramp_up_s=2, ramp_down_s=2,
            session_min=25, burst_count=10, burst_rate_hz=2,
            source="Twin Stim manual ranges; Enraf manual: 100 Hz pulses in 0.5-5 Hz bursts of "
                   "~100 ms, 50-300 us, 20-30 min. Ours: 10 pulses (100 ms) at 2 Hz, 200 us."),
    Program("tens_mod", "TENS modulated", 100, 200, on_s=10, off_s=0, ramp_up_s=2,
            ramp_down_s=2, session_min=25,
            modulation={"rate_depth": 0.5, "width_depth": 0.5, "period_s": 0.5},
            source="Twin Stim 'M' mode: rate and width swept down 50 % and back every 0.5 s, "
                   "50-300 us, 20-30 min. Ours: 100 Hz / 200 us base."),
    Program("russian", "Russian current", 2500, 100, on_s=10, off_s=50, ramp_up_s=2,
            ramp_down_s=2, warmup_s=60, session_min=12, burst_count=25, burst_rate_hz=50,
            source="Nussbaum 2017: 2500 Hz AC in 50 Hz bursts (10 ms on / 10 ms off), 10 s on / "
                   "50 s off, 10 contractions. Carrier phase 100 us; 2 s ramps our choice."),
    Program("massage", "Massage/recov", 6, 250, on_s=10, off_s=0, ramp_up_s=2, ramp_down_s=2,
            session_min=20, modulation={"rate_depth": 0.5, "width_depth": 0.0, "period_s": 4.0},
            source="Compex-style recovery programs: 2-10 Hz, 200-250 us, continuous or slow "
                   "modulation, 20 min. Ours (within TENS ranges): 6 Hz swept to 3 Hz every 4 s."),
]


def preset(key):
    """The preset with that key, or None."""
    for p in PRESETS:
        if p.key == key:
            return p
    return None


def custom_default():
    """Starting point for a custom program (a copy, edited on the unit or from the host)."""
    return Program("custom", "Custom", 50, 250, on_s=8, off_s=24, ramp_up_s=2, ramp_down_s=2,
                   session_min=20, source="Custom: any value inside SAFETY.md caps.")
