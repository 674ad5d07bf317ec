# SafetySupervisor: the only owner of the OutputStage (see docs/architecture.md and docs/safety.md).
#
# It holds each channel's user level (mA), multiplies it by the session's envelope fraction and
# clamps it to every cap; it checks current sense, battery, USB and loop timing; it raises faults
# and stops. Everything that is firmware logic in docs/safety.md is enforced here:
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
#   rule 4 stop(): amplitude 0 on every channel, then pulses stop, then enable low: one
#          allocation-free path (emergency_off) for every stop, fault and crash. A STOP that is
#          down blocks any start and any output whatever its history: attach_stop(pin) arms a
#          hard IRQ whose handler only drops the output stage's enable and sets a flag (no
#          allocation); the loop then stops everything; start() refuses while STOP is down and
#          checks it again after enabling the output (an IRQ in the middle of start() wins).
#   rule 5 electrode checks (see tick()): open_circuit, cannot_reach_current, over_current
#          stop the channel (over_current: all), level 0, never restart by themselves. They run
#          at every non-zero command (no lower floor): a reading counts as current when it is at
#          least half the command (at most OPEN_READ_MA), so the bound is the sense's own
#          resolution (one ADC step: 0.032 mA on the Pico board). A channel stops at the first
#          pulse that finds no current: within one pulse (or burst) period + 40 ms of the
#          electrode coming off, see electrode_detect_bound_ms().
#          timing_missed if the loop gap exceeds MAX_LOOP_GAP_MS while running.
#   rule 7 USB power present -> refuse to start / stop; battery below cut-off -> refuse / stop;
#          below the warning threshold -> a "low_battery_warning" fault without stopping.
#   rule 9 locked = True: set_user_level changes nothing (stop() still works).
#
# Current sense: the output stage reads a peak detector (hold ~20 ms), so between pulses at low
# rates it reads ~0. A reading that shows current proves a good pulse within the last hold; the
# next pulse comes one period later. So a channel whose readings have shown no current for one
# period (at least the hold) + DETECT_MARGIN_MS, with ticks close enough together that no pulse
# can have fallen between two readings unseen, had a pulse that found no current: it stops.

import math
import time
from micropython import const

# --- published caps and bounds -----------------------------------------------------------------
BOARD_MAX_MA = const(100)         # peak current per channel, board maximum (docs/safety.md)
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

DEBOUNCE_TICKS = const(3)          # rule 5: over current must persist this many ticks
TICK_MS = const(10)                # the app's loop period (app.TICK_MS)
MAX_LOOP_GAP_MS = const(100)       # tick() later than this while running -> timing_missed
OPEN_READ_MA = 1.0                 # a reading of this much is current, whatever the command
OPEN_FRACTION = 0.5                # ... and so is one of at least half the command
REACH_FRACTION = 0.7               # reading below 70 % of command = cannot reach current
OVER_MARGIN_MA = 5.0               # reading above command + 5 mA + 10 % = over current
OVER_FRACTION = 0.1
# Electrode-off detection: window = pulse or burst period + DETECT_MARGIN_MS (periods up to
# SENSE_HOLD_MS: two ticks) without a reading showing current; bound from the electrode coming
# off to the channel stopping = sense hold + window + one tick, see electrode_detect_bound_ms():
# 50 ms at >= 50 Hz, period + 40 ms below (2 Hz: 540 ms).
SENSE_HOLD_MS = const(20)              # the board's current-sense peak detector hold
DETECT_MARGIN_MS = const(10)           # one tick: the reading after a pulse comes <= 10 ms late
ELECTRODE_DETECT_MIN_MS = const(30)    # the window at >= 50 Hz: three ticks
QUIET_FAR_MS = const(1048576)  # quiet_ms() when time alone changes nothing
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
STOP_HELD = "stop_held"            # a start refused (or undone) because STOP is down

