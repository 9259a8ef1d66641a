# Two set-up-and-go commands: `make demo` and `make test`. Both build .venv on
# first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint properties unit docs docs-serve docs-test browser bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/softeq demo

test: lint unit properties docs-test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15 tests core adapters --doctest-modules --ignore=tests/docs --ignore=tests/soak

properties: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=10 properties --doctest-modules --hypothesis-profile=ci

# The docs' browser check drives Debian's headless Chromium; install it when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The docs browser check needs Chromium: install Debian's 'chromium' package."; exit 1; \
	  fi; }

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve -a 127.0.0.1:8000

# One worker per test file: the browser tests' module fixtures render every page in
# Chromium, which two workers sharing that file would each do (176 s against 243 s).
docs-test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests/docs

# Long-run stability: trains for SOFTEQ_SOAK_SECONDS (default 120) and checks memory stays flat.
soak: $(STAMP)
	$(BIN)/python -m pytest -q -s tests/soak -m soak

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) build dist site
