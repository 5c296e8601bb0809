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

# Executes only the notebooks whose source, parameters, library or results changed, and builds
# the book only when its sources changed; `make reproduce FORCE=1` executes and builds everything.
# JOBS notebooks run at a time (default 2).
JOBS ?= 2
reproduce: setup
	$(PY) -m ssdlib.book.reproduce --preset cpu --jobs $(JOBS) $(if $(FORCE),--force)

# The book tests need npm once (MathJax is vendored from the npm registry) and the page tests
# (tests/test_pages.py) need Chromium: both are installed here when missing and this user can
# (root, with apt-get), as in CI. Otherwise pytest skips the page tests and says why in its
# summary; with CI set, an install that fails stops here and a missing Chromium fails the tests.
test: setup
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| command -v google-chrome >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "make test: installing$$missing (apt-get)"; \
			if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; }; then \
				echo "make test: could not install$$missing"; [ -z "$$CI" ] || exit 1; \
			fi; \
		else \
			echo "make test: missing$$missing, not installed (needs root and apt-get)"; \
		fi; \
	fi
	$(PY) -m pytest

# Writes the JSON lines the README's speed tables are made from.
bench: setup
	mkdir -p results/bench
	( $(PY) -m ssdlib.bench env --env cleanup --sweep 1,64,256,1024,4096 && \
	  $(PY) -m ssdlib.bench env --env harvest --sweep 1,64,256,1024,4096 ) | tee results/bench/env_cpu.jsonl
	( $(PY) -m ssdlib.bench train --config cleanup_a3c cleanup_influence harvest_a3c harvest_influence cleanup_moa_baseline cleanup_moa_influence harvest_moa_baseline harvest_moa_influence cleanup_comm_baseline cleanup_comm_influence harvest_comm_baseline harvest_comm_influence --num-envs 64 --iterations 4 && \
	  $(PY) -m ssdlib.bench train --config box_trapped_a3c box_trapped_influence --num-envs 64 --seeds 3 --iterations 4 ) | tee results/bench/train_cpu.jsonl
