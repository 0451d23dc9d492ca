# One command per habit. Everything installs from the package registries into .venv; nothing needs root.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
CONSTRAINTS := constraints/airflow-3.3.1-python-3.12.txt
# Python 3.12, as on MWAA 3.3.1: PYTHON=..., else pyenv's newest 3.12, else a working python3.12 on PATH.
PYTHON ?= $(shell ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null | tail -n 1 | grep . \
            || (python3.12 -c 'import sys' >/dev/null 2>&1 && command -v python3.12))
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)

.PHONY: help venv test lint demo clean

help:
	@echo "make venv   - create .venv with Airflow 3.3.1 and the pinned providers (no GitHub needed)"
	@echo "make test   - run the whole test suite against real PostgreSQL, moto and Airflow"
	@echo "make demo   - load real files end to end on the embedded local stack"
	@echo "make lint   - ruff"

$(BIN)/.installed: requirements.txt requirements-dev.txt $(CONSTRAINTS)
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found: set PYTHON=/path/to/python3.12"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.12.3
	@# requirements.txt names the upstream constraints URL for MWAA; locally the same file comes from the repo.
	grep -v '^--constraint' requirements.txt > $(VENV)/requirements.local.txt
	$(BIN)/uv pip install --python $(BIN)/python --constraint $(CONSTRAINTS) \
		-r $(VENV)/requirements.local.txt -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: venv
	$(BIN)/python -m devstack.demo

clean:
	rm -rf $(VENV) .pytest_cache .demo
