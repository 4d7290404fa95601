# bigmodel: every target installs first when needed. Hydra overrides pass straight through:
#   make train experiment=digits_mlp trainer.max_epochs=3 model.optimizer.lr=0.01
# Use ARGS='...' for what make cannot pass itself (-m, ~key, values with spaces):
#   make train ARGS='-m model.optimizer.lr=0.01,0.001'

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Every `name=value` given on the make command line (GNU make keeps them, escaped, in this
# variable), except make's own ARGS/PYTHON, becomes a Hydra override.
OVERRIDES = set --; for a in $(-*-command-variables-*-); do case "$$a" in ARGS=*|PYTHON=*) ;; *) set -- "$$@" "$$a";; esac; done

.DEFAULT_GOAL := help
.PHONY: help install lock train eval generate estimate compare explain bench test test-full lint format clean clean-logs

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'
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
	@$(OVERRIDES); $(PY) -m bigmodel.train $(ARGS) "$$@"

eval: $(STAMP) ## evaluate a checkpoint: make eval ckpt_path=logs/.../checkpoints/epoch_009.ckpt
	@$(OVERRIDES); $(PY) -m bigmodel.eval $(ARGS) "$$@"

estimate: $(STAMP) ## compute/memory/time estimate: make estimate model=gpt2_medium trainer=fsdp trainer.devices=8
	@$(OVERRIDES); $(PY) -m bigmodel.estimate $(ARGS) "$$@"

bench: $(STAMP) ## benchmarks (parity, start-up, data loading, DDP, MFU): table + logs/bench/*.json, <= 10 min
	$(PY) -m benchmarks.run $(ARGS)

generate: $(STAMP) ## sample text from a language model: make generate ckpt_path=last experiment_name=shakespeare_char_gpt prompt="ROMEO:"
	@$(OVERRIDES); $(PY) -m bigmodel.generate $(ARGS) "$$@"

compare: $(STAMP) ## compare runs: make compare [experiment=mnist_cnn] [runs='logs/*/runs/*'] -> logs/compare/runs/*/report.html
	@$(OVERRIDES); $(PY) -m bigmodel.compare $(ARGS) "$$@"

explain: $(STAMP) ## attributions: make explain ckpt_path=FILE inputs=test:8 [method=saliency] [check=true]
	@$(OVERRIDES); $(PY) -m bigmodel.explain $(ARGS) "$$@"

test: $(STAMP) ## fast test suite (no `slow` tests)
	$(PY) -m pytest $(ARGS)

test-full: $(STAMP) ## full test suite, `slow` tests included
	$(PY) -m pytest -m "slow or not slow" $(ARGS)

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
