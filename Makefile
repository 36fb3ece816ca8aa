# nnlab — every target creates the virtualenv first when it is missing.
PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
# GPU=1 adds the `gpu` extra (TensorFlow's CUDA libraries); the default is 1 where nvidia-smi runs, GPU=0 turns it off
GPU       ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)
EXTRAS    ?= dev$(if $(filter 1,$(GPU)),$(comma)gpu)
# The tested versions of every package: `make install` installs exactly these, `make lock` writes them anew.
LOCK      := constraints.txt
# uv (a fast, pip-compatible installer) when on PATH or installable into the venv, else pip; INSTALLER=pip forces pip
INSTALLER ?= auto
# a new stamp, and so a reinstall, whenever pyproject.toml or the lock changes
STAMP     := $(VENV)/.installed-$(shell cat pyproject.toml $(wildcard $(LOCK)) | cksum | cut -d' ' -f1)-$(subst $(comma),-,$(EXTRAS))
EXP       ?= depth
ARGS      ?=
PORT      ?= 5000
DASHBOARD_PORT ?= 8080
comma     := ,

.PHONY: install lock test run sweep report plan ui dashboard bench lint clean

install: $(STAMP)

# $(call INSTALL,'.[extras]'): the project, editable, with every version from $(LOCK) when the lock was
# made on this Python (its "# python X.Y" line); on another Python the versions resolve anew, with a note.
define INSTALL
set -e; \
py=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
locked=$$(sed -n 's/^# python \([0-9.]*\).*/\1/p' $(LOCK) 2>/dev/null || true); \
constraints=""; \
if [ "$$py" = "$$locked" ]; then constraints="-c $(LOCK)"; \
elif [ -f $(LOCK) ]; then echo "note: $(LOCK) holds the versions tested on Python $$locked; resolving versions anew for Python $$py"; fi; \
uv=""; \
if [ "$(INSTALLER)" != pip ]; then \
  if command -v uv >/dev/null 2>&1; then uv=uv; \
  elif $(BIN)/python -m pip install --quiet --disable-pip-version-check $$constraints uv >/dev/null 2>&1; then uv=$(BIN)/uv; \
  else echo "note: uv could not be installed; installing with pip"; fi; \
fi; \
if [ -n "$$uv" ]; then \
  $$uv pip install --quiet --compile-bytecode --python $(BIN)/python $$constraints -e $(1); \
else \
  $(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip; \
  $(BIN)/python -m pip install --quiet --disable-pip-version-check $$constraints -e $(1); \
fi
endef

$(STAMP): pyproject.toml $(wildcard $(LOCK))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(call INSTALL,'.[$(EXTRAS)]')
	@rm -f $(VENV)/.installed-*
	@touch $@

# The versions installed now (after a change to pyproject.toml, and once the suite passes on them) become the lock.
lock: install
	@{ echo "# The versions nnlab is tested with: make install installs these (as pip/uv constraints), make lock"; \
	   echo "# writes them from .venv. Generated on:"; \
	   echo "# python $$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"; \
	   $(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^-e ' | LC_ALL=C sort -f; \
	 } > $(LOCK).tmp && mv $(LOCK).tmp $(LOCK)
	@echo "wrote $(LOCK): $$(grep -c '==' $(LOCK)) pinned packages"

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

# optuna-dashboard on the sweep's Optuna storage (installs the optional extra 'dashboard' on first use)
dashboard: install
	@$(BIN)/python -c 'import optuna_dashboard' 2>/dev/null || { $(call INSTALL,'.[$(EXTRAS)$(comma)dashboard]'); }
	$(BIN)/nnlab dashboard $(EXP) --port $(DASHBOARD_PORT) $(ARGS)

bench: install
	$(BIN)/python -m bench $(ARGS)

lint: install
	$(BIN)/ruff check nnlab analysis tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache reports
