# panollava — developer entry points. Everything runs inside .venv/ at the repo root.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-fast lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## The main job on the embedded default data (see README).
demo: install
	$(BIN)/panollava demo --out outputs/demo

## Debian's Chromium + ChromeDriver for the web-demo browser test (installed when root).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "note: chromium/chromedriver missing; the browser test skips here (and fails in CI)"

## The full suite (slow and e2e tests included, gpu tests skip without CUDA).
test: install browser
	$(BIN)/pytest -q

## Quick loop while developing: skips slow and e2e tests.
test-fast: install
	$(BIN)/pytest -q -m "not slow and not e2e"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python benchmarks/bench_views.py
	$(BIN)/python benchmarks/bench_generate.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
