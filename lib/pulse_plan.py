# Pulse parameters: validation and quantisation to the engine's clock, shared by the RP2040 PIO
# engine and the ESP32 RMT engine. Pure integer arithmetic (MicroPython floats on the RP2040 are
# single precision: 2 s at 125 MHz does not fit their 24-bit mantissa), no hardware.
#
# A pulse is charge balanced and biphasic:
#
#   leg A  __|‾‾‾‾‾|___________________________|‾‾‾‾‾|____   (alternating polarity swaps A and B
#   leg B  ________________|‾‾‾‾‾|___________________________  every other pulse)
#            phase   gap    phase      rest
#            <--------------- period --------------->
#
# Bursts: `burst_count` pulses at the inner rate, then silent pulse slots, the pattern repeating
# every `burst_slots` slots, so the burst period is exactly burst_slots * period.
from micropython import const

PHASE_MIN_US = const(20)  # docs/safety.md: 20-1000 us per phase
PHASE_MAX_US = const(1000)
GAP_MAX_US = const(1000)
RATE_MIN_MHZ = const(500)  # 0.5 Hz, in milli-hertz
RATE_MAX_MHZ = const(200_000)  # 200 Hz pulse rate
BURST_INNER_MAX_MHZ = const(2_500_000)  # 2.5 kHz inside a burst
BURST_SLOTS_MAX = const(65536)


class PulseParamError(ValueError):
    pass


def _milli(value, name):
    # value in units -> integer thousandths, rounding half up; rejects nonsense types.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PulseParamError("%s must be a number, got %r" % (name, value))
    if value != value or value < 0:  # NaN or negative
        raise PulseParamError("%s must be >= 0, got %r" % (name, value))
    if isinstance(value, int):
        return value * 1000
    return int(value * 1000 + 0.5)


def _ns_to_cycles(ns, sys_hz):
    # round to nearest cycle
    return (ns * sys_hz + 500_000_000) // 1_000_000_000


