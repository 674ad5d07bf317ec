"""The emulated Pico: real MicroPython on rp2040py (chip.py), a cycle-exact PIO for it
(pio_exact.py) and where the firmware images are (image.py). docs/emulated_chip.md."""
