# Session: the program engine. Pure logic, no hardware, deterministic from now_ms.
#
# Given the time, it says per channel the envelope fraction 0.0-1.0 and the pulse parameters to
# play; the SafetySupervisor multiplies the envelope by the user's level and clamps it to the caps.
# The envelope never exceeds 1.0, so a program never takes the output above the user's level, and it
# never jumps upward: every rise is a ramp (start, warm-up, cycles, resume, cool-down).
#
# Session timeline (session time t, ms since start minus time spent paused):
#
#   0 ........ warmup_ms ............................... work_end_ms ........ total_ms
#   | warm-up  | work cycles ramp_up -> on -> ramp_down -> off ...| cool-down |
#                                            final ramp down ->|   (ends at work_end_ms)
#
# * warm-up and cool-down: pulses at WARMUP_RATE_HZ (or the program's rate if lower), no bursts or
#   modulation, envelope WARMUP_ENVELOPE (0.5) reached by a ramp of ramp_up_s and left by a ramp of
#   ramp_down_s (a trapezoid), so the change of pulse rate at the boundaries happens at zero.
# * work: cycles of ramp_up_s, on_s, ramp_down_s, off_s. off_s == 0: continuous (ramp up once,
#   then "on"). Triggered (FES): "waiting_trigger" until trigger(); each trigger plays one
#   ramp_up -> on -> ramp_down; triggers during a burst are ignored.
# * switch-driven (program.trigger, the app calls set_input(now_ms, pressed) every tick with the
#   debounced switch, polarity already applied: pressed = heel on the ground / hand switch held):
#   "gait": the output is wanted while the heel is off the ground and for extend_ms after heel
#   strike; "hold": while the switch is held. A change of want starts a ramp from the envelope of
#   that moment (ramp_up_s up, ramp_down_s down; 0 s = a step), so a heel that lifts during the
#   fall rises again from where the fall was. on_s is the maximum on-time: a want that lasts
#   longer ends (ramp down) and stays off until the heel lands / the switch is let go; a heel
#   strike after that guard gives no extension. State "waiting_trigger" while the envelope is 0:
#   the supervisor then keeps the output stage off (enable low, pulses stopped, DAC 0) and
#   enables it again when the state leaves it (SafetySupervisor.park_on_wait). A gait session
#   starts with the heel taken as on the ground until the first set_input().
# * contractions: cyclic programs count channel 1's entries into "on"; triggered bursts count
#   accepted triggers; switch-driven programs count each start of want (a step or a hold).
# * timer (SAFETY rule 8): the work envelope is capped by a final ramp that reaches 0 exactly at
#   work_end_ms, so the session's own end includes its ramp down; at total_ms the state is "done".
# * pause: envelope 0 at once, timer frozen. resume: work restarts at the beginning of a ramp up
#   (triggered: back to waiting_trigger); in warm-up/cool-down a ramp of ramp_up_s is applied.
# * channel modes: "sync" both identical; "alternating" ch2's cycle is shifted by ramp_up + on +
#   ramp_down so it works while ch1 rests; "reciprocal" ch2 is shifted by ramp_up + on so it ramps
#   up while ch1 ramps down (overlap).
#
# tick() reuses one SessionOutput (its lists and pulse dicts are updated in place). Floats are
# boxed on MicroPython (every new float allocates), so the flat parts of the envelope (on, off,
# the warm-up/cool-down plateau) store floats made once at construction and the phase logic
# compares integer milliseconds: tick() allocates nothing there. Ramps (and modulated pulse
# rates) still make a new float per tick; no lists, dicts or tuples.

import time

import programs

WARMUP_RATE_HZ = programs.WARMUP_RATE_HZ  # warm-up and cool-down rate (our choice: 5 Hz)
WARMUP_ENVELOPE = 0.5      # fraction of the user's level during warm-up and cool-down (our choice)

_ticks_diff = time.ticks_diff
QUIET_FAR_MS = 1048576  # quiet_ms() when time alone changes nothing

# states
WARMUP = "warmup"
RAMP_UP = "ramp_up"
ON = "on"
RAMP_DOWN = "ramp_down"
OFF = "off"
COOLDOWN = "cooldown"
PAUSED = "paused"
DONE = "done"
WAITING_TRIGGER = "waiting_trigger"
IDLE = "idle"


