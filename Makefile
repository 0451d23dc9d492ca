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
# Every pytest run gets its own temp root: two runs on one machine (two clones, or a test run beside
# `make chaos`) must not re-permission or prune each other's directories.
PYTEST := $(BIN)/python -m pytest --basetemp="$$(mktemp -d $${TMPDIR:-/tmp}/redshift-ingest-pytest-XXXXXX)"

.PHONY: help venv test lint demo clean chaos bench bench-backlog bench-parse bench-latency airflow browser test-ui bundle verify-bundle lambda-package compose-config up down tools bench-standin images test-compose test-unit

help:
	@echo "make venv   - create .venv with Airflow 3.3.1 and the pinned providers (no GitHub needed)"
	@echo "make test   - run the whole test suite against real PostgreSQL, moto and Airflow"
	@echo "make demo   - load real files end to end on the embedded local stack"
	@echo "make test-unit - the tests that need no service (no PostgreSQL, moto, stand-in, Airflow DB)"
	@echo "make lint   - ruff (check, format), mypy over plugins/, sqlfluff over include/sql"
	@echo "make chaos  - the full fault-injection suite (make test runs its short form)"
	@echo "make bench  - memory and speed measurements"
	@echo "make bench-backlog - 1,000-file backlog under the real local Airflow: batched vs one file per run"
	@echo "make bench-parse   - DAG folder parse time with 10, 200 and 1000 file types"
	@echo "make bench-latency - upload -> DONE and idle worker slots, new vs old wait, on the real local Airflow"
	@echo "make bench-standin - the Redshift stand-in's COPY against raw COPY FROM STDIN (ratio line)"
	@echo "make airflow - the real Airflow UI on localhost:8080 over the embedded stack (no Docker)"
	@echo "make test-ui - the browser test of reruns from the Airflow UI (headless Chromium)"
	@echo "make bundle / verify-bundle / lambda-package - what is deployed, and its checks"
	@echo "make up / down / compose-config - the docker-compose stack (Docker or podman; make tools as root)"
	@echo "make test-compose - the compose stack end to end (a file loads, a bad file alerts, the UI test)"

# The Redshift stand-in is its own package (redshift-local/), installed editable with its test extra.
$(BIN)/.installed: requirements.txt requirements-dev.txt $(CONSTRAINTS) redshift-local/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found: set PYTHON=/path/to/python3.12"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.12.3
	@# requirements.txt names the upstream constraints URL for MWAA; locally the same file comes from the repo.
	grep -v '^--constraint' requirements.txt > $(VENV)/requirements.local.txt
	@# Bytecode compiled at install (pip does it, uv only when asked): every Airflow process and test
	@# would otherwise compile each module it imports, and PYTHONDONTWRITEBYTECODE keeps it from caching.
	$(BIN)/uv pip install --python $(BIN)/python --constraint $(CONSTRAINTS) --compile-bytecode \
		-r $(VENV)/requirements.local.txt -r requirements-dev.txt -e './redshift-local[test]'
	touch $@

venv: $(BIN)/.installed

# The stand-in's own tests run from its folder, under its own pytest settings (redshift-local/pyproject.toml).
STANDIN_PYTEST := cd redshift-local && $(CURDIR)/$(PYTEST)

test: venv
	$(PYTEST) -m "not slow"
	$(STANDIN_PYTEST) -m "not slow"

# The unit tier: tests using none of the service fixtures (tests/conftest.py marks them `unit`).
test-unit: venv
	$(PYTEST) -m "unit and not slow" -q

# Every fault-injection scenario (SIGKILL at each step boundary and inside COPY, dropped connections,
# S3 outages, duplicate events, racing runs), with the tally of duplicates and losses.
chaos: venv
	$(PYTEST) tests/faults -m slow -s -p no:logging

# Benchmarks and memory measurements (not timed assertions).
bench: venv
	$(PYTEST) -m slow --ignore=tests/faults -s -p no:logging
	$(STANDIN_PYTEST) -m slow -s -p no:logging

# The Redshift stand-in against raw COPY FROM STDIN (3 alternating runs each on a generated 100 MB CSV).
bench-standin: venv
	$(BIN)/python -m redshift_local.bench --mb 100 --runs 3

# Drain a backlog of 1,000 small real files under the real local Airflow scheduler, batched against one
# file per run; prints files per minute, COPY transactions and whether per-file counts agree.
bench-backlog: venv
	$(BIN)/python -m devstack.bench_backlog $(BENCH_ARGS)

# DAG folder parse time as the dag-processor pays it (one fresh process per file), 10 / 200 / 1000 file types.
bench-parse: venv
	$(BIN)/python -m devstack.bench_parse $(BENCH_ARGS)

