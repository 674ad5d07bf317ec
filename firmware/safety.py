# SafetySupervisor: the only owner of the OutputStage (see docs/architecture.md and SAFETY.md).
#
# It holds each channel's user level (mA), multiplies it by the session's envelope fraction and
# clamps it to every cap; it checks current sense, battery, USB and loop timing; it raises faults
# and stops. Everything that is firmware logic in SAFETY.md is enforced here:
#
#   caps   peak <= min(board MAX_MA (100), clinician cap per channel); phase 20-1000 us; rate
#          0.5-200 Hz (inside a burst up to 2500 Hz); charge per phase <= charge cap (default
#          50 uC, never above 100 uC); rms <= 50 mA with I_rms = I_peak * sqrt(2 * phase_s * f),
#          f the average pulse rate (bursts: burst_count * burst_rate_hz).
#   rule 2 user level is 0 after start, pause, program change (a new start), fault, electrode
#          reconnection (rearm_channel) and keypad unlock (on_unlock).
#   rule 3 a rise of the user level needs an explicit press: <= RISE_STEP_MA per press and at most
#          one rise per RISE_MIN_INTERVAL_MS per channel; decreases are immediate. Delivered
#          amplitude = min(user level x envelope (clamped to 0..1), caps): the program's ramp
#          never exceeds the user's level.
#   rule 4 stop(): amplitude 0 on every channel, then pulses stop, then enable low.
#   rule 5 electrode checks (see tick()): open_circuit, cannot_reach_current, over_current
#          stop the channel (over_current: all), level 0, never restart by themselves.
#          timing_missed if the loop gap exceeds MAX_LOOP_GAP_MS while running.
#   rule 7 USB power present -> refuse to start / stop; battery below cut-off -> refuse / stop;
#          below the warning threshold -> a "low_battery_warning" fault without stopping.
#   rule 9 locked = True: set_user_level changes nothing (stop() still works).
#
# Current sense: the output stage reads a peak detector (hold ~20 ms), so between pulses at low
# rates it reads ~0. Under-current checks therefore look at the highest reading over a window of
# at least DEBOUNCE_TICKS ticks and two pulse (or burst) periods; see electrode_detect_bound_ms().

import math
import time
from micropython import const

# --- published caps and bounds -----------------------------------------------------------------
BOARD_MAX_MA = const(100)         # peak current per channel, board maximum (SAFETY.md)
PHASE_MIN_US = const(20)
PHASE_MAX_US = const(1000)
GAP_MAX_US = const(1000)
RATE_MIN_HZ = 0.5
RATE_MAX_HZ = 200.0
BURST_INNER_MAX_HZ = 2500.0
BURST_COUNT_MAX = const(100)
CHARGE_CAP_UC = 50.0              # default charge per phase cap (our choice)
CHARGE_ABS_MAX_UC = 100.0         # absolute ceiling (100 mA x 1000 us)
RMS_CAP_MA = 50.0                 # rms per channel (Enraf Endomed manual)
LOAD_OHM = const(500)             # IEC 60601-2-10 energy reference load
ENERGY_LIMIT_MJ = 300.0           # IEC 60601-2-10 per pulse at 500 ohm

RISE_STEP_MA = 1.0                # rule 3: largest rise per explicit press
RISE_MIN_INTERVAL_MS = const(100)  # rule 3: at most 10 rises per second per channel

