# The two commands a new user runs: `make demo` and `make test`. Each sets up everything itself:
# a virtual environment in .venv, the package and its tools, PostgreSQL and Kafka (`ledger stack up`).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export LEDGER_STATE_DIR ?= $(CURDIR)/.ledger

.PHONY: demo test install stack check unit integration clean

demo: install
	$(BIN)/ledger demo

test: install stack check
	$(BIN)/pytest -p no:cacheprovider

# Installs again only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

stack: install
	$(BIN)/ledger stack up

check: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -p no:cacheprovider tests/unit

integration: install stack
	$(BIN)/pytest -p no:cacheprovider tests/integration

clean:
	-$(BIN)/ledger stack down
	rm -rf $(VENV) .ledger
