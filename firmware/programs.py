# Stimulation programs: the Program record, its validation, and the presets of
# /work/shared/PROGRAMS.md (docs: PROGRAMS.md in the shared folder).
#
# A Program only describes *what* to play. The Session (session.py) turns it into an envelope over
# time, the SafetySupervisor (safety.py) turns envelope x user level into milliamps and enforces the
# caps of docs/safety.md (peak, charge per phase, rms). Nothing here touches hardware.
#
# Pulse parameters:
#   rate_hz        pulse rate. With bursts (burst_count > 1) it is the rate *inside* a burst (the
#                  carrier), up to BURST_INNER_MAX_HZ; otherwise 0.5-200 Hz.
#   burst_count    pulses per burst (1 = plain pulse train), burst_rate_hz bursts per second.
#   phase_us       width of each of the two (equal, opposite) phases of the biphasic pulse.
#   gap_us         inter-phase gap.
# Work cycle (see session.py): ramp_up_s -> on_s -> ramp_down_s -> off_s, repeated.
#   off_s == 0 means "continuous": after the first ramp up the output stays on (TENS programs).
#   triggered: one ramp_up -> on -> ramp_down burst per Session.trigger() call (EMG-triggered
#                programs); off_s informative.
#   trigger:     the switch input (foot switch / hand switch on board.TRIGGER) drives the output:
#     "gait"  peroneal FES: the rise (ramp_up_s, 0-1 s) starts when the heel lifts, the level holds
#             through swing, the fall (ramp_down_s, 0-1 s) starts extend_ms (0-500 ms) after heel
#             strike; on_s is the maximum on-time (0.5-10 s): a heel that never lands ramps down
#             and the output waits for the next heel contact.
#     "hold"  functional activity: ramp up while the switch is held, ramp down on release; on_s
#             is the maximum hold (1-90 s), then ramp down until the switch is let go.
#     None    cyclic or continuous (the work cycle below).
# Guidance shown on the unit (each wraps to at most a few 16-character rows): placement
#   (electrodes: muscle or nerve by name), position (body position), intensity (target),
#   sessions_week, seated_first (first minutes seated or lying), source, and for presets that
#   progress over weeks `progression` (see Program.at_step).
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
# switch-driven programs (trigger "gait" / "hold"): a swing phase is ~0.4 s, so these are shorter
GAIT_RAMP_MAX_S = 1.0      # rise and fall 0-1 s
GAIT_ON_MIN_S = 0.5        # maximum on-time guard: 0.5-10 s
GAIT_ON_MAX_S = 10.0
HOLD_ON_MIN_S = 1.0        # maximum hold: 1-90 s
EXTEND_MAX_MS = const(500)  # gait: stimulation continues 0-500 ms after heel strike
TRIGGERS = (None, "gait", "hold")
PLACEMENT_MAX_CHARS = const(64)   # 4 rows of 16
GUIDE_MAX_CHARS = const(32)       # position, intensity: 2 rows
WEEK_MAX_CHARS = const(16)
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
    naming the limit when the board cannot play it; None: docs/safety.md ranges only."""
    global _pulse_check
    _pulse_check = fn
    if fn is None:
        return
    # presets marked min_gap (Russian current) play the smallest inter-phase gap this engine
    # accepts: never 0, the H-bridge needs its dead time with both legs off (board DEAD_TIME_NS,
    # 1 us on the Pico; the ESP32 adds its RMT skew tolerance: 2 us)
    for p in PRESETS:
        if p.min_gap:
            for g in range(0, GAP_DEFAULT_US + 1):
                try:
                    fn(p.phase_us, g, p.rate_hz, p.burst_count, p.burst_rate_hz, p.alternate)
                except ValueError:
                    continue
                p.gap_us = g
                break

# Field order used by to_dict()/from_dict() and the settings schema.
FIELDS = (
    "key", "name", "rate_hz", "phase_us", "gap_us", "on_s", "off_s", "ramp_up_s", "ramp_down_s",
    "warmup_s", "cooldown_s", "session_min", "mode", "burst_count", "burst_rate_hz",
    "modulation", "triggered", "source", "alternate", "trigger", "extend_ms", "placement",
    "position", "intensity", "sessions_week", "seated_first",
)
# intensity targets (the unit shows them as written)
MAX_TOLERATED = "max tolerated"
VISIBLE = "visible contraction"
STRONG_COMFORT = "strong, comfortable"

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
    burst_rate_hz: "float | None" = None  # (annotations: type checkers only, never evaluated)
    modulation: "dict | None" = None
    triggered = False
    source = ""
    alternate = False
    gap_us = GAP_DEFAULT_US
    trigger = None
    extend_ms = 0
    placement = ""
    position = ""
    intensity = ""
    sessions_week = ""
    seated_first = False
    progression: tuple = ()  # presets only: ((session_min, on_s, off_s), ...) steps, see at_step
    step_sessions = 7       # counted sessions per progression step
    step = 0                # the step this copy plays (at_step)
    min_gap = False         # play the engine's smallest inter-phase gap (set_pulse_check)

    def __init__(self, key, name, rate_hz, phase_us, on_s: float = 10, off_s: float = 10,
                 ramp_up_s: float = 2, ramp_down_s: float = 2, warmup_s: float = 0,
                 cooldown_s: float = 0, session_min: float = 20, mode="sync",
                 burst_count=1, burst_rate_hz=None, modulation=None, triggered=False, source="",
                 alternate=False, gap_us=GAP_DEFAULT_US, trigger=None, extend_ms=0,
                 placement="", position="", intensity="", sessions_week="", seated_first=False):
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
        _own(self, "trigger", trigger)
        _own(self, "extend_ms", extend_ms)
        _own(self, "placement", placement)
        _own(self, "position", position)
        _own(self, "intensity", intensity)
        _own(self, "sessions_week", sessions_week)
        _own(self, "seated_first", seated_first)

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
        return self.off_s == 0 and not self.triggered and self.trigger is None

    def at_step(self, step):
        """The program as played at progression step `step` (0 = first): a copy with that step's
        session_min, on_s and off_s (the last step once past the end); self without a
        progression. The app picks the step from the history: counted sessions of this program
        // step_sessions (app.App._new_session)."""
        steps = self.progression
        if not steps:
            return self
        if step >= len(steps):
            step = len(steps) - 1
        d = self.to_dict()
        d["session_min"], d["on_s"], d["off_s"] = steps[step]
        p = Program.from_dict(d)
        p.progression = steps
        p.step_sessions = self.step_sessions
        p.step = step
        return p
    def average_rate_hz(self):
        """Pulses per second averaged over time (what the rms formula needs)."""
        br = self.burst_rate_hz
        if self.burst_count > 1 and br is not None:
            return self.burst_count * br
        return self.rate_hz  # (bursts without a burst rate fail validate: the higher figure)

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
            br = self.burst_rate_hz
            if br is None:
                raise ValueError("burst_rate_hz must be a number, got None")  # (as _check_range)
            _check_range("burst_rate_hz", br, RATE_MIN_HZ, RATE_MAX_HZ, "Hz")
            burst_us = self.burst_count * 1000000.0 / self.rate_hz
            if burst_us >= 1000000.0 / br:
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
        if self.trigger not in TRIGGERS:
            raise ValueError("trigger %r not one of gait, hold or none" % (self.trigger,))
        tr = self.trigger
        if type(self.extend_ms) is not int or not 0 <= self.extend_ms <= EXTEND_MAX_MS:
            raise ValueError("extend_ms must be an integer 0-%d ms" % EXTEND_MAX_MS)
        if self.extend_ms and tr != "gait":
            raise ValueError("extend_ms is for gait programs only")
        if tr == "gait":
            _check_range("on_s (max on-time)", self.on_s, GAIT_ON_MIN_S, GAIT_ON_MAX_S, "s")
            _check_range("ramp_up_s (rise)", self.ramp_up_s, 0, GAIT_RAMP_MAX_S, "s")
            _check_range("ramp_down_s (fall)", self.ramp_down_s, 0, GAIT_RAMP_MAX_S, "s")
        elif tr == "hold":
            _check_range("on_s (max hold)", self.on_s, HOLD_ON_MIN_S, ON_MAX_S, "s")
            _check_range("ramp_up_s", self.ramp_up_s, 0, RAMP_MAX_S, "s")
            _check_range("ramp_down_s", self.ramp_down_s, 0, RAMP_MAX_S, "s")
        else:
            _check_range("on_s", self.on_s, ON_MIN_S, ON_MAX_S, "s")
            _check_range("ramp_up_s", self.ramp_up_s, RAMP_MIN_S, RAMP_MAX_S, "s")
            _check_range("ramp_down_s", self.ramp_down_s, RAMP_MIN_S, RAMP_MAX_S, "s")
        _check_range("off_s", self.off_s, OFF_MIN_S, OFF_MAX_S, "s")
        if tr is not None and (self.triggered or self.warmup_s or self.cooldown_s):
            raise ValueError("a %s program has no warm-up, cool-down or burst trigger" % tr)
        for name, n in (("placement", PLACEMENT_MAX_CHARS), ("position", GUIDE_MAX_CHARS),
                        ("intensity", GUIDE_MAX_CHARS), ("sessions_week", WEEK_MAX_CHARS)):
            v = getattr(self, name)
            if type(v) is not str or len(v) > n:
                raise ValueError("%s must be text of at most %d characters" % (name, n))
        if type(self.seated_first) is not bool:
            raise ValueError("seated_first must be true or false")
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
        if self.mode != "sync" and (self.off_s == 0 or self.triggered or tr is not None):
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
# Guidance fields are shown on the detail screen (wrapped to 16-character rows). The order of
# the first 15 is kept (menus and scenarios refer to them by index); new ones are appended.

