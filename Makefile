# regkit workbook — entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
TORCH   ?= torch==2.13.0
WB      := $(PY) -m regkit.workbook
PROFILE ?= full
# NB=elr (or "elr other") selects notebooks; PARAMS="lam=2 beta=0.9" passes papermill parameters.
NB      ?=
PARAMS  ?=
ALL_NB  := $(basename $(notdir $(wildcard notebooks/*.ipynb)))
SELECTED := $(if $(strip $(NB)),$(NB),$(ALL_NB))
PFLAGS  := $(foreach p,$(PARAMS),-p $(p))
# ALLOW_DIRTY=1 writes outputs/ from uncommitted code (an experiment; the record is marked +dirty).
DIRTY   := $(if $(ALLOW_DIRTY),--allow-dirty,)
# Runs are Dask tasks: WORKERS=N local worker processes (default: the cores), or SCHEDULER=tcp://host:8786.
WORKERS   ?=
SCHEDULER ?=
BLOCKS    ?= 3
DFLAGS  := $(if $(WORKERS),--workers $(WORKERS),) $(if $(SCHEDULER),--scheduler $(SCHEDULER),)

.PHONY: help install reproduce quick test lint screenshot lab report compare bench stability gpu-check clean

help:
	@echo "make reproduce [NB=slug] [PARAMS='k=v ...']  run notebooks (full profile) into outputs/, then the report"
	@echo "make test                                    unit tests + nbval over every notebook (quick profile)"
	@echo "make lint                                    ruff check + ruff format --check (notebooks included)"
	@echo "make quick [NB=slug]                          every notebook in the quick profile (scratch/quick/)"
	@echo "make lab                                     JupyterLab on notebooks/"
	@echo "make report                                  outputs/REPORT.md, outputs/index.html, README table"
	@echo "make screenshot                              outputs/index.png: the report page in headless chromium"
	@echo "make compare [NB=slug] [PROFILE=full]         fresh run vs the committed reference (outputs/compare/)"
	@echo "make bench                                   benchmarks into outputs/benchmarks/"
	@echo "make stability [NB=slug] [BLOCKS=3] [PROFILE=full]  rerun on held-out seed blocks; stability.json"
	@echo "make gpu-check                               tests, CE/Sinkhorn benchmarks and 2 notebooks on CUDA (<= 8 min)"
	@echo "   WORKERS=N (local Dask workers, default: cores) or SCHEDULER=tcp://host:8786 with reproduce/quick/stability"

# A fresh clone has no .venv: create it and install regkit with the notebook and test extras.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[notebooks,test]"
	touch $@

install: $(VENV)/.installed

# Validate slugs, parameters and a committed tree first; then every notebook as a Dask task:
# a failing notebook does not stop the others; the summary at the end exits non-zero.
reproduce: install
	$(WB) check $(SELECTED) $(PFLAGS) --outputs $(DIRTY)
	-$(WB) run $(SELECTED) --profile full $(PFLAGS) $(DIRTY) $(DFLAGS)
	$(WB) report
	$(WB) summary $(SELECTED)

quick: install
	$(WB) run $(SELECTED) --profile quick $(PFLAGS) $(DFLAGS)

stability: install
	$(WB) stability $(SELECTED) --blocks $(BLOCKS) --profile $(PROFILE) $(PFLAGS) $(DIRTY) $(DFLAGS)
	$(WB) report

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# TEST_WORKERS pytest-xdist processes (default: one per core), each single-threaded (no oversubscription); a
# notebook's cells stay together in one process (--dist loadfile). TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= auto
test: install
	REGKIT_PROFILE=quick $(if $(filter 0,$(TEST_WORKERS)),,OMP_NUM_THREADS=1) \
	  $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env --durations=25 \
	  $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

# As root (many containers), JupyterLab refuses to start without --allow-root; LAB_ARGS adds more flags.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: install
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/

report: install
	$(WB) report

# The report page in a real headless browser (Debian: apt-get install chromium): outputs/index.png.
CHROMIUM ?= chromium
screenshot:
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --user-data-dir=$$(mktemp -d) --hide-scrollbars \
		--window-size=1280,1400 --screenshot=outputs/index.png "file://$(CURDIR)/outputs/index.html"

compare: install
	$(WB) check $(SELECTED) $(PFLAGS)
	-$(WB) run $(SELECTED) --profile $(PROFILE) $(PFLAGS) --dest scratch/fresh $(DFLAGS)
	$(WB) compare --new scratch/fresh

# The reference libraries of the benchmarks (OTT-JAX, GeomLoss, KeOps): the [bench] extra, never a runtime dependency.
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $@

bench: install $(VENV)/.bench-installed
	@mkdir -p outputs/benchmarks
	@set -e; for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script; done

# Needs an NVIDIA GPU and a CUDA build of torch (e.g. TORCH="torch==2.13.0 --index-url ..."); exits 2 without CUDA.
gpu-check: install
	@mkdir -p outputs/benchmarks
	$(PY) benchmarks/gpu_check.py

clean:
	rm -rf scratch outputs/compare .pytest_cache
