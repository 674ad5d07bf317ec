# The application: builds the unit from its board config and runs the fixed-rate cooperative loop.
#
#   buttons.poll -> ui.handle(events) -> session.tick -> ui.update -> supervisor.apply
#   -> supervisor.tick (current sense, battery, USB, loop timing) -> pulse updates -> render -> WDT
#
# The loop is deterministic: every decision depends on ticks_ms() read once per tick, so the
# simulation replays a session exactly. The watchdog is fed at the end of a tick that completed;
# a hang anywhere stops the feeding and the chip resets with its output off (SAFETY rule 6).
from micropython import const
import micropython
import time
from machine import I2C, WDT, Pin

import buttons
import output_stage
import programs
import safety
import session
import settings
import ssd1306
import ui

TICK_MS = const(10)  # loop period (buttons are sampled twice per tick: see ui_step)
WDT_TIMEOUT_MS = const(1000)  # a loop stalled this long resets the chip
TRIGGER_STABLE_TICKS = const(2)  # foot switch debounce: 20 ms low

current = None  # the running App (for the REPL: `import app; app.current.sup.state`)

# the STOP handler is a hard IRQ: an exception inside one can only be reported from this buffer
micropython.alloc_emergency_exception_buf(100)


class Power:
    """Battery and USB as the UI wants them."""

    def __init__(self, stage, board):
        self._stage = stage
        self._lo = getattr(board, "BATTERY_CUTOFF_MV", 3300)
        self._hi = getattr(board, "BATTERY_FULL_MV", 4150)

    def battery_mv(self):
        return self._stage.battery_mv()

    def battery_pct(self):
        mv = self._stage.battery_mv()
        pct = (mv - self._lo) * 100 // (self._hi - self._lo)
        return 0 if pct < 0 else (100 if pct > 100 else pct)

    def usb_present(self):
        return self._stage.usb_present()


class App:
    def __init__(self, board, root="", watchdog=True):
        global current
        self.board = board
        # Output stage first: its constructor drives enable low and every DAC to 0.
        self.stage = output_stage.OutputStage(board)
        # The pulse engine owns the board's pulse limits: programs are checked against them
        # where they are loaded (below) or edited, never refused only at start.
        programs.set_pulse_check(self.stage.check_pulse)
        self.store = settings.Store(root)
        self.settings = self.store.load_settings()
        self.sup = safety.SafetySupervisor(self.stage, board, self.settings)
        self.buttons = buttons.Buttons.from_board(board)
        # STOP fast path: the edge itself cuts the output (a hard IRQ where the port has them),
        # whatever the loop is doing; its level blocks any start and any output while it is down.
        self._stop_pin = Pin(board.BUTTONS["stop"], Pin.IN, Pin.PULL_UP)
        self.sup.attach_stop(self._stop_pin, getattr(board, "STOP_IRQ_HARD", True))
        self._trigger = Pin(board.TRIGGER, Pin.IN, Pin.PULL_UP)
        self._trigger_low = 0
        self.i2c = I2C(board.I2C_ID, scl=Pin(board.I2C_SCL), sda=Pin(board.I2C_SDA),
                       freq=board.I2C_HZ)
        self.display = ssd1306.SSD1306_I2C(board.OLED_WIDTH, board.OLED_HEIGHT, self.i2c,
                                           board.OLED_ADDR)
        self.display.contrast(self.settings.get("contrast", 128))
        progs = list(programs.PRESETS) + self.store.load_programs()
        self.power = Power(self.stage, board)
        self.ui = ui.UI(self._new_session, self.sup, self.store, progs, power=self.power,
                        display=self.display, now_ms=time.ticks_ms())
        self.ticks = 0
        self.overruns = 0
        self.wdt = WDT(timeout=WDT_TIMEOUT_MS) if watchdog else None
        current = self

    def _new_session(self, program):
        scale = 1.0
        if self.settings.get("first_sessions_half", False):
            summary = self.store.usage_summary()
            if summary.get("sessions", 0) < self.settings.get("half_sessions", 3):
                scale = 0.5  # tolerance practice: the first sessions at half program
        return session.Session(program, channels=2, intensity_scale=scale)

    def step(self, now_ms):
        """One loop tick. Allocation-free in steady stimulation (measured: docs/performance.md)."""
        self.buttons.poll(now_ms)
        self._handle_events(now_ms)
        u = self.ui
        self._poll_trigger(now_ms)
        s = u.session
        out = s.tick(now_ms) if s is not None else None
        u.update(now_ms, out)
        sup = self.sup
        if out is not None and u.session is not None:
            sup.apply(out, now_ms)
        sup.tick(now_ms)
        self.stage.service()
        if u.render(self.display):
            self.display.show()
        if self.wdt is not None:
            self.wdt.feed()
        self.ticks += 1

    def _poll_trigger(self, now_ms):
        if self._trigger.value() == 0:
            self._trigger_low += 1
            if self._trigger_low == TRIGGER_STABLE_TICKS and self.ui.session is not None:
                self.ui.session.trigger(now_ms)
        else:
            self._trigger_low = 0

    def ui_step(self, now_ms):
        """Half-way through a tick: sample the buttons again and, if a press came, answer it on
        the screen at once (the session and supervisor act on it at the next full tick, at most
        5 ms later). Halves the press-to-screen time; allocation-free when nothing is pressed."""
        if not self.buttons.poll(now_ms):
            return
        self._handle_events(now_ms)
        if self.ui.render(self.display):
            self.display.show()

    def _handle_events(self, now_ms):
        b = self.buttons
        u = self.ui
        ev = b.get()
        while ev:
            u.handle(ev, now_ms)
            ev = b.get()

    def run(self):
        deadline = time.ticks_ms()
        half = TICK_MS // 2
        while True:
            self.step(time.ticks_ms())
            deadline = time.ticks_add(deadline, TICK_MS)
            wait = time.ticks_diff(deadline, time.ticks_ms())
            if wait > half:
                time.sleep_ms(wait - half)
                self.ui_step(time.ticks_ms())
                wait = time.ticks_diff(deadline, time.ticks_ms())
            if wait > 0:
                time.sleep_ms(wait)
            else:
                self.overruns += 1
                deadline = time.ticks_ms()  # late: restart the grid, never catch up in bursts


def show_error(display, exc):
    """The error screen after an uncaught exception (output is already off)."""
    if display is None:
        return
    try:
        display.poweron()
        display.fill(0)
        display.text("ERROR", 0, 0, 1)
        name = type(exc).__name__
        display.text(name[:16], 0, 16, 1)
        msg = str(exc)
        display.text(msg[:16], 0, 26, 1)
        display.text(msg[16:32], 0, 36, 1)
        display.text("OUTPUT OFF", 0, 48, 1)
        display.text("OK: restart", 0, 56, 1)
        display.show(True)
    except Exception:  # noqa: BLE001 - the display itself may be what failed
        pass
