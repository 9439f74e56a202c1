# wheelvault — the two commands: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# This machine's pip is preconfigured with extra local package sources; isolate from them so
# a fresh machine and CI install exactly the same thing, from PyPI.
PIP_ISOLATED := env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null
PY_SOURCES := shared functions function_app.py devhost bench clients
# make run's ports: `make run HOST_PORT=7171 BLOB_PORT=10100 VAULT_PORT=8543 ENTRA_PORT=8544` (or
# the same names in the environment). The `wheelvault` command finds the stack's ports in
# .local/stack.json.
HOST_PORT ?= 7071
BLOB_PORT ?= 10000
VAULT_PORT ?= 8443
ENTRA_PORT ?= 8444

.PHONY: help deps run test test-fast lint types pytest bench clean

help:
	@echo "make run    bring up the whole system locally (Azurite, vault and Entra ID stand-ins,"
	@echo "            host on :7071); other ports: make run HOST_PORT=7171 BLOB_PORT=10100"
	@echo "            VAULT_PORT=8543 ENTRA_PORT=8544"
	@echo "make test   install what is needed and run every check (lint, types, tests)"
	@echo "make test-fast  lint, types and the tests that need no service or external tool, in"
	@echo "            seconds (types too: mypy takes ~1 s with its cache, ~10 s cold)"
	@echo "make bench  run the benchmarks; figures go to bench/results/"

# clients/keyring (the Entra ID keyring backend) is installed editable as well: its code is used
# from the clone, and a change to its pyproject.toml (the keyring entry point) reinstalls it.
# Its dependencies, keyring and azure-identity, are pinned in the requirements files.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml clients/keyring/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_ISOLATED) $(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PIP_ISOLATED) $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PIP_ISOLATED) $(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(PIP_ISOLATED) $(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e clients/keyring
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	test -x node_modules/node/bin/node
	touch $@

deps: $(VENV)/.installed node_modules/.installed

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(VENV)/.installed
	$(VENV)/bin/mypy --strict $(PY_SOURCES)

pytest: deps infra-tools poetry-tool twine61-tool
	$(VENV)/bin/pytest

test: deps lint types pytest

# The fast tier: the tests marked neither integration nor e2e (pyproject.toml defines the tiers;
# tests/tiers.py fails collection on a test outside its tier). It needs only .venv: no Azurite
# (node_modules), no checkov, no poetry. mypy belongs here: with its cache it takes about a second
# (about 10 s cold), and a type error is what a refactor most often leaves behind.
test-fast: lint types
	$(VENV)/bin/pytest -m "not integration and not e2e"

# exec: the supervisor replaces the shell, so Ctrl-C and SIGTERM reach it directly; it stops
# Azurite, the stand-ins and the host itself. Data and logs stay in .local/. Settings in
# the environment (WHEELVAULT_PAGE_CACHE_SECONDS=5 make run) win over local.settings.json, except
# the endpoints, which always point at this run's children.
run: deps
	exec $(PY) -m devhost.stack --host-port $(HOST_PORT) --blob-port $(BLOB_PORT) --vault-port $(VAULT_PORT) --entra-port $(ENTRA_PORT)

bench: deps
	$(PY) -m bench.publish
	$(PY) -m bench.tokens
	$(PY) -m bench.front_door
	$(PY) -m bench.entra

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(TWINE61_VENV) $(POETRY_VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
	@echo "kept .local/ (make run's packages, tokens and logs): rm -rf .local to start afresh"

# checkov (tests/infra scans the Bicep with it) pins an old `packaging`, so it lives in a
# virtualenv of its own; tests find it at .venv-checkov/bin/checkov. About 30 s to install.
.PHONY: infra-tools
CHECKOV_VENV := .venv-checkov

infra-tools: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: infra/checkov-requirements.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(PIP_ISOLATED) $(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/checkov-requirements.txt
	touch $@

# poetry (tests/e2e/test_readme_clients.py runs the README's poetry snippets with it) pins its own
# `packaging` and more, so it lives in a virtualenv of its own; tests find it at
# .venv-poetry/bin/poetry. About 20 s to install.
.PHONY: poetry-tool
POETRY_VENV := .venv-poetry

poetry-tool: $(POETRY_VENV)/.installed

$(POETRY_VENV)/.installed: tests/e2e/poetry-requirements.txt
	test -x $(POETRY_VENV)/bin/python || $(PYTHON) -m venv $(POETRY_VENV)
	$(PIP_ISOLATED) $(POETRY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/e2e/poetry-requirements.txt
	touch $@

# twine 6.1 (tests/e2e/test_upload_api.py runs `twine upload --skip-existing` with it: 6.2 and later
# refuse that flag for any index but PyPI) lives in a virtualenv of its own. About 10 s to install.
.PHONY: twine61-tool
TWINE61_VENV := .venv-twine61

twine61-tool: $(TWINE61_VENV)/.installed

$(TWINE61_VENV)/.installed: tests/e2e/twine61-requirements.txt
	test -x $(TWINE61_VENV)/bin/python || $(PYTHON) -m venv $(TWINE61_VENV)
	$(PIP_ISOLATED) $(TWINE61_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/e2e/twine61-requirements.txt
	touch $@
