# The boot sequence, run by main.py (`import startup; startup.main()`). It lives here, not in
# main.py, because MicroPython compiles /main.py from source at every boot (182 ms of the
# RP2040's boot for this file, measured on the emulated chip: docs/performance.md) while make
# flash installs this module compiled (.mpy) like every other one.
#
# Safe state first, then either safe mode (BACK held at power-on: the app does not start and
# the REPL stays free) or the app. Any uncaught exception: output off first, then the traceback to
# the serial console and /crash.log, then the error screen (SAFETY rule 11).
#
# Service path (docs/flashing.md): ctrl-C on the serial port (make repl, or make flash / logs /
# backup, which send it) stops the app loop. Then, in this order: output off through the
# supervisor's stop path and the pins, and only now that the loop has ended a timer feeds the
# watchdog (a started RP2040 watchdog cannot be stopped), so the REPL and the host tools can work
# as long as they need; a hang of the app loop itself is never fed by it. machine.reset() (or
# ctrl-D) restarts the app.
#
# No display (issue 8): when the app cannot start because the OLED does not answer on I2C, the
# unit says so on the serial console and blinks FAULT_BLINK_MS on the output LED (never steady, as
# "output on" is), output off, no watchdog fed; OK restarts, ctrl-C gives the REPL.
import gc
import sys

import machine
from machine import I2C, WDT, Pin, Timer
from micropython import const, kbd_intr  # pyright: ignore[reportAttributeAccessIssue]  (Blinka's micropython package shadows the rp2 stub)

import board_config

CRASH_LOG = "crash.log"
CRASH_LOG_MAX = 8192  # bytes kept: the newest tracebacks
SERVICE_FEED_MS = const(100)  # the watchdog fed this often while the REPL is in use
SERVICE_WDT_MS = const(8000)  # its timeout meanwhile (the RP2040 allows up to 8388 ms)
SSD1306_NOP = b"\x00\xe3"  # control byte (command) + NOP: a harmless probe of the display
# LED on/off times (ms) of the no-display fault: three short flashes, then a pause (1.5 s)
FAULT_BLINK_MS = (100, 150, 100, 150, 100, 900)
FAULT_REPEAT_S = const(10)  # the console line again this often, for a terminal opened later
FAULT_POLL_MS = const(50)  # OK is read this often meanwhile

SERVICE_MODE = False  # True once the app stopped for the REPL (the host tools read it)
service_timer = None


def _force_output_off(board, app_obj):
    # The supervisor knows every channel: its stop path first; then (and without it: a crash
    # while building the app) the enable pin and the LED low directly.
    try:
        if app_obj is not None:
            app_obj.sup.emergency_off()
    except Exception:  # noqa: BLE001
        pass
    Pin(board.OUTPUT_ENABLE, Pin.OUT, value=0)
    Pin(board.OUTPUT_LED, Pin.OUT, value=0)


def _log_crash(exc):
    try:
        try:
            with open(CRASH_LOG) as f:
                old = f.read()
        except OSError:
            old = ""
        import io

        buf = io.StringIO()
        sys.print_exception(exc, buf)  # pyright: ignore[reportArgumentType]  (a stream)
        text = old + "--- crash ---\n" + buf.getvalue()  # pyright: ignore[reportAttributeAccessIssue]
        if len(text) > CRASH_LOG_MAX:
            text = text[-CRASH_LOG_MAX:]
        with open(CRASH_LOG + ".tmp", "w") as f:
            f.write(text)
        import os

        os.rename(CRASH_LOG + ".tmp", CRASH_LOG)
    except Exception:  # noqa: BLE001 - a full or broken flash must not stop the error screen
        pass


def _show_service(display):
    if display is None:
        return
    try:
        display.poweron()
        display.fill(0)
        display.text("SERVICE MODE", 0, 0, 1)
        display.text("app stopped:", 0, 16, 1)
        display.text("USB REPL in use", 0, 24, 1)
        display.text("OUTPUT OFF", 0, 40, 1)
        display.text("reset: restart", 0, 56, 1)
        display.show(True)
    except Exception:  # noqa: BLE001 - the display may be what is missing
        pass


def _service_timer_id(board):
    # rp2: a virtual (soft) timer; ESP32: hardware timers 0-3 only, the pulse engine has the ones
    # named in CHANNELS (0 and 1), so the last one
    return -1 if board.CHIP == "rp2040" else 3


