# Every target creates .venv and installs the package on first use.
# torch 2.13.0 goes in first so that the range in pyproject.toml is already satisfied
# and pip does not pull a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow bench docs lint type clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0 || $(PY) -m pip install --quiet 'torch>=2.3,<3'
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) experiments/train_policy.py --stage all --preset quick

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f; done

# The documentation site (docs/, mkdocs.yml) into site/; any warning (a broken link or anchor,
# a page missing from the navigation) fails the build.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict

# Style and types (settings in pyproject.toml: SB3's ruff rules, mypy with untyped deps ignored).
lint: $(STAMP)
	$(PY) -m ruff check sb3_ext tests benchmarks experiments docs

type: $(STAMP)
	$(PY) -m mypy sb3_ext

clean:
	rm -rf $(VENV) site
