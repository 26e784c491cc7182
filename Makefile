# The README's two commands: `make run` (Parley on its embedded PostgreSQL) and `make test`
# (lint, type-check, start PostgreSQL/Redis/Kafka/Elasticsearch with `parley services up`, or
# reuse the running ones, then the whole suite). `parley services down` stops the servers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every package at the version and hash the lock names, so an upstream release cannot change
# what `make run` and `make test` install between two commits. pyproject.toml keeps the ranges
# (for installing Parley as a library); `make lock` moves the lock within them, on purpose.
LOCK := requirements/lock.txt

.PHONY: run test lint tools check-schema install lock clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

# The newest versions pyproject.toml allows, for every platform; commit the result on its own.
# requirements/runtime.txt (the container image: no dev tools) takes the same versions.
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml requirements/tools.in --universal \
	--python-version 3.11 --generate-hashes --custom-compile-command "make lock"
lock: $(STAMP)
	$(UV_COMPILE) --extra dev --upgrade -o $(LOCK)
	$(UV_COMPILE) --constraint $(LOCK) -o requirements/runtime.txt

install: $(STAMP)

# The first run on a fresh machine (the embedded database) creates the demo tenant and prints
# its password once; every run prints the address. `parley demo --new-password` sets a new one.
run: $(STAMP)
	$(BIN)/parley demo --welcome
	$(BIN)/parley serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# kcat: the tests read the event topic with it, as analytics consumers would (Debian package).
# Node.js: the tests run the GraphQL-over-HTTP audit (npm graphql-http, pinned in
# tests/http_audit/package-lock.json) with it; `npm ci` again only when the lock file changed.
# Chromium (Debian's; Playwright's own browser download is not used) and web/'s packages: the
# browser client's end-to-end tests (tests/test_web_e2e.py) drive it with @playwright/test.
tools:
	@command -v kcat >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq kcat \
		|| { apt-get update -qq && apt-get install -y -qq kcat; }; }; } \
		|| { echo "the tests need kcat: apt-get install kcat (or brew install kcat)"; exit 1; }
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq nodejs npm \
		|| { apt-get update -qq && apt-get install -y -qq nodejs npm; }; }; } \
		|| { echo "the tests need Node.js 18+ and npm: apt-get install nodejs npm"; exit 1; }
	@[ tests/http_audit/node_modules/.package-lock.json -nt tests/http_audit/package-lock.json ] \
		|| npm ci --prefix tests/http_audit --no-audit --no-fund --loglevel=error
	@[ -x "$${PARLEY_CHROMIUM:-/usr/bin/chromium}" ] || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq chromium \
		|| { apt-get update -qq && apt-get install -y -qq chromium; }; }; } \
		|| { echo "the browser tests need Chromium at /usr/bin/chromium: apt-get install chromium" \
			"(or set PARLEY_CHROMIUM to a Chromium or Chrome binary)"; exit 1; }
	@[ web/node_modules/.package-lock.json -nt web/package-lock.json ] \
		|| PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix web --no-audit --no-fund --loglevel=error

# The web client first: its operations against queries/schema.graphql (codegen, then tsc: a
# schema change that breaks the client fails here) and its unit tests (Vitest).
test: lint tools
	npm --prefix web run --silent typecheck
	npm --prefix web test --silent
	$(BIN)/parley services up
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
