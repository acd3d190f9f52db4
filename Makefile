# The two commands of the README: `make rehearse` (the main job) and `make test`.
# Both bootstrap their own virtualenv in .venv from PyPI, pinned by constraints.txt.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all rehearse check-example test bench clean venv

all: test

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## The main job: rehearse the example campaign — the real daemon against bundled local
## servers, the whole campaign in about a minute.
rehearse: $(STAMP)
	$(BIN)/postscheduler rehearse config/campaign.toml

## Show every publication of the example campaign as it will be sent.
check-example: $(STAMP)
	$(BIN)/postscheduler check config/campaign.toml

## The whole test suite: lint, strict typing on src/, then every test.
test: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/bench_check.py
	$(BIN)/python bench/bench_store.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
