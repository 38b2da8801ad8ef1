.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml constraints.txt
	@bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

.PHONY: install demo test lint bench models mlflow labelstudio label-loop train cv serve loadtest triton clean help

install: $(STAMP) ## Create .venv and install callqa with its dev tools (torch pinned first)

demo: install ## Main job on embedded defaults: answers and F1 on the dev calls, then one synthetic call's audio
	$(BIN)/callqa speech build-models --if-missing --only speaker --only asr
	$(BIN)/callqa demo

test: install ## Run the whole test suite (unit, integration, e2e)
	$(BIN)/pytest

lint: install ## ruff check + format check + import contracts
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

bench: install ## Benchmarks; results go to docs/benchmarks.md by hand, with machine and date
	$(BIN)/callqa bench
	$(BIN)/callqa speech build-models --if-missing --only speaker --only asr
	$(BIN)/callqa bench-speech --asr nemo
	$(BIN)/callqa bench-speech --asr faster-whisper --minutes 1
	$(BIN)/callqa serve bench --out .callqa/bench

models: install ## Build and briefly train the default speech models into .callqa/models (no downloads)
	$(BIN)/callqa speech build-models

TRAIN_DIR ?= .callqa/train
DEV_DATA ?= ../shared/data/dev_calls*.jsonl
ANSWERS_ARGS ?= --synthetic 600 --epochs 16 --labelled-weight 8 --max-minutes 9
CLASSIFIER_ARGS ?= --synthetic 800 --epochs 15 --labelled-weight 8 --max-minutes 3

train: install ## Main training job: encoder (built once), then answers, errors, call type; the gate promotes on the held-out dev half
	$(BIN)/callqa encoder build --register
	$(BIN)/callqa split --data "$(DEV_DATA)" --out $(TRAIN_DIR)/data
	$(BIN)/callqa train answers --data $(TRAIN_DIR)/data/tune.jsonl $(ANSWERS_ARGS)
	$(BIN)/callqa gate answers --data $(TRAIN_DIR)/data/held_out.jsonl
	$(BIN)/callqa train errors --data $(TRAIN_DIR)/data/tune.jsonl $(CLASSIFIER_ARGS)
	$(BIN)/callqa gate errors --data $(TRAIN_DIR)/data/held_out.jsonl
	$(BIN)/callqa train calltype --data $(TRAIN_DIR)/data/tune.jsonl $(CLASSIFIER_ARGS)
	$(BIN)/callqa gate calltype --data $(TRAIN_DIR)/data/held_out.jsonl
	$(BIN)/callqa evaluate --data $(TRAIN_DIR)/data/held_out.jsonl --model zero-shot
	$(BIN)/callqa evaluate --data $(TRAIN_DIR)/data/held_out.jsonl --model champion \
	  || $(BIN)/callqa evaluate --data $(TRAIN_DIR)/data/held_out.jsonl --model zero-shot --errors-model champion --calltype-model champion

cv: install ## Dev-set cross-validation of the fine-tuned models (train on one half + synthetic, test the other, swap)
	ANSWERS_ARGS="$(ANSWERS_ARGS)" CLASSIFIER_ARGS="$(CLASSIFIER_ARGS)" bash scripts/cross_validate.sh .callqa/cv

mlflow: install ## MLflow tracking + registry server on 127.0.0.1:5000 (SQLite + artifacts under .callqa/mlflow)
	bash mlflow/server.sh

labelstudio: install ## Label Studio in its own venv on 127.0.0.1:8085 (SQLite under .callqa/labelstudio; admin + token from settings)
	$(BIN)/callqa label server

label-loop: install ## Unattended labelling loop on the dev calls: push → simulated annotator → webhook → train → gate
	BIN=$(BIN) bash scripts/labelling_loop.sh

serve: install ## The API on Ray Serve at 127.0.0.1:8000 (serving/serve.yaml); `callqa serve --local` runs it in-process
	$(BIN)/callqa serve

loadtest: install ## Load test on loopback: Ray Serve (LOCAL=1: in-process), transcripts at RATES/s, 1-minute recordings
	BIN=$(BIN) bash scripts/serving_load.sh

triton: install ## Export the champions to ONNX + a Triton repository, serve it with pytriton's tritonserver (own venv)
	$(BIN)/callqa serve triton export --answers champion --errors champion --calltype champion -o .callqa/triton
	$(BIN)/callqa serve triton server .callqa/triton

clean: ## Remove the venv, caches and local artifacts
	rm -rf $(VENV) .venv-labelstudio .venv-triton .pytest_cache .ruff_cache .callqa build dist *.egg-info reports

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'
