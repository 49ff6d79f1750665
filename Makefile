# Every target installs what it needs first; `make help` lists them.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install run migrate test lint format bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed ## create the virtualenv and install the pinned dependencies

migrate: install ## apply migrations to TENVOICE_DATABASE_URL (default: embedded SQLite)
	$(BIN)/tenvoice migrate

run: migrate ## serve the API on http://$(HOST):$(PORT) (embedded SQLite unless configured)
	$(BIN)/tenvoice serve --host $(HOST) --port $(PORT)

test: install ## run the whole test suite (SQLite, and PostgreSQL when reachable)
	$(BIN)/pytest

lint: install ## ruff, ruff format --check and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# `make bench BENCH_ARGS=--quick`: small sizes and short runs, under 2 minutes.
BENCH_ARGS ?=
bench: install ## load benchmark into bench/REPORT.md (< 10 min; BENCH_ARGS=--quick: < 2 min)
	$(BIN)/python -m bench $(BENCH_ARGS)
