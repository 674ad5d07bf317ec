# The `machine` stand-in (RP2040 flavour) on the simulated world: Pin (with IRQ), Signal, PWM,
# ADC, I2C/SoftI2C, Timer, WDT, freq, reset and friends. Every object looks up
# world.current() when it is created and keeps that world.
#
# Common subset of CPython 3.11 and MicroPython 1.29.

from host_tools.sim import world as _world
from host_tools.sim import gpio as _gpio

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_ENODEV = 19
_ETIMEDOUT = 110

try:
    import sys as _sys

    _IS_MPY = _sys.implementation.name == "micropython"
except Exception:
    _IS_MPY = False


def _oserror(code, name):
    # MicroPython prints OSError(19) as "[Errno 19] ENODEV"; CPython needs the text given
    if _IS_MPY:
        return OSError(code)
    return OSError(code, name)


def _pin_id(pin):
    if isinstance(pin, Pin):
        return pin.id
    if isinstance(pin, int):
        return pin
    if isinstance(pin, str):
        if pin == "LED":
            return 25
        if pin.startswith("GPIO"):
            return int(pin[4:])
        if pin.startswith("GP"):
            return int(pin[2:])
    raise ValueError("invalid pin")


# ---- Pin ---------------------------------------------------------------------------------

class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    ALT_SPI = 1
    ALT_UART = 2
    ALT_I2C = 3
    ALT_PWM = 4
    ALT_SIO = 5
    ALT_PIO0 = 6
    ALT_PIO1 = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, *, value=None, alt=-1):
        self.id = _pin_id(id)
        self.world = _world.current()
        self.world.gpio._check(self.id)
        self._mode = None
        self.init(mode, pull, value=value, alt=alt)

    def init(self, mode=-1, pull=-1, *, value=None, alt=-1):
        g = self.world.gpio
        p = self.id
        if pull != -1:
            g.set_pull(p, pull if pull else None)
        if mode == -1:
            if value is not None:
                g.sio_write(p, value)
            return
        self._mode = mode
        if mode == Pin.IN:
            g.sio_config(p, output=False, value=value, open_drain=False)
        elif mode == Pin.OUT:
            g.sio_config(p, output=True, value=value, open_drain=False)
        elif mode == Pin.OPEN_DRAIN:
            g.sio_config(p, output=False, value=value, open_drain=True)
        elif mode == Pin.ALT:
            owner = {Pin.ALT_PIO0: _gpio.PIO0, Pin.ALT_PIO1: _gpio.PIO1, Pin.ALT_PWM: _gpio.PWM,
                     Pin.ALT_I2C: _gpio.I2C, Pin.ALT_SIO: _gpio.SIO}.get(alt, "alt%d" % alt)
            g.set_function(p, owner)
        else:
            raise ValueError("invalid pin mode")

    def value(self, x=None):
        g = self.world.gpio
        if x is None:
            return g.level(self.id)
        g.sio_write(self.id, x)

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    high = on
    low = off

    def toggle(self):
        g = self.world.gpio
        g.sio_write(self.id, 1 - g.out[self.id])

    def mode(self, mode=None):
        if mode is None:
            return self._mode
        self.init(mode)

    def pull(self, pull=None):
        if pull is None:
            return self.world.gpio.pull[self.id]
        self.init(pull=pull)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        """handler(pin) runs at the virtual time of each matching edge: synchronously for edges
        from drive_external / CPU writes, from the event queue for edges made by PIO."""
        self.world.gpio.set_irq(self.id, handler, trigger, self)
        return self

    def __repr__(self):
        return "Pin(GPIO%d)" % self.id


class Signal:
    def __init__(self, pin, *args, invert=False, **kw):
        if not isinstance(pin, Pin):
            pin = Pin(pin, *args, **kw)
        self.pin = pin
        self.invert = bool(invert)

    def value(self, x=None):
        if x is None:
            return self.pin.value() ^ self.invert
        self.pin.value((1 if x else 0) ^ self.invert)

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


# ---- PWM (RP2040: 8 slices x 2 channels, 16.4 divider, 16-bit counter) --------------------

_TOP_MAX = 65534