DEBOUNCE_TICKS = const(3)          # rule 5: a condition must persist this many ticks
TICK_MS = const(10)                # the app's loop period (app.TICK_MS)
MAX_LOOP_GAP_MS = const(100)       # tick() later than this while running -> timing_missed
OPEN_MIN_CMD_MA = 5.0              # electrode checks only when the command is at least this
OPEN_READ_MA = 1.0                 # reading below this = ~0 = open circuit
REACH_FRACTION = 0.7               # reading below 70 % of command = cannot reach current
OVER_MARGIN_MA = 5.0               # reading above command + 5 mA + 10 % = over current
OVER_FRACTION = 0.1
# Electrode-off detection bound: sense hold + max(DEBOUNCE_TICKS * TICK_MS = 30 ms, two pulse
# (burst) periods) + one tick, see electrode_detect_bound_ms(pulse): 60 ms at >= 67 Hz.
ELECTRODE_DETECT_MIN_MS = const(30)    # DEBOUNCE_TICKS * TICK_MS
SENSE_HOLD_MS = const(20)              # the board's current-sense peak detector hold
BATTERY_DEBOUNCE_TICKS = const(10)  # battery sags under load; 100 ms at 10 ms ticks
MAX_FAULTS = const(16)

# states
IDLE = "idle"
RUNNING = "running"
FAULT = "fault"

# fault kinds
OPEN_CIRCUIT = "open_circuit"
CANNOT_REACH = "cannot_reach_current"
OVER_CURRENT = "over_current"
TIMING_MISSED = "timing_missed"
LOW_BATTERY = "low_battery"
LOW_BATTERY_WARNING = "low_battery_warning"
USB_POWER = "usb_power"
WATCHDOG = "watchdog"
INVALID_PARAMS = "invalid_params"

_TICKS_PERIOD = const(1 << 30)
_TICKS_HALF = const(1 << 29)

