# One entry point for set-up, tests, lint, benchmarks and the demo; CI runs `make test` then `make test-faults`.
# Every target installs what it needs (venv, pip packages, pinned jars), idempotently.

PYTHON_SYS ?= $(shell command -v python3.11 || command -v python3)
VENV       ?= .venv
PY         := $(VENV)/bin/python
PIP        := $(VENV)/bin/pip
STAMP      := $(VENV)/.drnflow-installed
PYTEST_ARGS ?=

.PHONY: help setup venv jars data crds test test-faults test-unit test-integration lint bench demo up down status clean

help:
	@echo "make demo   - set up everything and run the main job end to end, then stop what it started"
	@echo "make test   - set up everything and run the test suite (real Kafka + Flink), about 14 min"
	@echo "make test-faults - the long fault-injection and end-to-end tests, about 18 min"
	@echo "make lint   - ruff + mypy + the import layers contract"
	@echo "make bench  - benchmarks, printing medians and side-by-side ratios"
	@echo "make up / status / down - the local Kafka broker and Flink cluster (drnflow up --cluster)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

jars: $(STAMP)
	@$(PY) -m drnflow.provision jars

data: $(STAMP)
	@$(PY) -m drnflow.provision data

crds: $(STAMP)
	@$(PY) -m drnflow.provision crds

setup: venv jars data crds

test: setup
	$(PY) -m pytest -q -m "not faults" $(PYTEST_ARGS)

test-faults: setup
	$(PY) -m pytest -q -m faults $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(PY) -m pytest -q tests/integration $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) -m bench

demo: setup
	$(VENV)/bin/drnflow demo

up: setup
	$(VENV)/bin/drnflow up --cluster

status: venv
	$(VENV)/bin/drnflow status

down: venv
	$(VENV)/bin/drnflow down

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info