_ticks_diff = time.ticks_diff
_ticks_add = time.ticks_add

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
    """Raise ValueError if a pulse dict is outside the docs/safety.md ranges."""
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
    return limit_for(pulse["phase_us"], average_rate_hz(pulse), cap_ma, charge_cap_uc,
                     rms_cap_ma)


def limit_for(phase_us, avg_rate_hz, cap_ma=BOARD_MAX_MA, charge_cap_uc=CHARGE_CAP_UC,
              rms_cap_ma=RMS_CAP_MA):
    """pulse_limit_ma of a phase width and an average pulse rate."""
    return min(BOARD_MAX_MA, cap_ma, max_ma_for_charge(phase_us, charge_cap_uc),
               max_ma_for_rms(phase_us, avg_rate_hz, rms_cap_ma))


def _period_ms(pulse):
    """The pulse period (bursts: the burst period) in whole ms, rounded up."""
    rate = pulse["burst_rate_hz"] if pulse.get("burst_count", 1) > 1 else pulse["rate_hz"]
    return int(1000.0 / rate + 0.999)


def _window_ms(period_ms):
    # period <= hold: the readings show current at every tick while the load is there, so three
    # ticks without it prove it gone (two are a glitch); longer periods: one period + the margin
    if period_ms > SENSE_HOLD_MS:
        return period_ms + DETECT_MARGIN_MS
    return ELECTRODE_DETECT_MIN_MS


