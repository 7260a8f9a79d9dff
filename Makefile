# rollout-watchdog: the two set-up commands are `make demo` and `make test`.
# Each bootstraps .venv by itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# mkdocs gets a venv of its own: it depends on the PyPI package `watchdog` (file events),
# whose import name is the same as this project's package
DOCS_VENV := .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed
# pytest workers (pytest-xdist): one per core of the 2-core CI machine; each test file
# runs whole on one worker (module fixtures such as a Prometheus are started once)
PYTEST_WORKERS ?= 2

.PHONY: demo test lint typecheck check-rules score bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DOCS_STAMP): requirements-docs.txt
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install --quiet --upgrade pip
	$(DOCS_VENV)/bin/pip install --quiet -r requirements-docs.txt
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(BIN)/python -m watchdog.demo

test: $(STAMP) $(DOCS_STAMP)
	$(BIN)/ruff check watchdog tests bench
	$(BIN)/mypy
	$(BIN)/rollout-watchdog check rules/
	$(BIN)/rollout-watchdog test rules/tests/*.yaml
	bash scripts/ensure-prometheus.sh
	bash scripts/ensure-postgresql.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check watchdog tests bench
	$(BIN)/ruff format --check watchdog tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check-rules: $(STAMP)
	$(BIN)/rollout-watchdog check rules/

score: $(STAMP)
	../shared/scenarios/score -- $(BIN)/rollout-watchdog backtest --json

bench: $(STAMP)
	$(BIN)/python bench/backtest_speed.py

# the documentation site (mkdocs.yml) into site/; docs/rules-reference.md is generated
# from watchdog/config/schema.py first
docs: $(STAMP) $(DOCS_STAMP)
	$(BIN)/python -m watchdog.docs_gen
	$(DOCS_VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) $(DOCS_VENV) .mypy_cache .pytest_cache .ruff_cache build site *.egg-info
