# The two commands: `make dev` runs Tollgate locally, `make test` runs the tests.
# Both create .venv and install the project on first use; nothing else is needed but Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test test-web lint fmt bench schemathesis clean

DEV_ARGS ?=

dev: $(STAMP)
	$(BIN)/tollgate dev $(DEV_ARGS)

# Test files run in parallel (pytest-xdist): each worker has its own Postgres (or template
# database on TEST_DATABASE_URL's server) and every test its own database.
TEST_WORKERS ?= 3

test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

test-web: $(STAMP)  # the pages in headless Chromium (apt-get install chromium), and /metrics
	$(BIN)/pytest -q tests/web tests/observability

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemathesis: $(STAMP)  # the OpenAPI contract against a live `tollgate serve` (local Postgres)
	$(BIN)/python scripts/schemathesis_run.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