# Minutes: starts devstack.airflow_local with the shipped file types in the new and the old wait mode.
bench-latency: venv
	$(BIN)/python -m devstack.bench_latency $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint include/sql
	$(BIN)/python -m devstack.check_file_types

demo: venv
	$(BIN)/python -m devstack.demo

clean:
	rm -rf $(VENV) .pytest_cache .demo

# --- Deployment: MWAA bundle, register_file Lambda, local compose stack (docs/deploy-mwaa.md) -------------
# The docker-compose stack (docs/deploy-mwaa.md, "Local stack"); docker/stack.sh does the work:
# ENGINE=docker|podman, BASE_IMAGES=registry|debian|auto, PIP_CA=extra CA bundle for pip in the builds.
STACK := PYTHON="$(PYTHON)" docker/stack.sh

.PHONY: bundle verify-bundle lambda-package compose-config images up down tools test-compose

bundle: venv
	$(BIN)/python -m devstack.bundle --out dist

# Fresh Python 3.12 venv with dist/requirements.txt (+ Airflow 3.3.1), then parse every DAG as on MWAA.
verify-bundle: bundle
	PYTHON="$(PYTHON)" UV=$(BIN)/uv $(BIN)/python -m devstack.verify_bundle --dist dist

# dist/register_file.zip for `sam deploy -t lambdas/register_file/template.yaml`; imports the handler after.
lambda-package: venv
	$(BIN)/python lambdas/register_file/package.py --out dist --smoke-test

compose-config:
	$(STACK) config

# As root: podman + docker-compose (+ debootstrap for offline images) from Debian, configured for
# these machines; nothing when a Docker engine and compose already work.
tools:
	$(STACK) tools

images:
	$(STACK) images

# Builds the images, starts the stack and waits until every service is healthy.
up:
	$(STACK) up

# Stops and removes the containers; the volumes stay (`docker/stack.sh down -v` drops them too).
down:
	$(STACK) down

# The stack end to end, as its own compose project (volumes wiped before and after): up with the DAGs'
# schedules off, a file loads and a bad file fails and alerts under the stack's own scheduler, down
# and up keep the volumes, the browser test of reruns against it, then down (always).
test-compose: venv browser $(BIN)/.ui-installed
	@mkdir -p test-artifacts; rm -f test-artifacts/compose-summary.txt
	export COMPOSE_PROJECT_NAME=redshift-ingest-test AIRFLOW_USE_JOB_SCHEDULE=false PYTHON="$(PYTHON)"; \
	$(STACK) down -v >/dev/null 2>&1 || true; \
	rc=0; \
	$(STACK) up || rc=$$?; \
	[ $$rc -ne 0 ] || RUN_COMPOSE_TESTS=1 $(PYTEST) tests/deploy/test_compose_stack.py -q -s -p no:logging || rc=$$?; \
	[ $$rc -ne 0 ] || RUN_UI_TESTS=1 UI_STACK=compose UI_TIMEOUT_MS=120000 CHROMIUM=$(CHROMIUM) $(PYTEST) tests/ui -q || rc=$$?; \
	[ $$rc -eq 0 ] || $(STACK) compose logs --no-color --tail 100 > test-artifacts/compose-logs.txt 2>&1 || true; \
	$(STACK) down -v; [ $$rc -ne 0 ] || cat test-artifacts/compose-summary.txt; exit $$rc

# --- The real Airflow UI on the embedded stack, and the browser test of reruns from the UI -------------
.PHONY: airflow browser test-ui

# Airflow 3.3.1 (api-server, scheduler, dag-processor, triggerer; LocalExecutor on the stack's PostgreSQL)
# at http://localhost:8080, login admin/admin; Ctrl-C stops it. AIRFLOW_ARGS="--land-demo-files --port 8081".
airflow: venv
	$(BIN)/python -m devstack.airflow_local $(AIRFLOW_ARGS)

# Headless Chromium from Debian for tests/ui (Playwright drives it; never `playwright install`).
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "chromium already available: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else \
		echo "run as root, or: sudo apt-get install -y chromium (or set CHROMIUM=/path/to/chromium)"; exit 1; \
	fi

$(BIN)/.ui-installed: requirements-ui.txt $(BIN)/.installed
	$(BIN)/uv pip install --python $(BIN)/python --constraint $(CONSTRAINTS) -r requirements-ui.txt
	touch $@

# Starts devstack.airflow_local itself; screenshots of each step in test-artifacts/ui/.
test-ui: venv browser $(BIN)/.ui-installed
	RUN_UI_TESTS=1 CHROMIUM=$(CHROMIUM) $(PYTEST) tests/ui -q
