# Quickstart on a fresh clone: `make run` (install + default experiment), `make test` (install + all tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Offline-quiet: neither Prefect nor MLflow phones home (also set by `import flows` for other entry points).
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= true
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: install run test test-fast lint docs clean

install: $(STAMP)

# (Re)install whenever pyproject.toml is newer than the last install, or the venv is missing.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/torchtransfer run  # the packaged default experiment (conf/default.yaml links to it)

test: lint docs
	$(PY) -m pytest

# The fast subset (no real flows, servers or downloads): unit tests and doctests, for the edit-test loop.
test-fast: lint
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The docs site (README.md + docs/, config reference generated from the schema): strict, so a broken link, a page
# missing from the navigation or an undocumented config key fails `make test`. `mkdocs serve` to browse it.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir .site

clean:
	rm -rf $(VENV) mlflow.db optuna.db mlruns .pytest_cache .site site
