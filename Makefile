# One entry point for set-up, demo, tests, lint and benchmarks.
# Everything installs into .venv from a bare Python 3.11; a second run reuses it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast lint format bench bench-train bench-optimize clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: install
	$(BIN)/scaledl run --out runs/demo

test: install
	$(BIN)/python -m pytest -q tests

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not e2e" tests

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install bench-optimize
	$(BIN)/python bench/train.py

# scaledl optimize vs ORT int8 alone, Torch-Pruning alone, eager and ORT fp32 (≈ 2 h on 2 cores;
# `python bench/optimize.py --quick` for a shorter run).
bench-optimize: install
	$(BIN)/python bench/optimize.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
