# FlipSketch — run `make help` for the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APP_STAMP := $(VENV)/.app-installed
CHROMIUM ?= /usr/bin/chromium
APP_ARGS ?=
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
PYTEST_ARGS ?=
TINY_WORLD_RUN ?= runs/tiny_world
TINY_WORLD_STEPS ?= 1736
TINY_WORLD_INIT ?= src/flipsketch/assets/tiny_pretrained
TINY_WORLD_MINUTES ?= 95
# the long base run across sessions: its state lives outside the checkout, its newest weights are committed
TINY_WORLD_LONG_RUN ?= ../tiny_world_run
TINY_WORLD_NEXT ?= experiments/tiny_world_base

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned stack + flipsketch (idempotent)

$(APP_STAMP): $(STAMP) requirements-app.lock
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -r requirements-app.lock
	$(BIN)/pip check
	@touch $(APP_STAMP)

chromium: ## Debian's chromium for the browser tests (apt-get as root; nothing to do when it is there)
	@test -x $(CHROMIUM) || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } \
	  || echo "chromium is not installed (needs root + apt-get): the browser tests will skip"

app-install: $(APP_STAMP) chromium ## Install the web app extra (gradio, playwright) and Debian's chromium (idempotent)

app: app-install ## Start the web app on http://127.0.0.1:7860 (APP_ARGS="device=cuda port=7861 ...")
	$(BIN)/flipsketch-app $(APP_ARGS)

test: $(STAMP) app-install ## Run the fast test suite (what CI runs), the browser tests included; 2 workers
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow" -q -n 2 --durations=10 $(PYTEST_ARGS)

test-all: $(STAMP) app-install ## Run every test, slow ones included
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: $(STAMP) ## Run the main job end to end on the tiny default model
	$(BIN)/python -m flipsketch.demo

eval-tiny: $(STAMP) ## Table-1 layout on the shipped trained model (tiny_pretrained, CPU, ~2 min; S2V/T2V by a tiny random CLIP)
	$(BIN)/flipsketch-eval experiment=tiny_table1 model=tiny_pretrained

data: $(STAMP) ## Build the training clips from the shipped sketches into data/clips
	$(BIN)/python -m data_gen out=data/clips

tiny-world: $(STAMP) ## Retrain model=tiny_pretrained on moving doodles, continuing from the shipped weights: VAE, base UNet3D + text encoder, sketch LoRA (resumable)
	$(BIN)/python -m flipsketch.tiny_world --stage vae --run $(TINY_WORLD_RUN) --steps 450 --lr 5e-4 --init $(TINY_WORLD_INIT)
	$(BIN)/python -m flipsketch.tiny_world --stage base --run $(TINY_WORLD_RUN) --steps $(TINY_WORLD_STEPS) --minutes $(TINY_WORLD_MINUTES) --init $(TINY_WORLD_INIT)
	$(BIN)/python -m flipsketch.tiny_world --stage export --run $(TINY_WORLD_RUN)
	$(BIN)/python -m flipsketch.tiny_world --stage lora --run $(TINY_WORLD_RUN)

tiny-world-continue: $(STAMP) ## Continue the base (doodles) at one thread from the committed TINY_WORLD_NEXT weights (state in TINY_WORLD_LONG_RUN, outside the checkout; resumable), then write the newest weights back to TINY_WORLD_NEXT
	$(BIN)/python -m flipsketch.tiny_world --stage vae --run $(TINY_WORLD_LONG_RUN) --minutes 0 --threads 1 --init $(TINY_WORLD_NEXT)
	OMP_NUM_THREADS=1 $(BIN)/python -m flipsketch.tiny_world --stage base --run $(TINY_WORLD_LONG_RUN) --steps 40000 --minutes $(TINY_WORLD_MINUTES) --threads 1 --init $(TINY_WORLD_NEXT)
	$(BIN)/python -m flipsketch.tiny_world --stage export --run $(TINY_WORLD_LONG_RUN) --out $(TINY_WORLD_NEXT)

tiny-scorers: $(STAMP) ## Retrain the tiny-world S2V (open_clip CLIP) and T2V (X-CLIP) scorers into src/flipsketch/assets/tiny_scorers (resumable; SCORERS_MINUTES per scorer)
	OMP_NUM_THREADS=1 $(BIN)/python -m flipsketch.tiny_world.scorers --run $(or $(SCORERS_RUN),../tiny_scorers_run) --minutes $(or $(SCORERS_MINUTES),20) --pool 1500 --unseen ../shared/data

tiny-world-gpu: $(STAMP) ## All tiny-world stages on one GPU in 9 minutes, into TINY_WORLD_OUT (default runs/tiny_world_gpu/model)
	$(BIN)/python experiments/gpu_tiny_world.py --out $(or $(TINY_WORLD_OUT),runs/tiny_world_gpu/model) --minutes 9 --init $(TINY_WORLD_INIT)

evidence: $(STAMP) ## Does FlipSketch work on model=tiny_pretrained? 8 held-out sketches x 2 seeds at the demo's schedule, contact sheet
	$(BIN)/python experiments/tiny_world_evidence.py --jobs 2

UNSEEN = --jobs 2 --methods full,no_composition,t2v_plain
evidence-unseen: $(STAMP) ## The same checks on third-party sketches no training stage saw (../shared/data, or FLIPSKETCH_EXAMPLES / FLIPSKETCH_LIVE_SKETCH_SVG)
	$(BIN)/python experiments/tiny_world_evidence.py $(UNSEEN) --out logs/evidence_flipsketch_examples benchmark=flipsketch_examples benchmark.only=null
	$(BIN)/python experiments/tiny_world_evidence.py $(UNSEEN) --seeds 0 --out logs/evidence_live_sketch benchmark=live_sketch_svg benchmark.only=null

bench: $(STAMP) ## Sampling cost of FlipSketch vs plain text-to-video on the tiny model
	$(BIN)/python experiments/bench_sampling.py --threads 1

lint: $(STAMP) ## Ruff lint + format check
	$(BIN)/ruff check src data_gen tests experiments
	$(BIN)/ruff format --check src data_gen tests experiments

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix src data_gen tests experiments
	$(BIN)/ruff format src data_gen tests experiments

lock: ## Regenerate requirements.lock from constraints.txt (needs the registry)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean: ## Remove build outputs and logs (keeps .venv)
	rm -rf logs outputs wandb .pytest_cache build *.egg-info

.PHONY: help install app-install app chromium test test-all demo eval-tiny data tiny-world tiny-world-continue tiny-scorers tiny-world-gpu evidence evidence-unseen bench lint format lock clean
