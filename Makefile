# The two commands a new user runs: `make demo` and `make test`. Each sets up everything itself:
# a virtual environment in .venv, the package and its tools, PostgreSQL and Kafka (`ledger stack up`).

# The interpreter .venv is made from: the first of these that is Python 3.11+ and can make a
# virtual environment. The distribution's /usr/bin/python3 comes first: it is linked statically
# and built with profile-guided optimisation, where a build with a shared libpython (pyenv's, by
# default) ran the unit tests 30% slower and `ledger learner show` 21% slower, paired on the same
# machine (farm-bench). PYTHON=... chooses another.
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do \
	$$p -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
export LEDGER_STATE_DIR ?= $(CURDIR)/.ledger

.PHONY: demo test install lrs stack check unit integration clean

demo: install
	$(BIN)/ledger demo

test: install lrs stack check
	$(BIN)/pytest -p no:cacheprovider

# Installs again only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python 3.11+ that can make a venv: set PYTHON=..."; exit 1; }
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,openedx]'
	touch $@

install: $(VENV)/.installed

# A real Learning Record Store for the xAPI tests: Ralph, in a virtual environment of its own
# (its pins are not the ledger's). The tests start and stop it themselves.
LRS_VENV ?= .venv-ralph
$(LRS_VENV)/.installed:
	test -x $(LRS_VENV)/bin/python || $(PYTHON) -m venv $(LRS_VENV)
	$(LRS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LRS_VENV)/bin/python -m pip install --quiet 'ralph-malph[cli,lrs]==5.1.0' requests
	touch $@

lrs: $(LRS_VENV)/.installed

stack: install
	$(BIN)/ledger stack up

check: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -p no:cacheprovider tests/unit

integration: install lrs stack
	$(BIN)/pytest -p no:cacheprovider tests/integration

clean:
	-$(BIN)/ledger stack down
	rm -rf $(VENV) $(LRS_VENV) .ledger
