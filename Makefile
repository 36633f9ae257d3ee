# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine with only
# Python 3.10+ installed: they create .venv, install siamkit with the tested pins, then run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip -q --disable-pip-version-check
STAMP  := $(VENV)/.installed
# pytest workers: 2 on a 2-core machine; each worker uses one thread (see tests/conftest.py).
WORKERS ?= 2

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=23"
	# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
	$(PIP) install "torch==2.13.0" -c constraints.txt
	$(PIP) install -e ".[dev,serve,export,pretrained]" -c constraints.txt
	$(PY) -c "import torch, siamkit; print('siamkit', siamkit.__version__, 'torch', torch.__version__)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/siamkit demo

# pytest exits 5 when no test is collected; that is not a failure of the suite.
test: $(STAMP)
	$(PY) -m pytest -n $(WORKERS) -q; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
