# Bastion: `make demo` sets everything up and starts it; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test install system-deps migrate sandbox worker beat lint format bench ci

$(VENV)/.installed: requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

install: $(VENV)/.installed

system-deps:
	./scripts/system-deps.sh

migrate: install
	$(PY) manage.py migrate --noinput

demo: install
	./scripts/demo.sh

test: install system-deps
	./scripts/test.sh

sandbox: install
	$(PY) -m sandbox --port 8765

worker: install
	$(VENV)/bin/celery -A bastion_site worker -l info

beat: install
	$(VENV)/bin/celery -A bastion_site beat -l info --scheduler sync.scheduler:SyncDispatchingScheduler

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: install system-deps
	./scripts/bench.sh
