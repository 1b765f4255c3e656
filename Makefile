PYTHON ?= python3
TOY_DATA ?= data/toy

.PHONY: install test demo quality frames bench clean-demo

# Idempotent and fast: the requirements plus this package as an editable install (`import src_new`
# from any folder). The stamp skips pip (~10 s) while requirements.txt and pyproject.toml are
# unchanged and `import src_new` resolves to this checkout (another clone may have installed last).
.deps-installed: requirements.txt pyproject.toml
	$(PYTHON) -m pip install -q -r requirements.txt -e .
	@touch .deps-installed

install:
	@cd / && $(PYTHON) -I -c "import pathlib, sys, src_new; sys.exit(pathlib.Path(src_new.__file__).resolve().parent != pathlib.Path('$(CURDIR)/src_new').resolve())" \
		2>/dev/null || rm -f "$(CURDIR)/.deps-installed"
	@$(MAKE) -s --no-print-directory .deps-installed

test: install
	$(PYTHON) -m pytest -q tests

$(TOY_DATA)/dimensions.csv:
	$(PYTHON) src_new/scripts/make_toy_data.py --out $(TOY_DATA) --n 4000 --seed 0

demo: install $(TOY_DATA)/dimensions.csv
	bash scripts/demo.sh

# the quality run of docs/results.md: 2000 generator steps (~22 min on 2 cores), sampling, evaluation
quality: install $(TOY_DATA)/dimensions.csv
	bash scripts/quality.sh

# the picture path (scripts/frames.sh): a synthetic clip -> 64 x 64 frames -> 8 minutes of WGAN-GP training
# (BUDGET=480 s) -> samples, picture metrics, docs/frames_grid.png, bench/results/frames.json
frames: install
	bash scripts/frames.sh

bench: install
	$(PYTHON) bench/bench_wgan.py --device cpu
