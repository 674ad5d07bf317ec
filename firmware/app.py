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
import machine
from machine import I2C, PWM, WDT, Pin

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
TRIGGER_STABLE_TICKS = const(2)  # foot switch debounce: the same level for 2 ticks (20 ms)
PRACTICE_MIN_MS = const(300000)  # a session counts as practice done with >= 5 min stimulated
BEEP_HZ = const(2700)            # piezo on board.BUZZER (docs/hardware.md): its resonance
BEEP_KEY_MS = const(15)          # a key click
BEEP_LONG_MS = const(300)        # session end, a fault or an alert

# how a session ended, from the supervisor's stop reason or fault kind (history "end")
_END_OF_REASON = {"stop_button": "stop", "pause": "back", "user": "back", "done": "done",
                  "session_done": "done", "low_battery": "battery", "usb_power": "usb",
                  "stop_held": "stop"}
_END_OF_FAULT = {"low_battery": "battery", "usb_power": "usb", "stop_held": "stop"}

current = None  # the running App (for the REPL: `import app; app.current.sup.state`)

# Host simulation only (host_tools/scenario_core.py sets it; None on the device): called as
# sim_skip(app, half) at each loop tick (half False) and, for a tick it left out, at its half
# tick (half True); True leaves that step out because App.quiet_ms() said it would only repeat
# the last one and the simulation saw every input unchanged. Before answering False after
# leaving ticks out it calls App.skipped(). Proven equal to running every tick on recorded
# scenarios by tests/test_sim_skip.py.
sim_skip = None

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
        # a session cut by a reset or a power cut: its marker becomes a history record
        self.recovered = self._record_cut_session()
        self._mark_for = None         # the Session whose marker is on flash (see _new_session)
        self.mark_bytes = 0           # bytes of the last marker written (measured in tests)
        self.sup = safety.SafetySupervisor(self.stage, board, self.settings)
        self.buttons = buttons.Buttons.from_board(board)
        # STOP fast path: the edge itself cuts the output (a hard IRQ where the port has them),
        # whatever the loop is doing; its level blocks any start and any output while it is down.
        self._stop_pin = Pin(board.BUTTONS["stop"], Pin.IN, Pin.PULL_UP)
        self.sup.attach_stop(self._stop_pin, getattr(board, "STOP_IRQ_HARD", True))
        # foot / hand switch (board.TRIGGER, pull-up: closed = low); the settings' switch_nc
        # says a pressed switch (heel on the ground, hand switch held) opens the contact
        self._trigger = Pin(board.TRIGGER, Pin.IN, Pin.PULL_UP)
        self._sw_raw = False          # closed at the last sample
        self._sw_same = 0             # ticks the raw level has been the same
        self._sw_closed = False       # debounced
        self._buzzer = None
        self._beep_until = 0
        self._beeping = False
        if getattr(board, "BUZZER", None) is not None:
            self._buzzer = PWM(Pin(board.BUZZER, Pin.OUT), freq=BEEP_HZ, duty_u16=0)
        self.asleep = False           # auto-off: output off, the sleep screen, any key wakes
        self.i2c = I2C(board.I2C_ID, scl=Pin(board.I2C_SCL), sda=Pin(board.I2C_SDA),
                       freq=board.I2C_HZ)
        self.display = ssd1306.SSD1306_I2C(board.OLED_WIDTH, board.OLED_HEIGHT, self.i2c,
                                           board.OLED_ADDR)
        self.display.contrast(self.settings.get("contrast", 128))
        progs = list(programs.PRESETS) + self.store.load_programs()
        self.power = Power(self.stage, board)
        # EMG input (issue 10, lib/emg.py): sampled only while an EMG screen or program needs it,
        # blanked around the pulses of both channels; its menu and trigger logic: emg_ui.py.
        # Built when the EMG menu is first opened (_make_emg): its four modules are 15 % of the
        # boot on the RP2040 (docs/performance.md), and most sessions never use it.
        self.emg = None
        self.emgc = None
        self._root = root
        # (now_ms: ticks are ints on MicroPython; the stubs make them an opaque type)
        self.ui = ui.UI(self._new_session, self.sup, self.store, progs, power=self.power,
                        display=self.display,
                        emg_factory=self._make_emg if hasattr(board, "EMG_ADC") else None,
                        now_ms=time.ticks_ms())  # pyright: ignore[reportArgumentType]
        # the session being recorded for the history (see _track)
        self._rec = None
        self._rec_running = False
        self._rec_cause = ""
        self._rec_faults = []
        self._rec_nfaults = 0
        self._rec_ms = 0
        self._rec_last = 0
        self._rec_wait = False
        self._rec_peak = [0.0, 0.0, 0.0]
        self.last_record = None
        # called with each stored history record (dict with its number n), e.g. for the EMG
        # fields of the same session: app.on_record = lambda r: emg.record_history(r["n"], ...)
        # (the EMG controller's once it is built)
        self.on_record = None
        self._seen_faults = 0
        # the menu edits the UI's settings dict: read the live one (switch_nc, sound, auto-off)
        self.settings = self.ui.settings
        self.ticks = 0
        self.overruns = 0
        self.wdt = WDT(timeout=WDT_TIMEOUT_MS) if watchdog else None
        current = self

    def _make_emg(self):
        """The EMG input and its controller, at the EMG menu's first opening (the UI calls it)."""
        import emg
        import emg_ui

        self.emg = emg.Emg(self.board)
        for n in self.board.CHANNELS:
            self.emg.watch(self.stage.pulses(n))
        c = self.emgc = emg_ui.EmgControl(self.emg, self._root, programs.EMG_PRESETS)
        c.now_ms = self.ui.now_ms
        if self.on_record is None:
            self.on_record = c.on_record
        return c

    def _new_session(self, program):
        """The UI's session factory. Tolerance practice: while fewer than half_sessions sessions
        of any program have had >= 5 min stimulated (PRACTICE_MIN_MS; ended however), the
        session runs at half intensity. A program with a progression (shoulder) plays the step
        of its counted sessions // step_sessions (settings.Store.counted_sessions)."""
        scale = 1.0
        hist = self.store.load_history()
        if self.settings.get("first_sessions_half", False):
            done = settings.counted_sessions(hist, None, PRACTICE_MIN_MS / 60000)
            if done < self.settings.get("half_sessions", 3):
                scale = 0.5  # tolerance practice: the first sessions at half program
        if program.progression:
            n = settings.counted_sessions(hist, program.key, PRACTICE_MIN_MS / 60000)
            program = program.at_step(n // program.step_sessions)
        s = session.Session(program, channels=2, intensity_scale=scale)
        # switch-driven programs (gait, hold, a foot-switch burst program): the supervisor keeps
        # the output stage off while the session waits for its switch. An EMG-triggered session
        # keeps its trains at 0 mA while it waits (its front end and tests were built on that).
        self.sup.park_on_wait = (program.trigger is not None
                                 or (program.triggered and not programs.is_emg(program)))
        # The marker of this session, on flash before the supervisor first enables the output
        # (UI.start calls this factory, then Supervisor.start): a reset or power cut from here
        # on leaves it, and the next boot records the session (_record_cut_session).
        self._mark(s, program.key[:16], (hist[-1]["n"] + 1) if hist else 1)
        return s

    def _mark(self, s, key, n):
        self._mark_for = None
        try:
            self.mark_bytes = self.store.mark_session(key, n)
            self._mark_for = s
        except Exception as e:  # noqa: BLE001 - flash full: the session runs, unmarked
            print("history: session marker not written (%r): a reset during this session "
                  "will leave no record" % (e,))
        # the write held the loop (a littlefs compaction erases: ~100 ms): the supervisor's
        # start, which follows in this tick, counts its first loop gap from now
        self.sup.held_until(time.ticks_ms())

    def _unmark(self):
        self._mark_for = None
        try:
            self.store.clear_mark()
        except Exception:  # noqa: BLE001 - read at the next boot: discarded if recorded
            pass

    def _record_cut_session(self):
        """At boot: a marker left on flash is a session that a reset (watchdog, machine.reset)
        or a power cut ended: one history record, end "reset", with what is known (the program;
        minutes, peak mA and contractions null: nothing is written while the output runs;
        faults ["watchdog"] after a watchdog reset). A marker whose record was already written
        (a cut between the record and the marker's removal) is dropped; a corrupt one is
        discarded with a console line. Never raises. Returns the record or None."""
        st = self.store
        try:
            m = st.read_mark()
        except Exception as e:  # noqa: BLE001 - ValueError (corrupt), OSError (unreadable)
            print("history: session marker %s unreadable (%s): discarded, no record made"
                  % (settings.MARK_FILE, e))
            self._unmark_boot()
            return None
        if m is None:
            return None
        key, n = m
        r = None
        try:
            hist = st.load_history()
            if hist and hist[-1]["n"] >= n:
                print("history: session marker of %s #%d already recorded: removed" % (key, n))
            else:
                wdt = machine.reset_cause() == machine.WDT_RESET
                r = st.append_session({"program": key, "minutes": None, "max_ma": None,
                                       "contractions": None, "end": "reset",
                                       "faults": ["watchdog"] if wdt else []})
                print("history: a session of %s was cut by a %s; recorded as #%d, end reset, "
                      "minutes not known" % (key, "watchdog reset" if wdt else "reset or power "
                                             "cut", r["n"]))
        except Exception as e:  # noqa: BLE001 - flash full or failing: boot goes on
            print("history: the record of a session cut by a reset was not written (%r)" % (e,))
        self._unmark_boot()
        return r

    def _unmark_boot(self):
        try:
            self.store.clear_mark()
        except Exception:  # noqa: BLE001
            pass

    # --- history: every session, however it ended ---------------------------------------------
    def _track(self, now_ms):
        """Once per tick after the UI and the session: follows the UI's session and the
        supervisor; when the session the UI started is gone (done, STOP, BACK, a refused start)
        its record goes to the history. Integer work and float compares only while running."""
        s = self.ui.session
        sup = self.sup
        rec = self._rec
        running = sup.state == "running"
        if rec is not None:
            if running:
                if not self._rec_wait:  # the output was on since the last tick (a switch-driven
                    #                     session waiting for its switch: off, not counted)
                    self._rec_ms += time.ticks_diff(now_ms, self._rec_last)
                pk = self._rec_peak
                for ch in (1, 2):
                    ma = sup.played_ma(ch)   # what the DAC plays: the screen's mA
                    if ma > pk[ch]:
                        pk[ch] = ma
            elif self._rec_running:
                self._rec_cause = self._stop_cause()  # the output stopped: why
            nf = len(sup.faults)
            if nf != self._seen_faults:
                self._note_faults(nf)
            if s is not rec:
                self._finish(rec)
                rec = None
        elif s is None and self._mark_for is not None:
            self._unmark()            # a start refused (or a factory error): no session ran
        if s is not None and rec is None:
            self._rec = s
            self._rec_cause = ""
            self._rec_faults = []
            self._rec_ms = 0
            self._rec_peak = [0.0, 0.0, 0.0]
            self._seen_faults = len(sup.faults)
            self._note_faults(self._seen_faults)
        self._rec_running = running and self._rec is not None
        self._rec_wait = sup.waiting
        self._rec_last = now_ms

    def _note_faults(self, nf):
        faults = self.sup.faults
        new = nf - self._seen_faults
        if new > 0:
            for f in faults[len(faults) - new:]:
                if f.kind not in self._rec_faults:
                    self._rec_faults.append(f.kind)
                self.beep(BEEP_LONG_MS)
        self._seen_faults = nf

    def _stop_cause(self):
        sup = self.sup
        if sup.state == "fault":
            f = sup.faults[-1] if sup.faults else None
            return _END_OF_FAULT.get(f.kind, "fault") if f is not None else "fault"
        return _END_OF_REASON.get(sup.stop_reason, "stop")

    def _finish(self, s):
        self._rec = None
        if s.completed:
            end = "done"
        elif self._rec_cause:
            end = self._rec_cause
        else:
            end = _END_OF_REASON.get(self.sup.stop_reason, "back")
        pk = self._rec_peak
        r = {"program": s.program.key[:16], "minutes": ((self._rec_ms + 3000) // 6000) / 10,
             "max_ma": [round(pk[1], 1), round(pk[2], 1)], "contractions": s.contractions,
             "end": end, "faults": self._rec_faults[:8]}
        if s.completed:
            self.beep(BEEP_LONG_MS)
        try:
            self.last_record = self.store.append_session(r)
        except Exception:  # noqa: BLE001 - flash full or failing: the session is over anyway
            self.last_record = r
        if self._mark_for is s:
            self._unmark()            # after the record: a cut in between leaves both (boot
            #                           drops a marker whose record is there)
        if self.on_record is not None:
            self.on_record(self.last_record)

    def session_running_record(self):
        """The record the running session would get now (tests, the REPL)."""
        return (self._rec_ms, list(self._rec_peak), list(self._rec_faults), self._rec_cause)

    # --- buzzer and auto-off ------------------------------------------------------------------
    def beep(self, ms):
        """A beep of ms on the piezo when the settings' sound is on (board.BUZZER)."""
        b = self._buzzer
        if b is None or not self.settings.get("sound", True):
            return
        b.duty_u16(32768)
        self._beeping = True
        self._beep_until = time.ticks_add(time.ticks_ms(), ms)

    def _beep_tick(self, now_ms):
        b = self._buzzer
        if b is not None and time.ticks_diff(now_ms, self._beep_until) >= 0:
            b.duty_u16(0)
            self._beeping = False

    def _sleep(self):
        """Auto-off (settings auto_off_min idle minutes, no session): output off, sleep screen."""
        self.asleep = True
        self.sup.emergency_off()
        d = self.display
        d.fill(0)
        d.text("Sleeping", 0, 0, 1)
        d.text("output off", 0, 16, 1)
        d.text("idle %d min" % self.settings.get("auto_off_min", 0), 0, 24, 1)
        d.text("any key: wake", 0, 56, 1)
        d.contrast(1)
        d.show()

    def _wake(self):
        self.asleep = False
        self.ui.power_off_requested = False
        self.display.contrast(self.settings.get("contrast", 128))

    def step(self, now_ms):
        """One loop tick. Allocation-free in steady stimulation (measured: docs/performance.md)."""
        self.buttons.poll(now_ms)
        self._handle_events(now_ms)
        u = self.ui
        self._poll_trigger(now_ms)
        if self.emgc is not None:
            self.emgc.tick(now_ms, u.session)  # the envelope; an EMG trigger before Session.tick
        s = u.session
        out = s.tick(now_ms) if s is not None else None
        u.update(now_ms, out)
        sup = self.sup
        if out is not None and u.session is not None:
            sup.apply(out, now_ms)
        sup.tick(now_ms)
        self._track(now_ms)
        self.stage.service()
        if self._beeping:
            self._beep_tick(now_ms)
        if u.power_off_requested and not self.asleep and u.session is None:
            self._sleep()
        if not self.asleep and u.render(self.display):
            self.display.show()
        if self.wdt is not None:
            self.wdt.feed()
        self.ticks += 1

    def _poll_trigger(self, now_ms):
        """The foot / hand switch: debounced (the same level for TRIGGER_STABLE_TICKS ticks),
        polarity from the settings (switch_nc), handed to a gait / hold session every tick; a
        burst-triggered program gets trigger() at the switch's debounced press."""
        raw = self._trigger.value() == 0
        if raw != self._sw_raw:
            self._sw_raw = raw
            self._sw_same = 0
        elif self._sw_same < TRIGGER_STABLE_TICKS:
            self._sw_same += 1
            if self._sw_same == TRIGGER_STABLE_TICKS:
                self._sw_closed = raw
                s = self.ui.session
                if s is not None and s.program.triggered and self.switch_pressed():
                    s.trigger(now_ms)
        s = self.ui.session
        if s is not None and s.program.trigger is not None:
            s.set_input(now_ms, self.switch_pressed())

    def switch_pressed(self):
        """The debounced switch: True = heel on the ground / hand switch held."""
        if self.settings.get("switch_nc", False):
            return not self._sw_closed
        return self._sw_closed

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
            if self.asleep:
                self._wake()
            if buttons.kind_of(ev) == buttons.K_DOWN:
                self.beep(BEEP_KEY_MS)
            u.handle(ev, now_ms)
            ev = b.get()

    def run(self):
        deadline = time.ticks_ms()
        half = TICK_MS // 2
        while True:
            skip = sim_skip
            left_out = skip is not None and skip(self, False)
            if not left_out:
                self.step(time.ticks_ms())
            deadline = time.ticks_add(deadline, TICK_MS)
            wait = time.ticks_diff(deadline, time.ticks_ms())
            if wait > half:
                time.sleep_ms(wait - half)
                if not (left_out and skip is not None and skip(self, True)):
                    self.ui_step(time.ticks_ms())
                wait = time.ticks_diff(deadline, time.ticks_ms())
            if wait > 0:
                time.sleep_ms(wait)
            else:
                self.overruns += 1
                deadline = time.ticks_ms()  # late: restart the grid, never catch up in bursts

    # -- host simulation support (sim_skip) ---------------------------------------------------
    def quiet_ms(self, now_ms):
        """How long from now_ms the loop's ticks would only repeat the last one if every input
        stayed as it is: no output, screen, flash or decision changing, only the clocks moving.
        0 when not sure. Each owner answers for its own state (buttons, switch, EMG, UI and its
        top screen, session, supervisor); changes nothing. The host simulation leaves such
        ticks out (sim_skip); the device never calls it."""
        if self._beeping or self.asleep or self._sw_same < TRIGGER_STABLE_TICKS:
            return 0
        if not self.buttons.quiet():
            return 0
        u = self.ui
        s = u.session
        if s is not self._rec or (s is None and self._mark_for is not None):
            return 0    # _track has a session to take up, or a record / marker to write
        if self.emgc is not None and not self.emgc.quiet(s):
            return 0
        q = u.quiet_ms(now_ms)
        if q and s is not None:
            d = s.quiet_ms(now_ms)
            if d < q:
                q = d
        if q:
            d = self.sup.quiet_ms(now_ms)
            if d < q:
                q = d
        return q

    def skipped(self, n, last_ms):
        """The host simulation left out n quiet ticks, the last at last_ms: the state that only
        keeps time is brought to where running them would have left it (the session's clocks
        on the screen's output, the supervisor's tick time and sense windows, the history's
        stimulated time). The watchdog was fed at each of them by the simulation."""
        self.ticks += n
        u = self.ui
        s = u.session
        if self.emgc is not None:
            self.emgc.now_ms = last_ms
        if s is not None:
            u.out = s.tick(last_ms)
        u.now_ms = last_ms
        self.sup.skipped(last_ms)
        self._track(last_ms)


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