PRESETS = [
    Program("quad_acl", "Quad ACL", 40, 300, on_s=8, off_s=32, ramp_up_s=2, ramp_down_s=2,
            warmup_s=60, session_min=12,
            placement="quadriceps: vastus medialis and upper lateral thigh",
            position="seated, knee 60-90 deg bent", intensity=MAX_TOLERATED,
            sessions_week="3x/week",
            source="Nussbaum et al. 2017, Physiotherapy Canada, Table 7: 30-50 Hz, 250-400 us, "
                   "6-10 s on / 12-50 s off, ramp ~2 s, 12-15 contractions at max tolerated "
                   "intensity, 3x/week. Ours: 40 Hz, 300 us, 8/32 s (1:4), 15 contractions."),
    Program("quad_tka", "Quad knee repl.", 50, 250, on_s=15, off_s=45, ramp_up_s=3, ramp_down_s=2,
            warmup_s=60, session_min=16,
            placement="quadriceps: vastus medialis and upper lateral thigh",
            position="seated, knee 60 deg bent", intensity=MAX_TOLERATED,
            sessions_week="2x/day, 6 wk",
            source="Stevens-Lapsley protocol (Sports Health 2021, Table 5): 50 Hz, 250 us, "
                   "15 s on / 45 s off, 3 s ramp up, max tolerated. Ramp down 2 s our choice."),
    Program("strength", "Strengthening", 50, 300, on_s=8, off_s=40, ramp_up_s=2, ramp_down_s=2,
            warmup_s=60, session_min=15,
            placement="motor point of the muscle to train, 2nd over its belly",
            position="seated or lying, joint fixed", intensity=MAX_TOLERATED,
            sessions_week="3x/week",
            source="Physiotherapy teaching tables (secondary source): 35-80 Hz, 200-350 us "
                   "(large muscles), 6-10 s on / 30-50 s off (1:5), ramp >= 2 s, 10-20 "
                   "contractions. Ours: 50 Hz, 300 us, 8/40 s."),
    Program("endurance", "Endurance", 25, 250, on_s=12, off_s=18, ramp_up_s=2, ramp_down_s=2,
            warmup_s=60, cooldown_s=60, session_min=25,
            placement="over the belly of the muscle to train",
            position="seated or lying", intensity=STRONG_COMFORT, sessions_week="3x/week",
            source="No source: our choice. Inside the PROGRAMS.md ranges (Compex-style family): "
                   "20-30 Hz, 250-300 us, 1:1-1:2 cycles, 20-30 min. Ours: 25 Hz, 250 us, "
                   "12/18 s."),
    Program("disuse", "Disuse atrophy", 50, 400, on_s=5, off_s=10, ramp_up_s=2, ramp_down_s=2,
            session_min=30,
            placement="quadriceps: vastus medialis and upper lateral thigh",
            position="lying, knee straight", intensity=VISIBLE, sessions_week="daily",
            source="Maffiuletti 2013 review; Kho 2015 (quadriceps: 50 Hz, 400 us, 5/10 s, 60 "
                   "min); Segers 2014 (50 Hz, 300-500 us, 8/20 s, 25 min). Ours: 30 min (range "
                   "25-60)."),
    Program("shoulder", "Shoulder sublux", 30, 250, on_s=10, off_s=12, ramp_up_s=2,
            ramp_down_s=2, session_min=30, mode="sync",
            placement="ch1 supraspinatus, ch2 posterior deltoid",
            position="seated, arm supported", intensity=VISIBLE, sessions_week="daily, 4-8 wk",
            source="Faghri 1994: supraspinatus and posterior deltoid contracted together, "
                   "session length and on/off ratio increased over 6 weeks (10/12 s to 30/2 s); "
                   "30 Hz (10-36), 250 us (200-300), 30-60 min/day (reviews 2024). Steps our "
                   "choice: 30, 40, 50, 60 min, one step per 7 sessions."),
    Program("wrist", "Wrist/hand ext", 25, 300, on_s=8, off_s=12, ramp_up_s=2, ramp_down_s=2,
            session_min=30,
            placement="finger and wrist extensors, back of the forearm",
            position="seated, forearm on a table", intensity=VISIBLE, sessions_week="daily",
            source="Secondary sources only: 20-30 Hz, 300 us, cyclic, 30 min. Ours: 25 Hz, "
                   "8/12 s cycles."),
    Program("foot_drop", "Foot drop exerc.", 30, 400, on_s=2.5, off_s=2.5, ramp_up_s=1,
            ramp_down_s=1, session_min=20,
            placement="peroneal nerve at the fibula head, 2nd on tibialis anterior",
            position="seated, foot free", intensity=VISIBLE, sessions_week="daily",
            source="Peroneal-nerve FES practice: ~30 Hz, 400 us. Cyclic exercise and set-up with "
                   "the INDISCAP calibration cycle 2.5 s on / 2.5 s off. Walking: Gait FES. "
                   "20 min our choice."),
    Program("spasm", "Spasm/oedema", 50, 250, on_s=4, off_s=4, ramp_up_s=1, ramp_down_s=1,
            session_min=20,
            placement="over the belly of the muscle",
            position="lying, limb raised", intensity=VISIBLE, sessions_week="daily",
            source="Physiotherapy teaching tables (secondary source): 50 Hz, 250 us, 2-5 s on / "
                   "2-5 s off (1:1), ramp >= 1 s, 10-30 min. Ours: 4/4 s, 20 min."),
    Program("tens_conv", "TENS conventnl", 100, 150, on_s=10, off_s=0, ramp_up_s=2,
            ramp_down_s=2, session_min=30,
            placement="around the painful area, same nerve segment",
            position="any comfortable", intensity=STRONG_COMFORT, sessions_week="as needed",
            seated_first=True,
            source="TENS reviews (BMC Systematic Reviews 2017, Table 1): 80-150 Hz, 50-250 us, "
                   "continuous, 20-60 min. Ours: 100 Hz, 150 us, 30 min."),
    Program("tens_acu", "TENS acu-like", 2, 200, on_s=10, off_s=0, ramp_up_s=2, ramp_down_s=2,
            session_min=25,
            placement="muscles of the painful segment, motor points",
            position="any comfortable", intensity=VISIBLE, sessions_week="as needed",
            seated_first=True,
            source="TENS reviews (BMC Systematic Reviews 2017, Table 1): 1-5 Hz, 200-250 us, "
                   "continuous, 20-30 min. Ours: 2 Hz, 200 us, 25 min."),
    Program("tens_burst", "TENS burst", 100, 200, on_s=10, off_s=0, ramp_up_s=2, ramp_down_s=2,
            session_min=25, burst_count=10, burst_rate_hz=2,
            placement="muscles of the painful segment, motor points",
            position="any comfortable", intensity=VISIBLE, sessions_week="as needed",
            seated_first=True,
            source="Twin Stim manual ranges; Enraf manual: 100 Hz pulses in 0.5-5 Hz bursts of "
                   "~100 ms, 50-300 us, 20-30 min. Ours: 10 pulses (100 ms) at 2 Hz, 200 us."),
    Program("tens_mod", "TENS modulated", 100, 200, on_s=10, off_s=0, ramp_up_s=2,
            ramp_down_s=2, session_min=25,
            modulation={"rate_depth": 0.5, "width_depth": 0.5, "period_s": 0.5},
            placement="around the painful area, same nerve segment",
            position="any comfortable", intensity=STRONG_COMFORT, sessions_week="as needed",
            seated_first=True,
            source="Twin Stim 'M' mode: rate and width swept down 50 % and back every 0.5 s, "
                   "50-300 us, 20-30 min. Ours: 100 Hz / 200 us base."),
    Program("russian", "Russian current", 2500, 198, on_s=10, off_s=50, ramp_up_s=2,
            ramp_down_s=2, warmup_s=60, session_min=12, burst_count=25, burst_rate_hz=50,
            gap_us=2,
            placement="quadriceps: vastus medialis and upper lateral thigh",
            position="seated, knee 60-90 deg bent", intensity=MAX_TOLERATED,
            sessions_week="3x/week",
            source="Kots, reported by Ward & Shkuratova 2002: 2.5 kHz AC in 50 Hz bursts (10 ms "
                   "on / 10 ms off); 10 s on / 50 s off, 10 contractions. Ours: 198 us phases, "
                   "the engine's smallest gap (1 us Pico, 2 us ESP32), 2 s ramps."),
    Program("massage", "Massage/recov", 6, 250, on_s=10, off_s=0, ramp_up_s=2, ramp_down_s=2,
            session_min=20, modulation={"rate_depth": 0.5, "width_depth": 0.0, "period_s": 4.0},
            placement="over the bellies of the tired muscles",
            position="lying, relaxed", intensity=VISIBLE, sessions_week="after training",
            source="No source: our choice. Inside the TENS ranges of PROGRAMS.md (Compex-style "
                   "recovery): 2-10 Hz, 200-250 us, slow modulation, 20 min. Ours: 6 Hz swept "
                   "to 3 Hz every 4 s."),
    # -- appended: switch-driven and ICU variants ------------------------------------------------
    Program("gait_fes", "Gait FES", 30, 400, on_s=2, off_s=0, ramp_up_s=0.2, ramp_down_s=0.2,
            session_min=30, trigger="gait", extend_ms=150,
            placement="peroneal nerve at the fibula head, 2nd on tibialis anterior",
            position="standing, walking", intensity="foot lifts, no eversion",
            sessions_week="daily, walking", seated_first=True,
            source="Peroneal FES practice (Odstock ODFS): heel-off to heel-strike, adjustable "
                   "rise, fall and extension. ~30 Hz, 400 us (PROGRAMS.md). Rise/fall 0.2 s, "
                   "extension 150 ms, 2 s max on-time our choice."),
    Program("sit_stand", "Sit-to-stand", 35, 300, on_s=10, off_s=0, ramp_up_s=1, ramp_down_s=1,
            session_min=20, trigger="hold",
            placement="quadriceps: vastus medialis and upper lateral thigh",
            position="seated, feet flat", intensity=STRONG_COMFORT, sessions_week="in daily use",
            seated_first=True,
            source="No source: our choice. Hold the switch to stand; inside the quadriceps "
                   "ranges of PROGRAMS.md (30-50 Hz, 250-400 us). 1 s ramps, 10 s max hold."),
    Program("grasp", "Grasp/release", 25, 300, on_s=30, off_s=0, ramp_up_s=0.5,
            ramp_down_s=0.5, session_min=20, trigger="hold",
            placement="finger and wrist extensors, back of the forearm",
            position="seated, forearm on a table", intensity=VISIBLE, sessions_week="in daily use",
            source="No source: our choice. Hold the switch to open the hand, let go to grasp; "
                   "wrist/hand extensor ranges of PROGRAMS.md (20-30 Hz, 300 us). 0.5 s ramps, "
                   "30 s max hold."),
    Program("icu_multi", "ICU 3 muscles", 50, 250, on_s=5, off_s=5, ramp_up_s=1, ramp_down_s=1,
            session_min=60,
            placement="ch1 quadriceps, ch2 tibialis ant. then gastrocnemius",
            position="lying in bed", intensity=VISIBLE, sessions_week="daily",
            source="Kho 2015: quadriceps, tibialis anterior and gastrocnemius, 50 Hz, 250 us, "
                   "5 s on / 5 s off, 60 min/day. Two channels: move ch2 from tibialis anterior "
                   "to gastrocnemius half way (our choice). 1 s ramps our choice."),
    Program("icu_warm", "ICU + warm-up", 50, 350, on_s=8, off_s=20, ramp_up_s=2, ramp_down_s=2,
            warmup_s=300, session_min=30,
            placement="quadriceps: vastus medialis and upper lateral thigh",
            position="lying in bed", intensity=VISIBLE, sessions_week="daily",
            source="Segers 2014: 5 min warm-up, then 50 Hz, 300-500 us, 8 s on / 20 s off, "
                   "25 min. Ours: 350 us; the warm-up plays 5 Hz at half the level."),
]

