# The physical world around the simulated Pico of the reference board (docs/hardware.md):
# electrodes and the load they present, the current source with its compliance limit, the
# current-sense peak detectors read by the ADC, the battery, USB power, five push buttons with
# bouncing contacts, the foot switch and the OLED module.
#
#   from host_tools.sim import world, board_pico
#   w = world.new_world()
#   model = board_pico.PicoBoardModel(w, board)     # board: the board_config module
#   model.electrode(1, False)          # electrode of channel 1 falls off
#   model.load_ohm(1, 5000)            # or a high skin impedance
#   model.over_current(2, True)        # inject a short in the bridge of channel 2
#   model.battery(3300); model.usb(True)
#   model.press("ok", 150)             # press OK now for 150 ms (with contact bounce)
#   model.trigger(True)                # foot switch down
#   model.snapshot()                   # dict for traces
#
# Current a channel really carries at cycle t (what the sense resistor sees):
#   command  I_cmd = DAC_MA_PER_VOLT * DAC_VREF_V * duty / 65535 + DAC_OFFSET_MA (0 at duty 0),
#            duty from world.pwm_log of the channel's DAC pin (as the PWM really plays it);
#   it flows only while OUTPUT_ENABLE is high and leg A or leg B is high (a pulse phase);
#   open circuit: 0; connected: min(I_cmd, COMPLIANCE_V / load_ohm) (the source cannot push more
#   than the boost rail allows: "cannot reach current"); an injected over-current fault (a short
#   in the bridge) reads I_cmd * 1.5 + 10 mA.
# The sense ADC reads a peak detector: the highest such current during the last HOLD_MS (20 ms),
# converted with SENSE_MA_PER_VOLT; 0 V when no pulse fell in that window. The window is found by
# scanning the edge records from their end, so a read costs what the window holds, not the
# history. Changes of the load model are kept with their cycle, so a pulse is judged with the
# electrode state of its own time.
# A read (the firmware reads each channel's sense input every loop tick) takes a short path when
# the output enable, the DAC duty and the load state did not change inside the window, the steady
# case: every pulse phase in it then carries the same current, so the reading is that current if
# a leg was high at any moment of the window, else 0 (about 3 us instead of 11 us of CPU). Any
# change inside the window takes the general path (segments where current flows, each judged with
# every duty and load state in force during it); both give the same value (tests/test_board_model
# compares them on random windows).
#
# Common subset of CPython 3.11 and MicroPython 1.29 (runs on the unix port too).

HOLD_MS = 20  # peak detector hold (docs/hardware.md: about 20 ms)
BOUNCE_MS = 2  # contact bounce lasts at most this long after press and after release
DEFAULT_LOAD_OHM = 1000
DEFAULT_BATTERY_MV = 3900


class Lcg:
    """Deterministic PRNG (same sequence on CPython and MicroPython)."""

    def __init__(self, seed):
        self.s = (int(seed) * 1103515245 + 12345) & 0x7FFFFFFF

    def next(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 8) % n


def _last_index_at_or_before(lst, cycle):
    """Index of the last entry of a (cycle, ...) list with entry[0] <= cycle, scanning from the
    end (cheap when cycle is recent); -1 if none."""
    i = len(lst) - 1
    while i >= 0 and lst[i][0] > cycle:
        i -= 1
    return i


class ChannelLoad:
    """Electrode / load state of one channel, with its history of changes."""

    def __init__(self, n, cfg):
        self.n = n
        self.cfg = cfg
        self.connected = True
        self.load_ohm = DEFAULT_LOAD_OHM
        self.fault = False  # injected over-current (short in the bridge)
        # history: (cycle, connected, load_ohm, fault); first entry at cycle 0
        self.history = [(0, True, DEFAULT_LOAD_OHM, False)]

    def _record(self, cycle):
        h = self.history
        e = (cycle, self.connected, self.load_ohm, self.fault)
        if h and h[-1][0] == cycle:
            h[-1] = e
        else:
            h.append(e)


