# make quickstart : create .venv, install lit_gen, train the default experiment (offline)
# make classifiers: train the benchmark tables' domain classifiers (CPU, ~40 min)
# make test       : create .venv, install lit_gen with test tools, run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export WANDB_MODE ?= offline

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -e ".[test]"
	touch $@

install: $(BIN)/.installed

CLASSIFIER := runs/classifiers/digits-16px.pt

$(CLASSIFIER): $(BIN)/.installed
	$(BIN)/python -m lit_gen.train_classifier --data digits data.image_size=16 --out $@

# the domain classifiers of the benchmark tables (docs/benchmarks.md); not committed
runs/classifiers/fashion_mnist-28px.pt: $(BIN)/.installed
	$(BIN)/python -m lit_gen.train_classifier --data fashion_mnist data.hflip=true \
	    --base-channels 16 --epochs 8 --out $@
runs/classifiers/mnist10k-28px.pt: $(BIN)/.installed
	$(BIN)/python -m lit_gen.train_classifier --data mnist10k data.root=../shared/data/mnist \
	    --base-channels 16 --epochs 15 --out $@

classifiers: $(CLASSIFIER) runs/classifiers/fashion_mnist-28px.pt runs/classifiers/mnist10k-28px.pt

quickstart: $(BIN)/.installed $(CLASSIFIER)
	$(BIN)/python -m lit_gen.fit --config conf/experiment/quickstart.yaml

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check lit_gen tests

.PHONY: install quickstart test lint classifiers
