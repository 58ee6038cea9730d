# Every target bootstraps .venv itself: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS := duckdb,polars,export,plot,dev
STAMP  := $(VENV)/.embed-sql-installed

.PHONY: demo test bench lint models clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU wheel: a looser spec would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The default model, exported once to ONNX (fp32 and int8) into the cache; a no-op when cached.
models: $(STAMP)
	$(BIN)/embed-sql models export all-MiniLM-L6-v2
	$(BIN)/embed-sql models export all-MiniLM-L6-v2 --int8

demo: models
	$(BIN)/embed-sql demo

test: models
	$(BIN)/python -m pytest

bench: models
	$(BIN)/python benchmarks/encode.py

lint: $(STAMP)
	$(BIN)/ruff check embed_sql tests benchmarks
	$(BIN)/ruff format --check embed_sql tests benchmarks

clean-venv:
	rm -rf $(VENV)
