# ESP32 pulse engine: charge-balanced biphasic pulses timed by the RMT, one RMT TX channel per leg.
# Same API as lib/pulse_pio.py:
#
#   import pulse_rmt
#   ch = pulse_rmt.channel(1)                       # pins from board_config
#   ch.set(phase_us=300, gap_us=50, rate_hz=50)      # -> PulsePlan: what will be played
#   ch.start(); ch.service() (every app tick); ch.stop()
#
# How it works (MicroPython 1.25+ esp32.RMT on ESP-IDF 5, the original ESP32):
# - One loop iteration of both legs' RMT patterns is one period (alternating polarity: two
#   periods, A-first then B-first; bursts: the whole burst period, N pulses then silent slots).
#   Looped with loop_count(-1), the hardware plays the train with no CPU work, no gap at the wrap.
# - Leg A and leg B are separate channels started by two write_pulses() calls, so B starts
#   board.RMT_START_SKEW_NS later. Each iteration begins with a lead-in with both legs low that is
#   longer than the skew (taken from the rest), and leg B's pattern is rotated by the skew in whole
#   ticks: B's phase lands phase + gap after A's phase start. Every gap is at least
#   DEAD_TIME_NS + RMT_SKEW_TOLERANCE_NS, so a residual skew inside the tolerance (calibration
#   error, call jitter, rounding to a tick) never brings the legs closer than the dead time;
#   both legs high would need a skew larger than the rest.
# - Charge balance: both phases of a pulse are the same number of ticks on one channel's clock.
# - Updates only at loop boundaries. write_pulses() cannot replace a running infinite loop (it waits
#   for it to end, i.e. forever), so the engine stops the loop itself: loop_count(0) makes the
#   original ESP32 finish the current iteration and go idle (rmt_disable busy-waits for it), then
#   both legs get the new patterns. A phase is never cut or merged: an iteration always ends after
#   its rest. To bound that busy-wait, the swap is done only when the iteration has less than
#   SWAP_WINDOW_US left: a one-shot machine.Timer (and every service() call) fires inside that
#   window. The rest at the switch is longer than planned by the restart time (2 x skew).
# - One swap at a time, across channels. A swap is only safe if nothing runs between its window
#   check and the loops' ends: another channel's timer callback doing its own swap there (up to
#   SWAP_WINDOW_US busy, plus the restart) made the check stale, so loop_count(0) found the
#   iteration already over and busy-waited a whole one (200 ms at 5 Hz), and if it came between
#   the legs' loop_count(0) calls, leg B played an iteration alone. So the window check and the
#   swap hold a module-wide flag; a service() that finds it held (a timer callback of another
#   channel) only marks its channel, and the holder services the marked channels when it is
#   done, inside what is left of the same SWAP_WINDOW_US (one call never busy-waits longer);
#   a channel whose loop end falls outside that waits for its timer (one more iteration at worst).
# - Stop within one phase: stop() hands both leg pins back to the GPIO matrix as outputs driven low
#   (Pin.init(Pin.OUT, value=0) disconnects the RMT signal from the pad at once). The loops keep
#   running unseen until their iteration ends, then they are halted and released the same way as
#   for an update. A start() before that waits for it.
# - Timing quantum: the RMT tick, 80 MHz / div. The finest divider whose pattern fits the channel
#   memory is used (halves are at most 32767 ticks, a pattern needs (halves + 1) / 2 + 1 symbols
#   including the end marker): div 1 (12.5 ns) for most trains, coarser for slow rates.
from micropython import const
import time
import esp32
from machine import Pin, Timer

import pulse_plan

HALF_MAX = const(32767)  # RMT.PULSE_MAX: ticks per half-symbol
SWAP_WINDOW_US = const(3000)  # longest CPU busy-wait for a loop to end
# Dividers dividing 160 source cycles (2 us: dead time + tolerance on the reference board), so a
# gap of at least that never rounds below it.
DIVIDERS = (1, 2, 4, 5, 8, 10, 16, 20, 40, 80, 160)

_channels = []  # every PulseChannel, for the deferred services (see service())
_swapping = False  # a channel is between its window check and the end of its swap
_deferred = False  # a service() found _swapping set and marked its channel


class _Pattern:
    """The RMT patterns for one plan: divider, durations and levels of leg A and leg B."""

    def __init__(self, plan, div, a, b, length_ticks):
        self.plan = plan
        self.div = div
        self.dur_a = [d for d, _ in a]
        self.lvl_a = [v for _, v in a]
        self.dur_b = [d for d, _ in b]
        self.lvl_b = [v for _, v in b]
        self.length_ticks = length_ticks


