# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck contracts pytest bench clean

$(BIN)/python:
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "error: MO Local needs Python 3.11 (set PY=/path/to/python3.11)"; exit 1; }
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml requirements/dev.txt
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c requirements/dev.txt -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m mo_local.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck contracts pytest

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
