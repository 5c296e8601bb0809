# Every target sets up its own virtual environment first, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup reproduce test bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

reproduce: setup
	$(PY) -m ssdlib.book.reproduce --preset cpu

test: setup
	$(PY) -m pytest

# Writes the JSON lines the README's speed tables are made from.
bench: setup
	mkdir -p results/bench
	( $(PY) -m ssdlib.bench env --env cleanup --sweep 1,64,256,1024,4096 && \
	  $(PY) -m ssdlib.bench env --env harvest --sweep 1,64,256,1024,4096 ) | tee results/bench/env_cpu.jsonl
	( $(PY) -m ssdlib.bench train --config cleanup_a3c cleanup_influence harvest_a3c harvest_influence cleanup_moa_baseline cleanup_moa_influence harvest_moa_baseline harvest_moa_influence --num-envs 64 --iterations 4 && \
	  $(PY) -m ssdlib.bench train --config box_trapped_a3c box_trapped_influence --num-envs 64 --seeds 3 --iterations 4 ) | tee results/bench/train_cpu.jsonl
