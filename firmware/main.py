# Boot. Safe state first, then either safe mode (BACK held at power-on: the app does not start and
# the REPL stays free) or the app. Any uncaught exception: output off first, then the traceback to
# /crash.log, then the error screen (SAFETY rule 11).
import sys

import machine
from machine import Pin

import board_config

CRASH_LOG = "crash.log"
CRASH_LOG_MAX = 8192  # bytes kept: the newest tracebacks


def _force_output_off(board, app_obj):
    # The supervisor knows every channel; without it (a crash while building the app), drive the
    # enable pin low and every DAC pin low directly.
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
        sys.print_exception(exc, buf)
        text = old + "--- crash ---\n" + buf.getvalue()
        if len(text) > CRASH_LOG_MAX:
            text = text[-CRASH_LOG_MAX:]
        with open(CRASH_LOG + ".tmp", "w") as f:
            f.write(text)
        import os

        os.rename(CRASH_LOG + ".tmp", CRASH_LOG)
    except Exception:  # noqa: BLE001 - a full or broken flash must not stop the error screen
        pass


def _wait_for_restart(board, app_obj):
    ok = Pin(board.BUTTONS["ok"], Pin.IN, Pin.PULL_UP)
    import time

    wdt = app_obj.wdt if app_obj is not None else None
    while ok.value() == 1:
        if wdt is not None:
            wdt.feed()  # output is off: showing the error is the healthy thing to do now
        time.sleep_ms(50)
    machine.reset()


def main():
    board = board_config.load()
    Pin(board.OUTPUT_ENABLE, Pin.OUT, value=0)  # output stage off before anything else
    back = Pin(board.BUTTONS["back"], Pin.IN, Pin.PULL_UP)
    if back.value() == 0:
        print("safe mode: BACK held at power-on, the app is not started (REPL is free)")
        return None
    import app

    a = None
    try:
        a = app.App(board)
        a.run()
    except KeyboardInterrupt:
        _force_output_off(board, a)  # Ctrl-C from the REPL: output off, then the REPL
        raise
    except Exception as e:  # noqa: BLE001 - rule 11
        _force_output_off(board, a)
        _log_crash(e)
        app.show_error(a.display if a is not None else None, e)
        _wait_for_restart(board, a)
    return a


main()