class PWM:
    """RP2040 PWM as MicroPython's ports/rp2/machine_pwm.c computes it: freq picks the divider
    (16.4 fixed point) and TOP (<= 65534), duty_u16/duty_ns are quantised to the compare value
    and re-applied when the slice frequency changes. Every change of the effective duty of a
    channel is appended to world.pwm_log[pin] as (cycle, duty_u16 as read back)."""

    def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
        self.pin = _pin_id(dest)
        self.world = _world.current()
        if self.world.chip == "esp32":
            # LEDC: every pin its own channel and timer (the model ignores timer sharing)
            self.slice = ("ledc", self.pin)
            self.channel = 0
        else:
            self.slice = (self.pin >> 1) & 7
            self.channel = self.pin & 1
        self.invert = invert
        self._cc = 0
        self._duty = None  # ("u16", value) / ("ns", value) / None
        self.world.gpio.set_function(self.pin, _gpio.PWM)
        sl = self.world.pwm_slices
        if self.slice not in sl:
            sl[self.slice] = {"div16": 16, "top": 0xFFFF, "freq_set": False, "pins": {}}
        sl[self.slice]["pins"][self.channel] = self
        self.init(freq=freq, duty_u16=duty_u16, duty_ns=duty_ns)

    def _slice(self):
        return self.world.pwm_slices[self.slice]

    def _slice_hz_round(self, denom):
        return (16 * self.world.sys_hz + denom // 2) // denom

    def _set_cc(self, cc):
        before = self.duty_u16()
        self._cc = cc
        after = self.duty_u16()
        log = self.world.pwm_log.setdefault(self.pin, [])
        if after != before or not log:
            log.append((self.world.now, after))

    def freq(self, freq=None):
        s = self._slice()
        if freq is None:
            if not s["freq_set"]:
                return 0
            return self._slice_hz_round(s["div16"] * (s["top"] + 1))
        hz = self.world.sys_hz
        freq = int(freq)
        if freq <= 0:
            raise ValueError("freq too small")
        if self.world.chip == "esp32":
            self._ledc_freq(s, freq)
            return
        if (hz + freq // 2) // freq < _TOP_MAX:
            div16 = 16
            top = (hz + freq // 2) // freq - 1
        else:
            denom = _TOP_MAX * freq
            div16 = (16 * hz + denom - 1) // denom
            top = self._slice_hz_round(div16 * freq) - 1
        if div16 < 16 or top < 0:
            raise ValueError("freq too large")
        if div16 >= 256 * 16:
            raise ValueError("freq too small")
        s["div16"] = div16
        s["top"] = top
        s["freq_set"] = True
        for ch in s["pins"]:
            p = s["pins"][ch]
            if p._duty is not None:
                p._apply()

    def _ledc_freq(self, s, freq):
        # ESP32 LEDC from the 80 MHz APB clock (the ESP32 world's cycle): duty resolution
        # floor(log2(80 MHz / freq)) bits, at most 16 as MicroPython uses it, at least 1 (40 MHz)
        if freq > 40_000_000:
            raise ValueError("frequency must be from 1Hz to 40MHz")
        ratio = self.world.sys_hz // freq
        bits = 0
        while ratio > 1 and bits < 16:
            ratio >>= 1
            bits += 1
        top = (1 << bits) - 1
        s["div16"] = (16 * self.world.sys_hz + freq * (top + 1) // 2) // (freq * (top + 1))
        s["top"] = top
        s["freq_set"] = True
        for ch in s["pins"]:
            p = s["pins"][ch]
            if p._duty is not None:
                p._apply()

    def _apply(self):
        kind, v = self._duty
        top = self._slice()["top"]
        if kind == "u16":
            self._set_cc((v * (top + 1) + 65535 // 2) // 65535)
        else:
            slice_hz = self._slice_hz_round(self._slice()["div16"])
            cc = (v * slice_hz + 500_000_000) // 1_000_000_000
            self._set_cc(cc if cc <= top + 1 else top + 1)

    def duty_u16(self, duty=None):
        s = self._slice()
        if duty is None:
            if self._duty is None or not s["freq_set"]:
                return 0
            top = s["top"]
            return (self._cc * 65535 + (top + 1) // 2) // (top + 1)
        duty = int(duty)
        if duty < 0:
            raise ValueError("duty_u16 must be >= 0")
        self._duty = ("u16", duty if duty <= 65535 else 65535)
        self._apply()

    def duty_ns(self, ns=None):
        s = self._slice()
        if ns is None:
            if self._duty is None or not s["freq_set"]:
                return 0
            slice_hz = self._slice_hz_round(s["div16"])
            return (self._cc * 1_000_000_000 + slice_hz // 2) // slice_hz
        ns = int(ns)
        if ns < 0:
            raise ValueError("duty_ns must be >= 0")
        self._duty = ("ns", ns)
        self._apply()

    def init(self, *, freq=None, duty_u16=None, duty_ns=None, invert=None):
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)
        elif duty_ns is not None:
            self.duty_ns(duty_ns)

    def deinit(self):
        if self._duty is not None:
            self._set_cc(0)
            self._duty = None
        self.world.gpio.set_function(self.pin, None)


# ---- ADC ------------------------------------------------------------------------------------

ADC_VREF = 3.3
TEMP_SENSOR_VOLTS = 0.706  # 27 degC


# ESP32 (world.chip == "esp32"): ADC1 on GPIO 32-39 (ADC2 is unusable while WiFi runs), 12-bit,
# full scale set by the attenuation. The model is the ideal converter: volts / full scale; real
# chips need esp_adc_cal (read_uv() applies the eFuse calibration on the device).
_ESP32_ADC1_PINS = (32, 33, 34, 35, 36, 37, 38, 39)
_ESP32_FULL_SCALE_V = {0: 0.95, 1: 1.25, 2: 1.75, 3: 3.55}  # ATTN_0DB, 2_5DB, 6DB, 11DB


class ADC:
    CORE_TEMP = 4
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 3

    def __init__(self, pin, *, atten=None):
        self.world = _world.current()
        if isinstance(pin, Pin):
            pid = pin.id
        else:
            pid = int(pin)
        self._atten = ADC.ATTN_0DB if atten is None else atten
        if self.world.chip == "esp32":
            if pid not in _ESP32_ADC1_PINS:
                raise ValueError("invalid Pin for ADC (use ADC1: GPIO 32-39)")
            self.channel = pid
            self.pin = pid
            return
        if 0 <= pid <= 4:
            self.channel = pid
            self.pin = 4 if pid == 4 else 26 + pid
        elif 26 <= pid <= 29:
            self.channel = pid - 26
            self.pin = pid
        else:
            raise ValueError("invalid ADC pin")

    def read_volts(self):
        return self.volts_at(self.world.now)

    def volts_at(self, cycle):
        """The input's voltage at cycle (its source then; no side effect)."""
        src = self.world.adc_source.get(self.pin)
        if src is None:
            return TEMP_SENSOR_VOLTS if self.pin == 4 else 0.0
        return src(cycle)

    def atten(self, atten):
        self._atten = atten

    def _full_scale(self):
        if self.world.chip == "esp32":
            return _ESP32_FULL_SCALE_V[self._atten]
        return ADC_VREF

    def read_uv(self):
        r = self.uv_at(self.world.now)
        self.world.adc_reads[self.pin] = (self, 1, r, self.world.now)
        return r

    def read_u16(self):
        r = self.u16_at(self.world.now)
        self.world.adc_reads[self.pin] = (self, 0, r, self.world.now)
        return r

    def u16_at(self, cycle):
        """What read_u16() gives at cycle (the source's value then; no side effect)."""
        raw = int(self.volts_at(cycle) * 4095 / self._full_scale() + 0.5)
        if raw < 0:
            raw = 0
        elif raw > 4095:
            raw = 4095
        return (raw << 4) | (raw >> 8)

    def uv_at(self, cycle):
        """What read_uv() gives at cycle (no side effect)."""
        v = self.volts_at(cycle)
        fs = self._full_scale()
        v = 0.0 if v < 0 else (fs if v > fs else v)
        return int(v * 1_000_000 + 0.5)

    def read_at(self, kind, cycle):
        return self.u16_at(cycle) if kind == 0 else self.uv_at(cycle)


# ---- I2C --------------------------------------------------------------------------------------

class I2C:
    """Each transfer is delivered to world.i2c_devices[addr] (write(bytes, cycle) at the start
    of the transfer, read(n, cycle)), then the clock advances by the bus time:
    (9 bits per byte including the address byte + 2 bits for start/stop) / freq."""

    def __init__(self, id=0, *, scl=None, sda=None, freq=400_000, timeout=50_000):
        self.id = id
        self.world = _world.current()
        self._freq = int(freq)
        self.scl = None if scl is None else _pin_id(scl)
        self.sda = None if sda is None else _pin_id(sda)
        for p in (self.scl, self.sda):
            if p is not None:
                self.world.gpio.set_function(p, _gpio.I2C)

    def init(self, *, scl=None, sda=None, freq=400_000, timeout=50_000):
        self._freq = int(freq)

    def deinit(self):
        pass

    def _bus_time(self, nbytes):
        w = self.world
        bits = 9 * nbytes + 2
        w.advance_to(w.now + (bits * w.sys_hz + self._freq - 1) // self._freq)

    def _device(self, addr, nbytes_on_nack=1):
        d = self.world.i2c_devices.get(addr)
        if d is None:
            self._bus_time(nbytes_on_nack)  # address byte, NACK, stop
            raise _oserror(_ENODEV, "ENODEV")
        return d

    def scan(self):
        found = []
        for addr in range(0x08, 0x78):
            if addr in self.world.i2c_devices:
                found.append(addr)
            self._bus_time(1)
        return found

    def writeto(self, addr, buf, stop=True):
        d = self._device(addr)
        data = bytes(buf)
        d.write(data, self.world.now)
        self._bus_time(1 + len(data))
        return len(data)

    def writevto(self, addr, vector, stop=True):
        d = self._device(addr)
        data = b"".join([bytes(b) for b in vector])
        d.write(data, self.world.now)
        self._bus_time(1 + len(data))
        return len(data)

    def readfrom(self, addr, nbytes, stop=True):
        d = self._device(addr)
        data = bytes(d.read(nbytes, self.world.now))
        self._bus_time(1 + nbytes)
        return data

    def readfrom_into(self, addr, buf, stop=True):
        data = self.readfrom(addr, len(buf), stop)
        for i in range(len(buf)):
            buf[i] = data[i]

    def _mem(self, memaddr, addrsize):
        n = addrsize // 8
        return bytes([(memaddr >> (8 * (n - 1 - i))) & 0xFF for i in range(n)])

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        d = self._device(addr)
        data = self._mem(memaddr, addrsize) + bytes(buf)
        d.write(data, self.world.now)
        self._bus_time(1 + len(data))

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        d = self._device(addr)
        m = self._mem(memaddr, addrsize)
        d.write(m, self.world.now)
        self._bus_time(1 + len(m))
        data = bytes(d.read(nbytes, self.world.now))
        self._bus_time(1 + nbytes)
        return data

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        data = self.readfrom_mem(addr, memaddr, len(buf), addrsize=addrsize)
        for i in range(len(buf)):
            buf[i] = data[i]


class SoftI2C(I2C):
    def __init__(self, scl, sda, *, freq=400_000, timeout=50_000):
        I2C.__init__(self, -1, scl=scl, sda=sda, freq=freq, timeout=timeout)


# ---- Timer ---------------------------------------------------------------------------------

class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, *, mode=PERIODIC, period=-1, freq=-1, tick_hz=1000, callback=None,
                 hard=True):
        self.world = _world.current()
        self._handle = None
        if callback is not None or period != -1 or freq != -1:
            self.init(mode=mode, period=period, freq=freq, tick_hz=tick_hz, callback=callback,
                      hard=hard)

    def init(self, *, mode=PERIODIC, period=-1, freq=-1, tick_hz=1000, callback=None, hard=True):
        self.deinit()
        if freq != -1:
            period_ns = 1_000_000_000 // freq
        elif period != -1:
            period_ns = period * 1_000_000_000 // tick_hz
        else:
            period_ns = 1_000_000_000  # MicroPython default: 1 s? (rp2 default period is 1 s)
        if period_ns <= 0:
            raise ValueError("period too short")
        self.mode = mode
        self.callback = callback
        self._period_ns = int(period_ns)
        self._start_ns = self.world.ns()
        self._count = 0
        self._arm()

    def _arm(self):
        w = self.world
        self._count += 1
        at = w.cycle_at_ns(self._start_ns + self._count * self._period_ns)
        self._handle = w.schedule(at, self._fire)

    def _fire(self):
        self._handle = None
        if self.mode == Timer.PERIODIC:
            self._arm()
        cb = self.callback
        if cb is not None:
            cb(self)

    def deinit(self):
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


# ---- WDT --------------------------------------------------------------------------------------

_WDT_MAX_MS = 8388


class WDT:
    def __init__(self, id=0, timeout=5000):
        timeout = int(timeout)
        if timeout > _WDT_MAX_MS:
            raise ValueError("timeout exceeds %d ms" % _WDT_MAX_MS)
        if timeout < 1:
            timeout = 1
        self.world = _world.current()
        self.timeout_ms = timeout
        self._handle = None
        self._due = 0
        self.feed()

    def feed(self):
        # the expiry is due timeout_ms after the last feed: a feed only moves the due cycle; the
        # scheduled check, when it comes, waits again for the due cycle if a feed moved it (one
        # callback per timeout instead of a reschedule per feed: the loop feeds every tick)
        w = self.world
        self._due = w.now + w.cycles(self.timeout_ms * 1_000_000)
        if self._handle is None:
            self._handle = w.schedule(self._due, self._expire, quiet=True)

    def _expire(self):
        w = self.world
        if w.now < self._due:
            self._handle = w.schedule(self._due, self._expire, quiet=True)
            return
        self._handle = None
        w.fired += 1  # (scheduled as quiet: only the real expiry counts as an input)
        w.sync()  # (nor is the PIO synced before a quiet callback: up to the reset now)
        w.event("watchdog_reset", timeout_ms=self.timeout_ms)
        w.reset_cause = WDT_RESET
        w.on_reset("watchdog")


# ---- module functions --------------------------------------------------------------------------

def freq(hz=None):
    w = _world.current()
    if w.cpu_hz is not None:
        # ESP32 world: the cycle counts the 80 MHz APB/RMT clock; the CPU clock is separate
        if hz is None:
            return w.cpu_hz
        hz = int(hz)
        if hz not in (20_000_000, 40_000_000, 80_000_000, 160_000_000, 240_000_000):
            raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
        w.cpu_hz = hz
        return
    if hz is None:
        return w.sys_hz
    hz = int(hz)
    if not 10_000_000 <= hz <= 300_000_000:
        raise ValueError("cannot change frequency")
    w.set_sys_hz(hz)


def reset():
    w = _world.current()
    w.reset_cause = SOFT_RESET
    w.on_reset("soft")


def soft_reset():
    reset()


def reset_cause():
    return _world.current().reset_cause


def disable_irq():
    w = _world.current()
    state = w.irq_enabled
    w.irq_enabled = False
    return state


def enable_irq(state=True):
    w = _world.current()
    w.irq_enabled = bool(state)
    if w.irq_enabled and w._held_irqs:
        held = w._held_irqs
        w._held_irqs = []
        for pin, pin_obj, handler in held:
            w.gpio._call_irq(pin, pin_obj, handler)


def unique_id():
    return b"\xe6\x61\x38\x52\x53\x1e\x5c\x2b"


def idle():
    """Wait for the next interrupt: up to the next scheduled callback, at most 1 ms."""
    w = _world.current()
    nxt = w.next_event_cycle()
    limit = w.now + w.cycles(1_000_000)
    w.advance_to(limit if nxt is None or nxt > limit else nxt)


def lightsleep(ms=None):
    w = _world.current()
    if ms is None:
        nxt = w.next_event_cycle()
        if nxt is None:
            raise RuntimeError("lightsleep() forever: nothing scheduled to wake up")
        w.advance_to(nxt)
    else:
        w.advance_ns(int(ms) * 1_000_000)


def deepsleep(ms=None):
    lightsleep(ms)
    w = _world.current()
    w.reset_cause = DEEPSLEEP_RESET
    w.on_reset("deepsleep")


def time_pulse_us(pin, pulse_level, timeout_us=1_000_000):
    raise NotImplementedError("machine.time_pulse_us is not modelled")


def bootloader():
    raise NotImplementedError("machine.bootloader is not modelled")


class _Mem:
    def __init__(self, name):
        self.name = name

    def __getitem__(self, addr):
        raise NotImplementedError("%s[0x%08x] read is not modelled" % (self.name, addr))

    def __setitem__(self, addr, value):
        raise NotImplementedError("%s[0x%08x] write is not modelled" % (self.name, addr))


mem8 = _Mem("mem8")
mem16 = _Mem("mem16")
mem32 = _Mem("mem32")
