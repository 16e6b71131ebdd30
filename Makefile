# Momentum: `make up` runs the whole system, `make test` runs every test, `make lint` checks.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
TOOLS_DIR := .tools
# Use uv from PATH when there is one; otherwise install it into a project-local tool venv.
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS_DIR)/bin/uv)
VENV_BIN := .venv/bin
PYTHON ?= python3
MYPY_PATHS := shared devtools services gateway clients tests $(shell find bench -name '*.py' 2>/dev/null)

.PHONY: help sync up test test-unit lint lint-python lint-deploy bench client clean

help:
	@echo "make up     run auth, tasks, analytics, gateway and NATS in the foreground"
	@echo "make test   run the whole test suite"
	@echo "make test-unit  run the pure-logic tests (<member>/tests/unit/): no database, NATS or app"
	@echo "make lint   ruff, mypy (strict), import contracts, Dockerfiles and Kubernetes manifests"
	@echo "make bench  run the benchmarks (JSON on stdout)"
	@echo "make client regenerate the Python client (clients/python) from the services' OpenAPI"

$(TOOLS_DIR)/bin/uv:
	$(PYTHON) -m venv $(TOOLS_DIR)
	$(TOOLS_DIR)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

sync: $(if $(findstring $(TOOLS_DIR),$(UV)),$(TOOLS_DIR)/bin/uv)
	@$(UV) sync --all-packages --frozen --quiet

up: sync
	$(VENV_BIN)/python -m momentum_devtools.devstack

test: sync
	$(VENV_BIN)/python -m pytest

# The unit layer: pure logic, in seconds. The pytest plugin fails a unit test that asks for
# a database, NATS or an app.
UNIT_DIRS = $(wildcard shared/tests/unit devtools/tests/unit services/*/tests/unit gateway/tests/unit)

test-unit: sync
	$(VENV_BIN)/python -m pytest -q $(UNIT_DIRS)

lint: lint-python lint-deploy

lint-python: sync
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .
	$(VENV_BIN)/mypy $(MYPY_PATHS)
	$(VENV_BIN)/lint-imports

lint-deploy: sync
	@if [ -x deploy/validate ]; then deploy/validate; else echo "deploy/validate missing"; exit 1; fi

# One JSON object per benchmark on stdout; BENCH_DB=postgresql|sqlite picks the services'
# database where a benchmark has one (sqlite unless set).
bench: sync
	@for b in bench/*/run; do [ -x "$$b" ] && "$$b"; done

client: sync
	$(VENV_BIN)/python -m momentum_devtools.pyclient

clean:
	rm -rf .momentum .pytest_cache .mypy_cache .ruff_cache
