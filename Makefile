# Run `make` or `make help` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c

PYTHON ?= python3
VENV := backend/.venv
PY := $(CURDIR)/$(VENV)/bin/python
MANAGE := cd backend && $(PY) manage.py
# Where `make test-postgres` and `make bench-db` keep their throwaway PostgreSQL and Redis.
SERVICES_DIR ?= $(CURDIR)/.cache/test-services
# Sample production values for `make check-deploy`; nothing here is a real secret.
DEPLOY_SAMPLE_ENV := DJANGO_SETTINGS_MODULE=config.settings.prod \
	SECRET_KEY=check-deploy-sample-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH \
	ALLOWED_HOSTS=api.example.com DB_HOST=db DB_PORT=5432 DB_NAME=app DB_USER=app \
	DB_PASSWORD=sample REDIS_URL=redis://redis:6379/0 CORS_ALLOWED_ORIGINS=https://app.example.com

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: backend/requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r backend/requirements/dev.txt
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create backend/.venv with the locked dependencies

.PHONY: run
run: venv ## Migrate and serve the API on http://127.0.0.1:8000 (SQLite, no Docker)
	$(MANAGE) migrate --no-input
	$(MANAGE) runserver 127.0.0.1:8000

.PHONY: test
test: venv ## Run the backend test suite (SQLite unless DB_* / REDIS_URL are set)
	cd backend && $(PY) -m pytest $(PYTEST_ARGS)

.PHONY: test-postgres
test-postgres: venv ## Run the suite against a throwaway PostgreSQL and Redis on 127.0.0.1
	scripts/test-services start $(SERVICES_DIR)
	set -a; . $(SERVICES_DIR)/env; set +a; status=0; $(MAKE) --no-print-directory test || status=$$?; \
		scripts/test-services stop $(SERVICES_DIR); exit $$status

.PHONY: lint
lint: venv ## ruff, mypy, missing migrations and the OpenAPI schema
	cd backend && $(PY) -m ruff check . ../scripts
	cd backend && $(PY) -m ruff format --check . ../scripts
	cd backend && $(PY) -m mypy .
	$(MANAGE) makemigrations --check --dry-run
	$(MANAGE) spectacular --validate --fail-on-warn --file /dev/null

.PHONY: format
format: venv ## Fix what ruff can fix and format the code
	cd backend && $(PY) -m ruff check --fix . ../scripts && $(PY) -m ruff format . ../scripts

.PHONY: check-deploy
check-deploy: venv ## `check --deploy` with production settings and sample values
	cd backend && env $(DEPLOY_SAMPLE_ENV) $(PY) manage.py check --deploy --fail-level WARNING

.PHONY: lock
lock: ## Re-resolve backend/requirements/*.txt from backend/pyproject.toml (needs uv)
	cd backend && uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--quiet -o requirements/prod.txt
	cd backend && uv pip compile pyproject.toml --group dev --constraint requirements/prod.txt \
		--universal --python-version 3.11 --generate-hashes --quiet -o requirements/dev.txt

.PHONY: bench-argon2
bench-argon2: venv ## Measure the cost of a password hash and of a login
	env -u DB_HOST $(PY) scripts/bench/argon2_cost.py

.PHONY: bench-db
bench-db: venv ## Compare database connection strategies under gunicorn (throwaway PostgreSQL)
	scripts/test-services start $(SERVICES_DIR)
	set -a; . $(SERVICES_DIR)/env; set +a; status=0; $(PY) scripts/bench/db_connections.py || status=$$?; \
		scripts/test-services stop $(SERVICES_DIR); exit $$status
