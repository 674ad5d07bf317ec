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
    if name is None:
        import sys

        name = _BY_PLATFORM.get(sys.platform)
    if name is None:
        raise ValueError("no board config: write a board name into /board.txt (e.g. pico)")
    mod = __import__("board_config." + name)
    return getattr(mod, name)
