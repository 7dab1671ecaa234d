# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it
# needs (a .venv from pyproject.toml, node_modules from package-lock.json) only when the
# stamp is missing or older than its lock, so a second run starts at once.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
export ESCROWKIT_CACHE_DIR ?= $(CURDIR)/.escrowkit-cache

.PHONY: install demo test test-fast test-anvil test-slow lint bench compile clean

install: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(NPM_STAMP): package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(VENV)/bin/escrowkit demo

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

test-slow: install
	$(VENV)/bin/pytest -q $(XDIST) -m slow

bench: install
	$(PY) -m benchmarks

compile: install
	$(VENV)/bin/escrowkit compile

clean:
	rm -rf .escrowkit-cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
