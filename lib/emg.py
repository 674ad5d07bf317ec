# EMG input: sampling at 1 kHz into a preallocated ring, blanking around stimulation pulses, an
# envelope in uV, and flat-line / saturation detection. Device code (MicroPython), no allocation
# after __init__ and start(): the sampling handler runs in a timer IRQ, process() in the 10 ms loop.
#
#   import emg
#   e = emg.Emg(board)              # ADC pin, timer, calibration from board_config (EMG_* names)
#   e.watch(stage.pulses(1)); e.watch(stage.pulses(2))   # pulse engines whose pulses are blanked
#   e.start()                       # sampling on (timer at EMG_RATE_HZ)
#   e.process()                     # every loop tick: consume the ring -> e.envelope_uv, e.fault
#
# How samples are taken, and why this way
# - Pico: a hard machine.Timer IRQ (EMG_IRQ_HARD = True) reads machine.ADC(GP28).read_u16() once
#   per millisecond and writes the 12-bit count into an array('H') ring. The alternative, rp2.DMA
#   from the ADC FIFO in free-running mode, would cost no CPU at all, but it leaves no moment at
#   which a sample can be checked against the pulse plan (blanking would have to be done later from
#   the sample index, which needs the exact ADC start time), and the host simulation has no model of
#   the ADC FIFO or of DMA pacing: a DMA path could only be tested by faking it. The timer path is
#   modelled honestly: the simulated machine.Timer fires at its exact cycle, and the simulated ADC
#   reads the world's EMG source at that cycle (host_tools/sim/muscle.py). Its cost on the chip
#   (one Python handler per ms) is not measured yet: time _sample() on a Pico (ticks_us around a
#   few thousand calls) before relying on the CPU headroom.
# - ESP32: machine.Timer (EMG_TIMER = 2: timers 0 and 1 belong to the pulse engine). Its ADC read
#   (ESP-IDF adc_oneshot_read) takes a lock and is not ISR safe, so the callback is a soft
#   (scheduled) one there (EMG_IRQ_HARD = False): it runs at the next bytecode boundary, so a
#   blocking call (an OLED frame over I2C, an RMT loop end) delays samples. Each sample is
#   still judged at the time it is really taken (ticks_us() in the handler), so blanking stays
#   right; a late sample is counted in `late` (more than 1.5 periods after the previous one).
#   The simulation fires the ESP32 timer on time (it does not model the scheduler's delay).
#
# Blanking: every pulse engine handed to watch() gets its start() wrapped, so the moment a train
# starts is known (ticks_us() right after start() returns: the PIO plays its first pulse 10
# cycles after activation; the RMT engine plays it one lead-in (the 40 us leg skew) after leg A's
# write, which returns about 40 us before start() does: on both the first pulse is within tens of
# us of the anchor). From there the plan gives every pulse: period, burst slots, phase + gap +
# phase. A sample taken from EMG_BLANK_PRE_US before a pulse's start to EMG_BLANK_POST_US after its
# end is not used (the front end's recovery from the stimulus ends within about 1 ms, see
# docs/hardware.md "EMG front end"). If the period changes while a train runs (a live rate
# change), the new pulses' phase is not known here: that channel blanks every sample until it is
# stopped (so artefact can never count as activity; the envelope holds its last value).
#
# Envelope: the DC level (the front end's mid-rail bias) is tracked by a slow first-order filter
# (time constant 512 samples); the rectified deviation in uV (EMG_UV_PER_COUNT_X1000 / 1000 per
# count, integer arithmetic: MicroPython floats are heap objects) is averaged over the last
# ENV_WINDOW = 50 valid samples: the average rectified value (ARV) over 50 ms at 1 kHz (the short
# end of the usual 50-100 ms: the trigger latency is mostly this window).
#
# Faults (distinct): FLAT when the valid samples of two consecutive 250-sample windows span no more
# than EMG_FLAT_COUNTS (an electrode or cable off, a dead amplifier: real skin noise spans more);
# SATURATED when a quarter or more of a window's valid samples sit at a rail (below EMG_RAIL_LOW or
# above EMG_RAIL_HIGH: the amplifier clipped by a loose electrode, movement or a static charge).
# A fault clears when a later window is clean; the session decides what a fault stops.
from array import array

from micropython import const
import machine
import time

FAULT_NONE = const(0)
FAULT_FLAT = const(1)
FAULT_SATURATED = const(2)

BLANK = const(0xFFFF)  # ring entry of a blanked sample
RING_LEN = const(256)  # 256 ms of samples at 1 kHz: the loop may run 25 ticks late without loss
_RING_MASK = const(255)
ENV_WINDOW = const(50)  # samples averaged by the envelope (50 ms at 1 kHz)
FAULT_WINDOW = const(250)  # samples per fault check (250 ms at 1 kHz)
_BASE_SHIFT = const(9)  # baseline time constant: 2**9 samples
MAX_CH = const(2)


