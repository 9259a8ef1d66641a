# Two set-up-and-go commands: `make demo` and `make test`. Both build .venv on
# first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint properties unit docs docs-serve bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/softeq demo

test: lint unit properties

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 tests core --doctest-modules

properties: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 properties --hypothesis-profile=ci

clean:
	rm -rf $(VENV) build dist site
