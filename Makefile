# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
export MLFLOW_DISABLE_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Our hot paths are many small matrix products: BLAS threads only add contention on 2 cores.
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: demo test bench bench-service bench-soak lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The flagship experiment on the embedded defaults (SQLite scratch database, ./mlruns).
demo: $(STAMP)
	$(BIN)/engage run examples/engagement.toml

# Two xdist workers: the suite mostly waits on servers and subprocesses. Load-sensitive tests
# share one group and so one worker (tests/conftest.py); `pytest -n 0` runs it serially.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.policies

# The HTTP service under load on loopback (SQLite and PostgreSQL on 127.0.0.1:5432).
bench-service: $(BENCH_STAMP)
	$(BIN)/python -m bench.service
	$(BIN)/python -m bench.learner_lag

# Ten minutes at half of the decide peak: errors, p99 drift, each worker's memory (SOAK_ARGS:
# e.g. --database postgresql --workers 4 --minutes 30).
bench-soak: $(BENCH_STAMP)
	$(BIN)/python -m bench.service_soak $(SOAK_ARGS)

# Style, formatting, and types (mypy over bandit, experiments and cli: see [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
