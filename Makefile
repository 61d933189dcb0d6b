# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The real cdk and docker the integration tests drive (scripts/install-test-tools).
TOOLS := .rollway/.tools-installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.rollway/prefect
export DO_NOT_TRACK := 1

.PHONY: demo test test-fast file-seconds up bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	mkdir -p $(PREFECT_HOME)
	touch $(STAMP)

$(TOOLS): scripts/install-test-tools
	scripts/install-test-tools
	touch $(TOOLS)

demo: $(STAMP)
	@mkdir -p $(PREFECT_HOME)
	$(BIN)/rollway demo

# One worker per core plus one (three on the 2-core CI machine): a worker waiting on a process
# it started (a Prefect server, cdk, a demo) or on a flow's simulated clock leaves its core to the
# others; with one per core the suite took 14 min 25 s where three took 11 min 23 s, for the same
# CPU. Whole files per worker, so a file's fixtures (the embedded AWS, the Prefect harness, a
# `prefect server start`) start once per worker. The longest files first (tests/schedule.py):
# xdist's own reorder, by number of tests, left the long files with few tests to the end.
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
XDIST = -n $(WORKERS) --dist loadfile --no-loadscope-reorder

test: $(STAMP) $(TOOLS)
	$(BIN)/python -m pytest -q $(XDIST)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m "not integration"

# Each test file's seconds on this machine, for the order above: run after adding long tests.
file-seconds: $(STAMP) $(TOOLS)
	$(BIN)/python -m pytest -q $(XDIST) --record-file-seconds tests/file_seconds.json

up: $(STAMP)
	@mkdir -p $(PREFECT_HOME)
	$(BIN)/rollway up

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/judge.py --quick
	$(BIN)/python benchmarks/flags.py

clean:
	rm -rf $(VENV) .rollway .pytest_cache
