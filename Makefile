# Two entry points: `make demo` (install, then the whole flow on the generated sample) and
# `make test` (install, then the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test bench
install: $(VENV)/.installed

# torch is pinned explicitly: a bare `torch` would resolve to a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: install
	$(PY) -m trainer.demo

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m pytest benchmarks/ --benchmark
