# Tokentrail development targets. Every target creates .venv and installs what it needs on a fresh machine.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The client software tests/clients/ drives (LiteLLM, OpenAI, Anthropic, OpenTelemetry), apart from the server's
# environment, each file checked against the hashes of the lock; wheels only, so no package's build code runs.
CLIENTS_VENV := .venv-clients
CLIENTS_LOCK := tests/clients/requirements.txt
UV_VERSION := 0.13.9

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(CLIENTS_VENV)/.installed: $(CLIENTS_LOCK)
	rm -rf $(CLIENTS_VENV)
	$(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --only-binary :all: \
		-r $(CLIENTS_LOCK)
	$(CLIENTS_VENV)/bin/pip check
	touch $@

# The demo needs Tokentrail alone: its runtime dependencies, not the test and lint tools of `install`.
$(BIN)/.installed-app: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

.PHONY: help
help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: install
install: $(BIN)/.installed ## Create .venv and install Tokentrail with its development tools

.PHONY: clients
clients: $(CLIENTS_VENV)/.installed ## Create .venv-clients: the pinned client software the tests run against the server

.PHONY: demo
demo: $(BIN)/.installed-app ## Seed a realistic history and serve the dashboard on http://127.0.0.1:8000 (SQLite, dry-run)
	$(BIN)/tokentrail demo --host 127.0.0.1 --port 8000

.PHONY: format
format: install ## Format the code
	$(BIN)/ruff format app tests bench action docs/recipes migrations/env.py
	$(BIN)/ruff check --fix app tests bench action docs/recipes

.PHONY: lint
lint: install ## ruff
	$(BIN)/ruff check app tests bench action docs/recipes migrations/env.py

.PHONY: typecheck
typecheck: install ## mypy --strict on app/
	$(BIN)/mypy

.PHONY: browser
browser: ## Make sure Debian's Chromium is there for the browser test (installs it as root, else says how)
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser test"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser test needs Debian's Chromium at /usr/bin/chromium. Install it with:" >&2; \
	    echo "  sudo apt-get install -y chromium" >&2; \
	    exit 1; \
	  fi; \
	fi

.PHONY: test
test: install clients lint typecheck browser ## Lint, type-check and run every test, real clients included (SQLite and PostgreSQL)
	$(BIN)/pytest -q $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: install ## The pure core's tests alone (no database, no server), with its coverage floor
	$(BIN)/pytest -q -m unit $$($(BIN)/python -m tests.pure_modules) --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

.PHONY: migrate
migrate: install ## Apply database migrations to TOKENTRAIL_DATABASE_URL
	$(BIN)/tokentrail migrate

.PHONY: lock
lock: ## Regenerate requirements.txt, the hashed lock the Docker image installs, from pyproject.toml
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet uv==$(UV_VERSION)
	# setuptools too: the image builds Tokentrail itself without fetching anything the lock does not pin.
	printf 'setuptools>=68\n' | .venv-lock/bin/uv pip compile pyproject.toml - --upgrade --generate-hashes \
	  --python-version 3.11 --python-platform linux --no-emit-package tokentrail \
	  --custom-compile-command 'make lock' -o requirements.txt

.PHONY: bench
bench: install ## Ingest benchmark on SQLite (see bench/)
	$(BIN)/python bench/ingest.py
