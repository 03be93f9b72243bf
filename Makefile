# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench lock emulators clis clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## the console on embedded defaults: SQLite under var/, both platform emulators in-process
run: $(STAMP)
	$(BIN)/python bot.py console

## lint, types and tests (CI=true makes the PostgreSQL tests mandatory)
test: lint $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

## the speed figures at fleet scale, each beside its bound and its peer (a few minutes)
bench: $(STAMP)
	$(BIN)/python -m bench

## pin what a deployment installs (requirements.lock, with hashes) from pyproject.toml
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet \
		-o requirements.lock --custom-compile-command "make lock"

## both emulators alone on 127.0.0.1:8710, for a separate miniship or another client
emulators: $(STAMP)
	$(BIN)/python bot.py emulators --port 8710

## the platforms' own CLIs, for apps owned directly (upload from a code directory): into .tools/
clis:
	npm install --prefix .tools --no-audit --no-fund miniprogram-ci@2 minidev@2

clean:
	rm -rf $(VENV) var .tools .mypy_cache .ruff_cache .pytest_cache *.egg-info
