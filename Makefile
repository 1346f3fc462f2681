# The README's two commands: `make train` and `make test`. Each sets up what is missing first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Caches stay inside the project (ignored), never in the user's home.
export HF_HOME           := $(CURDIR)/.cache/huggingface
export MPLCONFIGDIR      := $(CURDIR)/.cache/matplotlib
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/inductor
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: train test bench bench-vit bench-sweep setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,vision,text,sweep]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/posbench train

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python scripts/bench_throughput.py

bench-vit: $(STAMP)
	$(BIN)/python scripts/bench_vit.py

bench-sweep: $(STAMP)
	$(BIN)/python scripts/bench_sweep.py

clean:
	rm -rf outputs .pytest_cache build dist *.egg-info