def _segments(highs, length):
    """[(ticks, level)] over [0, length) for a leg high in the sorted intervals `highs`."""
    out = []
    t = 0
    for s, e in highs:
        if s > t:
            out.append((s - t, 0))
        out.append((e - s, 1))
        t = e
    if length > t:
        out.append((length - t, 0))
    return out


def _halves(segs):
    """Split segments into RMT halves of at most HALF_MAX ticks; an even count (a pattern with an
    odd count would end in a zero-length half, the hardware end marker)."""
    out = []
    for d, v in segs:
        while d > HALF_MAX:
            out.append((HALF_MAX, v))
            d -= HALF_MAX
        out.append((d, v))
    if len(out) % 2:
        for i in range(len(out)):
            d, v = out[i]
            if v == 0 and d >= 2:
                out[i] = (d - d // 2, 0)
                out.insert(i + 1, (d // 2, 0))
                break
    return out


def half_count(segs):
    """len(_halves(segs)), without building the list (a long rest at a small divider is thousands
    of halves: _choose counts first and builds only the pattern that fits)."""
    n = 0
    split = False
    for d, v in segs:
        n += (d + HALF_MAX - 1) // HALF_MAX if d > 0 else 1
        if v == 0 and d >= 2:
            split = True  # _halves can make an odd count even by halving a low half
    return n + 1 if n % 2 and split else n


def build_pattern(plan, div, lead, skew):
    """Leg A and leg B halves for `plan` at divider `div`; `lead` = ticks with both legs low at the
    start of each iteration, `skew` = ticks leg B starts after leg A."""
    a, b, length = pattern_segments(plan, div, lead, skew)
    return _halves(a), _halves(b), length


def pattern_segments(plan, div, lead, skew):
    """Leg A and leg B as (ticks, level) segments, before the split into halves."""
    p = plan.phase_cycles // div
    g = plan.gap_cycles // div
    t = plan.period_cycles // div
    if plan.alternate:
        n, length = 2, 2 * t
    else:
        n, length = plan.burst_count, plan.burst_slots * t
    ha = []
    hb = []
    for k in range(n):
        s = lead + k * t
        first, second = (s, s + p), (s + p + g, s + 2 * p + g)
        if plan.alternate and k == 1:
            hb.append(first)
            ha.append(second)
        else:
            ha.append(first)
            hb.append(second)
    a = _segments(ha, length)
    b = _segments(hb, length)
    # leg B starts `skew` ticks late: play its first `skew` ticks (low: the lead-in) at the end
    b[0] = (b[0][0] - skew, 0)
    b[-1] = (b[-1][0] + skew, 0)
    return a, b, length


class PulseChannel:
    """One stimulation channel: leg A and leg B on two looping RMT channels. Parameters change at
    loop boundaries only; start and stop leave both legs low."""

    def __init__(self, leg_a, leg_b, timer_id=0, dead_time_ns=1000, skew_ns=40_000,
                 skew_tolerance_ns=1000, num_symbols=128):
        self.leg_a = leg_a
        self.leg_b = leg_b
        self.src_hz = esp32.RMT.source_freq()
        self.sys_hz = self.src_hz  # plans count RMT source cycles (12.5 ns)
        self._mhz = self.src_hz // 1_000_000
        self.dead_time_ns = dead_time_ns
        self.min_gap_ns = dead_time_ns + skew_tolerance_ns
        self.skew_cycles = (skew_ns * self._mhz + 500) // 1000
        self.num_symbols = num_symbols
        self._pin_a = Pin(leg_a, Pin.OUT, value=0)
        self._pin_b = Pin(leg_b, Pin.OUT, value=0)
        self._timer = Timer(timer_id)
        self._timer_cb = self._on_timer  # bound once: no allocation when the timer fires
        self._armed = False
        self._rmt_a = None
        self._rmt_b = None
        self._pattern = None  # what the RMT plays (or will play at start)
        self._queued = None  # a _Pattern waiting for the next loop boundary
        self._halt_pending = False
        self._busy = False
        self._deferred = False  # service() called during another channel's swap: redo after it
        self._t0 = 0  # ticks_us() when leg A's current loop started
        self._off = 0  # correction to _t0, in source cycles
        self._length = 1  # iteration length in source cycles
        self.plan = None
        self.running = False
        _channels.append(self)

    # -- parameters --------------------------------------------------------------------------
    def _choose(self, phase_us, gap_us, rate_hz, burst_count, burst_rate_hz, alternate):
        err = None
        for div in DIVIDERS:
            try:
                plan = pulse_plan.make_plan(self.src_hz, phase_us, gap_us, rate_hz, burst_count,
                                            burst_rate_hz, alternate, self.min_gap_ns, div, div)
            except pulse_plan.PulseParamError as e:
                if err is None:
                    err = e
                continue
            lead = (self.skew_cycles + div - 1) // div + 1
            skew = (self.skew_cycles + div // 2) // div
            if plan.burst_count == 1 and plan.rest_cycles // div < lead + 1:
                if err is None:
                    err = pulse_plan.PulseParamError(
                        "rest of %d ns too short: the ESP32 engine needs %d ns of rest" % (
                            pulse_plan.cycles_to_ns(plan.rest_cycles, self.src_hz),
                            pulse_plan.cycles_to_ns((lead + 1) * div, self.src_hz)))
                continue
            a, b, length = pattern_segments(plan, div, lead, skew)
            if max(half_count(a), half_count(b)) // 2 + 1 <= self.num_symbols:
                return _Pattern(plan, div, _halves(a), _halves(b), length)
            if err is None:
                err = pulse_plan.PulseParamError("pattern does not fit the RMT memory")
        if err is None:  # (cannot happen: every divider either returns or sets err)
            err = pulse_plan.PulseParamError("no RMT divider")
        raise err

    def quantise(self, phase_us, gap_us=50, rate_hz=50, burst_count=1, burst_rate_hz=None,
                 alternate=False):
        """The plan a set() with these values would play, without changing anything."""
        return self._choose(phase_us, gap_us, rate_hz, burst_count, burst_rate_hz, alternate).plan

    def set(self, phase_us, gap_us=50, rate_hz=50, burst_count=1, burst_rate_hz=None,
            alternate=False):
        """Validate, quantise and apply. Raises PulseParamError (a ValueError) and changes nothing
        if a value is out of range. While running, the new values start at the next loop boundary
        (the end of the current period, pulse pair or burst period); changing the burst shape or
        polarity alternation needs stop() first."""
        pat = self._choose(phase_us, gap_us, rate_hz, burst_count, burst_rate_hz, alternate)
        plan = pat.plan
        cur = self.plan
        if self.running and cur is not None:  # (running: start() had a plan)
            if not cur.same_shape(plan):
                raise pulse_plan.PulseParamError(
                    "burst shape or polarity alternation changes need stop() first")
            if plan != cur:
                self._queued = pat
                self.service()
        else:
            self._pattern = pat
        self.plan = plan
        return plan

    # -- loop timing ---------------------------------------------------------------------------
    def _remaining(self):
        """Source cycles until leg A's current loop iteration ends."""
        e = time.ticks_diff(time.ticks_us(), self._t0) * self._mhz + self._off
        n = self._length
        if e >= n:
            shift = (e // n) * n
            q = shift // self._mhz
            # (_t0 is a ticks_us() value: an int on MicroPython, opaque in the stubs)
            self._t0 = time.ticks_add(self._t0, q)  # pyright: ignore[reportArgumentType]
            self._off -= shift - q * self._mhz
            e -= shift
        return n - e

    def _arm(self, cycles):
        ms = cycles // (self._mhz * 1000)
        self._timer.init(mode=Timer.ONE_SHOT, period=ms if ms > 0 else 1, callback=self._timer_cb)
        self._armed = True

    def _on_timer(self, _t):
        self._armed = False
        self.service()

    def service(self):
        """Do a pending update or halt once the current loop iteration is about to end (the app
        loop calls this every tick; a one-shot timer calls it too). Returns True when no update
        is left waiting."""
        global _swapping, _deferred
        if self._busy or self._rmt_a is None:
            return self._queued is None
        if _swapping:
            # another channel's swap is under way (this is a callback that ran inside it): a
            # swap here would make its window check stale. It services this channel when done.
            self._deferred = True
            _deferred = True
            return self._queued is None
        _swapping = True
        t_start = time.ticks_us()
        try:
            done = self._service(SWAP_WINDOW_US * self._mhz)
            # channels whose service() ran during this swap, inside the rest of the same window
            while _deferred:
                _deferred = False
                for c in _channels:
                    if c._deferred:
                        c._deferred = False
                        left = SWAP_WINDOW_US - time.ticks_diff(time.ticks_us(), t_start)
                        c._service(left * self._mhz if left > 0 else 0)
        finally:
            _swapping = False
        return done and self._queued is None

    def _service(self, window):
        """service() with the module-wide swap flag held; swaps only if the loop ends within
        `window` source cycles (the rest of SWAP_WINDOW_US), else leaves it to the timer."""
        if self._busy or self._rmt_a is None:
            return self._queued is None
        # every call re-anchors the loop clock (ticks_us() differences are only unambiguous for
        # about 9 minutes); small integers only: no allocation while nothing is queued
        r = self._remaining()
        if self._queued is None and not self._halt_pending:
            return True
        if r > window:
            if not self._armed:
                r -= SWAP_WINDOW_US * self._mhz // 2
                self._arm(r if r > 0 else 0)
            return False
        self._busy = True
        try:
            if self._armed:
                self._timer.deinit()
                self._armed = False
            self._end_loops()
            if self._halt_pending:
                self._release()
            else:
                pat = self._queued
                self._queued = None
                self._launch(pat)
                if not self.running:  # stop() ran (from a callback) while this swap was going on
                    self._pin_a.init(Pin.OUT, value=0)
                    self._pin_b.init(Pin.OUT, value=0)
                    self._halt_pending = True
        finally:
            self._busy = False
        return self._queued is None

    def _end_loops(self):
        # loop_count(0) on a running loop: the ESP32 finishes the iteration, then idles low
        # (the call returns then). Leg B's loop ends `skew` after leg A's.
        a = self._rmt_a
        b = self._rmt_b
        if a is None or b is None:
            return  # released: nothing is looping
        a.loop_count(0)
        b.loop_count(0)

    def _release(self):
        self._pin_a.init(Pin.OUT, value=0)
        self._pin_b.init(Pin.OUT, value=0)
        a = self._rmt_a
        b = self._rmt_b
        if a is not None:
            a.deinit()
        if b is not None:
            b.deinit()
        self._rmt_a = self._rmt_b = None
        self._halt_pending = False

    def _launch(self, pat):
        a = self._rmt_a
        b = self._rmt_b
        if a is not None and b is not None and a.clock_div() != pat.div:
            self._release()
            a = b = None
        if a is None or b is None:
            res = self.src_hz // pat.div
            a = esp32.RMT(pin=self._pin_a, resolution_hz=res, idle_level=False,
                          num_symbols=self.num_symbols)
            b = esp32.RMT(pin=self._pin_b, resolution_hz=res, idle_level=False,
                          num_symbols=self.num_symbols)
            self._rmt_a = a
            self._rmt_b = b
        a.loop_count(-1)
        b.loop_count(-1)
        self._pattern = pat
        self._length = pat.length_ticks * pat.div
        a.write_pulses(pat.dur_a, pat.lvl_a)
        self._t0 = time.ticks_us()  # leg A started at the end of its call
        self._off = 0
        b.write_pulses(pat.dur_b, pat.lvl_b)

    # -- run control -------------------------------------------------------------------------
    def start(self):
        if self.plan is None:
            raise ValueError("set() the pulse parameters before start()")
        if self.running:
            return
        while self._halt_pending:  # the previous run's loops are still ending (legs low)
            r = self._remaining() - SWAP_WINDOW_US * self._mhz // 2
            if r > 0:
                time.sleep_us(r // self._mhz)
            if self._halt_pending:
                self.service()
        self._queued = None
        self._launch(self._pattern)
        self.running = True

    def stop(self):
        """Both legs low now: the pins leave the RMT for GPIO outputs driven low. A pulse in
        progress is cut short: stopping fast beats finishing the pulse. Never blocks; the loops,
        now unseen, are halted and released when their iteration ends."""
        busy = self._busy
        self._busy = True  # no timer-driven swap may run in the middle of this
        self._pin_a.init(Pin.OUT, value=0)
        self._pin_b.init(Pin.OUT, value=0)
        was_running = self.running
        self.running = False
        if self._armed:
            self._timer.deinit()
            self._armed = False
        if self._queued is not None:
            self._pattern = self._queued
            self._queued = None
        if was_running:
            self._halt_pending = True
        self._busy = busy
        if was_running and not busy:
            # never block here: the timer (or the app's service()) halts the loops at their end
            r = self._remaining() - SWAP_WINDOW_US * self._mhz // 2
            self._arm(r if r > 0 else 0)

    def pending_updates(self):
        return 0 if self._queued is None else 1


def channel(n, board=None):
    """PulseChannel for channel `n` of the board (default: board_config.load())."""
    if board is None:
        import board_config

        board = board_config.load()
    c = board.CHANNELS[n]
    return PulseChannel(c["leg_a"], c["leg_b"], c.get("timer", n - 1), board.DEAD_TIME_NS,
                        board.RMT_START_SKEW_NS, board.RMT_SKEW_TOLERANCE_NS, board.RMT_SYMBOLS)
