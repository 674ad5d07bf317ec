# A fake OutputStage (lib/output_stage.py interface) for the safety tests, on CPython and on the
# MicroPython unix port. It records every call in order and models a resistive load behind a
# current source with a compliance voltage, so read_current_ma() answers like the real sense
# amplifier (peak of the latest pulses) unless a test forces a reading.


class FakeOutputStage:
    def __init__(self, usb=False, battery_mv=4000, load_ohm=1000, compliance_v=80):
        self.enabled = False
        self.amp = {1: 0, 2: 0}           # what set_amplitude_ma() was last given
        self.max_amp = {1: 0, 2: 0}       # the highest it was ever given
        self.pulsing = {1: False, 2: False}
        self.plans = {1: None, 2: None}
        self.load_ohm = {1: load_ohm, 2: load_ohm}   # None = electrode off (open circuit)
        self.compliance_v = compliance_v
        self.forced_ma = {1: None, 2: None}          # a test-forced current-sense reading
        self.usb = usb
        self.mv = battery_mv
        self.log = []
        self.record = True                # False: no allocation (emergency_off test)
        self.cuts = 0                     # cut() calls (the STOP IRQ)

    def enable(self, on):
        self.enabled = bool(on)
        if self.record:
            self.log.append(("enable", 0, self.enabled))

    def set_amplitude_ma(self, ch, ma):
        if ma != ma or ma < 0 or ma > 100:
            raise ValueError("amplitude outside 0-100 mA")
        self.amp[ch] = ma
        if ma > self.max_amp[ch]:
            self.max_amp[ch] = ma
        if self.record:
            self.log.append(("amp", ch, ma))

    def amplitude_ma(self, ch):
        return self.amp[ch]

    def read_current_ma(self, ch):
        if self.forced_ma[ch] is not None:
            return self.forced_ma[ch]
        if not (self.enabled and self.pulsing[ch]) or self.load_ohm[ch] is None:
            return 0.0
        reach_ma = self.compliance_v * 1000.0 / self.load_ohm[ch]
        return min(self.amp[ch], reach_ma)

    def configure_pulses(self, ch, phase_us, gap_us=50, rate_hz=50, burst_count=1,
                         burst_rate_hz=None, alternate=False):
        plan = {"phase_us": phase_us, "gap_us": gap_us, "rate_hz": rate_hz,
                "burst_count": burst_count, "burst_rate_hz": burst_rate_hz,
                "alternate": alternate}
        self.plans[ch] = plan
        if self.record:
            self.log.append(("configure", ch, rate_hz))
        return plan

    def start_pulses(self, ch):
        self.pulsing[ch] = True
        if self.record:
            self.log.append(("start", ch, True))

    def cut(self):
        # the STOP IRQ's call: enable off, DACs 0; allocation-free (record is not consulted)
        self.enabled = False
        self.amp[1] = 0
        self.amp[2] = 0
        self.cuts += 1

    def stop_pulses(self, ch):
        self.pulsing[ch] = False
        if self.record:
            self.log.append(("stop", ch, False))

    def battery_mv(self):
        return self.mv

    def usb_present(self):
        return self.usb


class FakePin:
    """An input pin with a level (1 = released, 0 = pressed) and the irq() it was armed with."""

    IRQ_FALLING = 4

    def __init__(self, level=1):
        self.level = level
        self.irq_args = None

    def value(self):
        return self.level

    def irq(self, handler=None, trigger=0, hard=False):
        self.irq_args = (handler, trigger, hard)


class FakeBoard:
    MAX_MA = 100
    BATTERY_WARN_MV = 3500
    BATTERY_CUTOFF_MV = 3300
