# Board selection. One module per board holds the pin map, clocks, calibration and hardware limits.
#
#   import board_config
#   board = board_config.load()          # auto: /board.txt on flash, then sys.platform
#   board = board_config.load("pico")    # explicit
#
# A custom board: copy pico.py to myboard.py, edit it, and write "myboard" into /board.txt.

_BY_PLATFORM = {"rp2": "pico", "esp32": "esp32_devkitc"}


def _board_file_name():
    try:
        with open("board.txt") as f:
            name = f.read().strip()
        return name or None
    except OSError:
        return None


def load(name=None):
    if name is None:
        name = _board_file_name()
    import sys

    if name is None:
        name = _BY_PLATFORM.get(sys.platform)
    if name is None:
        raise ValueError("no board config: write a board name into /board.txt (e.g. pico)")
    full = "board_config." + name
    try:
        __import__(full)
    except ImportError:
        raise ValueError("unknown board %r: no board_config/%s.py" % (name, name))
    mod = sys.modules[full]
    machine = getattr(sys.implementation, "_machine", "")
    if _wireless(machine) and not getattr(mod, "WIRELESS", False):
        # Pico W / Pico 2 W: GP23-25 and GP29 belong to the wireless chip (CYW43), so a plain
        # Pico config reads USB power (GP24) and the battery (GP29) wrong
        raise ValueError("board_config/%s.py is not for a %s: on it GP24 (VBUS sense) and GP29 "
                         "(VSYS/3) belong to the wireless chip, so the USB lockout and the "
                         "battery cut-off would read the wrong signals. Use a Pico without W "
                         "(docs/flashing.md)." % (name, machine))
    return mod


def _wireless(machine):
    # "Raspberry Pi Pico W with RP2040", "Raspberry Pi Pico 2 W with RP2350"
    return " Pico W " in machine or " Pico 2 W " in machine