try:
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython without the sim's time: same wrapping arithmetic
    def _ticks_diff(a, b):
        return ((a - b + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF

_NO_FAULTS = ()
_UNSET = object()   # "no value cached yet" (caches compare values by identity)
_PULSE_KEYS = ("phase_us", "gap_us", "rate_hz", "burst_count", "burst_rate_hz", "alternate")


class Fault:
    def __init__(self, kind, channel, t_ms, detail=""):
        self.kind = kind
        self.channel = channel     # 1, 2, or 0 for the whole unit
        self.t_ms = t_ms
        self.detail = detail

    def __repr__(self):
        return "Fault(%r, %d, %d)" % (self.kind, self.channel, self.t_ms)


# --- pure functions: the caps as numbers -------------------------------------------------------
def average_rate_hz(pulse):
    """Average pulses per second of a pulse dict (bursts: burst_count x burst_rate_hz)."""
    n = pulse.get("burst_count", 1) or 1
    if n > 1:
        return n * pulse["burst_rate_hz"]
    return pulse["rate_hz"]


def charge_uc(amplitude_ma, phase_us):
    """Charge of one phase in microcoulombs."""
    return amplitude_ma * phase_us / 1000.0


def max_ma_for_charge(phase_us, charge_cap_uc=CHARGE_CAP_UC):
    return min(charge_cap_uc, CHARGE_ABS_MAX_UC) * 1000.0 / phase_us


def rms_ma(peak_ma, phase_us, avg_rate_hz):
    """Enraf formula for symmetric biphasic pulses: I_rms = I_peak * sqrt(2 * phase_s * f)."""
    return peak_ma * math.sqrt(2.0 * phase_us * 1e-6 * avg_rate_hz)


def max_ma_for_rms(phase_us, avg_rate_hz, rms_cap_ma=RMS_CAP_MA):
    return min(rms_cap_ma, RMS_CAP_MA) / math.sqrt(2.0 * phase_us * 1e-6 * avg_rate_hz)


def energy_per_pulse_mj(amplitude_ma, phase_us, load_ohm=LOAD_OHM):
    """Energy of one biphasic pulse (both phases) into a resistive load, in mJ.
    100 mA, 1000 us, 500 ohm -> 10 mJ, far below the 300 mJ of IEC 60601-2-10."""
    i_a = amplitude_ma / 1000.0
    return i_a * i_a * load_ohm * 2.0 * phase_us * 1e-6 * 1000.0


def check_pulse(pulse):
    """Raise ValueError if a pulse dict is outside the SAFETY.md ranges."""
    phase = pulse.get("phase_us")
    gap = pulse.get("gap_us", 0)
    rate = pulse.get("rate_hz")
    n = pulse.get("burst_count", 1)
    if not _num(phase) or not PHASE_MIN_US <= phase <= PHASE_MAX_US:
        raise ValueError("phase %r us outside %d-%d us" % (phase, PHASE_MIN_US, PHASE_MAX_US))
    if not _num(gap) or not 0 <= gap <= GAP_MAX_US:
        raise ValueError("gap %r us outside 0-%d us" % (gap, GAP_MAX_US))
    if type(n) is not int or not 1 <= n <= BURST_COUNT_MAX:
        raise ValueError("burst_count %r outside 1-%d" % (n, BURST_COUNT_MAX))
    if n > 1:
        if not _num(rate) or not RATE_MIN_HZ <= rate <= BURST_INNER_MAX_HZ:
            raise ValueError("rate in burst %r Hz outside %s-%s Hz" % (rate, RATE_MIN_HZ,
                                                                       BURST_INNER_MAX_HZ))
        br = pulse.get("burst_rate_hz")
        if not _num(br) or not RATE_MIN_HZ <= br <= RATE_MAX_HZ:
            raise ValueError("burst rate %r Hz outside %s-%s Hz" % (br, RATE_MIN_HZ, RATE_MAX_HZ))
        if n / rate >= 1.0 / br:
            raise ValueError("burst longer than its period")
    elif not _num(rate) or not RATE_MIN_HZ <= rate <= RATE_MAX_HZ:
        raise ValueError("rate %r Hz outside %s-%s Hz" % (rate, RATE_MIN_HZ, RATE_MAX_HZ))
    if (2 * phase + gap) * 1e-6 * rate > 1.0:
        raise ValueError("pulse longer than its period")


def pulse_limit_ma(pulse, cap_ma=BOARD_MAX_MA, charge_cap_uc=CHARGE_CAP_UC,
                   rms_cap_ma=RMS_CAP_MA):
    """Highest peak mA allowed for these (valid) pulse parameters: board max, clinician cap,
    charge per phase and rms, whichever is lowest."""
    phase = pulse["phase_us"]
    return min(BOARD_MAX_MA, cap_ma, max_ma_for_charge(phase, charge_cap_uc),
               max_ma_for_rms(phase, average_rate_hz(pulse), rms_cap_ma))


def electrode_detect_bound_ms(pulse, tick_ms=TICK_MS):
    """Published bound (ms) from the electrode coming off to the channel stopping: the
    sense hold, one window (DEBOUNCE_TICKS ticks = 30 ms, or two pulse/burst periods when that is
    longer), one tick. 50 Hz: 20 + 40 + 10 = 70 ms; >= 67 Hz: 60 ms; 2 Hz: 1030 ms."""
    rate = pulse["burst_rate_hz"] if pulse.get("burst_count", 1) > 1 else pulse["rate_hz"]
    window = max(ELECTRODE_DETECT_MIN_MS, int(2000.0 / rate + 0.5))
    return SENSE_HOLD_MS + window + tick_ms


def _num(v):
    return (type(v) is int or type(v) is float) and v == v


class SafetySupervisor:
    def __init__(self, output_stage, board=None, caps=None, channels=2):
        self.out = output_stage
        self.board = board
        self.channels = channels
        self._chs = tuple(range(1, channels + 1))
        self.state = IDLE
        self.faults = []
        self.locked = False
        self.stop_reason = ""
        self.warnings = 0
        # power sources: the output stage's methods (contract), else the board's
        src = output_stage if hasattr(output_stage, "usb_present") else board
        self._usb_src = src if src is not None and hasattr(src, "usb_present") else None
        src = output_stage if hasattr(output_stage, "battery_mv") else board
        self._batt_src = src if src is not None and hasattr(src, "battery_mv") else None
        self.battery_cutoff_mv = getattr(board, "BATTERY_CUTOFF_MV", 3300)
        self.battery_warn_mv = getattr(board, "BATTERY_WARN_MV", 3500)
        board_max = getattr(board, "MAX_MA", BOARD_MAX_MA)
        self.board_max_ma = min(board_max, BOARD_MAX_MA)
        n = channels + 1
        self._cap_ma = [self.board_max_ma] * n
        self.charge_cap_uc = CHARGE_CAP_UC
        self.rms_cap_ma = RMS_CAP_MA
        # per channel (index 0 unused)
        self._level = [0.0] * n         # user level, mA
        self._cmd = [0.0] * n           # amplitude commanded to the output stage, mA
        self._limit = [0.0] * n         # pulse_limit_ma of the configured pulses
        self._last_rise = [0] * n
        self._has_risen = [False] * n
        self._ch_fault = [None] * n     # kind string when that channel is stopped by a fault
        self._pulse = [None] * n        # configured pulse parameters (a list in _PULSE_KEYS order)
        self._plan = [None] * n         # what configure_pulses returned
        self._peak_ma = [0.0] * n       # highest delivered this run (for the usage log)
        # electrode check state
        self._win_ms = [ELECTRODE_DETECT_MIN_MS] * n
        self._prev_cmd = [0.0] * n
        self._ok_open_ms = [0] * n
        self._ok_reach_ms = [0] * n
        self._bad_open_ticks = [0] * n
        self._bad_reach_ticks = [0] * n
        self._over_ticks = [0] * n
        # Allocation-free steady ticks (floats are boxed on MicroPython): level x envelope is
        # kept for the last (level, envelope) objects, and the current-sense thresholds for the
        # last (command, previous command) objects; an output stage with raw ADC readings
        # (read_current_raw, current_raw_threshold) has them converted to raw counts, compared
        # with the same result as the mA reading (lib/output_stage.py).
        self._ap_lvl = [_UNSET] * n
        self._ap_env = [_UNSET] * n
        self._ap_ma = [0.0] * n
        self._thr_cmd = [_UNSET] * n
        self._thr_prev = [_UNSET] * n
        self._over_ma = [0.0] * n       # reading above this: over current
        self._reach_ma = [0.0] * n      # reading at least this: the current is reached
        self._over_raw = [0] * n
        self._reach_raw = [0] * n
        raw = output_stage
        if not (hasattr(raw, "read_current_raw") and hasattr(raw, "current_raw_threshold")):
            raw = None
        self._raw_src = raw
        self._open_raw = raw.current_raw_threshold(OPEN_READ_MA) if raw is not None else 0
        self._last_tick = 0
        self._batt_low_ticks = 0
        self._batt_warn_ticks = 0
        self._warned = False
        self._last_session_state = ""
        self.set_caps(caps)

    # --- caps --------------------------------------------------------------------------------
    def set_caps(self, caps):
        """caps: dict with optional cap_ma (list [ch1, ch2] or dict {1: .., 2: ..}),
        charge_uc, rms_ma. Caps can only be lowered below the SAFETY.md ceilings."""
        if not caps:
            return
        cap = caps.get("cap_ma")
        if cap is not None:
            for ch in self._chs:
                if isinstance(cap, dict):
                    v = cap.get(ch, cap.get(str(ch), self.board_max_ma))
                elif isinstance(cap, (list, tuple)):
                    v = cap[ch - 1] if ch - 1 < len(cap) else self.board_max_ma
                else:
                    v = cap
                if _num(v):
                    self._cap_ma[ch] = max(0, min(v, self.board_max_ma))
                if self._level[ch] > self._cap_ma[ch]:
                    self._level[ch] = self._cap_ma[ch]
        v = caps.get("charge_uc")
        if _num(v) and v > 0:
            self.charge_cap_uc = min(v, CHARGE_ABS_MAX_UC)
        v = caps.get("rms_ma")
        if _num(v) and v > 0:
            self.rms_cap_ma = min(v, RMS_CAP_MA)
        for ch in self._chs:
            if self._pulse[ch] is not None:
                self._limit[ch] = self._pulse_limit(ch, self._pulse_dict(ch))

    def cap_ma(self, ch):
        return self._cap_ma[ch]

    def limit_ma(self, ch):
        """Highest amplitude the current pulse parameters allow on this channel."""
        return min(self._limit[ch], self._cap_ma[ch])

    def _pulse_limit(self, ch, pulse):
        return pulse_limit_ma(pulse, self._cap_ma[ch], self.charge_cap_uc, self.rms_cap_ma)

    def _pulse_dict(self, ch):
        d = {}
        vals = self._pulse[ch]
        for i in range(len(_PULSE_KEYS)):
            d[_PULSE_KEYS[i]] = vals[i]
        return d

    # --- user level (rules 2, 3, 9) ----------------------------------------------------------
    def user_level(self, ch):
        return self._level[ch]

    def delivered_ma(self, ch):
        return self._cmd[ch]

    def peak_ma(self, ch):
        return self._peak_ma[ch]

    def channel_fault(self, ch):
        return self._ch_fault[ch]

    def set_user_level(self, ch, ma, now_ms):
        """Explicit press. Rises: at most RISE_STEP_MA per call and one rise per
        RISE_MIN_INTERVAL_MS; decreases immediate. Returns the level kept."""
        if self.locked or self._ch_fault[ch] is not None:
            return self._level[ch]
        if not _num(ma):
            return self._level[ch]
        cur = self._level[ch]
        if ma <= cur:
            self._level[ch] = ma if ma > 0 else 0.0
            return self._level[ch]
        if self._has_risen[ch] and _ticks_diff(now_ms, self._last_rise[ch]) < RISE_MIN_INTERVAL_MS:
            return cur
        new = min(ma, cur + RISE_STEP_MA, self._cap_ma[ch])
        if new > cur:
            self._level[ch] = new
            self._last_rise[ch] = now_ms
            self._has_risen[ch] = True
        return self._level[ch]

    def reset_levels(self):
        """Rule 2: every user level back to 0 (the output follows at the next apply)."""
        for ch in self._chs:
            self._level[ch] = 0.0

    def on_unlock(self):
        """Keypad unlock: output starts again from zero (rule 2)."""
        self.locked = False
        self.reset_levels()

    def on_program_change(self):
        self.reset_levels()

    # --- start / apply -----------------------------------------------------------------------
    def _fault(self, kind, ch, now_ms, detail=""):
        f = Fault(kind, ch, now_ms, detail)
        self.faults.append(f)
        if len(self.faults) > MAX_FAULTS:
            self.faults.pop(0)
        return f

    def _usb(self):
        return self._usb_src is not None and bool(self._usb_src.usb_present())

    def _battery_mv(self):
        if self._batt_src is None:
            return None
        return self._batt_src.battery_mv()

    def start(self, plans, now_ms=0):
        """plans[ch] = pulse dict (phase_us, gap_us, rate_hz, burst_count, burst_rate_hz,
        alternate) for ch = 1..channels (SessionOutput.pulse works). Refuses with a Fault on
        USB power, low battery or invalid parameters; returns None when running."""
        if self._usb():
            self.stop(USB_POWER)
            return self._fault(USB_POWER, 0, now_ms)
        mv = self._battery_mv()
        if mv is not None and mv < self.battery_cutoff_mv:
            self.stop(LOW_BATTERY)
            return self._fault(LOW_BATTERY, 0, now_ms, "%d mV" % mv)
        for ch in self._chs:
            try:
                check_pulse(plans[ch])
            except (ValueError, KeyError, TypeError) as e:
                self.stop(INVALID_PARAMS)
                return self._fault(INVALID_PARAMS, ch, now_ms, str(e))
        # output starts at zero (rule 2)
        self.reset_levels()
        for ch in self._chs:
            self._ch_fault[ch] = None
            self._cmd[ch] = 0.0
            self._peak_ma[ch] = 0.0
            self._has_risen[ch] = False
            self._over_ticks[ch] = 0
            self.out.set_amplitude_ma(ch, 0)
            self._configure(ch, plans[ch])
            self._reset_window(ch, now_ms)
        self.out.enable(True)
        for ch in self._chs:
            self.out.start_pulses(ch)
        self.state = RUNNING
        self.stop_reason = ""
        self._last_tick = now_ms
        self._batt_low_ticks = 0
        self._batt_warn_ticks = 0
        self._warned = False
        self._last_session_state = ""
        return None

    def _configure(self, ch, pulse):
        vals = self._pulse[ch]
        if vals is None:
            vals = [None] * len(_PULSE_KEYS)
            self._pulse[ch] = vals
        for i in range(len(_PULSE_KEYS)):
            k = _PULSE_KEYS[i]
            vals[i] = pulse.get(k, 1 if k == "burst_count" else (False if k == "alternate"
                                                                 else None))
        if vals[1] is None:
            vals[1] = 50
        self._plan[ch] = self.out.configure_pulses(ch, vals[0], vals[1], vals[2], vals[3],
                                                   vals[4], vals[5])
        self._limit[ch] = self._pulse_limit(ch, pulse)
        rate = vals[4] if vals[3] > 1 else vals[2]
        self._win_ms[ch] = max(ELECTRODE_DETECT_MIN_MS, int(2000.0 / rate + 0.5))

    def _pulse_changed(self, ch, pulse):
        vals = self._pulse[ch]
        if vals is None:
            return True
        for i in range(len(_PULSE_KEYS)):
            if pulse.get(_PULSE_KEYS[i], vals[i]) != vals[i]:
                return True
        return False

    def apply(self, out, now_ms):
        """Session output -> delivered amplitude on each channel:
        min(user level x envelope, clinician cap, board max, charge and rms limits)."""
        if self.state != RUNNING:
            return
        st = out.state
        if st == "paused" and self._last_session_state != "paused":
            self.reset_levels()               # rule 2: after a pause output starts at zero
        self._last_session_state = st
        if st == "done":
            self.stop("session_done")
            return
        for ch in self._chs:
            if self._ch_fault[ch] is not None:
                continue
            pulse = out.pulse[ch]
            if self._pulse_changed(ch, pulse):
                try:
                    check_pulse(pulse)
                except (ValueError, KeyError, TypeError) as e:
                    self._fault(INVALID_PARAMS, ch, now_ms, str(e))
                    self._halt(FAULT)
                    return
                self._configure(ch, pulse)
            env = out.envelope[ch]
            if not _num(env) or env < 0:
                env = 0.0
            elif env > 1:
                env = 1.0
            lvl = self._level[ch]
            if lvl is self._ap_lvl[ch] and env is self._ap_env[ch]:
                ma = self._ap_ma[ch]          # the same objects: the same product
            else:
                ma = lvl * env
                self._ap_lvl[ch] = lvl
                self._ap_env[ch] = env
                self._ap_ma[ch] = ma
            lim = self._limit[ch]
            if ma > lim:
                ma = lim
            if ma > self._cap_ma[ch]:
                ma = self._cap_ma[ch]
            if ma > self.board_max_ma:
                ma = self.board_max_ma
            if ma != self._cmd[ch]:
                self.out.set_amplitude_ma(ch, ma)
                self._cmd[ch] = ma
                if ma > self._peak_ma[ch]:
                    self._peak_ma[ch] = ma

    # --- stop (rule 4) ---------------------------------------------------------------------
    def stop(self, reason="user"):
        """Every channel to 0 mA, then pulses stop, then enable low; user levels -> 0."""
        self._halt(IDLE if self.state != FAULT else FAULT)
        self.stop_reason = reason

    def _halt(self, new_state):
        out = self.out
        for ch in self._chs:
            try:
                out.set_amplitude_ma(ch, 0)
            except Exception:
                pass
        for ch in self._chs:
            try:
                out.stop_pulses(ch)
            except Exception:
                pass
        try:
            out.enable(False)
        except Exception:
            pass
        for ch in self._chs:
            self._cmd[ch] = 0.0
            self._level[ch] = 0.0
        self.state = new_state

    def emergency_off(self):
        """Same as stop() without allocating anything: callable from an IRQ or an except
        handler. Integer loop, no lists, no strings built, no float boxing."""
        out = self.out
        n = self.channels
        ch = 1
        while ch <= n:
            try:
                out.set_amplitude_ma(ch, 0)
            except Exception:
                pass
            ch += 1
        ch = 1
        while ch <= n:
            try:
                out.stop_pulses(ch)
            except Exception:
                pass
            ch += 1
        try:
            out.enable(False)
        except Exception:
            pass
        cmd = self._cmd
        level = self._level
        ch = 1
        while ch <= n:
            cmd[ch] = 0
            level[ch] = 0
            ch += 1
        if self.state == RUNNING:
            self.state = IDLE

    def acknowledge(self):
        """The user has seen the fault: back to idle (a new start() is still needed)."""
        if self.state == FAULT:
            self.state = IDLE

    def rearm_channel(self, ch, now_ms):
        """Explicit user action after reconnecting an electrode: the channel plays again,
        from a level of 0 (rule 2)."""
        if self.state != RUNNING or self._ch_fault[ch] is None:
            return False
        self._ch_fault[ch] = None
        self._level[ch] = 0.0
        self._cmd[ch] = 0.0
        self.out.set_amplitude_ma(ch, 0)
        self.out.start_pulses(ch)
        self._reset_window(ch, now_ms)
        self._over_ticks[ch] = 0
        return True

    def _stop_channel(self, ch, kind):
        self.out.set_amplitude_ma(ch, 0)
        self.out.stop_pulses(ch)
        self._cmd[ch] = 0.0
        self._level[ch] = 0.0
        self._ch_fault[ch] = kind
        for c in self._chs:
            if self._ch_fault[c] is None:
                return
        self._halt(FAULT)              # no channel left: the whole output goes off

    # --- checks (rules 5, 7) ---------------------------------------------------------------
    def _reset_window(self, ch, now_ms):
        self._prev_cmd[ch] = 0.0
        self._ok_open_ms[ch] = now_ms
        self._ok_reach_ms[ch] = now_ms
        self._bad_open_ticks[ch] = 0
        self._bad_reach_ticks[ch] = 0

    def tick(self, now_ms):
        """Current sense, battery, USB and loop-timing checks. Returns the new faults (an
        empty tuple when there are none)."""
        if self.state != RUNNING:
            return _NO_FAULTS
        new = _NO_FAULTS
        gap = _ticks_diff(now_ms, self._last_tick)
        self._last_tick = now_ms
        if gap > MAX_LOOP_GAP_MS:
            self._halt(FAULT)
            return [self._fault(TIMING_MISSED, 0, now_ms, "%d ms" % gap)]
        if self._usb():
            self._halt(FAULT)
            return [self._fault(USB_POWER, 0, now_ms)]
        mv = self._battery_mv()
        if mv is not None:
            if mv < self.battery_cutoff_mv:
                self._batt_low_ticks += 1
                if self._batt_low_ticks >= BATTERY_DEBOUNCE_TICKS:
                    self._halt(FAULT)
                    return [self._fault(LOW_BATTERY, 0, now_ms, "%d mV" % mv)]
            else:
                self._batt_low_ticks = 0
            if mv < self.battery_warn_mv:
                self._batt_warn_ticks += 1
                if self._batt_warn_ticks >= BATTERY_DEBOUNCE_TICKS and not self._warned:
                    self._warned = True
                    self.warnings += 1
                    new = [self._fault(LOW_BATTERY_WARNING, 0, now_ms, "%d mV" % mv)]
            else:
                self._batt_warn_ticks = 0
        for ch in self._chs:
            if self._ch_fault[ch] is not None:
                continue
            kind = self._check_channel(ch, now_ms)
            if kind is not None:
                f = self._fault(kind, ch, now_ms)
                if kind == OVER_CURRENT:
                    for c in self._chs:
                        self._ch_fault[c] = kind
                    self._halt(FAULT)
                else:
                    self._stop_channel(ch, kind)
                if new is _NO_FAULTS:
                    new = []
                new.append(f)
                if self.state != RUNNING:
                    break
        return new

    def _thresholds(self, ch, cmd, prev):
        # the over-current and reach thresholds of this (command, previous command) pair
        self._thr_cmd[ch] = cmd
        self._thr_prev[ch] = prev
        hi = cmd if cmd > prev else prev
        lo = cmd if cmd < prev else prev
        over = hi * (1 + OVER_FRACTION) + OVER_MARGIN_MA
        reach = REACH_FRACTION * lo
        self._over_ma[ch] = over
        self._reach_ma[ch] = reach
        src = self._raw_src
        if src is not None:
            self._over_raw[ch] = src.current_raw_threshold(over, True)
            self._reach_raw[ch] = src.current_raw_threshold(reach)

    def _check_channel(self, ch, now_ms):
        cmd = self._cmd[ch]
        prev = self._prev_cmd[ch]
        self._prev_cmd[ch] = cmd
        if cmd is not self._thr_cmd[ch] or prev is not self._thr_prev[ch]:
            self._thresholds(ch, cmd, prev)
        src = self._raw_src
        if src is not None:
            raw = src.read_current_raw(ch)
            over = raw >= self._over_raw[ch]
            live = raw >= self._open_raw
            reached = raw >= self._reach_raw[ch]
        else:
            read = self.out.read_current_ma(ch)
            over = read > self._over_ma[ch]
            live = read >= OPEN_READ_MA
            reached = read >= self._reach_ma[ch]
        # over current: reading above the command on DEBOUNCE_TICKS consecutive informative
        # ticks (a ~0 reading between slow pulses neither confirms nor clears it)
        if over:
            self._over_ticks[ch] += 1
            if self._over_ticks[ch] >= DEBOUNCE_TICKS:
                return OVER_CURRENT
        elif live:
            self._over_ticks[ch] = 0
        # under current: the sense holds the peak of the latest pulse ~SENSE_HOLD_MS, so a
        # reading reflects a command of this or the previous tick (lo). A channel is "ok" at a
        # tick where the command is small or the reading matches; it faults when no ok tick has
        # been seen for DEBOUNCE_TICKS ticks and one window (>= two pulse or burst periods).
        lo = cmd if cmd < prev else prev
        if lo < OPEN_MIN_CMD_MA:
            self._ok_open_ms[ch] = now_ms
            self._ok_reach_ms[ch] = now_ms
            self._bad_open_ticks[ch] = 0
            self._bad_reach_ticks[ch] = 0
            return None
        if live:
            self._ok_open_ms[ch] = now_ms
            self._bad_open_ticks[ch] = 0
        else:
            self._bad_open_ticks[ch] += 1
        if reached:
            self._ok_reach_ms[ch] = now_ms
            self._bad_reach_ticks[ch] = 0
        else:
            self._bad_reach_ticks[ch] += 1
        win = self._win_ms[ch]
        if (self._bad_open_ticks[ch] >= DEBOUNCE_TICKS
                and _ticks_diff(now_ms, self._ok_open_ms[ch]) >= win):
            return OPEN_CIRCUIT
        if (self._bad_reach_ticks[ch] >= DEBOUNCE_TICKS
                and _ticks_diff(now_ms, self._ok_reach_ms[ch]) >= win):
            return CANNOT_REACH
        return None
