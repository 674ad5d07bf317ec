# Stand-in for MicroPython's `esp32` module: the RMT transmitter (MicroPython 1.25+ API on
# ESP-IDF 5, ports/esp32/esp32_rmt.c), modelled to its tick on the simulated world.
#
# Common subset of CPython 3.11 and MicroPython 1.29.
#
# Time base. The ESP32 world counts w.now in cycles of the RMT source clock (APB, 80 MHz: 12.5 ns);
# the CPU runs at 240 MHz (machine.freq() reports w.cpu_hz). A channel's tick is `div` source
# cycles, div = round(80 MHz / resolution_hz) in 1..255 (the 8-bit channel divider; IDF rounds the
# same way and runs at 80 MHz / div, "resolution loss" otherwise).
#
# What is modelled (each item is what ports/esp32/esp32_rmt.c + ESP-IDF 5 do on the original ESP32):
# - RMT(channel=-1, *, pin, resolution_hz=10 MHz | clock_div, idle_level, num_symbols=64,
#   tx_carrier): 8 TX channels, 512 symbols of channel memory in blocks of 64 (num_symbols even,
#   >= 64; a channel takes ceil(num_symbols / 64) blocks). Creating the channel connects the pin to
#   the RMT (GPIO matrix) and drives the idle level.
# - write_pulses(duration, data): the three modes; durations 1..32767 ticks (PULSE_MAX); pairs of
#   halves form symbols; an odd count leaves duration1 = 0 in the last symbol (the end marker). If
#   the channel is enabled, the call first waits for every transmission to finish
#   (rmt_tx_wait_all_done(-1)); with an infinite loop running that wait never ends: the model
#   raises RuntimeError instead of hanging. Looping needs the whole pattern plus the end marker in
#   the channel memory ("encoding artifacts can't exceed hw memory block for loop transmission");
#   a finite loop_count > 0 is not supported on the original ESP32 (no TX loop counter).
# - Timing: the call costs WRITE_PULSES_NS of CPU time; the transmission starts when the call has
#   handed the symbols to the hardware, i.e. at the end of the call. Two channels started by two
#   consecutive calls are therefore WRITE_PULSES_NS apart: the skew a pulse engine must compensate.
#   This is the model's assumption (40 us: MicroPython call, list conversion, rmt_enable,
#   rmt_transmit at 240 MHz); calibrate it on a board with a scope (docs/performance.md).
# - Output: each half drives its level for duration x div source cycles, exactly; a loop wraps
#   with no gap; at the end of a transmission the pin goes to the idle level (eot_level).
# - loop(False) / loop_count(0) / active(False) / deinit() while a loop runs: rmt_disable(). The
#   original ESP32 has no asynchronous TX stop, so IDF disables looping, plants an end marker and
#   busy-waits, interrupts off, until the current iteration ends: the call blocks the CPU (virtual
#   time advances) until then. Blocks longer than IWDT_NS are recorded as world events
#   ("rmt_disable_iwdt") because they trip the interrupt watchdog on a real ESP32
#   (esp-idf issue 17692, quoted in esp32_rmt.c).
# - Not modelled: tx_carrier (raises NotImplementedError), receive, bitstream, the divider's
#   phase (a transmission starts exactly at the cycle the call hands it over).

from host_tools.sim import world as _world
from host_tools.sim import gpio as _gpio

SOURCE_HZ = 80_000_000
N_CHANNELS = 8
MEM_SYMBOLS = 512
BLOCK_SYMBOLS = 64
PULSE_MAX = 32767
WRITE_PULSES_NS = 40_000  # model assumption: CPU time of one write_pulses() call
IWDT_NS = 300_000_000  # rmt_disable busy-waits longer than this trip the interrupt watchdog

