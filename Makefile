# One entry point for set-up, demo, tests, lint and benchmarks.
# Everything installs into .venv from a bare Python 3.11; a second run reuses it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast lint format proto bench bench-train bench-serve bench-monitor bench-optimize bench-scale chromium clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: install
	$(BIN)/scaledl run   # the built-in digits CNN recipe → runs/digits-cnn/

# Two workers, each a whole test file at a time (module fixtures are built once): about 40 %
# less wall time than one on a 2-core machine.
test: install chromium
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

# Debian's chromium for the dashboard test (driven by playwright; no browser download).
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test-fast: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow and not e2e" tests

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

# Regenerate the committed gRPC stubs (src/scaledl/serve/grpc/protos/*_pb2*) from the .proto
# files. grpcio-tools lives in its own venv: installs never need it. Raising GRPCIO_TOOLS means
# raising the grpcio/protobuf floors in pyproject.toml too (the stubs refuse older runtimes).
GRPCIO_TOOLS := grpcio-tools==1.81.1
proto:
	test -x .venv-proto/bin/python || $(PYTHON) -m venv .venv-proto
	.venv-proto/bin/python -m pip install -q $(GRPCIO_TOOLS)
	.venv-proto/bin/python scripts/gen_grpc_stubs.py

bench: install bench-train bench-monitor bench-optimize bench-serve bench-scale

# Test accuracy, training time and images/s of every example recipe (≈ 20 min on 2 cores).
bench-train: install
	$(BIN)/python bench/train.py

# The serving benchmark drives HTTP load with wrk and gRPC load with h2load (Debian packages);
# it installs its peers (MLServer, KServe, LitServe) into their own cached venvs itself.
bench-serve: install
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	command -v h2load >/dev/null || (apt-get update && apt-get install -y nghttp2-client)
	$(BIN)/python bench/serve.py

# Drift detection: false alarms and detection per window size, Evidently's preset beside it.
bench-monitor: install
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,bench-drift]"
	$(BIN)/python bench/drift.py

# scaledl optimize vs ORT int8 alone, Torch-Pruning alone, eager and ORT fp32: the runs the README
# quotes (≈ 1 h on 2 cores). `python bench/optimize.py` alone: full CIFAR-10, 15/45-min budgets.
bench-optimize: install
	$(BIN)/python bench/optimize.py --budget-min 10 --cifar-limit 1000
	$(BIN)/python bench/optimize.py --cases cifar10-cnn --budget-min 25 --cifar-limit 1000 --reuse

# Augmentation gain, batched augmentation speed, 1 vs 2 processes, recovery (CIFAR-10 subset).
bench-scale: install
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) .venv-proto runs .pytest_cache .mypy_cache .ruff_cache
