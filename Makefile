# The README's two commands: `make run` (Parley on its embedded PostgreSQL) and `make test`
# (lint, type-check, start PostgreSQL/Redis/Kafka/Elasticsearch with `parley services up`, or
# reuse the running ones, then the whole suite). `parley services down` stops the servers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint tools check-schema install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/parley serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# kcat: the tests read the event topic with it, as analytics consumers would (Debian package).
tools:
	@command -v kcat >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq kcat \
		|| { apt-get update -qq && apt-get install -y -qq kcat; }; }; } \
		|| { echo "the tests need kcat: apt-get install kcat (or brew install kcat)"; exit 1; }

test: lint tools
	$(BIN)/parley services up
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
