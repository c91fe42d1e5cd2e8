# One entry point for humans and CI. `make serve` and `make check` each install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve check lint lint-deploy typecheck test faults bench format

$(BIN)/imagegate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .

$(VENV)/.test-deps: pyproject.toml | $(BIN)/imagegate
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

serve: $(BIN)/imagegate  ## install and start the server on the embedded default
	$(BIN)/imagegate serve

check: lint lint-deploy typecheck test  ## everything CI runs

lint: $(VENV)/.test-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

# The container, compose and Kubernetes files, linted and schema-checked (no docker or helm
# binary here: deploy/k8s/ holds what the chart renders with its defaults).
lint-deploy: $(VENV)/.test-deps
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	$(BIN)/kubernetes-validate --strict --quiet deploy/k8s/*.yaml
	$(BIN)/check-jsonschema --schemafile deploy/helm/imagegate/values.schema.json \
		deploy/helm/imagegate/values.yaml

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

# The suite on every core, then the tests that start real replicas and cut their services
# under load on their own, so other tests' CPU does not stretch their timings.
SERIAL := faults or fleet
test: $(VENV)/.test-deps
	$(BIN)/pytest -n auto -m "not ($(SERIAL))" --cov=imagegate --cov-report=
	$(BIN)/pytest -m "$(SERIAL)" --cov=imagegate --cov-append --cov-report=term:skip-covered

faults: $(VENV)/.test-deps  ## only the fault suite (also part of test): replicas killed, outages
	$(BIN)/pytest -m faults

format: $(VENV)/.test-deps
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(VENV)/.test-deps  ## the benchmark scenarios (not part of check)
	$(BIN)/python bench/render.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/edit.py
	$(BIN)/python bench/tasks.py
	$(BIN)/python bench/async_submit.py
	$(BIN)/python bench/console.py
