# The project's interface: `make run` and `make test` each set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
CONF ?= {}
EDITION ?= 2023
SCALE ?=

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
# Our package (plugins/stclusters) is installed into the venv (`pip install -e .`), not loaded as
# Airflow plugins: it defines none, and Airflow would import every module of plugins/ in every
# component. Airflow's own plugins folder stays empty.
export AIRFLOW__CORE__PLUGINS_FOLDER := $(AIRFLOW_HOME)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: setup run test test-unit test-e2e lint verify bench docs sample clean clean-workspace airflow airflow-stop

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(AIRFLOW_HOME)/.migrated: $(BIN)/.installed
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (tail -30 $(AIRFLOW_HOME)/migrate.log; exit 1)
	@touch $@

setup: $(AIRFLOW_HOME)/.migrated

## run: set up, run the st_clusters DAG on the embedded sample (or CONF='{...}'), show the outputs
run: setup
	@rc=0; $(BIN)/airflow dags test st_clusters --conf '$(CONF)' || rc=$$?; \
		$(BIN)/python -m stclusters where --conf '$(CONF)'; exit $$rc

# Two test processes (pytest-xdist), each test module on one of them (its module fixtures built
# once); PYTEST_WORKERS=0 runs in one process. Tests keep to their own tmp folders and ports.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadscope)

## test: set up (with Debian's chromium for the browser test), lint, then the whole test suite
test: setup lint
	bash tools/ensure-chromium.sh
	$(BIN)/python -m pytest tests $(PYTEST_PARALLEL) --durations=25

test-unit: setup
	$(BIN)/python -m pytest tests -m "not e2e" $(PYTEST_PARALLEL)

test-e2e: setup
	bash tools/ensure-chromium.sh
	$(BIN)/python -m pytest tests -m e2e $(PYTEST_PARALLEL) --durations=25

lint: $(BIN)/.installed
	@mkdir -p workspace
	$(BIN)/ruff check plugins dags tests deploy bench
	$(BIN)/ruff format --check plugins dags tests deploy bench
	env $$($(BIN)/python -m stclusters.config --dbt-env) STCLUSTERS_DUCKDB_PATH=$(CURDIR)/workspace/lint.duckdb \
		$(BIN)/sqlfluff lint dbt_project/models

## verify: re-check every published file of EDITION against its manifest
verify: $(BIN)/.installed
	$(BIN)/python -m stclusters verify --edition $(EDITION)

## bench: world-scale benchmark, scales 0.01, 0.1 and 1 (or SCALE=0.1); table in docs/performance.md
## (BENCH_ARGS=--sklearn adds the comparison with scikit-learn's DBSCAN)
BENCH_ARGS ?=
bench: setup
	$(BIN)/python bench/run.py $(if $(SCALE),--scale $(SCALE),--scale 0.01 --scale 0.1 --scale 1) $(BENCH_ARGS)

## docs: dbt's documentation site for an edition built by `make run` (models, columns, tests, lineage),
## as one static_index.html that opens from disk (--static: manifest and catalog inlined)
docs: setup
	@test -f workspace/$(EDITION)/stclusters.duckdb || (echo "no workspace/$(EDITION)/stclusters.duckdb: run 'make run' first"; exit 1)
	env $$($(BIN)/python -m stclusters.config --dbt-env --conf '{"edition": $(EDITION)}') \
		$(BIN)/dbt docs generate --static --project-dir dbt_project --profiles-dir dbt_project \
		--target-path $(CURDIR)/workspace/$(EDITION)/dbt/docs
	@test -f workspace/$(EDITION)/dbt/docs/static_index.html
	@echo "dbt docs (open from disk): $(CURDIR)/workspace/$(EDITION)/dbt/docs/static_index.html"

## airflow: a local Airflow (api-server, scheduler, dag-processor) on 127.0.0.1:$(AIRFLOW_PORT); metadata on
## PostgreSQL (database stclusters_airflow) when it answers on 127.0.0.1:5432, else SQLite; prints the
## URL and the login. airflow-stop ends it. docs/operations.md, "A local Airflow".
AIRFLOW_PORT ?= 8080
airflow: setup
	@$(BIN)/python tools/airflow_local.py start --port $(AIRFLOW_PORT)

airflow-stop:
	@$(BIN)/python tools/airflow_local.py stop

sample: $(BIN)/.installed
	$(BIN)/python -m stclusters.synthetic.sample --edition $(EDITION) --out data/sample

clean:
	rm -rf workspace output .airflow

## clean-workspace: landing files no landed.json references, dead loads' .loading-<pid> files,
## validation runs but the newest keep_validation_runs and latest.json's, in every edition of WORKSPACE (docs/data-formats.md, "Retention")
WORKSPACE ?= workspace
clean-workspace:
	@if [ -d "$(WORKSPACE)" ]; then \
		$(BIN)/python -c 'import sys; from stclusters.tasks import clean_workspace; \
			print(f"clean-workspace: removed {len(clean_workspace(sys.argv[1]))} file(s)/folder(s)")' "$(WORKSPACE)"; \
	else echo "no $(WORKSPACE)/: nothing to clean"; fi
