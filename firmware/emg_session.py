# EMG modes: calibration, EMG-triggered stimulation and biofeedback. Pure logic, no hardware,
# deterministic from now_ms and the envelope (uV, an int) lib/emg.py measures; the UI draws what
# these objects hold (emg_screens.py). Integers only in tick(): no allocation in the steady state.
#
# Calibration (guided on the screen, EmgCalibration):
#   RELAX 5 s ("relax") -> SQUEEZE 3 s ("squeeze hard") -> RELAX 4 s -> SQUEEZE 3 s -> DONE.
#   rest_uv = the mean envelope over the last 3 s of the first relax; max_uv = the highest
#   envelope in either squeeze (the maximum voluntary effort). It fails (FAILED, "try again") if
#   max_uv < 2 x rest_uv + MIN_SPAN_UV: the electrodes are not over a working muscle, or no effort.
#
# EMG-triggered stimulation (EmgTrigger over a Session of a triggered program):
#   threshold_uv = rest_uv + threshold_pct % of (max_uv - rest_uv).
#   RELAX: wait for the envelope to fall below 70 % of the threshold (a held contraction must not
#     start the next attempt), or below the threshold once RELAX has lasted RELAX_MAX_MS (3 s: a
#     resting tone between 70 and 100 % of it must not block every attempt) -> WAIT: an attempt;
#     the time-out clock runs (not while paused).
#   Envelope >= threshold during WAIT: Session.trigger() -> ASSIST: the program's ramp up, on, ramp
#     down, through the safety supervisor like every other output (this module only asks the
#     session; the supervisor caps and stops as always). A success.
#   No crossing within timeout_ms: the unit helps anyway (Session.trigger(), ASSIST, counted as a
#     timed-out attempt, a miss).
#   After the burst: REST for the program's off time, then RELAX again.
#   Adaptation: after `up_after` (3) successes in a row the threshold rises by step_pct (5 points),
#   after `down_after` (2) misses in a row it falls by step_pct; kept within min_pct..max_pct
#   (10..80 %); the counters restart after each change.
#   An EMG fault (flat line or saturation, lib/emg.py) stops triggering at once (FAULT): no
#   attempt, no time-out help; the UI shows the fault and ends or pauses the session.
#
# Biofeedback (EmgFeedback): the live envelope, the threshold line, a mark (and beep request)
# each time the envelope crosses the threshold upward, the session's peak and mean envelope and
# the time spent above the threshold. No stimulation.
#
# Every mode keeps the history fields: attempts, triggered (contractions the person started),
# peak_uv, mean_uv.
from micropython import const
import time

_diff = time.ticks_diff

# calibration phases
CAL_RELAX = const(0)
CAL_SQUEEZE = const(1)
CAL_RELAX2 = const(2)
CAL_SQUEEZE2 = const(3)
CAL_DONE = const(4)
CAL_FAILED = const(5)
CAL_RELAX_MS = const(5000)
CAL_REST_WINDOW_MS = const(3000)  # the rest level: the mean of the last 3 s of the first relax
CAL_SQUEEZE_MS = const(3000)
CAL_RELAX2_MS = const(4000)
MIN_SPAN_UV = const(10)

# trigger states
T_RELAX = const(0)
T_WAIT = const(1)
T_ASSIST = const(2)
T_REST = const(3)
T_FAULT = const(4)
T_DONE = const(5)
RELAX_MAX_MS = const(3000)

TRIGGER_STATE_NAMES = ("relax", "try now", "assist", "rest", "EMG fault", "done")
TRIGGER_SHORT_NAMES = ("relax", "try", "assist", "rest", "fault", "done")  # 6 characters at most


class Stats:
    """Peak and mean of the envelope over a session (ints), plus the attempt counters."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.peak_uv = 0
        self.n = 0
        self.sum_uv = 0
        self.attempts = 0
        self.triggered = 0  # contractions the person started (envelope crossed the threshold)
        self.timeouts = 0  # attempts that ran out of time (the unit helped)

    def add(self, env):
        if env > self.peak_uv:
            self.peak_uv = env
        self.n += 1
        self.sum_uv += env

    @property
    def mean_uv(self):
        return self.sum_uv // self.n if self.n else 0

    def history(self):
        """The fields a session's history record keeps."""
        return {"attempts": self.attempts, "triggered": self.triggered,
                "emg_peak_uv": self.peak_uv, "emg_mean_uv": self.mean_uv}


def threshold_uv(rest_uv, max_uv, pct):
    return rest_uv + (max_uv - rest_uv) * pct // 100


class EmgCalibration:
    def __init__(self):
        self.phase = CAL_RELAX
        self.rest_uv = 0
        self.max_uv = 0
        self.countdown_ms = 0
        self._t0 = 0
        self._started = False
        self._rest_sum = 0
        self._rest_n = 0

    def start(self, now_ms):
        self.phase = CAL_RELAX
        self.rest_uv = 0
        self.max_uv = 0
        self._t0 = now_ms
        self._started = True
        self._rest_sum = 0
        self._rest_n = 0

    @property
    def done(self):
        return self.phase >= CAL_DONE

    @property
    def ok(self):
        return self.phase == CAL_DONE

    def tick(self, now_ms, env_uv):
        if not self._started or self.phase >= CAL_DONE:
            self.countdown_ms = 0
            return self.phase
        t = _diff(now_ms, self._t0)
        ph = self.phase
        if ph == CAL_RELAX:
            length = CAL_RELAX_MS
            if t >= CAL_RELAX_MS - CAL_REST_WINDOW_MS:
                self._rest_sum += env_uv
                self._rest_n += 1
        elif ph == CAL_SQUEEZE or ph == CAL_SQUEEZE2:
            length = CAL_SQUEEZE_MS
            if env_uv > self.max_uv:
                self.max_uv = env_uv
        else:
            length = CAL_RELAX2_MS
        if t >= length:
            self._t0 = now_ms
            t = 0
            if ph == CAL_RELAX:
                self.rest_uv = self._rest_sum // self._rest_n if self._rest_n else env_uv
                self.phase = CAL_SQUEEZE
                length = CAL_SQUEEZE_MS
            elif ph == CAL_SQUEEZE:
                self.phase = CAL_RELAX2
                length = CAL_RELAX2_MS
            elif ph == CAL_RELAX2:
                self.phase = CAL_SQUEEZE2
                length = CAL_SQUEEZE_MS
            else:
                if self.max_uv >= 2 * self.rest_uv + MIN_SPAN_UV:
                    self.phase = CAL_DONE
                else:
                    self.phase = CAL_FAILED
                length = 0
        self.countdown_ms = length - t
        return self.phase


