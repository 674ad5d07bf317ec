# Portable tests of the sim core: run by pytest (CPython) and by tests/mp_run.py (MicroPython).
# Plain functions with assert; no pytest features.

from host_tools.sim import world
from host_tools.sim import simtime
from host_tools.sim import machine
from host_tools.sim import micropython_mod

SYS_HZ = 125_000_000
CYC_PER_US = 125


def _new():
    return world.new_world(sys_hz=SYS_HZ)


def test_virtual_time_sleep():
    w = _new()
    assert w.now == 0
    simtime.sleep_us(3)
    assert w.now == 3 * CYC_PER_US
    simtime.sleep_ms(2)
    assert w.now == 3 * CYC_PER_US + 2_000 * CYC_PER_US
    simtime.sleep(1)
    assert simtime.ticks_ms() == 1002
    assert simtime.ticks_us() == 1_002_003
    simtime.sleep(0.5)
    assert simtime.ticks_ms() == 1502
    assert simtime.ticks_cpu() == w.now & (2**30 - 1)
    assert simtime.time() == w.epoch_s + 1


def test_ticks_wraparound():
    w = _new()
    period = 2**30
    # move to 5 ms before the ms wrap
    w.advance_to((period - 5) * 1_000 * CYC_PER_US)
    t0 = simtime.ticks_ms()
    assert t0 == period - 5
    simtime.sleep_ms(10)
    t1 = simtime.ticks_ms()
    assert t1 == 5
    assert simtime.ticks_diff(t1, t0) == 10
    assert simtime.ticks_diff(t0, t1) == -10
    assert simtime.ticks_add(t0, 10) == t1
    assert simtime.ticks_add(3, -5) == period - 2
    assert simtime.ticks_diff(simtime.ticks_add(100, period // 2 - 1), 100) == period // 2 - 1


def test_schedule_order_stable_and_cancel():
    w = _new()
    log = []
    w.schedule(300, lambda: log.append(("c", w.now)))
    w.schedule(100, lambda: log.append(("a", w.now)))
    h = w.schedule(100, lambda: log.append(("x", w.now)))
    w.schedule(100, lambda: log.append(("b", w.now)))
    w.schedule(200, lambda: w.schedule(250, lambda: log.append(("nested", w.now))))
    h.cancel()
    w.advance_to(299)
    assert log == [("a", 100), ("b", 100), ("nested", 250)]
    assert w.now == 299
    w.advance_to(300)
    assert log[-1] == ("c", 300)
    # time never goes back; scheduling in the past fires at now
    w.schedule(10, lambda: log.append(("late", w.now)))
    w.advance_to(5)
    assert log[-1] == ("late", 300)
    assert w.now == 300


def test_callback_may_sleep():
    w = _new()
    log = []

    def cb():
        log.append(w.now)
        simtime.sleep_us(10)
        log.append(w.now)

    w.schedule(1000, cb)
    w.schedule(1500, lambda: log.append(("inner", w.now)))
    w.advance_to(5000)
    assert log == [1000, ("inner", 1500), 1000 + 10 * CYC_PER_US]
    assert w.now == 5000


def test_gpio_levels_and_edges():
    w = _new()
    g = w.gpio
    p = machine.Pin(5, machine.Pin.IN, machine.Pin.PULL_UP)
    assert p.value() == 1
    g.drive_external(5, 0)  # external drive wins over the pull
    assert p.value() == 0
    w.advance_to(1000)
    g.drive_external(5, None)
    assert p.value() == 1
    assert g.edges[5] == [(0, 1), (0, 0), (1000, 1)] or g.edges[5] == [(0, 0), (1000, 1)]
    o = machine.Pin(6, machine.Pin.OUT, value=0)
    g.drive_external(6, 1)  # a driven output wins over an external drive
    assert o.value() == 0
    o.on()
    w.advance_to(2000)
    o.toggle()
    assert g.edges[6] == [(0, 0), (1000, 1), (2000, 0)]
    w.advance_to(3000)
    o.value(0)  # no change, no edge
    assert g.edges[6][-1] == (2000, 0)


def test_pin_irq_on_external_drive_at_edge_cycle():
    w = _new()
    seen = []
    btn = machine.Pin(16, machine.Pin.IN, machine.Pin.PULL_UP)
    btn.irq(lambda pin: seen.append((w.now, pin.value())), machine.Pin.IRQ_FALLING)
    w.schedule(12_345, lambda: w.gpio.drive_external(16, 0))
    w.schedule(20_000, lambda: w.gpio.drive_external(16, 1))
    w.schedule(30_000, lambda: w.gpio.drive_external(16, 0))
    simtime.sleep_ms(1)
    assert seen == [(12_345, 0), (30_000, 0)]
    assert w.gpio.edges[16] == [(0, 1), (12_345, 0), (20_000, 1), (30_000, 0)]
    both = []
    btn.irq(lambda pin: both.append(w.now), machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING)
    w.gpio.drive_external(16, 1)
    assert both == [w.now]


def test_disable_irq_holds_handler():
    w = _new()
    seen = []
    btn = machine.Pin(17, machine.Pin.IN, machine.Pin.PULL_UP)
    btn.irq(lambda pin: seen.append(w.now), machine.Pin.IRQ_FALLING)
    st = machine.disable_irq()
    w.gpio.drive_external(17, 0)
    assert seen == []
    machine.enable_irq(st)
    assert seen == [0]


def test_pwm_log():
    w = _new()
    pwm = machine.PWM(machine.Pin(14), freq=100_000, duty_u16=0)
    assert pwm.freq() == 100_000
    simtime.sleep_us(10)
    pwm.duty_u16(32768)
    simtime.sleep_us(10)
    pwm.duty_u16(65535)
    log = w.pwm_log[14]
    # top = 1249: 32768 -> cc 625 -> reads back 32768
    assert log == [(0, 0), (10 * CYC_PER_US, 32768), (20 * CYC_PER_US, 65535)]
    pwm.duty_ns(5_000)  # half of the 10 us period
    assert pwm.duty_ns() == 5_000
    assert w.pwm_log[14][-1] == (w.now, 32768)
    pwm.deinit()
    assert w.pwm_log[14][-1] == (w.now, 0)
    # RP2040 limits
    try:
        machine.PWM(machine.Pin(15), freq=5)
        raise AssertionError("freq 5 Hz must be too small")
    except ValueError:
        pass
    try:
        machine.PWM(machine.Pin(15), freq=300_000_000)
        raise AssertionError("freq 300 MHz must be too large")
    except ValueError:
        pass
    slow = machine.PWM(machine.Pin(15), freq=50, duty_u16=1000)
    assert slow.freq() == 50
    assert abs(slow.duty_u16() - 1000) <= 2


def test_adc_conversion():
    w = _new()
    w.adc_source[26] = lambda cycle: 1.65
    w.adc_source[29] = lambda cycle: 3.3 if cycle < 1000 else 5.0
    a = machine.ADC(machine.Pin(26))
    raw = int(1.65 * 4095 / 3.3 + 0.5)  # 2048
    assert a.read_u16() == (raw << 4) | (raw >> 8)
    assert machine.ADC(0).read_u16() == a.read_u16()
    vsys = machine.ADC(3)
    assert vsys.pin == 29
    assert vsys.read_u16() == 65535
    w.advance_to(2000)
    assert vsys.read_u16() == 65535  # clamps above the reference
    assert machine.ADC(28).read_u16() == 0
    t = machine.ADC(4).read_u16()
    v = t * 3.3 / 65535
    assert abs(27 - (v - 0.706) / -0.001721 - 27) < 1.0


class _Dev:
    def __init__(self):
        self.writes = []
        self.reads = []

    def write(self, data, cycle):
        self.writes.append((cycle, bytes(data)))

    def read(self, n, cycle):
        self.reads.append((cycle, n))
        return bytes(range(n))


def test_i2c_byte_timing_400khz():
    w = _new()
    dev = _Dev()
    w.i2c_devices[0x3C] = dev
    i2c = machine.I2C(0, scl=machine.Pin(1), sda=machine.Pin(0), freq=400_000)
    assert i2c.scan() == [0x3C]
    t0 = w.now
    n = i2c.writeto(0x3C, b"\x00\xae\xd5")
    assert n == 3
    # address + 3 bytes, 9 bits each, plus start and stop: 38 bits at 400 kHz = 95 us
    assert w.now - t0 == 95 * CYC_PER_US
    assert dev.writes[-1] == (t0, b"\x00\xae\xd5")
    t1 = w.now
    i2c.writevto(0x3C, [b"\x40", bytearray(16)])
    assert w.now - t1 == (9 * 18 + 2) * SYS_HZ // 400_000
    assert dev.writes[-1] == (t1, b"\x40" + bytes(16))
    buf = bytearray(4)
    i2c.readfrom_into(0x3C, buf)
    assert bytes(buf) == b"\x00\x01\x02\x03"
    i2c.writeto_mem(0x3C, 0x10, b"\x01")
    assert dev.writes[-1][1] == b"\x10\x01"
    try:
        i2c.writeto(0x50, b"\x00")
        raise AssertionError("missing device must raise")
    except OSError as e:
        assert e.args[0] == 19
    soft = machine.SoftI2C(scl=machine.Pin(3), sda=machine.Pin(2))
    assert soft.readfrom(0x3C, 2) == b"\x00\x01"


def test_timer_periodic_count_over_one_second():
    w = _new()
    hits = []
    t = machine.Timer(mode=machine.Timer.PERIODIC, period=10,
                      callback=lambda tm: hits.append(w.now))
    simtime.sleep(1)
    assert len(hits) == 100
    assert hits[0] == 10_000 * CYC_PER_US
    assert hits[-1] == 1_000_000 * CYC_PER_US
    t.deinit()
    simtime.sleep(1)
    assert len(hits) == 100
    f = []
    machine.Timer(freq=1000, callback=lambda tm: f.append(1))
    one = []
    machine.Timer(mode=machine.Timer.ONE_SHOT, period=300, callback=lambda tm: one.append(w.now))
    simtime.sleep_ms(1000)
    assert len(f) == 1000
    assert len(one) == 1


def test_wdt_reset_when_not_fed():
    w = _new()
    resets = []
    w.on_reset = lambda reason: resets.append((w.now, reason))
    machine.WDT(timeout=100)
    simtime.sleep_ms(99)
    assert resets == []
    simtime.sleep_ms(2)
    assert resets == [(100_000 * CYC_PER_US, "watchdog")]
    kinds = [e["kind"] for e in w.events]
    assert kinds == ["watchdog_reset"]
    assert w.events[0]["cycle"] == 100_000 * CYC_PER_US
    assert machine.reset_cause() == machine.WDT_RESET


def test_wdt_quiet_when_fed():
    w = _new()
    resets = []
    w.on_reset = lambda reason: resets.append(reason)
    wdt = machine.WDT(timeout=100)
    for _ in range(50):
        simtime.sleep_ms(50)
        wdt.feed()
    assert resets == []
    assert w.events == []


def test_default_reset_raises_simreset():
    _new()
    try:
        machine.reset()
        raise AssertionError("reset must raise")
    except world.SimReset as e:
        assert e.reason == "soft"


def test_micropython_schedule_and_const():
    w = _new()
    got = []
    micropython_mod.schedule(lambda a: got.append((a, w.now)), 7)
    assert got == []
    simtime.sleep_us(1)
    assert got == [(7, 0)]
    assert micropython_mod.const(5) == 5


def test_calendar():
    assert simtime.gmtime(0) == (1970, 1, 1, 0, 0, 0, 3, 1)
    assert simtime.gmtime(951782400) == (2000, 2, 29, 0, 0, 0, 1, 60)
    assert simtime.gmtime(1704067200 + 86399) == (2024, 1, 1, 23, 59, 59, 0, 1)
    for s in (0, 951782400, 1704067200, 4102444799, 1234567890):
        assert simtime.mktime(simtime.gmtime(s)) == s


def test_freq_change_keeps_time_continuous():
    w = _new()
    simtime.sleep_ms(10)
    machine.freq(250_000_000)
    assert machine.freq() == 250_000_000
    simtime.sleep_ms(10)
    assert simtime.ticks_ms() == 20
    assert w.now == 10 * 125_000 + 10 * 250_000


def test_install_load_device_module():
    import sys

    from host_tools.sim import install

    w = _new()
    mod = install.load("sim_probe_device", paths=("tests/portable",))
    assert mod.time is simtime
    assert mod.machine is machine
    assert mod.blink_ms(3) == 3
    assert w.gpio.edges[11] == [(0, 1), (3_000 * CYC_PER_US, 0)]
    # the interpreter's own time is back for everything else
    import time as t2

    assert t2 is not simtime
    assert sys.modules.get("time") is not simtime
    again = install.load("sim_probe_device", paths=("tests/portable",))
    assert again is not mod


def test_pio_side_pin_driving_listener_and_deferred_irq():
    w = _new()
    g = w.gpio
    changes = []
    g.add_listener(lambda pin, level, cycle: changes.append((pin, level, cycle)))
    seen = []
    p = machine.Pin(2)
    p.irq(lambda pin: seen.append(w.now), machine.Pin.IRQ_RISING)
    g.set_function(2, "pio0")
    g.set_level(2, 1, 100, "pio0")  # pindir still input: not driven
    assert g.levels[2] == 0
    g.set_dir(2, True, 100, "pio0")
    assert g.levels[2] == 1
    g.set_level(2, 1, 150, "pio1")  # another block does not own the pin
    g.set_level(2, 0, 200, "pio0")
    assert g.edges[2] == [(0, 0), (100, 1), (200, 0)]
    assert changes == [(2, 1, 100), (2, 0, 200)]
    # the edge happened at cycle 100 while now == 0 -> the handler runs from the queue at 100
    assert seen == []
    w.advance_to(1000)
    assert seen == [100]
