# The README's two commands: `make run` (set up, build the sample index, serve) and `make test`.
PY ?= python3
# CI passes a fresh folder (.ci/run): VENV=DIR
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-env install browser sample-index clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The tests also cover the optional Ray engine and the LangChain, LlamaIndex and MCP integrations, so
# `make test` installs those extras too.
TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[dev,distributed,langchain,llamaindex,mcp]"
	touch $(TEST_STAMP)

test-env: $(TEST_STAMP)

sample-index: install
	@if [ ! -f indexes/default/manifest.json ]; then $(BIN)/newsrag ingest --sample; fi

run: sample-index
	@echo 'Try: curl -s -X POST http://127.0.0.1:8000/answer -H "Content-Type: application/json" -d '"'"'{"question": "When is Putin expected to visit India?"}'"'"
	$(BIN)/newsrag serve --host 127.0.0.1 --port 8000

# Debian's chromium for the browser test (Playwright cannot download a browser here); apt-get needs root.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: install Debian's chromium as root, else the browser test skips"; fi; \
	fi

test: $(TEST_STAMP) browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) indexes/default
