# bigmodel: every target installs first when needed. Hydra overrides pass straight through:
#   make train experiment=digits_mlp trainer.max_epochs=3 model.optimizer.lr=0.01
# Use ARGS='...' for what make cannot pass itself (-m, --cfg job, ~key):
#   make train ARGS='-m model.optimizer.lr=0.01,0.001'
# Values reach Hydra exactly as typed, `${...}` interpolations included: make does not expand them and the
# shell does not see them unquoted (ARGS is split like a shell command line, but nothing in it is expanded):
#   make train 'hydra.run.dir=${paths.log_dir}/x/${uid:}' ARGS="--cfg hydra"

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Every `name=value` given on the make command line, except make's own ARGS/PYTHON, becomes a Hydra
# override. $(value v) is the text as typed (a `${...}` in it is not a make reference), and each override is
# single-quoted for the shell (a ' inside becomes '\''), so no layer expands or splits it.
CLI_VARS  = $(sort $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))
OVERRIDES = $(foreach v,$(filter-out ARGS PYTHON,$(CLI_VARS)),'$(subst ','\'',$(v)=$(value $(v)))')
# ARGS travels as one quoted word; Python splits it with shlex (quotes honoured, nothing expanded).
RUN = $(PY) -c 'import os, shlex, sys; m, a, *o = sys.argv[1:]; os.execv(sys.executable, [sys.executable, "-m", m, *shlex.split(a), *o])'
ARGS_WORD = '$(subst ','\'',$(value ARGS))'

.DEFAULT_GOAL := help
.PHONY: help install lock train eval generate estimate predict export serve compress compare explain bench gpu-check test test-full lint format clean clean-logs

help: ## show this help
	@# colour only on a terminal, unless NO_COLOR / FORCE_COLOR say otherwise (https://no-color.org)
	@if [ -n "$$FORCE_COLOR" ] || { [ -t 1 ] && [ -z "$$NO_COLOR" ]; }; then c='\033[36m'; r='\033[0m'; else c=; r=; fi; \
	grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -v c="$$c" -v r="$$r" 'BEGIN {FS = ":.*## "}; {printf "  %s%-12s%s %s\n", c, $$1, r, $$2}'
	@echo "  Hydra overrides pass through: make train experiment=digits_mlp trainer.max_epochs=3"
	@echo "  Flags make cannot pass:       make train ARGS='-m model.optimizer.lr=0.01,0.001'"

install: $(STAMP) ## create .venv and install bigmodel (editable) with pinned versions, once

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar off -c requirements/constraints.txt -e '.[dev]'
	@touch $(STAMP)

lock: ## re-pin requirements/constraints.txt from a fresh resolve of pyproject.toml
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q -e '.[dev]'
	{ sed -n '1,3p' requirements/constraints.txt; .venv-lock/bin/pip freeze --exclude-editable; } > requirements/constraints.new
	mv requirements/constraints.new requirements/constraints.txt && rm -rf .venv-lock

train: $(STAMP) ## train (default experiment: digits_cnn); any Hydra override passes through
	@$(RUN) bigmodel.train $(ARGS_WORD) $(OVERRIDES)

eval: $(STAMP) ## evaluate a checkpoint: make eval ckpt_path=logs/.../checkpoints/epoch_009.ckpt
	@$(RUN) bigmodel.eval $(ARGS_WORD) $(OVERRIDES)

estimate: $(STAMP) ## compute/memory/time estimate: make estimate model=language_model net=gpt2_medium trainer=fsdp trainer.devices=8
	@$(RUN) bigmodel.estimate $(ARGS_WORD) $(OVERRIDES)

predict: $(STAMP) ## predict new files: make predict ckpt_path=last experiment_name=mnist_cnn inputs=imgs/ [backend=onnxruntime]
	@$(RUN) bigmodel.predict $(ARGS_WORD) $(OVERRIDES)

compress: $(STAMP) ## quantize / prune a checkpoint + report: make compress ckpt_path=... method=int8_dynamic|int8_weight_only|fp16|bf16|prune [amount=0.5]
	@$(RUN) bigmodel.compress $(ARGS_WORD) $(OVERRIDES)

export: $(STAMP) ## export to ONNX / torch.export, verified: make export ckpt_path=... format=onnx|pt2
	@$(RUN) bigmodel.export $(ARGS_WORD) $(OVERRIDES)

serve: $(STAMP) ## HTTP server (LitServe) on 127.0.0.1: make serve ckpt_path=... port=8000 [backend=onnxruntime]
	@$(RUN) bigmodel.serve $(ARGS_WORD) $(OVERRIDES)

bench: $(STAMP) ## benchmarks (parity, start-up, data loading, DDP, MFU): table + logs/bench/*.json, <= 10 min
	$(PY) -m benchmarks.run $(ARGS)

gpu-check: $(STAMP) ## GPU acceptance run, one GPU, <= 8 min: JSON + table under logs/gpu_check/ (ARGS=--dry-run: CPU plumbing)
	$(PY) -m benchmarks.gpu_check $(ARGS)

generate: $(STAMP) ## sample text from a language model: make generate ckpt_path=last experiment_name=shakespeare_char_gpt prompt="ROMEO:"
	@$(RUN) bigmodel.generate $(ARGS_WORD) $(OVERRIDES)

compare: $(STAMP) ## compare runs: make compare [experiment=mnist_cnn] [runs='logs/*/runs/*'] -> logs/compare/runs/*/report.html
	@$(RUN) bigmodel.compare $(ARGS_WORD) $(OVERRIDES)

explain: $(STAMP) ## attributions: make explain ckpt_path=FILE inputs=test:8 [method=saliency] [check=true]
	@$(RUN) bigmodel.explain $(ARGS_WORD) $(OVERRIDES)

# pytest-xdist workers: one per core of the 2-core CI machine. --dist loadfile keeps each test file on one
# worker, so a module-scoped fixture (a trained run, a started server) is built once. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP) ## fast test suite (no `slow` tests), 2 workers (TEST_WORKERS=0: one process)
	$(PY) -m pytest $(XDIST) $(ARGS)

test-full: $(STAMP) ## full test suite, `slow` tests included
	$(PY) -m pytest -m "slow or not slow" $(XDIST) $(ARGS)

lint: $(STAMP) ## ruff check + format check
	$(PY) -m ruff check src tests
	$(PY) -m ruff format --check src tests

format: $(STAMP) ## ruff fix + format
	$(PY) -m ruff check --fix src tests
	$(PY) -m ruff format src tests

clean: ## remove caches and build files (keeps .venv and logs)
	rm -rf .pytest_cache .ruff_cache build dist src/*.egg-info .cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

clean-logs: ## remove all run outputs under logs/
	find logs -mindepth 1 -not -name .gitkeep -delete
