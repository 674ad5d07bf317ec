# The simulated muscle under the EMG electrodes, as the board's EMG ADC input sees it after the
# front end (docs/hardware.md "EMG front end"): gain, mid-rail bias, clipping at the rails.
#
#   from host_tools.sim import muscle
#   m = muscle.Muscle(world, board)        # registers world.adc_source[board.EMG_ADC]
#   m.effort(80, 1500)                     # from now: envelope 80 uV for 1.5 s (20 ms rise/fall)
#   m.connected(False)                     # electrode / cable off: the input sits at the bias
#   m.saturate(True)                       # amplifier clipped at its high rail
#   m.envelope_uv(cycle)                   # the scripted envelope at a cycle (tests compare)
#
# Signal at the electrodes, per ADC read at cycle c (the firmware's timer reads the ADC at its
# real rate; this model is evaluated at that cycle and nowhere else):
#   activity: random sign, magnitude uniform in [0, 2 E] where E = rest_uv + the scripted efforts
#             at c; its average rectified value (ARV) is E, what lib/emg.py's envelope measures;
#   artefact: while either leg of a channel is high with the output enabled, +-artefact_uv (default
#             20 mV: the amplifier clips), and after the pulse a tail decaying as
#             artefact_uv * (1 - t / recovery_us)**2 down to 0 at recovery_us (default 1 ms: the
#             front end's recovery), sign of the last phase;
#   then volts = bias + uV * volts_per_uV, clipped to the rails.
# Deterministic: the noise comes from a seeded LCG, one draw per read.
#
# Common subset of CPython 3.11 and MicroPython (runs on the unix port too).

from host_tools.sim.board_pico import Lcg  # the board model's deterministic PRNG

# front end per chip: (bias volts, low rail, high rail) at the ADC pin
FRONT_END = {"rp2040": (1.65, 0.0, 3.3), "esp32": (1.2375, 0.0, 2.475)}
ESP32_FULL_SCALE_V = {0: 0.95, 1: 1.25, 2: 1.75, 3: 3.55}  # machine.ADC model (ATTN_*)
DEFAULT_REST_UV = 3
DEFAULT_ARTEFACT_UV = 20_000
DEFAULT_RECOVERY_US = 1000
DEFAULT_RISE_MS = 20


