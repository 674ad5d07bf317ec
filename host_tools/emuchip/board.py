"""The reference board around the emulated RP2040: the same world model as the host simulation,
wired to rp2040py's peripherals instead of to the host's stand-in `machine` module.

    from host_tools.emuchip.chip import boot
    from host_tools.emuchip.board import attach
    chip = boot("1.28.0")                 # the firmware from a make-flash filesystem (main.py runs)
    b = attach(chip)                      # the board: OLED, buttons, foot switch, ADC, DAC record
    b.model.press("ok", 80)               # host_tools/sim/board_pico.py's PicoBoardModel, unchanged
    b.model.electrode(1, False); b.model.battery(3300); b.model.usb(True)
    chip.run(ms=500)
    b.oled.text()                         # what the panel shows (host_tools/sim/ssd1306_model.py)
    b.world.pwm_log[14], b.world.gpio.edges[9], b.resets, b.console()
    b.hang()                              # the CPU locks up: only the real watchdog gets it out

Why a world adapter: host_tools/sim/board_pico.PicoBoardModel is the physical world of the host
simulation (electrodes and load, the current source with its compliance limit, the peak-detector
current sense, the battery, USB, bouncing buttons, the foot switch, the OLED module). It talks to
a `world` object (now, schedule, gpio.drive_external / edges / level_at, pwm_log, adc_source,
i2c_devices, sync). ChipWorld is that object for the emulated chip, so the very same model class
(not a copy) drives the chip:

  now / schedule(cycle, fn)   emulated time in clk_sys cycles (125 MHz, rp2040py's clock); a
                              scheduled fn runs from a clock alarm on its cycle.
  gpio.drive_external(p, l)   the pad's input driven from outside (l 0/1) or released (None: the
                              pull-up the firmware enabled decides); through pio_exact when the
                              chip has it, so a state machine sees it on its cycle.
  gpio.edges[p]               (cycle, level) of every level change of the recorded pins (H-bridge
                              legs, burst gates, output enable, LED), first entry = level at attach.
                              PIO-driven edges carry the PIO's own cycle (pio_exact).
  pwm_log[p]                  (cycle, duty_u16 as MicroPython reads it back) at every change of the
                              amplitude DAC pins' PWM compare/TOP registers (rp2040py's PWM block);
                              a chip reset clears the slice (duty 0), as the host trace assumes.
  adc_source[p]               volts on ADC pin p (26-29; 4 = temperature sensor) at the cycle a
                              conversion starts; the RP2040 ADC converts them (12 bits, 3.3 V),
                              ready after its 2 us sample time.
  i2c_devices[addr]           targets on I2C0: the address is ACKed when a device is there (NACK
                              otherwise: a missing display), the bytes of a write transaction go to
                              device.write(bytes, cycle of its START) at its STOP. Bus time is
                              modelled: each byte (address included) takes 9 SCL periods, START and
                              STOP one each, the SCL period from the IC_FS_SCL_HCNT/LCNT the
                              firmware programmed (MicroPython's I2C(freq=400_000): 313 cycles,
                              2.5 us); the DW controller's FIFO waits accordingly, so the firmware
                              pays the real transfer time of every frame. A NACKed address aborts
                              the transfer at its 9th bit and raises TX_EMPTY, as the controller
                              does (MicroPython reports EIO, as on a Pico with nothing on the
                              bus; rp2040py alone left it to time out: ETIMEDOUT after 50 ms).

What is not modelled: the I2C clock-stretching and the extra SCL cycles of the DW controller's
spike filter (a few %); ADC noise and INL (an ideal converter, as in the host simulation); the PWM
output waveform is rp2040py's, but the DAC value the board sees is the duty, as on the host (the RC
filter is not modelled); flash XIP cache misses (rp2040py runs every instruction from flash at full
speed).
"""
from host_tools.emuchip.chip import CYCLE_NS

SYS_HZ = 125_000_000
R_TX_EMPTY = 1 << 4  # DW I2C raw interrupt: TX FIFO at or below its threshold
RECORDED_PINS = (2, 3, 4, 6, 7, 8, 9, 22)  # legs, gates, output enable, output LED (pico.py)
ADC_PINS = (26, 27, 28, 29)
TEMP_SENSOR_VOLTS = 0.706
WATCHDOG_REASON_TIMER = 1  # rp2040py RPWatchdog._reason: TIMER (timeout) vs FORCE (a trigger)


def load_board_config(name="pico"):
    """The board config module as the host simulation loads it (host_tools/sim/install)."""
    from host_tools.sim import install

    return install.load("board_config").load(name)