def electrode_detect_bound_ms(pulse, tick_ms=TICK_MS):
    """Published bound (ms) from the electrode coming off to the channel stopping: the last good
    pulse's reading holds SENSE_HOLD_MS, then one window (one pulse or burst period, at least
    the hold, + DETECT_MARGIN_MS) without current, then at most one tick. That is one period +
    40 ms (the first pulse that finds no current, + 40 ms), 50 ms at >= 50 Hz: 40 Hz: 65 ms;
    4 Hz: 290 ms; 2 Hz: 540 ms."""
    p = _period_ms(pulse)
    if p > SENSE_HOLD_MS:
        return SENSE_HOLD_MS + _window_ms(p) + tick_ms
    return SENSE_HOLD_MS + _window_ms(p)  # a whole number of ticks after the last live one


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
        # STOP: the pin (attach_stop) read at every start and tick, and the flag its IRQ sets
        self._stop_pin = None
        self._stop_req = False
        self.stop_irq_count = 0
        self._stop_isr_ref = None
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
        self._played = [0.0] * n        # what the DAC plays of it (rounded down), mA
        self._limit = [0.0] * n         # pulse_limit_ma of the configured pulses
        self._eff_phase = [0.0] * n     # the phase (us) and average rate (Hz) the engine plays
        self._eff_rate = [0.0] * n
        self._last_rise = [0] * n
        self._has_risen = [False] * n
        self._ch_fault: list = [None] * n  # kind string when that channel is stopped by a fault
        self._pulse: list = [None] * n  # configured pulse parameters (a list in _PULSE_KEYS order)
        self._plan: list = [None] * n   # what configure_pulses returned
        self._peak_ma = [0.0] * n       # highest delivered this run (for the usage log)
        # electrode check state: the window without current that proves a dead pulse, and (when
        # the pulse rate rises) the shorter one it changes to once the old pulses are played out
        self._win_ms = [ELECTRODE_DETECT_MIN_MS] * n
        self._win_next = [ELECTRODE_DETECT_MIN_MS] * n
        self._win_until = [0] * n
        # the commands of the last 4 ticks (this one first): a reading reflects pulses of the
        # last SENSE_HOLD_MS, played with any of them
        self._c0 = [0.0] * n
        self._c1 = [0.0] * n
        self._c2 = [0.0] * n
        self._c3 = [0.0] * n
        self._ok_open_ms = [0] * n
        self._ok_reach_ms = [0] * n
        self._reset_ms = [0] * n      # when _reset_window last ran (quiet_ms)
        self._over_ticks = [0] * n
        self._restart = [False] * n     # pulses stopped for a new burst shape, start pending
        self._restart_at = [0] * n
        # Allocation-free steady ticks (floats are boxed on MicroPython): level x envelope is
        # kept for the last (level, envelope) objects, and the current-sense thresholds for the
        # last (lowest, highest recent command) objects; an output stage with raw ADC readings
        # (read_current_raw, current_raw_threshold) has them converted to raw counts, compared
        # with the same result as the mA reading (lib/output_stage.py).
        self._ap_lvl = [_UNSET] * n
        self._ap_env = [_UNSET] * n
        self._ap_ma = [0.0] * n
        self._thr_lo = [_UNSET] * n
        self._thr_hi = [_UNSET] * n
        self._over_ma = [0.0] * n       # reading above this: over current
        self._reach_ma = [0.0] * n      # reading at least this: the current is reached
        self._live_ma = [0.0] * n       # reading at least this: current flows
        self._over_raw = [0] * n
        self._reach_raw = [0] * n
        self._live_raw = [0] * n
        raw = output_stage
        if not (hasattr(raw, "read_current_raw") and hasattr(raw, "current_raw_threshold")):
            raw = None
        self._raw_src = raw
        self._last_tick = 0
        self._batt_low_ticks = 0
        self._batt_warn_ticks = 0
        self._warned = False
        self._last_session_state = ""
        # Switch-driven sessions (gait, hold; a foot-switch burst program): while the session
        # waits for its switch the output stage is off (DACs 0, pulses stopped, enable and LED
        # low) and state stays RUNNING with `waiting` True; leaving the wait enables again
        # through the checks of a start. park_on_wait is set by the app's session factory
        # before start(); an EMG-triggered session keeps its trains (its front end needs them).
        self.park_on_wait = False
        self.waiting = False
        self._held_until = 0            # see held_until()
        self._held = False
        self.set_caps(caps)

    # --- caps --------------------------------------------------------------------------------
    def set_caps(self, caps):
        """caps: the settings dict (or any dict) with optional cap_ma (list [ch1, ch2] or dict
        {1: .., 2: ..}), charge_cap_uc (the settings key) and rms_ma. Caps can only be lowered
        below the docs/safety.md ceilings."""
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
        v = caps.get("charge_cap_uc")
        if _num(v) and v > 0:
            self.charge_cap_uc = min(v, CHARGE_ABS_MAX_UC)
        v = caps.get("rms_ma")
        if _num(v) and v > 0:
            self.rms_cap_ma = min(v, RMS_CAP_MA)
        for ch in self._chs:
            if self._pulse[ch] is not None:
                self._limit[ch] = self._pulse_limit(ch)

    def cap_ma(self, ch):
        return self._cap_ma[ch]

    def limit_ma(self, ch):
        """Highest amplitude the current pulse parameters allow on this channel."""
        return min(self._limit[ch], self._cap_ma[ch])

    def _pulse_limit(self, ch):
        # the caps for what the engine really plays: its phase and rate are quantised to its
        # clock (to the nearest tick), so the longer phase and the higher rate of the two count
        return limit_for(self._eff_phase[ch], self._eff_rate[ch], self._cap_ma[ch],
                         self.charge_cap_uc, self.rms_cap_ma)

    # --- user level (rules 2, 3, 9) ----------------------------------------------------------
    def user_level(self, ch):
        return self._level[ch]

    def delivered_ma(self, ch):
        return self._cmd[ch]

    def played_ma(self, ch):
        """What the DAC plays now (the command rounded down to its step), mA: the current that
        flows while the current sense confirms it (the run screen shows it). The float object
        itself, unchanged while the amplitude is: comparing it allocates nothing."""
        return self._played[ch]

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

    # --- STOP (rule 4) -----------------------------------------------------------------------
    def attach_stop(self, pin, hard=True):
        """Arm the STOP button (active low) on `pin`: a falling edge runs stop_isr() at once;
        its level is read again at every start() and tick(), so a STOP held down (from power-on,
        through a restart) keeps the output off whatever the edges did. hard=False where the port
        only has scheduled pin IRQs (ESP32): the handler is the same."""
        self._stop_pin = pin
        self._stop_isr_ref = self.stop_isr  # bound method made once, here, not in the IRQ
        trig = pin.IRQ_FALLING
        if hard:
            pin.irq(handler=self._stop_isr_ref, trigger=trig, hard=True)
        else:
            pin.irq(handler=self._stop_isr_ref, trigger=trig)

    def stop_isr(self, _pin=None):
        """The STOP interrupt (hard IRQ): drops the output stage's enable and sets a flag, and
        nothing else; no allocation. The loop's next tick() stops everything (stop_now)."""
        self.out.cut()
        self._stop_req = True
        self.stop_irq_count += 1

    def stop_down(self):
        """True while STOP is down or its IRQ fired and the loop has not acted on it yet."""
        if self._stop_req:
            return True
        p = self._stop_pin
        return p is not None and p.value() == 0

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
        alternate) for ch = 1..channels (SessionOutput.pulse works). Refuses with a Fault while
        STOP is down, on USB power, low battery or invalid parameters (the engine's own limits
        included); returns None when running. STOP is checked again after the output is
        enabled: a STOP that came in the middle of start() wins."""
        if self.stop_down():
            self._stop_req = False
            self.emergency_off()
            self.stop_reason = "stop_button"
            return self._fault(STOP_HELD, 0, now_ms)
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
            self._played[ch] = 0.0
            self._peak_ma[ch] = 0.0
            self._has_risen[ch] = False
            self._over_ticks[ch] = 0
            self._restart[ch] = False
            self.out.set_amplitude_ma(ch, 0)
            try:
                self._configure(ch, plans[ch], now_ms, False)  # the engine refuses what it
            except (ValueError, KeyError, TypeError) as e:      # cannot play: no output
                self.stop(INVALID_PARAMS)
                return self._fault(INVALID_PARAMS, ch, now_ms, str(e))
            self._reset_window(ch, now_ms)
        if self.stop_down():                    # STOP came while configuring: it wins
            self._stop_req = False
            self.emergency_off()
            self.stop_reason = "stop_button"
            return self._fault(STOP_HELD, 0, now_ms)
        self.stop_reason = ""
        self._last_tick = now_ms
        if self._held:
            # the loop was held (a flash write before this start, in the same tick): the
            # output cannot have been enabled before that ended, so the first loop gap counts
            # from there (every ms the output has been on still counts)
            self._held = False
            if _ticks_diff(self._held_until, now_ms) > 0:
                self._last_tick = self._held_until
        self._batt_low_ticks = 0
        self._batt_warn_ticks = 0
        self._warned = False
        self._last_session_state = ""
        if self.park_on_wait:
            # a switch-driven session starts parked: the first apply() that finds it past its
            # wait enables the output (_unpark: the checks above and the STOP checks below)
            self._park()
            self.state = RUNNING
            return None
        self.waiting = False
        self.out.enable(True)
        for ch in self._chs:
            self.out.start_pulses(ch)
        self.state = RUNNING
        if self.stop_down():                    # ... or while enabling: it still wins
            self._stop_req = False
            self._halt(IDLE)
            self.stop_reason = "stop_button"
            return self._fault(STOP_HELD, 0, now_ms)
        return None

    def held_until(self, t_ms):
        """The loop was held until t_ms (ticks_ms) with the output off, by work that comes
        before a start() in the same tick (the session marker's flash write: tens of ms, with
        interrupts off while the flash erases). The next start() measures its first loop gap
        (MAX_LOOP_GAP_MS) from t_ms instead of its own (earlier) now_ms."""
        self._held_until = t_ms
        self._held = True

    def _park(self):
        """The session waits for its switch: every DAC to 0, pulses stopped, enable (and the
        output LED) low, as a stop does, but the user levels, the pulse configuration and the
        state RUNNING are kept. Allocation-free."""
        out = self.out
        cmd = self._cmd
        played = self._played
        for ch in self._chs:
            out.set_amplitude_ma(ch, 0)
            cmd[ch] = 0.0
            played[ch] = 0.0
        for ch in self._chs:
            out.stop_pulses(ch)
        out.enable(False)
        self.waiting = True

    def _unpark(self, now_ms):
        """The session leaves its wait: the checks of a start (STOP, USB power, battery cut-off),
        enable, then the pulses of every channel that is not stopped by a fault (nor waiting for
        a new burst shape), the electrode windows started afresh (a new rise neither faults on
        the readings of before nor misses an electrode pulled meanwhile), then STOP read again:
        a STOP that came while enabling wins. Returns False when the output stays off (STOP:
        idle; USB power or a battery below the cut-off: that fault, as start() refuses them)."""
        if self.stop_down():
            self.stop_now()
            return False
        if self._usb():
            self._halt(FAULT)
            self._fault(USB_POWER, 0, now_ms)
            return False
        mv = self._battery_mv()
        if mv is not None and mv < self.battery_cutoff_mv:
            self._halt(FAULT)
            self._fault(LOW_BATTERY, 0, now_ms, "%d mV" % mv)
            return False
        out = self.out
        out.enable(True)
        for ch in self._chs:
            if self._ch_fault[ch] is None and not self._restart[ch]:
                out.start_pulses(ch)
            self._reset_window(ch, now_ms)
            self._over_ticks[ch] = 0
        self.waiting = False
        if self.stop_down():
            self.stop_now()
            return False
        return True

    def _configure(self, ch, pulse, now_ms, running):
        vals = self._pulse[ch]
        if vals is None:
            vals: list = [None] * len(_PULSE_KEYS)
            self._pulse[ch] = vals
        reshape = running and (pulse.get("burst_count", 1) != vals[3]
                               or pulse.get("alternate", False) != vals[5])
        if reshape:
            # a new burst shape (e.g. the 5 Hz warm-up -> Russian bursts, at envelope 0): the
            # engine needs its pulses stopped; they start again once the old pattern has surely
            # ended (two of its windows: an alternating pair is two periods), see apply()
            self.out.stop_pulses(ch)
            self._restart[ch] = True
            self._restart_at[ch] = _ticks_add(now_ms, 2 * self._win_ms[ch])
        for i in range(len(_PULSE_KEYS)):
            k = _PULSE_KEYS[i]
            vals[i] = pulse.get(k, 1 if k == "burst_count" else (False if k == "alternate"
                                                                 else None))
        if vals[1] is None:
            vals[1] = 50
        self._plan[ch] = self.out.configure_pulses(ch, vals[0], vals[1], vals[2], vals[3],
                                                   vals[4], vals[5])
        phase = vals[0]
        rate = average_rate_hz(pulse)
        plan = self._plan[ch]
        if hasattr(plan, "phase_ns") and hasattr(plan, "pulses_per_s"):
            q = plan.phase_ns / 1000.0
            if q > phase:
                phase = q
            q = plan.pulses_per_s
            if q > rate:
                rate = q
        self._eff_phase[ch] = phase
        self._eff_rate[ch] = rate
        self._limit[ch] = self._pulse_limit(ch)
        win = _window_ms(_period_ms(pulse))
        old = self._win_ms[ch]
        if not running or reshape or win >= old:
            self._win_ms[ch] = win
            self._win_next[ch] = win
        else:
            # a faster rate starts at the next pulse (loop) boundary: the old, longer window
            # stays until the pulses of the old rate are surely played out
            self._win_next[ch] = win
            self._win_until[ch] = _ticks_add(now_ms, 2 * old)

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
        if self.stop_down():
            self.stop_now()
            return
        st = out.state
        if st == "paused" and self._last_session_state != "paused":
            self.reset_levels()               # rule 2: after a pause output starts at zero
        self._last_session_state = st
        if st == "done":
            self.stop("session_done")
            return
        if self.park_on_wait:
            if st == "waiting_trigger":
                if not self.waiting:
                    self._park()
                return
            if self.waiting and not self._unpark(now_ms):
                return
        for ch in self._chs:
            if self._ch_fault[ch] is not None:
                continue
            if self._restart[ch] and _ticks_diff(now_ms, self._restart_at[ch]) >= 0:
                self._restart[ch] = False
                self.out.start_pulses(ch)
                self._reset_window(ch, now_ms)
            pulse = out.pulse[ch]
            if self._pulse_changed(ch, pulse):
                try:
                    check_pulse(pulse)
                    self._configure(ch, pulse, now_ms, True)
                except (ValueError, KeyError, TypeError) as e:
                    self._halt(FAULT)
                    self._fault(INVALID_PARAMS, ch, now_ms, str(e))
                    return
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
                q = self.out.set_amplitude_ma(ch, ma)   # the DAC rounds down: never above ma
                self._played[ch] = ma if q is None else q
                self._cmd[ch] = ma
                if ma > self._peak_ma[ch]:
                    self._peak_ma[ch] = ma

    # --- stop (rule 4) ---------------------------------------------------------------------
    def stop(self, reason="user"):
        """Every channel to 0 mA, then pulses stop, then enable low; user levels -> 0."""
        self._halt(IDLE if self.state != FAULT else FAULT)
        self.stop_reason = reason

    def stop_now(self):
        """The loop's answer to STOP (its IRQ flag or its level): everything off, idle. Not
        running: once per STOP edge (a held STOP does not redo it every tick)."""
        edge = self._stop_req
        self._stop_req = False
        if self.state == RUNNING:
            self._halt(IDLE)
            self.stop_reason = "stop_button"
        elif edge:
            self.emergency_off()

    def _halt(self, new_state):
        self.emergency_off()
        self.state = new_state

    def emergency_off(self):
        """The one stop path (stop, faults, STOP, crash handler): every DAC to 0, every pulse
        train stopped, enable low, levels 0. Allocation-free (an integer loop, no lists or
        strings built, no float boxed): callable from an except handler; each step is tried on
        its own so one failing part does not keep the others on."""
        out = self.out
        n = self.channels
        ch = 1
        while ch <= n:
            try:
                out.set_amplitude_ma(ch, 0)
            except Exception:  # noqa: BLE001 - the next step must still run
                pass
            ch += 1
        ch = 1
        while ch <= n:
            try:
                out.stop_pulses(ch)
            except Exception:  # noqa: BLE001
                pass
            ch += 1
        try:
            out.enable(False)
        except Exception:  # noqa: BLE001
            pass
        cmd = self._cmd
        played = self._played
        level = self._level
        ch = 1
        while ch <= n:
            cmd[ch] = 0.0
            played[ch] = 0.0
            level[ch] = 0.0
            ch += 1
        self.waiting = False
        if self.state == RUNNING:
            self.state = IDLE

    def acknowledge(self):
        """The user has seen the fault: back to idle (a new start() is still needed)."""
        if self.state == FAULT:
            self.state = IDLE

    def rearm_channel(self, ch, now_ms):
        """Explicit user action after reconnecting an electrode: the channel plays again,
        from a level of 0 (rule 2)."""
        if self.state != RUNNING or self._ch_fault[ch] is None or self.stop_down():
            return False
        self._ch_fault[ch] = None
        self._level[ch] = 0.0
        self._cmd[ch] = 0.0
        self._played[ch] = 0.0
        self._restart[ch] = False
        self.out.set_amplitude_ma(ch, 0)
        if not self.waiting:                 # parked: the pulses start when the wait ends
            self.out.start_pulses(ch)
        self._reset_window(ch, now_ms)
        self._over_ticks[ch] = 0
        return True

    def _stop_channel(self, ch, kind):
        self.out.set_amplitude_ma(ch, 0)
        self.out.stop_pulses(ch)
        self._cmd[ch] = 0.0
        self._played[ch] = 0.0
        self._level[ch] = 0.0
        self._ch_fault[ch] = kind
        for c in self._chs:
            if self._ch_fault[c] is None:
                return
        self._halt(FAULT)              # no channel left: the whole output goes off

    # --- checks (rules 4, 5, 7) ------------------------------------------------------------
    def _reset_window(self, ch, now_ms):
        self._c0[ch] = 0.0
        self._c1[ch] = 0.0
        self._c2[ch] = 0.0
        self._c3[ch] = 0.0
        self._ok_open_ms[ch] = now_ms
        self._ok_reach_ms[ch] = now_ms
        self._reset_ms[ch] = now_ms

    def tick(self, now_ms):
        """STOP, then current sense, battery, USB and loop-timing checks. Returns the new faults
        (an empty tuple when there are none)."""
        if self.stop_down():
            self.stop_now()
        if self.state != RUNNING:
            return _NO_FAULTS
        new = None  # the list of new faults, made at the first one (none: _NO_FAULTS)
        gap = _ticks_diff(now_ms, self._last_tick)
        if gap >= 0:
            self._last_tick = now_ms
        # (< 0: a start in this tick came after a held loop, held_until(): it stays the mark)
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
            kind = self._check_channel(ch, now_ms, gap)
            if kind is not None:
                f = self._fault(kind, ch, now_ms)
                if kind == OVER_CURRENT:
                    for c in self._chs:
                        self._ch_fault[c] = kind
                    self._halt(FAULT)
                else:
                    self._stop_channel(ch, kind)
                if new is None:
                    new = []
                new.append(f)
                if self.state != RUNNING:
                    break
        return new if new is not None else _NO_FAULTS

    def _thresholds(self, ch, lo, hi):
        # the over-current, reach and live thresholds of this (lowest, highest) command pair
        self._thr_lo[ch] = lo
        self._thr_hi[ch] = hi
        over = hi * (1 + OVER_FRACTION) + OVER_MARGIN_MA
        reach = REACH_FRACTION * lo
        live = OPEN_FRACTION * lo
        if live > OPEN_READ_MA:
            live = OPEN_READ_MA
        self._over_ma[ch] = over
        self._reach_ma[ch] = reach
        self._live_ma[ch] = live
        src = self._raw_src
        if src is not None:
            self._over_raw[ch] = src.current_raw_threshold(over, True)
            self._reach_raw[ch] = src.current_raw_threshold(reach)
            r = src.current_raw_threshold(live)
            self._live_raw[ch] = r if r > 0 else 1   # at least one ADC step above nothing

    def _check_channel(self, ch, now_ms, gap):
        cmd = self._played[ch]
        c1 = self._c0[ch]
        c2 = self._c1[ch]
        c3 = self._c2[ch]
        self._c3[ch] = c3
        self._c2[ch] = c2
        self._c1[ch] = c1
        self._c0[ch] = cmd
        lo = cmd
        hi = cmd
        if c1 < lo:
            lo = c1
        elif c1 > hi:
            hi = c1
        if c2 < lo:
            lo = c2
        elif c2 > hi:
            hi = c2
        if c3 < lo:
            lo = c3
        elif c3 > hi:
            hi = c3
        if lo is not self._thr_lo[ch] or hi is not self._thr_hi[ch]:
            self._thresholds(ch, lo, hi)
        src = self._raw_src
        if src is not None:
            raw = src.read_current_raw(ch)
            over = raw >= self._over_raw[ch]
            live = raw >= self._live_raw[ch]
            reached = raw >= self._reach_raw[ch]
        else:
            read = self.out.read_current_ma(ch)
            over = read > self._over_ma[ch]
            live = read > 0 and read >= self._live_ma[ch]
            reached = read >= self._reach_ma[ch]
        # over current: reading above the command on DEBOUNCE_TICKS consecutive informative
        # ticks (a ~0 reading between slow pulses neither confirms nor clears it)
        if over:
            self._over_ticks[ch] += 1
            if self._over_ticks[ch] >= DEBOUNCE_TICKS:
                return OVER_CURRENT
        elif live:
            self._over_ticks[ch] = 0
        # under current. Nothing commanded at some tick of the sense window (or the pulses are
        # stopped for a new burst shape): nothing to prove.
        if not lo > 0 or self._restart[ch]:
            self._ok_open_ms[ch] = now_ms
            self._ok_reach_ms[ch] = now_ms
            return None
        if gap > SENSE_HOLD_MS:
            # the ticks were too far apart for the readings to see every pulse: a pulse may
            # have been good unseen before the span this reading covers
            t = _ticks_add(now_ms, -SENSE_HOLD_MS)
            if _ticks_diff(t, self._ok_open_ms[ch]) > 0:
                self._ok_open_ms[ch] = t
            if _ticks_diff(t, self._ok_reach_ms[ch]) > 0:
                self._ok_reach_ms[ch] = t
        if live:
            self._ok_open_ms[ch] = now_ms
        if reached or lo < OPEN_READ_MA:
            # the 80 V compliance only limits currents of a milliamp and more (below, the load
            # would have to be above 80 kOhm: that reads as open)
            self._ok_reach_ms[ch] = now_ms
        win = self._win_ms[ch]
        if win != self._win_next[ch] and _ticks_diff(now_ms, self._win_until[ch]) >= 0:
            win = self._win_next[ch]
            self._win_ms[ch] = win
        if not live and _ticks_diff(now_ms, self._ok_open_ms[ch]) >= win:
            return OPEN_CIRCUIT
        if not reached and _ticks_diff(now_ms, self._ok_reach_ms[ch]) >= win:
            return CANNOT_REACH
        return None

    # --- host simulation support -------------------------------------------------------------
    def quiet_ms(self, now_ms):
        """How long from now_ms apply() and tick() would change nothing but their clocks if
        every reading stayed as it was at the last tick (App.quiet_ms; the host simulation
        checks the readings): no check counting up (over current, battery), the command
        history settled, no restart due, and no open-circuit, cannot-reach or window change
        falling due. Changes nothing."""
        if self.state != RUNNING:
            return QUIET_FAR_MS
        if self._batt_low_ticks or (self._batt_warn_ticks and not self._warned):
            return 0
        last = self._last_tick
        q = QUIET_FAR_MS
        for ch in self._chs:
            if self._ch_fault[ch] is not None:
                continue
            if self._restart[ch] or self._over_ticks[ch] or self._reset_ms[ch] == last:
                return 0
            p = self._played[ch]
            if self._c0[ch] != p or self._c1[ch] != p or self._c2[ch] != p:
                return 0
            win = self._win_ms[ch]
            if win != self._win_next[ch]:
                d = _ticks_diff(self._win_until[ch], now_ms)
                if d < q:
                    q = d
            if self._ok_open_ms[ch] != last:       # the last reading showed no current
                d = win - _ticks_diff(now_ms, self._ok_open_ms[ch])
                if d < q:
                    q = d
            if self._ok_reach_ms[ch] != last:
                d = win - _ticks_diff(now_ms, self._ok_reach_ms[ch])
                if d < q:
                    q = d
        return q if q > 0 else 0

    def skipped(self, last_ms):
        """The host simulation left out quiet ticks, the last at last_ms (App.skipped): the
        clocks tick() keeps are where those ticks would have left them (a reading that showed
        current at the last tick showed it at each of them)."""
        if self.state != RUNNING:
            return
        prev = self._last_tick
        self._last_tick = last_ms
        for ch in self._chs:
            if self._ok_open_ms[ch] == prev:
                self._ok_open_ms[ch] = last_ms
            if self._ok_reach_ms[ch] == prev:
                self._ok_reach_ms[ch] = last_ms