class Muscle:
    def __init__(self, world, board, seed=7, rest_uv=DEFAULT_REST_UV,
                 artefact_uv=DEFAULT_ARTEFACT_UV, recovery_us=DEFAULT_RECOVERY_US):
        self.world = world
        self.board = board
        self.rest_uv = rest_uv
        self.artefact_uv = artefact_uv
        self.recovery_us = recovery_us
        self._rng = Lcg(seed)
        chip = getattr(board, "CHIP", "rp2040")
        self.bias_v, self.rail_lo_v, self.rail_hi_v = FRONT_END[chip]
        atten = getattr(board, "ADC_ATTEN", None)
        fs = 3.3 if atten is None else ESP32_FULL_SCALE_V[atten]
        # uV at the electrodes -> volts at the ADC pin, from the board's calibration
        self.v_per_uv = fs / 4096 * 1000 / board.EMG_UV_PER_COUNT_X1000
        self.efforts = []  # [start_cycle, end_cycle, uv, rise_cycles]
        self._connected = True
        self._saturated = False
        self.reads = 0  # ADC reads of the EMG pin (the sampling rate the firmware really has)
        self.read_cycles = []  # cycle of each read, the last `keep_reads` of them
        self.keep_reads = 4096
        self.artefact_reads = 0  # reads that carried stimulation artefact
        self._legs = []
        for n in board.CHANNELS:
            c = board.CHANNELS[n]
            self._legs.append(c["leg_a"])
            self._legs.append(c["leg_b"])
        world.adc_source[board.EMG_ADC] = self.volts

    # -- script ------------------------------------------------------------------------------
    def effort(self, uv, ms, at_cycle=None, rise_ms=DEFAULT_RISE_MS):
        """A voluntary contraction: the envelope rises by `uv` over rise_ms, holds, and falls over
        rise_ms so that it lasts `ms` in all (from at_cycle, default now)."""
        w = self.world
        s = w.now if at_cycle is None else at_cycle
        e = s + w.cycles(int(ms * 1_000_000))
        r = w.cycles(int(rise_ms * 1_000_000))
        self.efforts.append([s, e, uv, r])

    def connected(self, on):
        self._connected = bool(on)

    def saturate(self, on):
        self._saturated = bool(on)

    def apply_step(self, v):
        """A scenario step's "emg" value (see validate_step)."""
        if "connected" in v:
            self.connected(v["connected"])
        if "saturated" in v:
            self.saturate(v["saturated"])
        if "rest_uv" in v:
            self.rest_uv = v["rest_uv"]
        if "artefact_uv" in v:
            self.artefact_uv = v["artefact_uv"]
        if "uv" in v:
            self.effort(v["uv"], v.get("ms", 1000), rise_ms=v.get("rise_ms", DEFAULT_RISE_MS))

    # -- model -------------------------------------------------------------------------------
    def envelope_uv(self, cycle=None):
        w = self.world
        c = w.now if cycle is None else cycle
        env = self.rest_uv
        for s, e, uv, r in self.efforts:
            if s <= c < e:
                k = 1.0
                if r > 0:
                    if c - s < r:
                        k = (c - s) / r
                    elif e - c < r:
                        k = (e - c) / r
                env += uv * k
        return env

    def artefact_at(self, cycle):
        """Stimulation artefact in uV at the electrodes at cycle (0 if none)."""
        w = self.world
        g = w.gpio
        if not g.level(self.board.OUTPUT_ENABLE):
            return 0.0
        rec_c = w.cycles(self.recovery_us * 1000)
        best = 0.0
        for k in range(len(self._legs)):
            pin = self._legs[k]
            sign = 1.0 if k % 2 == 0 else -1.0
            edges = g.edges[pin]
            i = len(edges) - 1
            while i > 0 and edges[i][0] > cycle:
                i -= 1
            lvl = edges[i][1]
            if lvl:
                return sign * self.artefact_uv
            if i > 0:  # the falling edge at edges[i][0] ended a phase
                t = cycle - edges[i][0]
                if t < rec_c:
                    f = 1.0 - t / rec_c
                    a = sign * self.artefact_uv * f * f
                    if abs(a) > abs(best):
                        best = a
        return best

    def volts(self, cycle):
        self.reads += 1
        rc = self.read_cycles
        rc.append(cycle)
        if len(rc) > self.keep_reads:
            del rc[:len(rc) - self.keep_reads]
        if self._saturated:
            return self.rail_hi_v
        if not self._connected:
            return self.bias_v
        env = self.envelope_uv(cycle)
        r = self._rng.next(40002)  # one draw: sign (bit 0) and magnitude
        mag = (r >> 1) * env / 10000.0  # uniform in [0, 2 env]: ARV = env
        uv = mag if r & 1 else -mag
        art = self.artefact_at(cycle)
        if art:
            self.artefact_reads += 1
            uv += art
        v = self.bias_v + uv * self.v_per_uv
        if v < self.rail_lo_v:
            v = self.rail_lo_v
        elif v > self.rail_hi_v:
            v = self.rail_hi_v
        return v


def validate_step(v, where):
    """Error text for a scenario step's "emg" value, or None if it is well formed:
    {"uv": 80, "ms": 1500, "rise_ms": 20} an effort; {"connected": false} electrode off;
    {"saturated": true}; {"rest_uv": 3}; {"artefact_uv": 20000}."""
    if not isinstance(v, dict) or not v:
        return "%s.emg must be an object such as {\"uv\": 80, \"ms\": 1500}" % where
    for k in v:
        if k not in ("uv", "ms", "rise_ms", "connected", "saturated", "rest_uv", "artefact_uv"):
            return "%s.emg: unknown key %r" % (where, k)
    for k in ("uv", "ms", "rise_ms", "rest_uv", "artefact_uv"):
        if k in v:
            x = v[k]
            if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0 or x > 100_000:
                return "%s.emg.%s must be a number in 0..100000" % (where, k)
    for k in ("connected", "saturated"):
        if k in v and not isinstance(v[k], bool):
            return "%s.emg.%s must be true or false" % (where, k)
    if "ms" in v and "uv" not in v:
        return "%s.emg.ms needs uv" % where
    return None


def attach(world, board, previous=None, seed=7):
    """The muscle of a (new) world: a board without an EMG input gets None; after a reset the
    same muscle (its script keeps its cycles: time runs on over boots) is moved to the new world."""
    if not hasattr(board, "EMG_ADC"):
        return None
    if previous is None:
        return Muscle(world, board, seed=seed)
    previous.world = world
    world.adc_source[board.EMG_ADC] = previous.volts
    return previous