def cycles_to_ns(cycles, sys_hz):
    """Exact when 1e9 / sys_hz is an integer (125 MHz -> 8 ns); otherwise rounded to 1 ns."""
    return (cycles * 1_000_000_000 + sys_hz // 2) // sys_hz


class PulsePlan:
    """What the engine will play, in whole clock cycles, plus the request it came from."""

    def __init__(self, sys_hz, phase_cycles, gap_cycles, period_cycles, burst_count, burst_slots,
                 alternate):
        self.sys_hz = sys_hz
        self.phase_cycles = phase_cycles
        self.gap_cycles = gap_cycles
        self.period_cycles = period_cycles
        self.burst_count = burst_count
        self.burst_slots = burst_slots
        self.alternate = alternate

    @property
    def rest_cycles(self):
        return self.period_cycles - 2 * self.phase_cycles - self.gap_cycles

    @property
    def phase_ns(self):
        return cycles_to_ns(self.phase_cycles, self.sys_hz)

    @property
    def gap_ns(self):
        return cycles_to_ns(self.gap_cycles, self.sys_hz)

    @property
    def period_ns(self):
        return cycles_to_ns(self.period_cycles, self.sys_hz)

    @property
    def burst_period_ns(self):
        return cycles_to_ns(self.period_cycles * self.burst_slots, self.sys_hz)

    @property
    def rate_hz(self):
        return self.sys_hz / self.period_cycles

    @property
    def pulses_per_s(self):
        """Average pulse rate (for rms and charge-rate limits)."""
        return self.sys_hz * self.burst_count / (self.period_cycles * self.burst_slots)

    def same_shape(self, other):
        """True if `other` can replace this plan at a pulse boundary without a restart."""
        return (other is not None and self.burst_count == other.burst_count
                and self.burst_slots == other.burst_slots and self.alternate == other.alternate)

    def __eq__(self, other):
        return (isinstance(other, PulsePlan) and self.sys_hz == other.sys_hz
                and self.phase_cycles == other.phase_cycles and self.gap_cycles == other.gap_cycles
                and self.period_cycles == other.period_cycles and self.same_shape(other))

    def as_dict(self):
        return {
            "phase_ns": self.phase_ns, "gap_ns": self.gap_ns, "period_ns": self.period_ns,
            "phase_cycles": self.phase_cycles, "gap_cycles": self.gap_cycles,
            "period_cycles": self.period_cycles, "burst_count": self.burst_count,
            "burst_slots": self.burst_slots, "burst_period_ns": self.burst_period_ns,
            "alternate": self.alternate, "sys_hz": self.sys_hz,
        }

    def __repr__(self):
        return "PulsePlan(phase_ns=%d, gap_ns=%d, period_ns=%d, burst=%d/%d, alternate=%s)" % (
            self.phase_ns, self.gap_ns, self.period_ns, self.burst_count, self.burst_slots,
            self.alternate)


def make_plan(sys_hz, phase_us, gap_us, rate_hz, burst_count=1, burst_rate_hz=None,
              alternate=False, dead_time_ns=1000, min_rest_cycles=0, quantum_cycles=1):
    """Validate a request and quantise it to whole cycles. Raises PulseParamError, naming the
    parameter and its limit, for anything outside docs/safety.md's ranges or the engine's reach."""
    phase_ns = _milli(phase_us, "phase_us")
    gap_ns = _milli(gap_us, "gap_us")
    rate_mhz = _milli(rate_hz, "rate_hz")
    if phase_ns < PHASE_MIN_US * 1000 or phase_ns > PHASE_MAX_US * 1000:
        raise PulseParamError("phase_us %r outside %d-%d us" % (phase_us, PHASE_MIN_US,
                                                                 PHASE_MAX_US))
    if gap_ns < dead_time_ns or gap_ns > GAP_MAX_US * 1000:
        raise PulseParamError("gap_us %r outside %d ns (board dead time) - %d us" % (
            gap_us, dead_time_ns, GAP_MAX_US))
    if isinstance(burst_count, bool) or not isinstance(burst_count, int) or burst_count < 1:
        raise PulseParamError("burst_count must be an integer >= 1, got %r" % (burst_count,))
    if not isinstance(alternate, bool):
        raise PulseParamError("alternate must be True or False")
    if burst_count == 1:
        if burst_rate_hz is not None:
            raise PulseParamError("burst_rate_hz needs burst_count >= 2")
        if rate_mhz < RATE_MIN_MHZ or rate_mhz > RATE_MAX_MHZ:
            raise PulseParamError("rate_hz %r outside 0.5-200 Hz" % (rate_hz,))
        slots = 1
    else:
        if burst_rate_hz is None:
            raise PulseParamError("burst_count %d needs burst_rate_hz" % burst_count)
        if alternate:
            raise PulseParamError("polarity alternation cannot be combined with bursts")
        burst_mhz = _milli(burst_rate_hz, "burst_rate_hz")
        if burst_mhz < RATE_MIN_MHZ or burst_mhz > RATE_MAX_MHZ:
            raise PulseParamError("burst_rate_hz %r outside 0.5-200 Hz" % (burst_rate_hz,))
        if rate_mhz < RATE_MIN_MHZ or rate_mhz > BURST_INNER_MAX_MHZ:
            raise PulseParamError("rate_hz %r inside a burst outside 0.5-2500 Hz" % (rate_hz,))
        slots = (rate_mhz + burst_mhz // 2) // burst_mhz
        if slots <= burst_count:
            raise PulseParamError(
                "%d pulses at %r Hz do not fit in a burst period of 1/%r Hz (room for %d)" % (
                    burst_count, rate_hz, burst_rate_hz, slots - 1))
        if slots > BURST_SLOTS_MAX:
            raise PulseParamError("burst period too long for the inner rate")
    phase_c = _ns_to_cycles(phase_ns, sys_hz)
    gap_c = _ns_to_cycles(gap_ns, sys_hz)
    period_c = (sys_hz * 1000 + rate_mhz // 2) // rate_mhz
    if quantum_cycles > 1:
        q = quantum_cycles
        phase_c = (phase_c + q // 2) // q * q
        gap_c = (gap_c + q // 2) // q * q
        period_c = (period_c + q // 2) // q * q
    rest_c = period_c - 2 * phase_c - gap_c
    if rest_c < min_rest_cycles:
        raise PulseParamError(
            "pulse (2 x %r us + %r us gap) does not fit in the period of %r Hz" % (
                phase_us, gap_us, rate_hz))
    return PulsePlan(sys_hz, phase_c, gap_c, period_c, burst_count, slots, alternate)