class _Handle:
    def __init__(self, alarm):
        self._alarm = alarm

    def cancel(self):
        self._alarm.cancel()


class ChipGpio:
    """The GPIO side of the world adapter (what PicoBoardModel and the trace need)."""

    def __init__(self, world, pins):
        self.world = world
        self.chip = world.chip
        self.edges = {}
        self._undo = []
        for n in pins:
            self.watch(n)

    def _pad_level(self, n):
        g = self.chip.mcu.gpio[n]
        st = int(g.value)  # GPIOPinState: LOW 0, HIGH 1, inputs >= 2
        if st < 2:
            return st
        return int(bool(g.input_value))

    def watch(self, n):
        """Record the level changes of pin n from now on (idempotent)."""
        if n in self.edges:
            return
        self.edges[n] = [(self.world.now, self._pad_level(n))]
        lst = self.edges[n]

        def cb(value, last):
            lv = self._pad_level(n)
            if lst[-1][1] != lv:
                lst.append((self.world.edge_cycle(), lv))

        self._undo.append(self.chip.mcu.gpio[n].add_listener(cb))

    def drive_external(self, pin, level):
        self.chip.set_input(pin, None if level is None else (1 if level else 0))

    def refresh(self, cycle):
        """Re-read every recorded pad (after a chip reset, which changes pads without telling
        their listeners) and record the changes at `cycle`."""
        for n, lst in self.edges.items():
            lv = self._pad_level(n)
            if lst[-1][1] != lv:
                lst.append((cycle, lv))

    def level(self, pin):
        if pin in self.edges:
            return self.edges[pin][-1][1]
        return self._pad_level(pin)

    def level_at(self, pin, cycle):
        lst = self.edges.get(pin)
        if not lst:
            return self._pad_level(pin)
        i = len(lst) - 1
        while i > 0 and lst[i][0] > cycle:
            i -= 1
        return lst[i][1]

    def detach(self):
        for u in self._undo:
            u()
        self._undo = []


class ChipWorld:
    """host_tools/sim/world.World's interface over the emulated chip (see the module docstring)."""

    def __init__(self, chip, pins=RECORDED_PINS):
        self.chip = chip
        self.clock = chip.simulator.clock
        self.sys_hz = SYS_HZ
        self.chip_name = "rp2040"
        self.events = []
        self.pwm_log = {}
        self.adc_source = {}
        self.i2c_devices = {}
        self.gpio = ChipGpio(self, pins)

    # -- time ---------------------------------------------------------------------------------
    @property
    def now(self):
        """The current cycle: emulated nanoseconds / 8 (inside an alarm: the alarm's own time)."""
        return int(self.clock.nanos) // CYCLE_NS

    def edge_cycle(self):
        """The cycle of a GPIO change being reported now: a PIO step's own cycle (pio_exact), else
        the cycle of the CPU instruction that made it (chip.now_cycle())."""
        return self.chip.now_cycle()

    def ns(self, cycle=None):
        return (self.now if cycle is None else cycle) * CYCLE_NS

    def ms(self, cycle=None):
        return self.ns(cycle) // 1_000_000

    def cycles(self, ns):
        return (int(ns) + CYCLE_NS - 1) // CYCLE_NS

    def cycle_at_ns(self, ns):
        return self.cycles(ns)

    def schedule(self, cycle, fn):
        """Call fn() at that cycle (now if it is in the past), from a clock alarm."""
        alarm = self.clock.create_alarm(fn)
        d = cycle - self.now
        alarm.schedule(d * CYCLE_NS if d > 0 else 0)
        return _Handle(alarm)

    def sync(self):
        if self.chip.pio is not None:
            self.chip.pio.sync()

    def event(self, kind, **fields):
        e = {"cycle": self.now, "kind": kind}
        e.update(fields)
        self.events.append(e)
        return e