class Emg:
    def __init__(self, board, rate_hz=0):
        self.board = board
        self.rate_hz = rate_hz or board.EMG_RATE_HZ
        self.period_us = 1_000_000 // self.rate_hz
        self._uv_num = board.EMG_UV_PER_COUNT_X1000
        self._rail_lo = board.EMG_RAIL_LOW
        self._rail_hi = board.EMG_RAIL_HIGH
        self._flat = board.EMG_FLAT_COUNTS
        self._pre = board.EMG_BLANK_PRE_US
        self._post = board.EMG_BLANK_POST_US
        atten = getattr(board, "ADC_ATTEN", None)
        pin = machine.Pin(board.EMG_ADC)
        self._adc = machine.ADC(pin) if atten is None else machine.ADC(pin, atten=atten)
        self._timer = machine.Timer(board.EMG_TIMER)
        self._hard = board.EMG_IRQ_HARD
        self._cb = self._sample  # bound once: no allocation when the IRQ fires
        self.ring = array("H", bytes(2 * RING_LEN))
        self.head = 0  # next write index (IRQ side)
        self.tail = 0  # next read index (process side)
        # counters (small ints, wrap far beyond a session)
        self.samples = 0  # samples taken
        self.blanked = 0  # of which blanked
        self.overruns = 0  # samples lost because process() fell more than RING_LEN behind
        self.late = 0  # samples taken more than 1.5 periods after the previous one
        self._last_us = 0
        self.running = False
        # blanking, per watched channel (index 0..MAX_CH-1): small-int arrays written at start()
        self._engines = []
        self._plans = [None, None]
        self._on = array("i", (0, 0))  # 1: train running, phase known; 2: running, phase unknown
        # ticks_us of the next (or current) pulse start: a list, not an array("i"): a ticks value
        # is a small int of the port (30 bits on the chips, 62 on the unix port)
        self._next = [0, 0]
        self._frac = array("i", (0, 0))  # sub-us part of _next, in units of 1/sys_hz us
        self._per_us = array("i", (0, 0))  # period: whole us
        self._per_rem = array("i", (0, 0))  # and the rest, in units of 1/sys_hz us
        self._hz = array("i", (1, 1))
        self._dur = array("i", (0, 0))  # phase + gap + phase, us (rounded up)
        self._slot = array("i", (0, 0))  # slot index in the burst pattern
        self._count = array("i", (1, 1))  # pulses per burst
        self._slots = array("i", (1, 1))  # slots per burst period
        # envelope state (process side)
        self._win = array("H", bytes(2 * ENV_WINDOW))
        self._wi = 0
        self._wn = 0
        self._sum = 0
        self._base_q = -1  # baseline count << 8; -1: not yet seen a sample
        self.envelope_uv = 0
        self.last_uv = 0  # rectified value of the newest valid sample
        # fault windows
        self._fn = 0
        self._fmin = 4095
        self._fmax = 0
        self._frail = 0
        self._flat_windows = 0
        self.fault = FAULT_NONE

    # -- blanking setup (called from the loop, not the IRQ) ------------------------------------
    def watch(self, engine):
        """Blank around the pulses of this pulse engine (lib/pulse_pio or lib/pulse_rmt channel).
        Wraps its start() and stop() so the train's start time is known."""
        i = len(self._engines)
        if i >= MAX_CH:
            raise ValueError("EMG blanking watches at most 2 channels")
        self._engines.append(engine)
        start = engine.start
        stop = engine.stop

        def started():
            start()
            self.pulses_started(i, engine.plan)

        def stopped():
            stop()
            self._on[i] = 0

        engine.start = started
        engine.stop = stopped
        if engine.running:
            self._on[i] = 2  # already running: phase unknown, blank everything
        return i

    def pulses_started(self, i, plan, t_us=None):
        """Train i started now (or at ticks_us t_us) playing `plan` (a PulsePlan)."""
        if t_us is None:
            t_us = time.ticks_us()
        self._on[i] = 0  # the IRQ ignores the channel while its numbers change
        hz = plan.sys_hz
        per = plan.period_cycles * 1_000_000
        self._per_us[i] = per // hz
        self._per_rem[i] = per % hz
        self._hz[i] = hz
        self._dur[i] = ((2 * plan.phase_cycles + plan.gap_cycles) * 1_000_000 + hz - 1) // hz
        if plan.alternate:
            self._count[i] = 1
            self._slots[i] = 1
        else:
            self._count[i] = plan.burst_count
            self._slots[i] = plan.burst_slots
        self._slot[i] = 0
        self._frac[i] = 0
        self._next[i] = t_us  # pyright: ignore[reportCallIssue, reportArgumentType]
        self._plans[i] = plan
        self._on[i] = 1

    def check_plans(self):
        """A running train whose period or burst shape changed since it started: its pulse
        phase is unknown from now on, so blank everything on it (called by process())."""
        engines = self._engines
        for i in range(len(engines)):
            if self._on[i] == 1:
                e = engines[i]
                p = e.plan
                q = self._plans[i]
                if q is None or p is None:
                    continue
                if p is not q and not (p.period_cycles == q.period_cycles
                                       and p.burst_slots == q.burst_slots
                                       and p.burst_count == q.burst_count
                                       and p.sys_hz == q.sys_hz):
                    self._on[i] = 2
                elif p is not q:
                    # same timing, other widths: keep the phase, take the new pulse length
                    hz = p.sys_hz
                    self._dur[i] = ((2 * p.phase_cycles + p.gap_cycles) * 1_000_000
                                    + hz - 1) // hz
                    self._plans[i] = p
                if not e.running:
                    self._on[i] = 0

    def blanked_at(self, now):
        """True if a sample taken at ticks_us `now` falls in a blanking window. Allocation-free
        (IRQ context): small integers only."""
        on = self._on
        i = 0
        hit = False
        while i < MAX_CH:
            s = on[i]
            if s == 2:
                hit = True
            elif s == 1:
                post = self._dur[i] + self._post
                nxt = self._next[i]
                d = time.ticks_diff(now, nxt)
                # step to the first slot whose pulse window is not over (a silent slot of a
                # burst pattern: the first one not yet begun)
                while True:
                    sl = self._slot[i]
                    if sl < self._count[i]:
                        if d <= post:
                            break
                    elif d < 0:
                        break
                    f = self._frac[i] + self._per_rem[i]
                    step = self._per_us[i]
                    if f >= self._hz[i]:
                        f -= self._hz[i]
                        step += 1
                    self._frac[i] = f
                    nxt = time.ticks_add(nxt, step)  # pyright: ignore[reportArgumentType]
                    sl += 1
                    if sl >= self._slots[i]:
                        sl = 0
                    self._slot[i] = sl
                    d = time.ticks_diff(now, nxt)
                self._next[i] = nxt
                if self._slot[i] < self._count[i] and d >= -self._pre:
                    hit = True
            i += 1
        return hit

    # -- sampling ------------------------------------------------------------------------------
    def _sample(self, _t):
        now = time.ticks_us()
        raw = self._adc.read_u16() >> 4
        if self.samples and time.ticks_diff(now, self._last_us) > self.period_us + (
                self.period_us >> 1):
            self.late += 1
        self._last_us = now
        self.samples += 1
        if self.blanked_at(now):
            raw = BLANK
            self.blanked += 1
        h = self.head
        self.ring[h] = raw
        h = (h + 1) & _RING_MASK
        if h == self.tail:  # full: drop the oldest
            self.tail = (h + 1) & _RING_MASK
            self.overruns += 1
        self.head = h

    def start(self):
        if self.running:
            return
        self.tail = self.head
        self._last_us = time.ticks_us()
        self._timer.init(mode=machine.Timer.PERIODIC, freq=self.rate_hz, callback=self._cb,
                         hard=self._hard)
        self.running = True

    def stop(self):
        self._timer.deinit()
        self.running = False

    # -- processing (the 10 ms loop) -----------------------------------------------------------
    def reset_envelope(self):
        self._wi = 0
        self._wn = 0
        self._sum = 0
        self.envelope_uv = 0
        w = self._win
        for k in range(ENV_WINDOW):
            w[k] = 0

    def process(self):
        """Consume the samples taken since the last call: baseline, envelope, faults. Returns
        the number of samples consumed (valid or blanked)."""
        self.check_plans()
        ring = self.ring
        t = self.tail
        n = 0
        while t != self.head:
            x = ring[t]
            t = (t + 1) & _RING_MASK
            n += 1
            if x == BLANK:
                continue
            self._take(x)
        self.tail = t
        return n

    def _take(self, x):
        # baseline (DC) and rectified value in uV
        b = self._base_q
        xq = x << 8
        if b < 0:
            b = xq
        else:
            b += (xq - b) >> _BASE_SHIFT
        self._base_q = b
        d = xq - b
        if d < 0:
            d = -d
        uv = (((d >> 4) * self._uv_num) >> 4) // 1000  # small ints: d >> 4 < 2**16
        if uv > 65535:
            uv = 65535
        self.last_uv = uv
        # moving average over ENV_WINDOW valid samples
        w = self._win
        i = self._wi
        self._sum += uv - w[i]
        w[i] = uv
        i += 1
        if i >= ENV_WINDOW:
            i = 0
        self._wi = i
        if self._wn < ENV_WINDOW:
            self._wn += 1
        self.envelope_uv = self._sum // self._wn
        # fault window
        if x < self._fmin:
            self._fmin = x
        if x > self._fmax:
            self._fmax = x
        if x <= self._rail_lo or x >= self._rail_hi:
            self._frail += 1
        self._fn += 1
        if self._fn >= FAULT_WINDOW:
            self._judge()

    def _judge(self):
        if self._frail * 4 >= self._fn:
            self.fault = FAULT_SATURATED
            self._flat_windows = 0
        elif self._fmax - self._fmin <= self._flat:
            self._flat_windows += 1
            if self._flat_windows >= 2:
                self.fault = FAULT_FLAT
        else:
            self._flat_windows = 0
            self.fault = FAULT_NONE
        self._fn = 0
        self._fmin = 4095
        self._fmax = 0
        self._frail = 0


def fault_name(code):
    if code == FAULT_FLAT:
        return "EMG flat"
    if code == FAULT_SATURATED:
        return "EMG saturated"
    return ""
