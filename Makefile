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

.PHONY: demo test test-fast up bench clean

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

# One worker per core plus two (four on the 2-core CI machine): a worker waiting on a process
# it started (a Prefect server, cdk, a demo) or on a flow's simulated clock leaves its core to the
# others; with one per core the suite took 14 min 25 s where three took 11 min 23 s, for the same
# CPU, and on a slower machine four took 14 min 46 s where three took 15 min 58 s, again for the
# same CPU. Whole files per worker, so a file's fixtures (the embedded AWS, the Prefect harness, a
# `prefect server start`) start once per worker.
WORKERS ?= $(shell echo $$(( $$(nproc) + 2 )))

test: $(STAMP) $(TOOLS)
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile -m "not integration"

up: $(STAMP)
	@mkdir -p $(PREFECT_HOME)
	$(BIN)/rollway up

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/judge.py --quick
	$(BIN)/python benchmarks/flags.py

clean:
	rm -rf $(VENV) .rollway .pytest_cache
