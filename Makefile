# Front door of the project. Every target creates and uses .venv (pinned requirements.txt).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
MPY     := $(BIN)/micropython
STAMP   := $(VENV)/.installed
DEVICE_DIRS := firmware lib board_config
OUT     ?= out

.PHONY: all venv test test-cpython test-micropython mpy-cross lint capture bench clean demo sim flash repl logs backup restore virtual-device

all: test

$(STAMP): requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# Every device file through mpy-cross, exactly as the device compiles it.
mpy-cross: $(STAMP)
	$(PYTHON) -m host_tools.build --check

test: $(STAMP) mpy-cross test-cpython test-micropython

test-cpython: $(STAMP)
	$(PYTHON) -m pytest -q tests

# The portable tests again, on the real MicroPython unix port.
test-micropython: $(STAMP)
	$(MPY) tests/mp_run.py

lint: $(STAMP)
	$(BIN)/ruff check .

capture: $(STAMP)
	$(PYTHON) -m host_tools.capture --phase-us 300 --gap-us 50 --rate-hz 50 --ms 200 --out $(OUT)/capture

bench: $(STAMP)
	$(PYTHON) -m host_tools.bench

clean:
	rm -rf $(VENV) $(OUT) build .pytest_cache .ruff_cache .hypothesis

demo: $(STAMP)
	$(PYTHON) -m host_tools.scenario host_tools/scenarios/demo.json --out $(OUT)/demo
