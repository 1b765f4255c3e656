PYTHON ?= python3
TOY_DATA ?= data/toy

.PHONY: install test demo quality bench clean-demo

# Idempotent: pip skips what is installed; the stamp skips pip itself when requirements.txt is unchanged.
.deps-installed: requirements.txt
	$(PYTHON) -m pip install -q -r requirements.txt
	@touch .deps-installed

install: .deps-installed

test: install
	$(PYTHON) -m pytest -q tests

$(TOY_DATA)/dimensions.csv:
	$(PYTHON) src_new/scripts/make_toy_data.py --out $(TOY_DATA) --n 4000 --seed 0

demo: install $(TOY_DATA)/dimensions.csv
	bash scripts/demo.sh

# the README's quality run: 20 epochs (~20 min on 2 cores), 4000 samples per mode, evaluation
quality: install $(TOY_DATA)/dimensions.csv
	bash scripts/quality.sh

bench: install
	$(PYTHON) bench/bench_wgan.py --device cpu
