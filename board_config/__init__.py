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
    return sys.modules[full]
