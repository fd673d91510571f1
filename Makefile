# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-dev lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"

demo: install
	$(BIN)/margin demo

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install-dev
	$(BIN)/mypy src/margin

pytest: install-dev
	$(BIN)/python -m pytest -n 2

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
