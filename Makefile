# nnlab — every target creates the virtualenv first when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
EXP    ?= depth
ARGS   ?=
PORT   ?= 5000

.PHONY: install test run sweep report plan ui bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(ARGS)

run: install
	$(BIN)/nnlab run $(EXP) $(ARGS)

sweep: install
	$(BIN)/nnlab sweep $(EXP) $(ARGS)

report: install
	$(BIN)/nnlab report $(EXP) $(ARGS)

plan: install
	$(BIN)/nnlab plan $(EXP) $(ARGS)

ui: install
	$(BIN)/nnlab ui --port $(PORT) $(ARGS)

bench: install
	$(BIN)/python -m bench $(ARGS)

lint: install
	$(BIN)/ruff check nnlab analysis tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache reports
