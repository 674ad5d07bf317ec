# Front door of the project. Every target creates and uses .venv (pinned requirements.txt).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
MPY     := $(BIN)/micropython
STAMP   := $(VENV)/.installed
DEVICE_DIRS := firmware lib board_config
OUT     ?= out

.PHONY: all venv test test-long test-cpython test-cpython-cpu test-cpython-realtime test-micropython mpy-cross lint capture bench clean demo docs-images sim flash repl logs backup restore virtual-device virtual-device-unix

all: test

# --no-compile: no .pyc for every installed module up front (half the install's time); the
# modules the tools really import are compiled once at their first import (bytecode caches on).
$(STAMP): requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# Every device file through mpy-cross, exactly as the device compiles it.
mpy-cross: $(STAMP)
	$(PYTHON) -m host_tools.build --check

# lint, the pytest suite (in two processes, below) and the unix-port suite run side by side
# (make -j4): lint and the unix port take about 30 s of wall time but little CPU, which the pytest
# workers use meanwhile. Each part's output is printed in one piece when it ends (--output-sync);
# the exit status is non-zero when any part fails. `make lint test-cpython test-micropython` runs
# them one after another.
test: $(STAMP) mpy-cross
	@$(MAKE) --no-print-directory -j4 --output-sync=target lint test-cpython-cpu \
		test-cpython-realtime test-micropython

# pytest-xdist (pinned): JOBS workers, one per core of the project's 2-core machines (`make test
# JOBS=auto` uses every core). Measured on clean clones (CI=true .ci/run, docs/performance.md):
# 2 workers 5 min 12 s, 3 workers 5 min 19 s and 5 min 29 s (the third worker was meant to compute
# while another waits on a test that keeps real time, but it also slows the emulated-chip tests
# that set the critical path). worksteal: an idle worker takes queued tests from a busy one;
# tests/conftest.py puts the long tests first, spread over the workers, so the run does not end
# with one core idle behind a long test. pytest's last line and mp_run's wall-time line before
# its own last line give each part's wall time.
JOBS    ?= 2
PYTEST  := $(PYTHON) -m pytest -q -n $(JOBS) --dist worksteal --durations=10
# Bytecode caches on: every scenario test imports the firmware afresh (a new boot), and without
# __pycache__ each import compiles every module from source again (nearly half the CPU time of
# the whole-firmware fuzz test). An empty value is "not set" for Python.
test-cpython test-cpython-cpu test-cpython-realtime test-long: export PYTHONDONTWRITEBYTECODE =
# The whole pytest suite: the tests that keep real time (marker `realtime`, tests/conftest.py:
# the virtual device and the terminal simulator, which mostly wait) in one process of their own,
# the rest on the xdist workers, so no worker sits waiting on the clock while the other computes.
test-cpython: $(STAMP)
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-cpython-cpu test-cpython-realtime
test-cpython-cpu: $(STAMP)
	$(PYTEST) -m "not realtime" tests
test-cpython-realtime: $(STAMP)
	$(PYTHON) -m pytest -q -p no:xdist -m realtime --durations=5 tests

# The same suite with ten times the random sequences (pulse engines, firmware fuzz, hypothesis).
test-long: $(STAMP) mpy-cross
	PULSE_PROPERTY_SEQUENCES=1000000 PULSE_PROPERTY_SEQUENCES_ESP32=200000 \
	PULSE_PROPERTY_HYPOTHESIS=3000 FIRMWARE_FUZZ_SEQUENCES=20000 $(PYTEST) tests
	$(MPY) tests/mp_run.py

# The portable tests again, on the real MicroPython unix port.
test-micropython: $(STAMP)
	$(MPY) tests/mp_run.py

# ruff over everything; basedpyright over the device code against the MicroPython stubs of each
# board (pyrightconfig.json: rp2; pyrightconfig.esp32.json: esp32), each stub set pinned in its
# own requirements file and installed in its own folder: both declare `machine`, and in
# site-packages Blinka's `micropython` module would shadow the stubs'.
STUBS_RP2   := $(VENV)/stubs-rp2/.installed
STUBS_ESP32 := $(VENV)/stubs-esp32/.installed
$(VENV)/stubs-%/.installed: requirements-%-stubs.txt $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-compile --upgrade \
		--target $(VENV)/stubs-$* -r requirements-$*-stubs.txt
	touch $@

lint: $(STAMP) $(STUBS_RP2) $(STUBS_ESP32)
	$(BIN)/ruff check .
	$(BIN)/basedpyright -p pyrightconfig.json
	$(BIN)/basedpyright -p pyrightconfig.esp32.json

capture: $(STAMP)
	$(PYTHON) -m host_tools.capture --phase-us 300 --gap-us 50 --rate-hz 50 --ms 200 --out $(OUT)/capture

# BENCH_ARGS=--long adds the 4-hour session (peak RSS over duration)
BENCH_ARGS ?=
bench: $(STAMP)
	$(PYTHON) -m host_tools.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(OUT) build .pytest_cache .ruff_cache .hypothesis

demo: $(STAMP)
	$(PYTHON) -m host_tools.scenario host_tools/scenarios/demo.json --out $(OUT)/demo

# docs/img/oled_*.png: the frames of make demo (and emg_demo) each picked by a rule on its text
# (host_tools/docs_images.py); tests/test_docs_images.py fails when one is stale.
docs-images: $(STAMP)
	$(PYTHON) -m host_tools.docs_images --out docs/img

# The interactive simulator of the unit in the terminal (host_tools/simulator.py; keys on screen).
sim: $(STAMP)
	$(PYTHON) -m host_tools.simulator --out $(OUT)/sim

# ---- The unit: flashing, REPL, logs, settings (host_tools/flash.py, docs/flashing.md) --------
# PORT= serial port or pyserial URL (default: the one attached MicroPython board, found by its USB
# id); BOARD= board config name (default: what the board names in board.txt / os.uname()).
PORT    ?=
BOARD   ?=
BACKUP  ?= $(OUT)/backup
FLASH_ARGS = $(if $(PORT),--port $(PORT)) $(if $(BOARD),--board $(BOARD))

flash: $(STAMP)
	$(PYTHON) -m host_tools.flash flash $(FLASH_ARGS)

repl: $(STAMP)
	$(PYTHON) -m host_tools.flash repl $(FLASH_ARGS)

logs: $(STAMP)
	$(PYTHON) -m host_tools.flash logs $(FLASH_ARGS) --out $(OUT)/logs

backup: $(STAMP)
	$(PYTHON) -m host_tools.flash backup $(FLASH_ARGS) --out $(BACKUP)

restore: $(STAMP)
	$(PYTHON) -m host_tools.flash restore $(FLASH_ARGS) --out $(BACKUP)

# A virtual board: the emulated Pico (rp2040py) running the real MicroPython image on a
# pseudo-terminal, with the board around it (host_tools/chip_device.py); prints its port for
# `make flash PORT=...`; the app runs after the reset at the end of make flash. Slow (the app
# runs at about 0.05x real time). virtual-device-unix: the fast one, the MicroPython unix port
# with the simulated pins (host_tools/virtual_device.py).
virtual-device: $(STAMP)
	$(PYTHON) -m host_tools.chip_device --dir $(OUT)/chip-device

virtual-device-unix: $(STAMP)
	$(PYTHON) -m host_tools.virtual_device --dir $(OUT)/virtual-device
