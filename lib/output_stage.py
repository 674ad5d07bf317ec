# The output stage: boost converter / H-bridge enable, amplitude DAC, current sense and the pulse
# engine of each channel. Only the safety supervisor (firmware/safety.py) owns an OutputStage.
#
# Amplitude DAC: a PWM output into an RC filter sets a voltage-controlled current source; the
# board config holds the mA-per-volt calibration. Current sense: a peak detector on the sense
# resistor amplifier, read by the ADC, in mA through the board calibration.
from machine import ADC, PWM, Pin


class OutputStage:
    def __init__(self, board, engine=None):
        self.board = board
        # Safe state first: enable low (boost off, bridge drivers off), LED off.
        self._enable = Pin(board.OUTPUT_ENABLE, Pin.OUT, value=0)
        self._led = Pin(board.OUTPUT_LED, Pin.OUT, value=0)
        if engine is None:
            engine = __import__(board.PULSE_ENGINE)
        self._dac = {}
        self._sense = {}
        self._pulses = {}
        self._duty = {}  # the duty asked for (rounded down from the mA)
        self._played = {}  # the duty the PWM plays (read back: never above the one asked for)
        # ESP32 boards name an attenuation (board.ADC_ATTEN) and read calibrated microvolts;
        # the RP2040 ADC takes no attenuation argument and reads 0-3.3 V as read_u16()
        self._atten = getattr(board, "ADC_ATTEN", None)
        for n, c in board.CHANNELS.items():
            self._dac[n] = PWM(Pin(c["dac"]), freq=board.DAC_PWM_HZ, duty_u16=0)
            self._duty[n] = 0
            self._played[n] = 0
            self._sense[n] = self._adc(c["sense_adc"])
            self._pulses[n] = engine.channel(n, board)
        self._dac_list = [self._dac[n] for n in sorted(self._dac)]  # channels 1, 2, ...
        self._vbus = Pin(board.VBUS_SENSE, Pin.IN)
        self._vsys = self._adc(board.VSYS_ADC)
        self._batt_num, self._batt_den = self._battery_ratio()
        self.enabled = False
        # PWM levels per period of the amplitude DAC (rp2: TOP + 1; esp32 LEDC: 2**bits)
        self._steps = getattr(board, "DAC_STEPS", 65535)

    # -- enable ----------------------------------------------------------------------------
    def enable(self, on):
        on = bool(on)
        self._enable.value(1 if on else 0)
        self._led.value(1 if on else 0)
        self.enabled = on

    def cut(self):
        """Enable and LED low, then every DAC to 0: register writes only, no allocation, safe
        in a hard IRQ handler (STOP). The pulse engines are stopped by the loop."""
        self._enable.value(0)
        self._led.value(0)
        self.enabled = False
        dacs = self._dac_list
        duty = self._duty
        played = self._played
        i = 0
        n = len(dacs)
        while i < n:
            dacs[i].duty_u16(0)
            duty[i + 1] = 0
            played[i + 1] = 0
            i += 1

    # -- amplitude ---------------------------------------------------------------------------
    def duty_for_ma(self, ma):
        """The highest duty whose current is not above ma (rounded toward the safe side)."""
        b = self.board
        if ma <= 0:
            return 0
        volts = (ma - b.DAC_OFFSET_MA) / b.DAC_MA_PER_VOLT
        duty = int(volts / b.DAC_VREF_V * 65535)
        duty = 0 if duty < 0 else (65535 if duty > 65535 else duty)
        if duty > 0 and self.ma_for_duty(duty) > ma:
            duty -= 1  # float rounding of the division
        return duty

    def ma_for_duty(self, duty):
        b = self.board
        if duty <= 0:
            return 0.0
        return duty * b.DAC_VREF_V / 65535 * b.DAC_MA_PER_VOLT + b.DAC_OFFSET_MA

    def set_amplitude_ma(self, channel, ma):
        """Set the current source; returns the mA it plays, never above ma: the duty is
        rounded down, and if the PWM's own quantisation plays it higher (read back), a lower
        duty is asked for. Refuses anything above the board maximum (a second line behind the
        supervisor's caps)."""
        if ma != ma or ma < 0 or ma > self.board.MAX_MA:
            raise ValueError("amplitude %r mA outside 0-%d mA" % (ma, self.board.MAX_MA))
        duty = self.duty_for_ma(ma)
        if duty != self._duty[channel]:
            dac = self._dac[channel]
            # the PWM level at or below duty, asked for as its own duty_u16 (no write ever
            # lands above the target, not even for a moment)
            steps = self._steps
            req = (duty * steps // 65535 * 65535 + steps // 2) // steps
            dac.duty_u16(req)
            got = dac.duty_u16()
            step = got - duty  # at most half a PWM step (the PWM rounds to the nearest)
            while got > duty and req > 0:
                req -= step  # played above the target: ask lower, in steps too small to skip
                if req < 0:  # the PWM step below
                    req = 0
                dac.duty_u16(req)
                got = dac.duty_u16()
            self._duty[channel] = duty
            self._played[channel] = got
        return self.ma_for_duty(self._played[channel])

    def zero_all(self):
        """Every DAC to 0 without allocating (safe from an IRQ handler)."""
        for n in self._dac:
            self._dac[n].duty_u16(0)
            self._duty[n] = 0
            self._played[n] = 0

    def amplitude_ma(self, channel):
        """What the DAC plays, in mA (calibrated), not what anyone asked for."""
        return self.ma_for_duty(self._played[channel])

    def _adc(self, pin):
        if self._atten is None:
            return ADC(Pin(pin))
        return ADC(Pin(pin), atten=self._atten)

    def _raw(self, adc):
        if self._atten is None:
            return adc.read_u16()
        return adc.read_uv()

    def _volts_of(self, raw):
        if self._atten is None:
            return raw * 3.3 / 65535
        return raw / 1_000_000

    def _volts(self, adc):
        return self._volts_of(self._raw(adc))

    def read_current_ma(self, channel):
        return self._volts(self._sense[channel]) * self.board.SENSE_MA_PER_VOLT

    # Allocation-free current checks (floats are boxed on MicroPython): the supervisor compares
    # raw ADC readings with thresholds converted to raw readings once, when the threshold changes.
    def read_current_raw(self, channel):
        """The current-sense ADC reading (read_u16, or microvolts on ESP32): an int."""
        return self._raw(self._sense[channel])

    def current_raw_threshold(self, ma, strict=False):
        """The smallest raw reading r whose read_current_ma is > ma (strict) or >= ma: the
        same float arithmetic as read_current_ma, so `read_current_ma(ch) > ma` is exactly
        `read_current_raw(ch) >= current_raw_threshold(ma, True)`. Past the top of the
        ADC range: top + 1 (never reached)."""
        k = self.board.SENSE_MA_PER_VOLT
        top = 65535 if self._atten is None else 0x3FFFFFFE  # top + 1: still a small int

        def ok(r):
            v = self._volts_of(r) * k
            return v > ma if strict else v >= ma

        if not ok(top):
            return top + 1
        if ok(0):
            return 0
        full = self._volts_of(top) * k
        r = int(ma / full * top)
        r = 0 if r < 0 else (top if r > top else r)
        while not ok(r):
            r += 1
        while r > 0 and ok(r - 1):
            r -= 1
        return r

    # -- pulses ------------------------------------------------------------------------------
    def pulses(self, channel):
        return self._pulses[channel]

    def configure_pulses(self, channel, phase_us, gap_us=50, rate_hz=50, burst_count=1,
                         burst_rate_hz=None, alternate=False):
        return self._pulses[channel].set(phase_us, gap_us, rate_hz, burst_count, burst_rate_hz,
                                         alternate)

    def check_pulse(self, phase_us, gap_us=50, rate_hz=50, burst_count=1, burst_rate_hz=None,
                    alternate=False):
        """Raise ValueError (PulseParamError), naming the limit, if this board's pulse engine
        cannot play these parameters; changes nothing. The one owner of the board's pulse
        limits: the engine's own quantise(), used by the program validator (programs.py), so the
        editor and the file loader refuse what the engine would refuse at start."""
        for n in self._pulses:
            self._pulses[n].quantise(phase_us, gap_us, rate_hz, burst_count, burst_rate_hz,
                                     alternate)

    def start_pulses(self, channel):
        self._pulses[channel].start()

    def stop_pulses(self, channel):
        self._pulses[channel].stop()

    def service(self):
        """Hand queued pulse-parameter updates to the engines (called every loop tick)."""
        for n in self._pulses:
            self._pulses[n].service()

    def stop_all_pulses(self):
        for n in self._pulses:
            self._pulses[n].stop()

    # -- power -------------------------------------------------------------------------------
    def usb_present(self):
        return self._vbus.value() == 1

    def battery_mv(self):
        """Battery (VSYS) in mV, an int. Integer arithmetic when the divider is a whole number
        (no float allocated: the supervisor and the UI read it every tick)."""
        raw = self._raw(self._vsys)
        num = self._batt_num
        if num:
            x = raw * num
            if x % self._batt_den:
                return x // self._batt_den
            # a whole number of mV: the float arithmetic may land one ulp below it, and what the
            # supervisor compares stays exactly what it was (rare: 16 of the 65536 readings)
        v = self._volts_of(raw) * self.board.VSYS_DIVIDER
        return int(v * 1000)

    def _battery_ratio(self):
        # mV = raw * 3300 * divider / 65535 (read_u16), or uV * divider / 1000 (read_uv), as a
        # reduced fraction so the product stays a small int on a 32-bit port
        div = self.board.VSYS_DIVIDER
        if int(div) != div or div <= 0:
            return 0, 1
        div = int(div)
        num, den = (3300 * div, 65535) if self._atten is None else (div, 1000)
        a, b = num, den
        while b:
            a, b = b, a % b
        return num // a, den // a