class EmgTrigger:
    def __init__(self, session, rest_uv, max_uv, threshold_pct=30, timeout_ms=10000,
                 up_after=3, down_after=2, step_pct=5, min_pct=10, max_pct=80):
        if not session.program.triggered:
            raise ValueError("EMG-triggered stimulation needs a triggered program")
        if max_uv < 2 * rest_uv + MIN_SPAN_UV:
            raise ValueError("calibrate first: no usable maximum effort")
        self.session = session
        self.rest_uv = rest_uv
        self.max_uv = max_uv
        self.pct = threshold_pct
        self.timeout_ms = timeout_ms
        self.up_after = up_after
        self.down_after = down_after
        self.step_pct = step_pct
        self.min_pct = min_pct
        self.max_pct = max_pct
        p = session.program
        self.rest_ms = int(p.off_s * 1000)
        self.stats = Stats()
        self.state = T_RELAX
        self.fault = 0
        self.threshold_uv = threshold_uv(rest_uv, max_uv, threshold_pct)
        self.successes_in_row = 0
        self.misses_in_row = 0
        self.changes = 0  # threshold changes so far (the UI may show them)
        self.waited_ms = 0  # time-out clock of the current attempt
        self.countdown_ms = 0
        self.last_trigger_ms = -1  # now_ms of the latest accepted trigger
        self.last_timed_out = False
        self._last_ms = 0
        self._rest_start = 0
        self._saw_burst = False
        self._started = False

    def start(self, now_ms):
        """Start the session and follow it."""
        self.session.start(now_ms)
        self.attach(now_ms)

    def attach(self, now_ms):
        """Follow a session that is already running (the UI started it)."""
        self.stats.reset()
        self.state = T_RELAX
        self.waited_ms = 0
        self._last_ms = now_ms
        self._started = True

    def _set_pct(self, pct):
        if pct < self.min_pct:
            pct = self.min_pct
        elif pct > self.max_pct:
            pct = self.max_pct
        if pct != self.pct:
            self.pct = pct
            self.changes += 1
        self.threshold_uv = threshold_uv(self.rest_uv, self.max_uv, pct)
        self.successes_in_row = 0
        self.misses_in_row = 0

    def _fire(self, now_ms, timed_out):
        if not self.session.trigger(now_ms):
            return False
        st = self.stats
        st.attempts += 1
        self.last_trigger_ms = now_ms
        self.last_timed_out = timed_out
        if timed_out:
            st.timeouts += 1
            self.misses_in_row += 1
            self.successes_in_row = 0
            if self.misses_in_row >= self.down_after:
                self._set_pct(self.pct - self.step_pct)
        else:
            st.triggered += 1
            self.successes_in_row += 1
            self.misses_in_row = 0
            if self.successes_in_row >= self.up_after:
                self._set_pct(self.pct + self.step_pct)
        self.state = T_ASSIST
        self._saw_burst = False
        return True

    def tick(self, now_ms, env_uv, fault=0):
        """Call every loop tick before Session.tick(). Returns the state."""
        dt = _diff(now_ms, self._last_ms)
        self._last_ms = now_ms
        if not self._started:
            return self.state
        s = self.session
        if not s.running:
            self.state = T_DONE
            return T_DONE
        self.stats.add(env_uv)
        self.fault = fault
        if fault:
            self.state = T_FAULT
            self.waited_ms = 0
            return T_FAULT
        st = self.state
        if st == T_FAULT:
            st = self.state = T_RELAX
            self.waited_ms = 0
        if s.paused:
            return st
        if st == T_RELAX:
            self.waited_ms += dt
            if env_uv * 10 < self.threshold_uv * 7 or (
                    self.waited_ms >= RELAX_MAX_MS and env_uv < self.threshold_uv):
                st = self.state = T_WAIT
                self.waited_ms = 0
        elif st == T_WAIT:
            self.waited_ms += dt
            if env_uv >= self.threshold_uv:
                self._fire(now_ms, False)
            elif self.waited_ms >= self.timeout_ms:
                self._fire(now_ms, True)
            self.countdown_ms = self.timeout_ms - self.waited_ms
        elif st == T_ASSIST:
            # the session's state of its last tick: the burst has begun, then ended
            burst = s.out.state != "waiting_trigger"
            if burst:
                self._saw_burst = True
                self.countdown_ms = s.out.countdown_ms
            elif self._saw_burst:
                self.state = T_REST
                self._rest_start = now_ms
        if self.state == T_REST:
            left = self.rest_ms - _diff(now_ms, self._rest_start)
            self.countdown_ms = left if left > 0 else 0
            if left <= 0:
                self.state = T_RELAX
                self.waited_ms = 0
        return self.state


class EmgFeedback:
    """Biofeedback only: no stimulation."""

    def __init__(self, rest_uv, max_uv, threshold_pct=30):
        self.rest_uv = rest_uv
        self.max_uv = max_uv
        self.pct = threshold_pct
        self.threshold_uv = threshold_uv(rest_uv, max_uv, threshold_pct)
        self.stats = Stats()
        self.env_uv = 0
        self.above = False
        self.crossings = 0  # upward threshold crossings (each a mark / beep)
        self.beep = False  # True on the tick of an upward crossing
        self.above_ms = 0
        self.fault = 0
        self._last_ms = 0
        self._started = False

    def start(self, now_ms):
        self.stats.reset()
        self.crossings = 0
        self.above_ms = 0
        self.above = False
        self._last_ms = now_ms
        self._started = True

    def tick(self, now_ms, env_uv, fault=0):
        dt = _diff(now_ms, self._last_ms)
        self._last_ms = now_ms
        self.beep = False
        self.fault = fault
        if not self._started or fault:
            return
        self.env_uv = env_uv
        self.stats.add(env_uv)
        if env_uv >= self.threshold_uv:
            if not self.above:
                self.crossings += 1
                self.stats.attempts += 1
                self.beep = True
            else:
                self.above_ms += dt
            self.above = True
        elif env_uv * 10 < self.threshold_uv * 8:  # 20 % hysteresis before the next mark
            self.above = False
