# The two set-up commands of the README: `make run` and `make test`.
# Each creates the virtualenv in .venv and installs what is missing, then does its job.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "unsource needs Python 3.11 or newer"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

## run: start the bot with ./config.yaml (SQLite in ./data, no set-up needed)
run: $(STAMP)
	$(BIN)/unsource run --config config.yaml

## test: the whole test suite (PostgreSQL tests too when UNSOURCE_TEST_DATABASE_URL is set)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## lint: ruff (lint + format check) and mypy --strict on the packages
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: the pipeline benchmark on SQLite
bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
