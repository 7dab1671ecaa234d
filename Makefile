# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it
# needs (a .venv from pyproject.toml at the versions of requirements.lock, node_modules
# from package-lock.json) only when the stamp is missing or older than its lock, so a
# second run starts at once.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
export ESCROWKIT_CACHE_DIR ?= $(CURDIR)/.escrowkit-cache

.PHONY: install demo dashboard chromium screenshots test test-fast test-anvil test-slow lint bench \
	compile clean lock

install: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

# requirements.lock again from pyproject.toml's ranges, in a throwaway venv (the newest
# releases they admit); run the tests before committing it.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	{ sed -n '/^#/p' requirements.lock; \
	  .lock-venv/bin/pip freeze --exclude-editable --disable-pip-version-check; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf .lock-venv

$(NPM_STAMP): package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(VENV)/bin/escrowkit demo

# The demo, then its service and dashboard on http://127.0.0.1:8700/ (prints the key to
# sign in with); Ctrl-C stops.
dashboard: install
	$(VENV)/bin/escrowkit demo --serve

# The browser tests drive Debian's chromium (never `playwright install`, a download).
chromium:
	@command -v chromium >/dev/null || { echo "installing chromium (apt-get) for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

# The README's screenshots, from the browser tests.
screenshots: install chromium
	ESCROWKIT_SCREENSHOTS=$(CURDIR)/docs/screenshots $(VENV)/bin/pytest -q -m browser \
	  tests/service/test_dashboard_browser.py

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The default suite on eth-tester, then the chain suites again on a real anvil; one
# worker per core (each with its own chain and deployment), idle workers steal queued tests.
XDIST := -n auto --dist worksteal

test: install lint
	$(VENV)/bin/pytest -q $(XDIST)
	$(VENV)/bin/pytest -q $(XDIST) --chain anvil tests/contracts tests/property tests/coordinator

test-fast: install
	$(VENV)/bin/pytest -q -x

# Soak, faults, heavy property runs and the dashboard in headless chromium.
test-slow: install chromium
	$(VENV)/bin/pytest -q $(XDIST) -m slow

bench: install
	$(PY) -m benchmarks

compile: install
	$(VENV)/bin/escrowkit compile

clean:
	rm -rf .escrowkit-cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