def _service_mode(board, app_obj):
    """The app loop has ended on ctrl-C: output off, then keep the watchdog fed for the REPL."""
    global SERVICE_MODE, service_timer
    kbd_intr(-1)  # a second ctrl-C must not cut this short (watchdog left unfed)
    try:
        _force_output_off(board, app_obj)
        wdt = app_obj.wdt if app_obj is not None else None
        if wdt is not None and service_timer is None:
            # The same hardware watchdog with a long timeout: a soft reset (ctrl-D) stops the
            # timer but not the watchdog, and the app's boot then has SERVICE_WDT_MS to take it
            # over (App() sets its 1 s again). Both objects are fed: one counter on the chip.
            long_wdt = WDT(timeout=SERVICE_WDT_MS)
            feed_app = wdt.feed
            feed_long = long_wdt.feed

            def _feed(t):
                feed_app()
                feed_long()

            service_timer = Timer(_service_timer_id(board), mode=Timer.PERIODIC,
                                  period=SERVICE_FEED_MS, callback=_feed)
        SERVICE_MODE = True
        _show_service(app_obj.display if app_obj is not None else None)
    finally:
        kbd_intr(3)
    print("service mode: the app stopped (ctrl-C), output off; the watchdog is fed while the "
          "REPL is in use. machine.reset() or ctrl-D restarts the app.")


def _wait_for_restart(board, app_obj):
    ok = Pin(board.BUTTONS["ok"], Pin.IN, Pin.PULL_UP)
    import time

    wdt = app_obj.wdt if app_obj is not None else None
    try:
        while ok.value() == 1:
            if wdt is not None:
                wdt.feed()  # output is off: showing the error is the healthy thing to do now
            time.sleep_ms(50)
    except KeyboardInterrupt:
        _service_mode(board, app_obj)
        return
    machine.reset()


def _display_error(board):
    """None when the display acknowledges a NOP command at its I2C address, else the OSError."""
    try:
        i2c = I2C(board.I2C_ID, scl=Pin(board.I2C_SCL), sda=Pin(board.I2C_SDA),
                  freq=board.I2C_HZ)
        i2c.writeto(board.OLED_ADDR, SSD1306_NOP)
        return None
    except OSError as e:
        return e


def _display_answers(board):
    return _display_error(board) is None


def _pin_name(board, pin):
    return ("GP%d" if board.CHIP == "rp2040" else "GPIO%d") % pin


def no_display_message(board, exc):
    return ("no display: the SSD1306 OLED at I2C address 0x%02X on I2C%d (SDA %s, SCL %s) does "
            "not answer (%s: %s). The app cannot run without its screen; output is off. Check "
            "the display's wiring and power, then press OK to restart."
            % (board.OLED_ADDR, board.I2C_ID, _pin_name(board, board.I2C_SDA),
               _pin_name(board, board.I2C_SCL), type(exc).__name__, exc))


def _no_display(board, exc):
    import time

    msg = no_display_message(board, exc)
    _log_crash(exc)
    led = Pin(board.OUTPUT_LED, Pin.OUT, value=0)
    ok = Pin(board.BUTTONS["ok"], Pin.IN, Pin.PULL_UP)
    since = FAULT_REPEAT_S * 1000
    try:
        while True:
            if since >= FAULT_REPEAT_S * 1000:
                print(msg)
                since = 0
            level = 1
            for ms in FAULT_BLINK_MS:
                led.value(level)
                level ^= 1
                while ms > 0:
                    time.sleep_ms(FAULT_POLL_MS)
                    ms -= FAULT_POLL_MS
                    since += FAULT_POLL_MS
                    if ok.value() == 0:
                        led.value(0)
                        machine.reset()
    except KeyboardInterrupt:
        led.value(0)
        print("no display: stopped for the REPL, output off")


def main():
    board = board_config.load()
    Pin(board.OUTPUT_ENABLE, Pin.OUT, value=0)  # output stage off before anything else
    back = Pin(board.BUTTONS["back"], Pin.IN, Pin.PULL_UP)
    if back.value() == 0:
        print("safe mode: BACK held at power-on, the app is not started (REPL is free)")
        return None
    # The display before the app (one I2C transfer): without it the app cannot run, and the unit
    # says so at once, not after loading the app (0.9 s on the RP2040, most of the boot).
    err = _display_error(board)
    if err is not None:
        _no_display(board, err)
        return None
    import app

    a = None
    try:
        a = app.App(board)
        # The imports and App() leave the heap nearly full of garbage (148 KB live of 240 KB);
        # until the first collection every allocation searched it for room, and the loop took
        # 19 % of the CPU on the splash screen instead of 12 % (emulated RP2040, MicroPython
        # 1.28: docs/performance.md). One collection now, before the loop.
        gc.collect()
        a.run()
    except KeyboardInterrupt:
        # ctrl-C from the REPL or a host tool: the loop has ended here, not in a hang
        _service_mode(board, a if a is not None else app.current)
    except Exception as e:  # noqa: BLE001 - rule 11
        _force_output_off(board, a)
        if a is None and isinstance(e, OSError) and not _display_answers(board):
            _no_display(board, e)
            return None
        print("the app stopped on an error; output off; the traceback is in /crash.log:")
        sys.print_exception(e)
        _log_crash(e)
        app.show_error(a.display if a is not None else None, e)
        _wait_for_restart(board, a)
    return a
