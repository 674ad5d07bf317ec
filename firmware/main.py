# The unit's entry point: MicroPython runs /main.py at every boot, compiling it from source first,
# so it is kept to these lines; the boot sequence (safe state, safe mode, the app, the service path
# on ctrl-C, the error screen) is startup.py, installed compiled (.mpy) by make flash.
# The host tools find startup.SERVICE_MODE in sys.modules (host_tools/flash.py SERVICE_CODE).
import startup

startup.main()
