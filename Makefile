# The two set-up commands (see README): `make demo` and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench-quick clean

# Compatible ranges in pyproject.toml; the tested set pinned by constraints.txt.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/greenbelt demo

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench-quick: $(VENV)/.installed
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) demo .pytest_cache