# Shoulder (Faghri 1994): (session_min, on_s, off_s) per step; one step per 7 counted sessions
# (daily use: a step a week); the app picks the step from the history (App._new_session).
# (by key, not by index: a preset added in between must not move these to another program)
for _p in PRESETS:
    if _p.key == "shoulder":
        _p.progression = ((30, 10, 12), (40, 15, 10), (50, 20, 6), (60, 30, 2))
    elif _p.key == "russian":
        _p.min_gap = True

# EMG-triggered presets (issue 10), listed in the EMG menu (firmware/emg_ui.py), not in PRESETS:
# the person's own effort, read by the EMG input, starts each ramped contraction (key "emg_").
EMG_PRESETS = [
    Program("emg_wrist", "EMG wrist/finger", 30, 300, on_s=5, off_s=10, ramp_up_s=1,
            ramp_down_s=1, session_min=30, triggered=True,
            placement="wrist/finger extensors, forearm back; EMG pair between",
            position="seated, forearm on a table", intensity=VISIBLE, sessions_week="daily",
            source="EMG-triggered NMES of wrist and finger extensors after stroke (NeuroTrac ETS "
                   "/ MyoTrac class; review: Takeda et al. 2017). 20-30 Hz, 300 us (secondary "
                   "sources, as Wrist/hand ext). Ours: 30 Hz, 1 s ramps, 5 s on, 10 s rest."),
    Program("emg_quad", "EMG quadriceps", 50, 250, on_s=15, off_s=45, ramp_up_s=3,
            ramp_down_s=2, session_min=20, triggered=True,
            placement="vastus medialis + upper lateral thigh; EMG on rectus femoris",
            position="seated, knee 60 deg bent", intensity=MAX_TOLERATED,
            sessions_week="2x/day, 6 wk",
            source="Quadriceps after knee surgery, EMG-triggered: Stevens-Lapsley protocol "
                   "(Sports Health 2021, Table 5): 50 Hz, 250 us, 15 s on / 45 s off, 3 s ramp "
                   "up. Ramp down 2 s our choice; each contraction started by the effort."),
]


def is_emg(p):
    """An EMG-triggered program (key "emg_..."): the person's effort starts each contraction."""
    return p is not None and p.key.startswith("emg_")  # no slice: called every tick


def preset(key):
    """The preset with that key, or None."""
    for p in PRESETS:
        if p.key == key:
            return p
    return None


def custom_default():
    """Starting point for a custom program (a copy, edited on the unit or from the host)."""
    return Program("custom", "Custom", 50, 250, on_s=8, off_s=24, ramp_up_s=2, ramp_down_s=2,
                   session_min=20, source="Custom: any value inside the unit's safety caps.")
