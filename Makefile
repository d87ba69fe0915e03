# dl2llm: two commands on a fresh machine.
#   make run    set everything up, then start the main job
#   make test   set everything up, lint, and run the tests (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-installed
TF_STAMP := $(VENV)/.tf-installed
LLAMA_STAMP := $(VENV)/.llama-cpp-tried
# A portable x86 build: a native build also compiles ggml's AMX kernels on CPUs that have AMX,
# and in llama-cpp-python 0.3.36 those crash (SIGSEGV) on SmolLM2's Q4_1 matmuls with batches.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1

.PHONY: setup setup-tf setup-llama-cpp test-deps run test lint curriculum bench readme clean

setup: $(DEPS_STAMP)  ## create .venv, install the pinned stack, fetch the offline assets
	@$(OFFLINE) $(PY) -m dl2llm.cli assets fetch

$(DEPS_STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

setup-tf: $(TF_STAMP)  ## the optional TensorFlow/Keras twin of week 1

$(TF_STAMP): $(DEPS_STAMP)
	$(PY) -m pip install --quiet -e ".[dev,tf]"
	@touch $@

run: setup  ## the main job: the QA service on 127.0.0.1:8000 (builds its index on first start)
	$(OFFLINE) $(PY) capstone/deployment_script.py

setup-llama-cpp: $(LLAMA_STAMP)  ## llama.cpp's server for the --llm-url test, where it builds

$(LLAMA_STAMP): $(DEPS_STAMP)
	@echo "building llama-cpp-python from source, once (about 5 minutes on 2 cores)"
	@CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet --no-cache-dir -e ".[llamacpp]" \
		|| echo "llama-cpp-python did not build" \
		"here: tests/test_remote_llm.py runs against this project's own service only" >&2
	@touch $@

test-deps: setup  ## the browser test drives Debian's chromium (playwright is in the dev extra)
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; \
		elif command -v sudo >/dev/null; then SUDO=sudo; echo "installing chromium with sudo"; \
		else echo "make test needs Debian's chromium for the web-page test; as root run:" \
			"apt-get install -y chromium   (then make test again)" >&2; exit 1; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup setup-tf setup-llama-cpp test-deps lint  ## what CI runs
	$(OFFLINE) $(VENV)/bin/pytest

curriculum: setup  ## every deliverable in full mode -> results/*.json, results/SUMMARY.md
	$(OFFLINE) $(PY) -m dl2llm.cli curriculum
	$(PY) -m dl2llm.cli readme --results-table

bench: setup  ## side-by-side speed comparisons, as ratios against a baseline
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(OFFLINE) $(PY) $$b || exit 1; done

readme: setup
	$(PY) -m dl2llm.cli readme

clean:
	rm -rf $(VENV) results/*.json results/*.png
