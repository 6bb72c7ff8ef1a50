# riskstrat: two commands on a fresh machine.
#   make demo  - the whole weekly job end to end on the synthetic default population
#   make test  - lint and the whole test suite (what CI runs)
#   make wheel - build the installable wheel into dist/ (default settings included)
#   make wheel-check - install that wheel into a fresh virtualenv and run the demo from an empty folder

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format benchmark wheel wheel-check clean

# Create .venv and install riskstrat with pinned dependencies; skipped when
# pyproject.toml and constraints.txt have not changed since the last install.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/riskstrat demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.run

# setuptools' build/ folder is removed first: left over, it would carry modules
# deleted since into the wheel.
wheel: $(STAMP)
	rm -rf build dist
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	rm -rf build

wheel-check:
	PYTHON=$(PYTHON) .ci/wheel-check

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache build dist