class SessionOutput:
    """What the session says for now. envelope/pulse/channel_state are indexed by channel number
    (1, 2); index 0 is unused. Updated in place by Session.tick()."""

    def __init__(self, channels):
        self.state = IDLE
        self.countdown_ms = 0      # until the current phase of channel 1 ends
        self.remaining_ms = 0      # until the session ends
        self.elapsed_ms = 0        # session time (pauses excluded)
        self.at_ms = 0             # the tick (ticks_ms) this output is for
        self.envelope = [0.0] * (channels + 1)
        self.channel_state = [IDLE] * (channels + 1)
        self.pulse: list = [None]  # index 0 unused (None), then a dict per channel
        for _ in range(channels):
            self.pulse.append({"phase_us": 0, "gap_us": 0, "rate_hz": 0.0, "burst_count": 1,
                               "burst_rate_hz": None, "alternate": False})
        self.channels = tuple(range(1, channels + 1))


class Session:
    def __init__(self, program, channels=2, intensity_scale=1.0):
        """intensity_scale (0-1] multiplies every envelope: tolerance practice (the first
        sessions at half program, settings.first_sessions_half)."""
        program.validate()
        if not 0 < intensity_scale <= 1:
            raise ValueError("intensity_scale must be in (0, 1]")
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        self.program = program
        self.channels = channels
        self.scale = intensity_scale
        p = program
        self._ru_ms = int(p.ramp_up_s * 1000)
        self._on_ms = int(p.on_s * 1000)
        self._rd_ms = int(p.ramp_down_s * 1000)
        self._off_ms = int(p.off_s * 1000)
        self._cycle_ms = self._ru_ms + self._on_ms + self._rd_ms + self._off_ms
        self._total_ms = int(p.session_min * 60000)
        self._warm_ms = int(p.warmup_s * 1000)
        self._work_end_ms = self._total_ms - int(p.cooldown_s * 1000)
        self._continuous = p.continuous
        self._shift_ms = [0, 0, 0]
        if p.mode == "alternating":
            self._shift_ms[2] = self._ru_ms + self._on_ms + self._rd_ms
        elif p.mode == "reciprocal":
            self._shift_ms[2] = self._ru_ms + self._on_ms
        self._mod = p.modulation
        if self._mod is not None:
            self._mod_period_ms = int(self._mod.get("period_s", 0.5) * 1000)
            self._mod_rate_depth = self._mod.get("rate_depth", 0.0)
            self._mod_width_depth = self._mod.get("width_depth", 0.0)
        self._warm_rate_hz = min(WARMUP_RATE_HZ, p.rate_hz)
        # the envelope values of the flat parts, scaled once (the same products tick() would make)
        self._one_scaled = 1.0 * intensity_scale
        self._warm_env = WARMUP_ENVELOPE * 1.0 * intensity_scale
        # what _ramped/_cycle_env/_burst_env found (attributes, not a tuple: nothing allocated)
        self._env = 0.0
        self._st = IDLE
        self._left = 0
        self.out = SessionOutput(channels)
        self._running = False
        self._paused = False
        self._done = False
        self._start_ms = 0
        self._paused_total_ms = 0
        self._pause_at_ms = 0
        self._cycle_origin_ms = self._warm_ms   # session time of ch1's first ramp up
        self._resume_t_ms = -1                  # session time of the last resume, -1 none
        self._burst_start_ms = -1               # triggered: session time of the burst, -1 none
        self._pulse_mode = 0                    # 0 unset, 1 warm/cool, 2 work (for in-place set)
        self._trig = p.trigger                  # None, "gait", "hold"
        self._ext_ms = p.extend_ms
        self._in = False                        # switch pressed (set_input)
        self._want = False
        self._want_t = 0                        # session time want last changed
        self._want_env = 0.0                    # envelope at that moment
        self._on_since = 0                      # session time the current want started
        self._guard = False                     # max on-time reached: off until heel / release
        self._strike_t = -1                     # gait: session time of the heel strike, -1 none
        self._last_env = 0.0
        self._ramp_ms = 0
        self.contractions = 0
        self.completed = False                  # the session's own timer ran out
        self._ch1_on = False
    # --- control -------------------------------------------------------------------------------
    def start(self, now_ms):
        self._running = True
        self._paused = False
        self._done = False
        self._start_ms = now_ms
        self._paused_total_ms = 0
        self._cycle_origin_ms = self._warm_ms
        self._resume_t_ms = -1
        self._burst_start_ms = -1
        self._pulse_mode = 0
        self._reset_switch()
        # gait: the heel counts as on the ground until the switch says otherwise (the app hands
        # the switch over from the next tick), so a start does not open with a step
        self._in = self._trig == "gait"
        self.contractions = 0
        self.completed = False
        self._ch1_on = False

    def _reset_switch(self):
        self._want = False
        self._want_env = 0.0
        self._last_env = 0.0
        self._guard = False
        self._strike_t = -1

    def set_input(self, now_ms, pressed):
        """The switch of a gait / hold program (debounced, polarity applied): True = heel on the
        ground (gait) or switch held (hold). Read at the next tick()."""
        self._in = pressed

    def pause(self, now_ms):
        if self._running and not self._paused and not self._done:
            self._paused = True
            self._pause_at_ms = now_ms

    def resume(self, now_ms):
        if not (self._running and self._paused) or self._done:
            return
        self._paused_total_ms += _ticks_diff(now_ms, self._pause_at_ms)
        self._paused = False
        t = self._t(now_ms)
        self._resume_t_ms = t
        self._burst_start_ms = -1
        if self._warm_ms <= t < self._work_end_ms:
            self._cycle_origin_ms = t    # restart the work cycle at a ramp up
        self._reset_switch()             # switch programs: from 0, the switch decides again

    def stop(self, now_ms):
        self._done = True
        self._paused = False

    def trigger(self, now_ms):
        """FES: start one ramped burst. Returns True if accepted (ignored during a burst, while
        paused, outside the work period or for a program that is not triggered)."""
        if not (self._running and self.program.triggered) or self._paused or self._done:
            return False
        t = self._t(now_ms)
        if not self._warm_ms <= t < self._work_end_ms:
            return False
        burst_ms = self._ru_ms + self._on_ms + self._rd_ms
        if self._burst_start_ms >= 0 and t - self._burst_start_ms < burst_ms:
            return False
        self._burst_start_ms = t
        self.contractions += 1
        return True

    @property
    def running(self):
        return self._running and not self._done

    @property
    def paused(self):
        return self._paused

    def _t(self, now_ms):
        return _ticks_diff(now_ms, self._start_ms) - self._paused_total_ms

    # --- the engine ----------------------------------------------------------------------------
    def tick(self, now_ms):
        out = self.out
        out.at_ms = now_ms
        if not self._running:
            self._zero(IDLE)
            return out
        if self._done:
            self._zero(DONE)
            out.countdown_ms = 0
            out.remaining_ms = 0
            return out
        if self._paused:
            t = _ticks_diff(self._pause_at_ms, self._start_ms) - self._paused_total_ms
            self._zero(PAUSED)
            out.elapsed_ms = t
            out.remaining_ms = self._total_ms - t
            out.countdown_ms = 0
            return out
        t = self._t(now_ms)
        if t >= self._total_ms:
            self._done = True
            self.completed = True
            self._zero(DONE)
            out.elapsed_ms = self._total_ms
            out.remaining_ms = 0
            out.countdown_ms = 0
            return out
        out.elapsed_ms = t
        out.remaining_ms = self._total_ms - t
        if t < self._warm_ms:
            self._trapezoid(WARMUP, t, self._warm_ms)
        elif t >= self._work_end_ms:
            self._trapezoid(COOLDOWN, t - self._work_end_ms, self._total_ms - self._work_end_ms)
        else:
            self._work(t)
        return out

    def _zero(self, state):
        out = self.out
        out.state = state
        for ch in out.channels:
            out.envelope[ch] = 0.0
            out.channel_state[ch] = state

    def _trapezoid(self, state, pos_ms, length_ms):
        # warm-up / cool-down: WARMUP_ENVELOPE reached by a ramp in and left by a ramp out
        ru = min(self._ru_ms, length_ms // 2) or 1
        rd = min(self._rd_ms, length_ms // 2) or 1
        rest = length_ms - pos_ms
        r = self._resume_factor(pos_ms, state)
        if pos_ms >= ru and rest >= rd and r == 1.0:
            env = self._warm_env            # the plateau: both ramp fractions are >= 1.0
        else:
            f = min(1.0, pos_ms / ru, rest / rd)
            f = min(f, r)
            env = WARMUP_ENVELOPE * f * self.scale
            if env < 0:
                env = 0.0
        out = self.out
        out.state = state
        out.countdown_ms = length_ms - pos_ms
        self._set_warm_pulses()
        for ch in out.channels:
            out.envelope[ch] = env
            out.channel_state[ch] = state

    def _resume_factor(self, pos_ms, state):
        # a resume inside warm-up/cool-down ramps in again over ramp_up_s
        t = pos_ms if state == WARMUP else pos_ms + self._work_end_ms
        since = t - self._resume_t_ms
        if self._resume_t_ms < 0 or since >= self._ru_ms:
            return 1.0
        return since / self._ru_ms

    def _work(self, t):
        out = self.out
        p = self.program
        rem = self._work_end_ms - t
        # final ramp down toward work end: rem / rd, which is >= 1.0 (never below an envelope)
        # until rem < rd, so it is only computed from there
        final = rem / self._rd_ms if rem < self._rd_ms else None
        self._set_work_pulses(t)
        if self._trig is not None:
            self._switch_env(t)
        for ch in out.channels:
            if self._trig is not None:
                pass                        # _switch_env found it (the same for both channels)
            elif p.triggered:
                self._burst_env(t)
            else:
                self._cycle_env(t - self._cycle_origin_ms - self._shift_ms[ch])
            env = self._env
            state = self._st
            left = self._left
            if left < 0:
                left = self._work_end_ms - self._rd_ms - t
            if final is not None and final < env:
                env = final
                state = RAMP_DOWN
                left = rem
            if env < 0:
                env = 0.0
            out.envelope[ch] = self._scaled(env)
            out.channel_state[ch] = state
            if ch == 1:
                out.state = state
                out.countdown_ms = left
                if state is ON:
                    if not self._ch1_on and not self._continuous and self._trig is None \
                            and not p.triggered:
                        self.contractions += 1
                    self._ch1_on = True
                else:
                    self._ch1_on = False

    def _scaled(self, env):
        # env * scale, with the products of the flat parts made once (no float allocated)
        if env == 1.0:
            return self._one_scaled
        if env == 0.0:
            return 0.0
        if self.scale == 1.0:
            return env
        return env * self.scale

    def _found(self, env, state, left):
        self._env = env
        self._st = state
        self._left = left

    def _ramped(self, pos):
        # envelope, state, ms left in that state for a position inside ramp_up/on/ramp_down
        ru = self._ru_ms
        if pos < ru:
            return self._found(pos / ru, RAMP_UP, ru - pos)
        pos -= ru
        if pos < self._on_ms:
            return self._found(1.0, ON, self._on_ms - pos)
        pos -= self._on_ms
        if pos < self._rd_ms:
            return self._found(1.0 - pos / self._rd_ms, RAMP_DOWN, self._rd_ms - pos)
        return self._found(0.0, OFF, self._off_ms - (pos - self._rd_ms))

    def _cycle_env(self, pos):
        if pos < 0:                         # this channel's first turn has not come yet
            return self._found(0.0, OFF, -pos)
        if self._continuous:
            if pos < self._ru_ms:
                return self._found(pos / self._ru_ms, RAMP_UP, self._ru_ms - pos)
            # continuous: "on" until the final ramp (countdown set by _work)
            return self._found(1.0, ON, -1)
        return self._ramped(pos % self._cycle_ms)

    def _switch_env(self, t):
        # gait / hold: want from the switch, the guard, the extension; a ramp from the envelope
        # of the moment want changed
        pressed = self._in
        if self._trig == "gait":
            if not pressed:                     # heel off the ground
                self._strike_t = -1
                want = not self._guard
            else:                               # heel on the ground
                if self._want and self._strike_t < 0 and not self._guard:
                    self._strike_t = t          # heel strike: the extension starts
                if self._guard:
                    self._guard = False         # the heel landed: wait for the next heel-off
                    self._strike_t = -1
                want = self._strike_t >= 0 and t - self._strike_t < self._ext_ms
        else:
            if pressed:
                want = not self._guard
            else:
                self._guard = False
                want = False
        if want and self._want and t - self._on_since >= self._on_ms:
            self._guard = True                  # maximum on-time: ramp down, wait
            self._strike_t = -1
            want = False
        if want != self._want:
            if want and self._strike_t < 0:
                self._on_since = t
                self.contractions += 1
            env0 = self._last_env
            self._want_env = env0
            self._want_t = t
            self._want = want
            # the ramp's length from here, made once per change (ints: nothing boxed per tick)
            self._ramp_ms = int(self._ru_ms * (1.0 - env0)) if want else int(self._rd_ms * env0)
        dt = t - self._want_t
        if want:
            if dt >= self._ramp_ms:
                env = 1.0
                st = ON
            else:
                env = self._want_env + dt / self._ru_ms
                st = RAMP_UP
        else:
            if dt >= self._ramp_ms:
                env = 0.0
                st = WAITING_TRIGGER
            else:
                env = self._want_env - dt / self._rd_ms
                st = RAMP_DOWN
        self._last_env = env
        return self._found(env, st, 0)

    def _burst_env(self, t):
        if self._burst_start_ms < 0:
            return self._found(0.0, WAITING_TRIGGER, 0)
        pos = t - self._burst_start_ms
        if pos >= self._ru_ms + self._on_ms + self._rd_ms:
            self._burst_start_ms = -1
            return self._found(0.0, WAITING_TRIGGER, 0)
        return self._ramped(pos)

    # --- pulse parameters (dicts updated in place) ---------------------------------------------
    def _set_warm_pulses(self):
        if self._pulse_mode == 1:
            return
        self._pulse_mode = 1
        p = self.program
        for ch in self.out.channels:
            d = self.out.pulse[ch]
            d["phase_us"] = p.phase_us
            d["gap_us"] = p.gap_us
            d["rate_hz"] = self._warm_rate_hz
            d["burst_count"] = 1
            d["burst_rate_hz"] = None
            d["alternate"] = p.alternate

    def _set_work_pulses(self, t):
        p = self.program
        if self._pulse_mode != 2:
            self._pulse_mode = 2
            for ch in self.out.channels:
                d = self.out.pulse[ch]
                d["phase_us"] = p.phase_us
                d["gap_us"] = p.gap_us
                d["rate_hz"] = p.rate_hz
                d["burst_count"] = p.burst_count
                d["burst_rate_hz"] = p.burst_rate_hz
                d["alternate"] = p.alternate
        if self._mod is None:
            return
        # modulated TENS: triangle 0 -> 1 -> 0 once per period; rate and width go down by their
        # depth at the apex and come back (never above the program's own values)
        period = self._mod_period_ms
        x = (t % period) / period
        tri = 2 * x if x < 0.5 else 2 - 2 * x
        rate = int((p.rate_hz * (1 - self._mod_rate_depth * tri)) * 10 + 0.5) / 10
        phase = int(p.phase_us * (1 - self._mod_width_depth * tri) + 0.5)
        for ch in self.out.channels:
            d = self.out.pulse[ch]
            d["rate_hz"] = rate
            d["phase_us"] = phase

    # --- host simulation support -----------------------------------------------------------------
    def quiet_ms(self, now_ms):
        """How long from now_ms tick() would give the output of the last tick again, with only
        its clocks (elapsed, remaining, countdown) moving: a flat part of the envelope (on, off,
        the warm-up or cool-down plateau, waiting for a trigger) on every channel, up to its
        end. 0 on a ramp, with modulation, in a switch-driven session (its input decides) or
        when the last tick's output was not that flat part yet. For App.quiet_ms (the host
        simulation leaves such ticks out); changes nothing."""
        if not self._running or self._done or self._paused:
            return QUIET_FAR_MS
        if self._mod is not None or self._trig is not None:
            return 0
        out = self.out
        t = self._t(now_ms)
        if t >= self._total_ms:
            return 0
        if t < self._warm_ms or t >= self._work_end_ms:
            if t < self._warm_ms:
                state = WARMUP
                pos = t
                length = self._warm_ms
            else:
                state = COOLDOWN
                pos = t - self._work_end_ms
                length = self._total_ms - self._work_end_ms
            ru = min(self._ru_ms, length // 2) or 1
            rd = min(self._rd_ms, length // 2) or 1
            rest = length - pos
            if pos < ru or rest < rd or self._resume_factor(pos, state) != 1.0:
                return 0
            if out.state != state or self._pulse_mode != 1:
                return 0
            for ch in out.channels:
                if out.envelope[ch] != self._warm_env or out.channel_state[ch] != state:
                    return 0
            return rest - rd + 1            # the plateau lasts while rest >= rd
        if self._pulse_mode != 2:
            return 0
        q = self._work_end_ms - self._rd_ms + 1 - t   # the final ramp starts after this
        p = self.program
        for ch in out.channels:
            if p.triggered:
                if self._burst_start_ms < 0:
                    self._found(0.0, WAITING_TRIGGER, QUIET_FAR_MS)
                else:
                    pos = t - self._burst_start_ms
                    if pos >= self._ru_ms + self._on_ms + self._rd_ms:
                        return 0
                    self._ramped(pos)
            else:
                self._cycle_env(t - self._cycle_origin_ms - self._shift_ms[ch])
            st = self._st
            if st != ON and st != OFF and st != WAITING_TRIGGER:
                return 0
            if out.channel_state[ch] != st or out.envelope[ch] != self._scaled(self._env):
                return 0
            left = self._left
            if 0 < left < q:
                q = left
        return q if q > 0 else 0
