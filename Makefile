# The two commands of the README. Each builds its own virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo

.PHONY: demo test venv lint bench clean

$(BIN)/tracewatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/tracewatch

venv: $(BIN)/tracewatch

# Main job on the embedded default: generate a seeded corpus, ingest and summarize it, show stats.
demo: venv
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/tracewatch corpus generate --seed 7 --interactions 2000 --out $(DEMO)/corpus
	$(BIN)/tracewatch ingest $(DEMO)/corpus --db $(DEMO)/tracewatch.duckdb
	$(BIN)/tracewatch summarize --db $(DEMO)/tracewatch.duckdb
	$(BIN)/tracewatch stats --db $(DEMO)/tracewatch.duckdb

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: venv
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/summarize_bench.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache
