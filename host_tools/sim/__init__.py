# Simulation of the pin layer. The core (world, gpio, simtime, machine, micropython_mod, install)
# is written in the common subset of CPython 3.11 and MicroPython 1.29 and runs on both.
# framebuf_mod is CPython only (MicroPython has its own framebuf).
