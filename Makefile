# riskstrat: two commands on a fresh machine.
#   make demo  - the whole weekly job end to end on the synthetic default population
#   make test  - lint and the whole test suite (what CI runs)

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format benchmark clean

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

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
