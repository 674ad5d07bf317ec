# A tiny "device module" for tests/portable/test_sim_portable.py: imports the MicroPython modules
# at top level like firmware/ and lib/ do.
import time
import machine
from micropython import const

PIN = const(11)


def blink_ms(ms):
    p = machine.Pin(PIN, machine.Pin.OUT, value=0)
    p.on()
    time.sleep_ms(ms)
    p.off()
    return time.ticks_ms()