class I2CBridge:
    """rp2040py's I2C0 controller to world.i2c_devices, with bus time (see the module docstring)."""

    def __init__(self, world, index=0):
        self.world = world
        self.i2c = world.chip.mcu.i2c[index]
        self.clock = world.clock
        self._addr = None
        self._buf = bytearray()
        self._start = 0
        self.transactions = 0
        self.nacks = 0
        self.last_stop_cycle = None  # when the last STOP finished (a frame is complete on screen)
        self.on_transaction = None  # callable(addr, data, start_cycle, end_cycle) or None
        i = self.i2c
        i.on_start = self._on_start
        i.on_connect = self._on_connect
        i.on_write_byte = self._on_write_byte
        i.on_read_byte = self._on_read_byte
        i.on_stop = self._on_stop
        self._alarms = {}

    def bit_cycles(self):
        i = self.i2c
        n = i.scl_high_period + i.scl_low_period
        return n if n > 0 else 313

    def _later(self, key, bits, fn):
        a = self._alarms.get(key)
        if a is None:
            a = self.clock.create_alarm(lambda: self._fire(key))
            self._alarms[key] = [a, None]
        else:
            a = a[0]
        self._alarms[key][1] = fn
        a.schedule(bits * self.bit_cycles() * CYCLE_NS)

    def _fire(self, key):
        fn = self._alarms[key][1]
        self._alarms[key][1] = None
        if fn is not None:
            fn()

    def _on_start(self, repeated):
        self._start = self.world.now
        self._later("start", 1, self.i2c.complete_start)

    def _on_connect(self, address, mode):
        dev = self.world.i2c_devices.get(address)
        self._addr = address if dev is not None else None
        self._buf = bytearray()
        ack = dev is not None
        if not ack:
            self.nacks += 1
        self._later("byte", 9, lambda: self._connected(ack))

    def _connected(self, ack):
        i = self.i2c
        i.complete_connect(ack)
        if not ack:
            # The abort flushed the TX FIFO; on the DW controller TX_EMPTY follows the FIFO level,
            # so it is now set and the pico-sdk's write loop sees the abort (EIO). rp2040py only
            # sets TX_EMPTY when it pulls a command: the write then waits for its timeout
            # (ETIMEDOUT after MicroPython's 50 ms) instead of failing at the address byte.
            i._set_interrupts(R_TX_EMPTY)

    def _on_write_byte(self, value):
        self._buf.append(value)
        self._later("byte", 9, lambda: self.i2c.complete_write(True))

    def _on_read_byte(self, ack):
        dev = self.world.i2c_devices.get(self._addr)
        v = 0xFF
        if dev is not None and hasattr(dev, "read"):
            got = dev.read(1, self.world.now)
            if got:
                v = got[0]
        self._later("byte", 9, lambda: self.i2c.complete_read(v))

    def _on_stop(self):
        addr, data, start = self._addr, bytes(self._buf), self._start
        self._addr = None
        self._buf = bytearray()

        def done():
            end = self.world.now
            if addr is not None and data:
                self.world.i2c_devices[addr].write(data, start)
                self.transactions += 1
                self.last_stop_cycle = end
                if self.on_transaction is not None:
                    self.on_transaction(addr, data, start, end)
            self.i2c.complete_stop()

        self._later("stop", 1, done)


class AdcBridge:
    """rp2040py's ADC to world.adc_source (ideal 12-bit converter, 3.3 V reference)."""

    def __init__(self, world):
        self.world = world
        self.adc = world.chip.mcu.adc
        self.reads = 0
        self._value = 0
        self._alarm = world.clock.create_alarm(self._done)
        self.adc.on_adc_read = self._on_read

    def volts(self, channel, cycle):
        if channel == 4:
            return TEMP_SENSOR_VOLTS
        src = self.world.adc_source.get(26 + channel)
        return src(cycle) if src is not None else 0.0

    def _on_read(self, channel):
        a = self.adc
        a.current_channel = channel
        v = self.volts(channel, self.world.now)
        raw = int(v * 4095 / 3.3 + 0.5)
        self._value = 0 if raw < 0 else (4095 if raw > 4095 else raw)
        self.reads += 1
        self._alarm.schedule(a.sample_time * 1000)

    def _done(self):
        self.adc.complete_adc_read(self._value, False)


