# segpair: `make demo` sets up and materializes every asset on the SIMULATED demo data;
# `make test` sets up and runs the tests. Both work from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export SEGPAIR_DATA_ROOT := $(CURDIR)/data

.PHONY: demo test test-fast system-packages ui mlflow-ui lint format dagster-home

# torch==2.13.0 first: it is the CPU build, and installing it before the project keeps
# pip from resolving `torch>=2.5` to the registry's CUDA build (several GB).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The Dagster instance settings: installed when absent. A copy made before a setting was
# added keeps working without it, so each run says which it lacks (dead runs are marked
# failed, one run per partition): merge them from instance/dagster.yaml, or delete the copy.
INSTANCE_SETTINGS := run_monitoring SegpairRunLauncher dagster/partition
dagster-home:
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || cp instance/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@for s in $(INSTANCE_SETTINGS); do grep -q "$$s" $(DAGSTER_HOME)/dagster.yaml || echo \
		"warning: $(DAGSTER_HOME)/dagster.yaml lacks the $$s setting of instance/dagster.yaml:" \
		"merge it in, or delete the file and run make again"; done

demo: $(BIN)/.installed dagster-home
	$(BIN)/segpair demo

# System programs the end-to-end tests start, from Debian (never downloaded binaries):
# chromium + chromium-driver for the browser tests, redis-server as the Celery broker.
# Installed here where apt-get runs as root; elsewhere those tests skip and say why.
SYSTEM_PACKAGES := chromium chromium-driver redis-server
system-packages:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		&& command -v redis-server >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian $(SYSTEM_PACKAGES) for the end-to-end tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			$(SYSTEM_PACKAGES) >/dev/null) || echo "apt-get failed: those tests will skip"; \
	else echo "no $(SYSTEM_PACKAGES) and no root apt-get: those tests will skip"; fi

# Two workers: many tests wait on processes (webserver, MLflow, Celery), so two workers
# fit two cores; tests sharing the trained main-job fixture run on one worker (conftest).
test: $(BIN)/.installed dagster-home system-packages
	$(BIN)/pytest -n 2 --dist loadgroup

# The unit tests alone (pure core logic and structure, no Dagster run, no processes).
test-fast: $(BIN)/.installed dagster-home
	$(BIN)/pytest segpair_assets_tests/unit

ui: $(BIN)/.installed dagster-home
	@echo "Dagster UI: open http://127.0.0.1:3000 (MLflow runs link here: SEGPAIR_DAGSTER_UI_URL);" \
		"a classifier's metadata links to MLflow at $${SEGPAIR_MLFLOW_UI_URL:-http://127.0.0.1:5000} (make mlflow-ui)"
	$(BIN)/dagster dev -w workspace.yaml

# Prints each experiment's runs table in the ML view (MLflow 3 opens experiments in its
# GenAI view otherwise), then serves the UI.
mlflow-ui: $(BIN)/.installed
	@echo "MLflow UI: http://127.0.0.1:5000; experiments (runs in the ML view):"
	@$(BIN)/python -m resources.mlflow_tracking sqlite:///$(SEGPAIR_DATA_ROOT)/mlflow/mlflow.db http://127.0.0.1:5000 2>/dev/null || true
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(SEGPAIR_DATA_ROOT)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .
