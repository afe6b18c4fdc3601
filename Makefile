# One place for the commands a person and CI run. `make test` works on a fresh machine:
# it creates .venv and installs the project with its dev tools first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install lint format typecheck test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The suite runs against real PostgreSQL and Redis on this machine; ensure-services
# starts (or installs) them first. GRAYLANE_TEST_DATABASE_URL / GRAYLANE_TEST_REDIS_URL
# point it elsewhere.
test: install
	scripts/ensure-services
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/core_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