class PwmRecorder:
    """Duty of the recorded PWM pins as MicroPython's duty_u16() reads it back, at every change of
    the slice's CC or TOP register (world.pwm_log)."""

    CHN_CC = 0x0C
    CHN_TOP = 0x10

    def __init__(self, world, pins):
        self.world = world
        self.pwm = world.chip.mcu.pwm
        self.pins = tuple(pins)
        self._last = {}
        slices = {}
        for p in self.pins:
            slices.setdefault((p >> 1) & 7, []).append(p)
        for s, pins_ in slices.items():
            self._wrap(self.pwm.channels[s], pins_)

    def _wrap(self, ch, pins):
        orig = ch.write_register

        def write_register(offset, value):
            orig(offset, value)
            if offset in (self.CHN_CC, self.CHN_TOP):
                for p in pins:
                    self._log(ch, p)

        ch.write_register = write_register

    def duty_u16(self, ch, pin):
        top = ch.top
        cc = (ch.cc >> 16) & 0xFFFF if pin & 1 else ch.cc & 0xFFFF
        return (cc * 65535 + (top + 1) // 2) // (top + 1)

    def log_pin(self, pin):
        self._log(self.pwm.channels[(pin >> 1) & 7], pin)

    def _log(self, ch, pin):
        d = self.duty_u16(ch, pin)
        log = self.world.pwm_log.setdefault(pin, [])
        if not log or log[-1][1] != d:
            log.append((self.world.now, d))


class ChipBoard:
    """The reference board around an emulated chip (attach())."""

    def __init__(self, chip, board=None, display=True, seed=1):
        from host_tools.sim import board_pico

        self.chip = chip
        self.board = board if board is not None else load_board_config("pico")
        self.world = w = ChipWorld(chip)
        self.i2c = I2CBridge(w, self.board.I2C_ID)
        self.adc = AdcBridge(w)
        dacs = [c["dac"] for c in self.board.CHANNELS.values()]
        self.pwm = PwmRecorder(w, dacs)
        for p in dacs:
            w.pwm_log.setdefault(p, [])
        self.model = board_pico.PicoBoardModel(w, self.board, seed=seed)
        self.oled = self.model.oled
        if not display:
            w.i2c_devices.pop(self.board.OLED_ADDR, None)
        self.resets = []  # {"cycle", "reason"} of every chip reset (watchdog / soft)
        self._hook_watchdog()

    # -- resets ----------------------------------------------------------------------------------
    def _hook_watchdog(self):
        wd = self.chip.mcu.watchdog
        orig = wd.on_watchdog_trigger

        def trigger():
            reason = "watchdog" if wd._reason == WATCHDOG_REASON_TIMER else "soft"
            now = self.world.now
            self.resets.append({"cycle": now, "reason": reason})
            self.world.event("reset", reason=reason)
            orig()
            # the reset put every pad back to an input (pull-downs on the enable and leg pins):
            # rp2040py does not tell the listeners, so the record is brought up to date here
            self.world.gpio.refresh(now)
            for p in self.pwm.pins:
                self.pwm.log_pin(p)

        wd.on_watchdog_trigger = trigger

    def hang(self):
        """The CPU locks up now (Cortex-M0+ lockup after a fault in the fault handler: it executes
        nothing and takes no interrupt, not even the STOP pin's); PIO, timers and the watchdog keep
        running, as on silicon. Only a reset gets it out: the real watchdog's, if it is running."""
        core = self.chip.mcu.core
        core.pm = True
        core.ipsr = 3  # HardFault: priority -1, nothing but NMI preempts it
        core.waiting = True
        self.world.event("hang")

    def stall(self, ms):
        """The CPU is frozen for `ms` of emulated time (as hang()), then goes on where it was: a
        loop blocked that long. PIO, timers and the watchdog keep running meanwhile."""
        core = self.chip.mcu.core
        saved = (core.pm, core.ipsr, core.waiting)
        n_resets = len(self.resets)
        self.hang()
        w = self.world

        def resume():
            if len(self.resets) != n_resets:
                return  # the watchdog reset the chip meanwhile: nothing to go on with
            core.pm, core.ipsr, core.waiting = saved
            w.event("stall_end")

        w.schedule(w.now + w.cycles(int(ms * 1_000_000)), resume)

    # -- what a user sees -----------------------------------------------------------------------
    def console(self):
        return bytes(self.chip.console).decode(errors="replace")

    def level(self, pin):
        return self.world.gpio.level(pin)

    def flash_files(self):
        """{path: bytes} of every file on the chip's LittleFS now (read from the emulated flash
        with littlefs-python: what the firmware wrote is there)."""
        from littlefs import LittleFS, UserContext

        from host_tools.emuchip import chip as chip_mod

        n = chip_mod.FS_BLOCK_SIZE * chip_mod.FS_BLOCKS
        ctx = UserContext(buffsize=n)
        ctx.buffer[:] = bytes(self.chip.mcu.flash[chip_mod.FS_OFFSET:chip_mod.FS_OFFSET + n])
        fs = LittleFS(context=ctx, block_size=chip_mod.FS_BLOCK_SIZE,
                      block_count=chip_mod.FS_BLOCKS, prog_size=chip_mod.FS_PROG_SIZE,
                      mount=True)
        out = {}
        for top, _dirs, files in fs.walk("/"):
            for name in files:
                path = top.rstrip("/") + "/" + name
                with fs.open(path, "rb") as f:
                    out[path] = f.read()
        return out

    def amplitude_ma(self, channel):
        return self.model.command_ma(channel)


def attach(chip, board=None, display=True, seed=1):
    """Put the reference board around `chip` (host_tools.emuchip.chip.Chip): call right after
    boot() (before the firmware gets far) or at any time; see the module docstring."""
    return ChipBoard(chip, board=board, display=display, seed=seed)
