# The front door. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME ?= demo-home
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (0: one process, no xdist); test modules are
# kept whole on one worker (tests/conftest.py), so module-scoped servers start once.
PYTEST_WORKERS ?= 2

.PHONY: install demo test bench lint browser postgres nginx clean

install: $(VENV)/.stamp node_modules/.stamp ## virtualenv with everything, and front-end packages from npm

$(VENV)/.stamp: pyproject.toml search/_bits.c search/_int8.c search/_buffer.h search/lexicon.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m search.lexicon
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser: ## Debian's Chromium (and CJK fonts) for the browser tests
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

postgres: ## Debian's PostgreSQL server programs for the catalog tests (initdb, pg_ctl)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

nginx: ## Debian's nginx, the load balancer the deployment tests put in front of two nodes
	@test -x /usr/sbin/nginx || command -v nginx >/dev/null 2>&1 || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }

demo: install ## ingest the sample collections and serve http://127.0.0.1:8000
	$(BIN)/python collections_data/make_images.py
	$(BIN)/archive --home $(DEMO_HOME) ingest collections_data/*/
	$(BIN)/archive --home $(DEMO_HOME) serve --host 127.0.0.1 --port 8000

test: install browser postgres nginx lint ## lint, then everything: unit, IIIF validator, browser, OpenSearch, PostgreSQL, nginx
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install nginx ## speed and memory benchmarks; prints tables with their anchors
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: install ## ruff: lint and formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) node_modules $(DEMO_HOME) .pytest_cache
