# Two commands set everything up: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NAME ?=
SIZE ?= full

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, from the local CPU wheel, so nothing pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[text,torch,bench,serve,dev,mlflow,ray]'
	# skorch 1.4 for `--learner skorch` (extra [skorch]), after the bench extra: modAL
	# pins skorch==0.9.0, which no longer imports; modAL.batch, all the bench uses, works.
	# pip then warns that modAL wants 0.9.0; the install itself succeeds.
	$(BIN)/pip install -q 'skorch==1.4.0'
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/longtail demo $(if $(DIR),--dir $(DIR),)

# The store's tests also run on PostgreSQL: LONGTAIL_TEST_PG, else
# postgres@127.0.0.1:5432/test (.ci/run starts one). Without a server those tests are
# skipped and the run's last lines say how many.
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/run.py $(if $(NAME),$(NAME),all) --size $(SIZE)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
