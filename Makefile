# The two set-up commands of the README: `make run` and `make test`.
# Each creates its own virtual environment in .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Main job: a development server on SQLite at 127.0.0.1:8200 plus a short CLI demo.
run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/dev-demo.sh

## The whole test suite (starts PostgreSQL if it is not running), then lint and types.
test: $(STAMP)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-softhsm.sh
	$(BIN)/pytest -n 4 -q
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/rest_encrypt.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
