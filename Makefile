# One place for the commands a person and CI run. `make test` works on a fresh machine:
# it creates .venv and installs the project with its dev tools first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install lint format typecheck test audit lock screenshots bench bench-propagation load load-peers clean

# Runtime dependencies are installed at their locked releases (pylock.toml), so the suite
# tests exactly what `make audit` audits.
$(BIN)/.installed: pyproject.toml pylock.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PYTHON) scripts/locked.py > $(VENV)/constraints.txt
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c $(VENV)/constraints.txt
	touch $@

install: $(BIN)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Known vulnerabilities in the locked runtime dependencies (pylock.toml), with pip-audit;
# fails when one is installed at another release or could not be audited.
audit: install
	$(BIN)/python scripts/audit_deps.py

# Re-lock the runtime dependencies (the `server` and `openfeature` extras) from PyPI itself,
# whatever index this machine's pip is configured with.
lock: install
	PIP_CONFIG_FILE=/dev/null $(BIN)/python -m pip --isolated lock --quiet \
		--index-url https://pypi.org/simple '.[server,openfeature]' -o pylock.toml

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The suite runs against real PostgreSQL and Redis on this machine; ensure-services
# starts (or installs) them first. GRAYLANE_TEST_DATABASE_URL / GRAYLANE_TEST_REDIS_URL
# point it elsewhere. The admin UI's browser tests drive Debian's chromium with Playwright;
# ensure-chromium installs it when it is missing.
test: install
	scripts/ensure-services
	scripts/ensure-chromium
	$(BIN)/pytest

# PNGs of the admin UI's main pages under docs/screenshots/, from a throwaway demo server.
screenshots: install
	scripts/ensure-chromium
	$(BIN)/python scripts/screenshots.py

# Benchmarks, written up in docs/benchmarks.md: the evaluation core, then the SDK next to
# Unleash, GrowthBook and Flagsmith. Those three are installed once into a throwaway venv
# under ~/.cache/graylane-bench, never into $(VENV). `bench/sdk_bench.py --no-peers` skips them.
bench: install
	$(BIN)/python bench/core_bench.py
	$(BIN)/python bench/sdk_bench.py

# From an admin write to connected clients' on_change, against `graylane-server serve` on a
# fresh PostgreSQL database with Redis (and on the embedded default). A few minutes.
bench-propagation: install
	scripts/ensure-services
	$(BIN)/python bench/propagation.py

# Locust load tests against `graylane-server serve` (one process, then two replicas, then
# SSE streams) on a fresh PostgreSQL database with Redis; writes the table under "Load" in
# docs/benchmarks.md. About 7 minutes; `$(BIN)/python load_tests/run.py --quick` takes 2.
load: install
	$(BIN)/python -m pip install --quiet -e '.[load]' -c $(VENV)/constraints.txt
	scripts/ensure-services
	$(BIN)/python load_tests/run.py

# Graylane next to the Unleash open-source server under the same locust load, in one run:
# Unleash and a Node.js it supports are installed once with npm under ~/.cache/graylane-bench
# (never into the repository). Writes the section under "Next to the Unleash server" in
# docs/benchmarks.md. About 6 minutes; `$(BIN)/python load_tests/peers/unleash.py --quick` takes 2.
load-peers: install
	$(BIN)/python -m pip install --quiet -e '.[load]' -c $(VENV)/constraints.txt
	scripts/ensure-services
	$(BIN)/python load_tests/peers/unleash.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
