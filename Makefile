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
	$(PY) -m ssdlib.reproduce --preset cpu

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m ssdlib.bench env --env cleanup --sweep 1,64,256,1024,4096
	$(PY) -m ssdlib.bench env --env harvest --sweep 1,64,256,1024,4096
