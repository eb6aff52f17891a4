# segpair: `make demo` sets up and materializes every asset on the SIMULATED demo data;
# `make test` sets up and runs the tests. Both work from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export SEGPAIR_DATA_ROOT := $(CURDIR)/data

.PHONY: demo test browser ui mlflow-ui lint format

# torch==2.13.0 first: it is the CPU build, and installing it before the project keeps
# pip from resolving `torch>=2.5` to the registry's CUDA build (several GB).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp instance/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	touch $@

demo: $(BIN)/.installed
	$(BIN)/segpair demo

# The browser tests drive Debian's chromium + chromium-driver (never a downloaded browser).
# Installed here where apt-get runs as root; elsewhere those tests skip and say why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian chromium + chromium-driver for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null) || echo "apt-get failed: browser tests will skip"; \
	else echo "no chromium and no root apt-get: the browser tests will skip"; fi

test: $(BIN)/.installed browser
	$(BIN)/pytest

ui: $(BIN)/.installed
	$(BIN)/dagster dev -w workspace.yaml

mlflow-ui: $(BIN)/.installed
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(SEGPAIR_DATA_ROOT)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .
