# One entry point for humans and CI. `make serve` and `make check` each install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve check lint typecheck test bench format

$(BIN)/imagegate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .

$(VENV)/.test-deps: pyproject.toml | $(BIN)/imagegate
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

serve: $(BIN)/imagegate  ## install and start the server on the embedded default
	$(BIN)/imagegate serve

check: lint typecheck test  ## everything CI runs

lint: $(VENV)/.test-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

test: $(VENV)/.test-deps
	$(BIN)/pytest --cov=imagegate --cov-report=term:skip-covered

format: $(VENV)/.test-deps
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(VENV)/.test-deps  ## the benchmark scenarios (not part of check)
	$(BIN)/python bench/render.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/edit.py
	$(BIN)/python bench/tasks.py
	$(BIN)/python bench/console.py
