# The README's commands. Each one creates .venv on first use and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.cfg setup.py | cksum | cut -d' ' -f1)

.PHONY: install test demo bench bench-quick check clean

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m hf_textgen.demo

bench: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(PY) tests/bench/run.py --out bench-results.json
	$(PY) tests/bench/batch.py --out bench-results-batch.json

bench-quick: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(PY) tests/bench/run.py --quick --out bench-results-quick.json
	$(PY) tests/bench/batch.py --quick --out bench-results-batch-quick.json

clean:
	rm -rf $(VENV) build dist *.egg-info
