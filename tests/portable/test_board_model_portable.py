# The board-model tests of tests/test_board_model.py, run by tests/mp_run.py on the MicroPython
# unix port (pytest collects tests/test_board_model.py itself on CPython).
import sys

if sys.implementation.name == "micropython":
    from tests.test_board_model import *  # noqa: F401,F403