class PicoBoardModel:
    def __init__(self, world, board, seed=1, hold_ms=HOLD_MS):
        self.world = world
        self.board = board
        self.hold_ms = hold_ms
        self._hold_hz = None  # sys_hz for which _hold_cycles was computed
        self._hold_cycles = 0
        self._rng = Lcg(seed)
        self.channels = {}
        for n in board.CHANNELS:
            ch = ChannelLoad(n, board.CHANNELS[n])
            self.channels[n] = ch
            world.adc_source[ch.cfg["sense_adc"]] = self._sense_source(n)
        self.battery_mv = DEFAULT_BATTERY_MV
        world.adc_source[board.VSYS_ADC] = self._vsys
        self.usb_present = False
        world.gpio.drive_external(board.VBUS_SENSE, 0)
        self.trigger_down = False
        self.presses = []  # (name, press_cycle, release_cycle) of every press() scheduled
        self.oled = None
        try:
            from host_tools.sim import ssd1306_model
        except ImportError:
            ssd1306_model = None
        if ssd1306_model is not None and hasattr(board, "OLED_ADDR"):
            self.oled = ssd1306_model.SSD1306Model()
            world.i2c_devices[board.OLED_ADDR] = self.oled

    # ---- load model -------------------------------------------------------------------------
    def electrode(self, channel, connected):
        ch = self.channels[channel]
        ch.connected = bool(connected)
        ch._record(self.world.now)

    def load_ohm(self, channel, ohm):
        if ohm <= 0:
            raise ValueError("load must be > 0 ohm")
        ch = self.channels[channel]
        ch.load_ohm = ohm
        ch._record(self.world.now)

    def over_current(self, channel, on=True):
        ch = self.channels[channel]
        ch.fault = bool(on)
        ch._record(self.world.now)

    def command_for_duty(self, duty):
        b = self.board
        if duty <= 0:
            return 0.0
        vref = getattr(b, "DAC_VREF_V", 3.3)
        return b.DAC_MA_PER_VOLT * vref * duty / 65535 + b.DAC_OFFSET_MA

    def _actual(self, i_cmd, connected, load_ohm, fault):
        if fault:
            return i_cmd * 1.5 + 10.0
        if not connected:
            return 0.0
        limit = self.board.COMPLIANCE_V * 1000.0 / load_ohm
        return i_cmd if i_cmd < limit else limit

    def duty(self, channel, cycle=None):
        """DAC duty (u16 as played) of channel at cycle (default now)."""
        if cycle is None:
            cycle = self.world.now
        log = self.world.pwm_log.get(self.channels[channel].cfg["dac"])
        if not log:
            return 0
        i = _last_index_at_or_before(log, cycle)
        return log[i][1] if i >= 0 else 0

    def command_ma(self, channel, cycle=None):
        """Current the source is set to (mA, board calibration), whether or not it flows."""
        return self.command_for_duty(self.duty(channel, cycle))

    def delivered_ma(self, channel, cycle=None):
        """Peak current a pulse phase carries at cycle (default now) with the load of that moment:
        0 while the output is disabled or the electrode is off."""
        w = self.world
        if cycle is None:
            cycle = w.now
        if not w.gpio.level_at(self.board.OUTPUT_ENABLE, cycle):
            return 0.0
        ch = self.channels[channel]
        h = ch.history[_last_index_at_or_before(ch.history, cycle)]
        return self._actual(self.command_ma(channel, cycle), h[1], h[2], h[3])

    # ---- current sense ------------------------------------------------------------------------
    def _sense_source(self, n):
        def source(cycle):
            ma = self.sense_ma(n, cycle)
            return ma / self.board.SENSE_MA_PER_VOLT

        return source

    def _values_during(self, lst, s, e, default):
        """Entries of a (cycle, ...) list in force during [s, e): the one in force at s and every
        change before e. Scans from the end."""
        i = len(lst) - 1
        out = []
        while i >= 0 and lst[i][0] >= e:
            i -= 1
        while i >= 0:
            out.append(lst[i])
            if lst[i][0] <= s:
                break
            i -= 1
        if i < 0 and (not out or out[-1][0] > s):
            out.append(default)
        return out

    def sense_ma(self, n, cycle=None):
        """The peak detector of channel n at cycle (default now), in mA."""
        w = self.world
        if cycle is None:
            cycle = w.now
        w.sync()
        if self._hold_hz != w.sys_hz:
            self._hold_hz = w.sys_hz
            self._hold_cycles = w.cycles(self.hold_ms * 1_000_000)
        t0 = cycle - self._hold_cycles
        if t0 < 0:
            t0 = 0
        ch = self.channels[n]
        cfg = ch.cfg
        edges = w.gpio.edges
        # the steady case: no change of the output enable, the duty or the load state in the
        # window (t0, cycle]; then the reading is one value, or 0 if no leg was high in it
        lst = edges[self.board.OUTPUT_ENABLE]
        i = len(lst) - 1
        while i >= 0 and lst[i][0] > cycle:
            i -= 1
        if i < 0 or lst[i][0] <= t0:
            if i < 0 or not lst[i][1]:
                return 0.0  # output disabled through the whole window
            log = w.pwm_log.get(cfg["dac"])
            if log:
                k = len(log) - 1
                while k >= 0 and log[k][0] > cycle:
                    k -= 1
                duty = log[k][1] if k >= 0 else 0
                steady = k < 0 or log[k][0] <= t0
            else:
                duty = 0
                steady = True
            h = ch.history
            k = len(h) - 1
            while k >= 0 and h[k][0] > cycle:
                k -= 1
            if k < 0:
                k = 0  # (as the general path: the first state stands for the time before it)
            st = h[k]
            if steady and st[0] <= t0:
                if not self._leg_high_during(edges[cfg["leg_a"]], t0, cycle) and \
                        not self._leg_high_during(edges[cfg["leg_b"]], t0, cycle):
                    return 0.0
                a = self._actual(self.command_for_duty(duty), st[1], st[2], st[3])
                return a if a > 0.0 else 0.0
        return self._sense_general(n, cycle, t0)

    @staticmethod
    def _leg_high_during(lst, t0, cycle):
        """True if the pin of edge record `lst` was high at t0 or went high in (t0, cycle]
        (low before its first entry, as the general path takes it)."""
        i = len(lst) - 1
        while i >= 0 and lst[i][0] > cycle:
            i -= 1
        while i >= 0:
            if lst[i][1]:
                return True
            if lst[i][0] <= t0:
                return False
            i -= 1
        return False

    def _sense_general(self, n, cycle, t0):
        """sense_ma over any window: every segment where current flows, judged with each duty
        and load state in force during it."""
        w = self.world
        b = self.board
        ch = self.channels[n]
        g = w.gpio
        lists = (g.edges[b.OUTPUT_ENABLE], g.edges[ch.cfg["leg_a"]], g.edges[ch.cfg["leg_b"]])
        # level of each signal at t0 and the edges inside (t0, cycle]
        levels = [0, 0, 0]
        pending = []
        for k in range(3):
            lst = lists[k]
            i = _last_index_at_or_before(lst, t0)
            levels[k] = lst[i][1] if i >= 0 else 0
            j = len(lst) - 1
            while j > i and lst[j][0] > cycle:
                j -= 1
            for m in range(i + 1, j + 1):
                pending.append((lst[m][0], k, lst[m][1]))
        pending.sort()
        segments = []
        active_since = t0 if (levels[0] and (levels[1] or levels[2])) else None
        for c, k, v in pending:
            levels[k] = v
            now_active = levels[0] and (levels[1] or levels[2])
            if now_active and active_since is None:
                active_since = c
            elif not now_active and active_since is not None:
                if c > active_since:
                    segments.append((active_since, c))
                active_since = None
        if active_since is not None:
            segments.append((active_since, cycle + 1))
        if not segments:
            return 0.0
        log = w.pwm_log.get(ch.cfg["dac"]) or []
        peak = 0.0
        for s, e in segments:
            duties = self._values_during(log, s, e, (0, 0))
            states = self._values_during(ch.history, s, e, ch.history[0])
            for d in duties:
                i_cmd = self.command_for_duty(d[1])
                for st in states:
                    a = self._actual(i_cmd, st[1], st[2], st[3])
                    if a > peak:
                        peak = a
        return peak

    # ---- power ----------------------------------------------------------------------------------
    def _vsys(self, cycle):
        return self.battery_mv / 1000.0 / self.board.VSYS_DIVIDER

    def battery(self, mv):
        self.battery_mv = mv

    def usb(self, present):
        self.usb_present = bool(present)
        self.world.gpio.drive_external(self.board.VBUS_SENSE, 1 if present else 0)

    # ---- buttons and foot switch ------------------------------------------------------------
    def button_pin(self, name):
        return self.board.BUTTONS[name]

    def hold(self, name, down=True):
        """Hold a button down (or release it) now, without bounce (e.g. BACK at power-on)."""
        self.world.gpio.drive_external(self.button_pin(name), 0 if down else None)

    def _bounce_times(self, start, limit):
        """Sorted cycles of an even number (2 or 4) of toggles inside (start, limit)."""
        n = 2 + 2 * self._rng.next(2)
        span = limit - start
        times = []
        for _ in range(n):
            times.append(start + 1 + self._rng.next(span - 1 if span > 1 else 1))
        times.sort()
        return times

    def _schedule_toggles(self, pin, times, first):
        g = self.world.gpio
        level = first
        for c in times:
            self.world.schedule(c, self._driver(g, pin, level))
            level = None if level == 0 else 0

    def _driver(self, g, pin, level):
        return lambda: g.drive_external(pin, level)

    def press(self, name, hold_ms=100, bounce=True):
        """Press button `name` now for hold_ms, then release it. With bounce, the contact
        opens and closes again 1 or 2 times within BOUNCE_MS after the first touch, and closes
        and opens again 1 or 2 times within BOUNCE_MS after the release (3 or 5 transitions
        each; deterministic, seeded), settling on the final level. Returns (press_cycle,
        release_cycle)."""
        w = self.world
        pin = self.button_pin(name)
        t0 = w.now
        t1 = t0 + w.cycles(int(hold_ms * 1_000_000))
        g = w.gpio
        self.presses.append((name, t0, t1))
        g.drive_external(pin, 0)
        if bounce:
            lim = t0 + w.cycles(BOUNCE_MS * 1_000_000)
            if lim > t1:
                lim = t1
            if lim - t0 > 4:
                self._schedule_toggles(pin, self._bounce_times(t0, lim), None)
        w.schedule(t1, self._driver(g, pin, None))
        if bounce:
            lim = t1 + w.cycles(BOUNCE_MS * 1_000_000)
            self._schedule_toggles(pin, self._bounce_times(t1, lim), 0)
        return t0, t1

    def trigger(self, down):
        """Foot switch (active low): True presses it, False releases it."""
        self.trigger_down = bool(down)
        self.world.gpio.drive_external(self.board.TRIGGER, 0 if down else None)

    # ---- traces ---------------------------------------------------------------------------------
    def snapshot(self):
        out = {"battery_mv": self.battery_mv, "usb": self.usb_present,
               "trigger": self.trigger_down, "channels": {}}
        for n in self.channels:
            ch = self.channels[n]
            out["channels"][n] = {
                "command_ma": self.command_ma(n),
                "delivered_ma": self.delivered_ma(n),
                "connected": ch.connected,
                "load_ohm": ch.load_ohm,
                "over_current": ch.fault,
            }
        return out
