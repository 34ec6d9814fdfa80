# event-ingest: the two commands of the README, and their helpers.
#   make demo   the whole pipeline on embedded defaults (local S3 server, SQLite)
#   make test   lint and the whole test suite against real services
# Both set up everything first: system packages (as root), the venv, the locked dependencies.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
export UV_COMPILE_BYTECODE := 1

.PHONY: setup system-deps test lint format demo bench lock clean

setup: system-deps $(INSTALLED)

system-deps:
	@tools/system-deps.sh

# uv installs the locked set in seconds (pip takes minutes); it lives in the venv itself.
$(INSTALLED): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(VENV)/bin/uv || { $(PY) -m ensurepip --upgrade >/dev/null \
		&& $(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.8; }
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements.lock
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

demo: setup
	$(PY) -m tools.demo

# A real Airflow on this machine (no Docker): UI on 127.0.0.1:$(AIRFLOW_PORT, default 8080), the demo's
# data in a local S3, the DAG unpaused. Ctrl-C or `make airflow-stop` ends it. Writes only under var/.
.PHONY: airflow airflow-stop
airflow: setup
	$(PY) -m tools.airflow_local

airflow-stop:
	$(PY) -m tools.airflow_local stop

bench: setup
	$(PY) -m tools.bench

# Re-pin every dependency (runtime, deploy and dev extras) after editing pyproject.toml.
lock: setup
	$(VENV)/bin/uv pip compile --quiet pyproject.toml --extra deploy --extra dev -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
