# Two entry points for a fresh clone:  `make serve`  and  `make test`.
# Everything is installed into .venv from hash-pinned lock files: requirements.lock
# (what the server needs) for `serve`, requirements-dev.lock (that plus the test
# tools) for `test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
ARGS ?=

.PHONY: install install-dev serve test lint bench lock clean native

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(RUNTIME): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(RUNTIME)

# The C extensions (scripts/build-native): the grouping's candidate lines, and the
# store's collector of Hyperscan reports where libhs's headers are. Optional for
# serve (without them the same work runs in Python, slower); make test installs a
# compiler and the headers and requires both.
native: $(RUNTIME)
	./scripts/build-native

$(DEV): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(RUNTIME) $(DEV)

install: $(RUNTIME) native

install-dev: $(DEV)

# make serve ARGS="-P data --syslog-port 5514"
serve: $(RUNTIME) native
	$(BIN)/logcaster serve $(ARGS)

test: $(DEV)
	./scripts/test-deps
	./scripts/build-native --required
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(DEV)
	$(BIN)/python bench/ingest --keep-corpus
	$(BIN)/python bench/parse

# Regenerate both lock files after changing dependencies in pyproject.toml.
lock: $(DEV)
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
