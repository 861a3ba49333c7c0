# The two commands of the README: `make reproduce` and `make test`.
# Each creates or updates the virtual environment in .venv when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fmlib-installed
PROFILE ?= paper
FORCE ?= 0

.PHONY: test test-fast test-browser chromium reproduce venv lint bench clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# tinysoundfont declares pyaudio (playback only, needs portaudio headers); we only
	# render offline, so it is installed without its dependencies.
	$(PY) -m pip install --quiet --no-deps 'tinysoundfont>=0.3.7'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The suite without the tests marked slow (each over 5 s on a 2-core CPU).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# The real-browser test alone (tests/test_browser.py: JupyterLab in headless Chromium).
# Chromium is Debian's package, installed here when missing (as root); playwright
# drives it and never downloads a browser. Here a missing browser fails the test.
test-browser: $(STAMP) chromium
	FMLIB_REQUIRE_BROWSER=1 $(PY) -m pytest -m browser tests/test_browser.py

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "chromium is missing: run 'sudo apt-get install -y chromium'" >&2; exit 1; \
	  fi; }

reproduce: $(STAMP)
	$(PY) -m fmlib reproduce --profile $(PROFILE) $(if $(filter 1,$(FORCE)),--force,)

lint: $(STAMP)
	$(VENV)/bin/ruff check fmlib tests notebooks && $(VENV)/bin/ruff format --check fmlib tests notebooks

bench: $(STAMP)
	$(PY) benchmarks/bench_synth.py
	$(PY) benchmarks/bench_widgets.py

clean-venv:
	rm -rf $(VENV)