# Speed (the same edges either way): a transmission plays its halves with equal neighbours merged,
# and what it drives between two looks reaches the GPIO bank in one set_levels() call. False:
# half by half, one set_level() each (tests/test_sim_batched.py compares the two).
BATCHED = True
# A look (run_until) before the next half is due and before the transmission's end returns at
# once. False: it goes through the steps, which then change nothing (tests/test_sim_esp32.py
# compares the two, reading the pins and the channels at every cycle a half starts).
SKIP_IDLE_LOOKS = True

WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


def _pin_id(pin):
    if isinstance(pin, int):
        return pin
    pid = getattr(pin, "id", None)
    if isinstance(pid, int):
        return pid
    raise ValueError("invalid pin")


class _Pool:
    """RMT channels and symbol memory of one world."""

    def __init__(self, w):
        self.world = w
        self.channels = []

    def blocks_used(self):
        n = 0
        for ch in self.channels:
            n += ch._blocks
        return n

    def run_until(self, cycle):
        for ch in self.channels:
            ch._run_until(cycle)


def _pool(w):
    p = getattr(w, "esp32_rmt", None)
    if p is None:
        p = _Pool(w)
        w.esp32_rmt = p
        w.peripherals.append(p)
    return p


class RMT:
    PULSE_MAX = PULSE_MAX

    def __init__(self, channel=-1, *, pin=None, resolution_hz=None, clock_div=None,
                 idle_level=False, num_symbols=BLOCK_SYMBOLS, tx_carrier=None):
        if pin is None:
            raise TypeError("'pin' argument required")
        w = _world.current()
        self.world = w
        if resolution_hz is not None and clock_div is not None:
            raise ValueError("resolution_hz and clock_div are mutually exclusive")
        if clock_div is not None:
            clock_div = int(clock_div)
            if clock_div < 1 or clock_div > 255:
                raise ValueError("clock_div must be between 1 and 255")
            resolution_hz = SOURCE_HZ // clock_div
        elif resolution_hz is None:
            resolution_hz = 10_000_000
        resolution_hz = int(resolution_hz)
        if resolution_hz <= 0:
            raise ValueError("resolution_hz must be positive")
        div = (SOURCE_HZ + resolution_hz // 2) // resolution_hz
        if div < 1 or div > 255:
            raise ValueError("resolution_hz %d out of reach of the 8-bit divider" % resolution_hz)
        num_symbols = int(num_symbols)
        if num_symbols < BLOCK_SYMBOLS or num_symbols % 2:
            raise ValueError("num_symbols must be even and at least %d" % BLOCK_SYMBOLS)
        if tx_carrier is not None:
            raise NotImplementedError("RMT tx_carrier is not modelled")
        pool = _pool(w)
        blocks = (num_symbols + BLOCK_SYMBOLS - 1) // BLOCK_SYMBOLS
        free_blocks = MEM_SYMBOLS // BLOCK_SYMBOLS - pool.blocks_used()
        if len(pool.channels) >= N_CHANNELS or blocks > free_blocks:
            raise OSError(261, "ESP_ERR_NOT_FOUND")  # no free channel / memory
        self.pin = _pin_id(pin)
        w.gpio._check(self.pin)
        self.div = div
        self.resolution_hz = SOURCE_HZ // div
        self.idle_level = 1 if idle_level else 0
        self.num_symbols = num_symbols
        self._blocks = blocks
        self._loop_count = 0
        self._enabled = False
        self._tx = None  # current transmission (see _start)
        self._pool = pool
        pool.channels.append(self)
        g = w.gpio
        g.set_level(self.pin, self.idle_level, w.now, _gpio.RMT)
        g.set_dir(self.pin, True, w.now, _gpio.RMT)
        g.set_function(self.pin, _gpio.RMT)

    def __repr__(self):
        if self.pin == -1:
            return "RMT()"
        return "RMT(pin=%d, source_freq=%d, resolution_hz=%d, idle_level=%d)" % (
            self.pin, SOURCE_HZ, self.resolution_hz, self.idle_level)

    # ---- class-level -------------------------------------------------------------------
    @staticmethod
    def source_freq():
        return SOURCE_HZ

    @staticmethod
    def bitstream_rmt(value=None):
        return False

    # ---- helpers ---------------------------------------------------------------------
    def _check_alive(self):
        if self.pin == -1:
            raise OSError("already deinitialized")

    def _ongoing(self):
        self.world.sync()
        return self._tx is not None

    def _iteration_end(self):
        """Cycle at which the current loop iteration (or the whole transmission) ends."""
        tx = self._tx
        now = self.world.now
        if tx["end"] is not None:
            return tx["end"]
        L = tx["length"]
        k = (now - tx["start"]) // L
        end = tx["start"] + k * L
        if end < now or end == tx["start"]:
            end += L
        return end

    def _block_until(self, cycle, why):
        w = self.world
        if cycle - w.now > w.cycles(IWDT_NS) and why == "disable":
            w.event("rmt_disable_iwdt", pin=self.pin,
                    block_ns=(cycle - w.now) * 1_000_000_000 // w.sys_hz)
        w.advance_to(cycle)
        w.sync()

    def _deactivate(self):
        if not self._enabled:
            return
        if self._ongoing():
            tx = self._tx
            end = self._iteration_end()
            tx["end"] = end
            tx["loop"] = False
            self._block_until(end, "disable")
        self._enabled = False

    def _run_until(self, cycle):
        tx = self._tx
        if tx is None or self.pin == -1:
            return
        end = tx["end"]
        if SKIP_IDLE_LOOKS and tx["t"] > cycle and (end is None or end > cycle):
            return  # nothing due by `cycle` (the steps below would change nothing)
        g = self.world.gpio
        halves = tx["halves"]
        n = len(halves)
        end = tx["end"]
        t = tx["t"]
        i = tx["i"]
        div = self.div
        run = []  # (cycle, level) of the halves up to `cycle`
        while t <= cycle and (end is None or t < end):
            lvl, d = halves[i]
            run.append((t, lvl))
            t += d * div
            i += 1
            if i == n:
                i = 0
                if not tx["loop"] and end is None:
                    end = t
                    tx["end"] = end
        if BATCHED and not g.listeners and g.irq[self.pin] is None:
            g.set_levels(self.pin, run, _gpio.RMT)  # in one GPIO call: nobody to call back
        else:
            for c, lvl in run:
                g.set_level(self.pin, lvl, c, _gpio.RMT)
        tx["t"] = t
        tx["i"] = i
        if end is not None and end <= cycle:
            g.set_level(self.pin, self.idle_level, end, _gpio.RMT)
            self._tx = None

    # ---- API -------------------------------------------------------------------------
    def clock_div(self):
        self._check_alive()
        return self.div

    def loop(self, enable_loop):
        self._check_alive()
        self._loop_in(-1 if enable_loop else 0)

    def loop_count(self, n):
        self._check_alive()
        n = int(n)
        if n < -1:
            raise ValueError("arg must be -1, 0 or positive")
        self._loop_in(n)

    def _loop_in(self, n):
        if self._enabled and self._ongoing() and self._loop_count != 0 and n == 0:
            self._deactivate()
        self._loop_count = n

    def active(self, *args):
        self._check_alive()
        if not args:
            return self._enabled and self._ongoing()
        if args[0]:
            raise ValueError("activate by calling write_pulses()")
        self._deactivate()
        return False

    def wait_done(self, *, timeout=0):
        self._check_alive()
        if not self._enabled:
            return True
        if not self._ongoing():
            return True
        if timeout == 0:
            return False
        tx = self._tx
        w = self.world
        if tx["end"] is None and tx["loop"]:
            if timeout < 0:
                raise RuntimeError("RMT.wait_done(timeout=-1) with an infinite loop never returns")
            self._block_until(w.now + w.cycles(timeout * 1_000_000), "wait")
            return False
        end = tx["end"]
        if timeout > 0 and end > w.now + w.cycles(timeout * 1_000_000):
            self._block_until(w.now + w.cycles(timeout * 1_000_000), "wait")
            return False
        self._block_until(end, "wait")
        return True

    def deinit(self):
        if self.pin == -1:
            return
        self._deactivate()
        g = self.world.gpio
        g.set_dir(self.pin, False, self.world.now, _gpio.RMT)
        if g.func[self.pin] == _gpio.RMT:
            g.set_function(self.pin, None)
        self._pool.channels.remove(self)
        self._tx = None
        self.pin = -1

    def write_pulses(self, duration, data=True):
        self._check_alive()
        w = self.world
        if self._enabled:
            if self._ongoing():
                tx = self._tx
                if tx["end"] is None and tx["loop"]:
                    raise RuntimeError(
                        "write_pulses() while an infinite loop runs waits forever "
                        "(rmt_tx_wait_all_done(-1)): stop the loop first")
                self._block_until(tx["end"], "wait")
        else:
            self._enabled = True
        if isinstance(data, (list, tuple)):
            if isinstance(duration, int):  # mode 2
                durs = [duration] * len(data)
            else:  # mode 3
                durs = list(duration)
                if len(durs) != len(data):
                    raise ValueError("duration and data must have same length")
            levels = [1 if x else 0 for x in data]
        else:  # mode 1
            durs = list(duration)
            lvl = 1 if data else 0
            levels = []
            for _ in durs:
                levels.append(lvl)
                lvl ^= 1
        if not durs:
            raise ValueError("No pulses")
        halves = []
        runs = []  # the halves with consecutive equal levels merged (what the pin shows)
        total = 0
        for k in range(len(durs)):
            d = int(durs[k])
            if d < 1 or d > PULSE_MAX:
                raise ValueError("duration %d outside 1..%d ticks" % (d, PULSE_MAX))
            lvl = levels[k]
            halves.append((lvl, d))
            if runs and runs[-1][0] == lvl:
                runs[-1] = (lvl, runs[-1][1] + d)
            else:
                runs.append((lvl, d))
            total += d
        symbols = (len(halves) + 1) // 2
        loop = self._loop_count
        if loop > 0:
            raise OSError(262, "ESP_ERR_NOT_SUPPORTED: loop count is not supported on ESP32")
        if loop != 0 and symbols + 1 > self.num_symbols:
            raise OSError(258, "ESP_ERR_INVALID_ARG: encoding artifacts can't exceed hw memory "
                               "block for loop transmission (%d + 1 > %d symbols)"
                          % (symbols, self.num_symbols))
        # the call's CPU time, then the hardware starts
        w.advance_to(w.now + w.cycles(WRITE_PULSES_NS))
        w.sync()
        start = w.now
        # the transmission plays `runs`: a half of the level the pin already has changes nothing
        # (the same edges as half by half; tests/test_sim_batched.py compares the two)
        self._tx = {"halves": runs if BATCHED else halves, "length": total * self.div,
                    "start": start, "loop": loop != 0,
                    "end": None if loop != 0 else start + total * self.div, "t": start, "i": 0}
        self._run_until(start)


# ---- other esp32 module members used by device code -----------------------------------------

def raw_temperature():
    return 120  # degrees F, about 49 degC: a plausible idle die temperature


def wake_on_ext0(pin, level):
    pass


def wake_on_ext1(pins, level):
    pass


class NVS:
    def __init__(self, namespace):
        self._d = {}

    def set_i32(self, key, value):
        self._d[key] = int(value)

    def get_i32(self, key):
        if key not in self._d:
            raise OSError(-4354, "ESP_ERR_NVS_NOT_FOUND")
        return self._d[key]

    def erase_key(self, key):
        self._d.pop(key)

    def commit(self):
        pass
