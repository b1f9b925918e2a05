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
# The one way to pick the compose stack the container targets act on: dev (compose.yaml, the default)
# or prod (compose.prod.yaml with the variables of ENV_FILE), e.g. `make up STACK=prod`.
STACK ?= dev
export ENV_FILE ?= .env
COMPOSE := scripts/compose $(STACK)
# Where `make certs` writes a self-signed pair, and for which names.
CERTS_DIR ?= certs
CERT_NAMES ?= localhost

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
	cd backend && $(PY) -m ruff check . ../scripts ../tests
	cd backend && $(PY) -m ruff format --check . ../scripts ../tests
	cd backend && $(PY) -m mypy .
	$(MANAGE) makemigrations --check --dry-run
	$(MANAGE) spectacular --validate --fail-on-warn --file /dev/null

.PHONY: format
format: venv ## Fix what ruff can fix and format the code
	cd backend && $(PY) -m ruff check --fix . ../scripts ../tests && $(PY) -m ruff format . ../scripts ../tests

.PHONY: check-deploy
check-deploy: venv ## `check --deploy` with production settings and sample values
	cd backend && set -a && . config/settings/sample-prod.env && set +a && \
		$(PY) manage.py check --deploy --fail-level WARNING

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

.PHONY: bench-gunicorn
bench-gunicorn: venv ## Compare gunicorn workers x threads in the production stack (Docker)
	$(PY) scripts/bench/gunicorn_sizing.py

# ---------------------------------------------------------------- the compose stacks

.PHONY: up
up: ## Build and start the stack (STACK=dev|prod) and wait until it is healthy (updates: make deploy)
	$(COMPOSE) up --build --detach --wait
	@# Backends it recreated have new addresses: nginx follows them without a restart.
	scripts/nginx-reload $(STACK)
	@echo "nginx serves HTTPS on $$($(COMPOSE) port nginx 8443): the API under /api/v1/, docs /api/v1/docs, admin /admin/"

.PHONY: down
down: ## Stop the stack; volumes and data are kept
	$(COMPOSE) down

.PHONY: logs
logs: ## Follow the stack's logs (SERVICE=nginx for one service)
	$(COMPOSE) logs --follow --tail 100 $(SERVICE)

.PHONY: ps
ps: ## The stack's containers and their health
	$(COMPOSE) ps --all

.PHONY: shell
shell: ## A Django shell in the running backend
	$(COMPOSE) exec backend python manage.py shell

.PHONY: manage
manage: ## Run manage.py in the running backend, e.g. make manage ARGS="makemigrations accounts"
	@# As your own user in dev, so files it writes into the bind-mounted source are yours.
	$(COMPOSE) exec $(if $(filter dev,$(STACK)),--user "$$(id -u):$$(id -g)") backend python manage.py $(ARGS)

.PHONY: migrate
migrate: ## Apply migrations in the running stack
	$(COMPOSE) exec backend python manage.py migrate --no-input

.PHONY: createsuperuser
createsuperuser: ## Create an admin user in the running stack
	$(COMPOSE) exec backend python manage.py createsuperuser

.PHONY: deploy
deploy: ## Update the production stack to this checkout, no request dropped (ARGS=--help: options)
	scripts/deploy $(ARGS)

.PHONY: rollback
rollback: ## Switch the production backend back to the image that served before (or ARGS=<version>)
	scripts/deploy --rollback $(ARGS)

.PHONY: nginx-reload
nginx-reload: ## Check nginx's configuration and reload it gracefully, following the running backends
	scripts/nginx-reload $(STACK)

.PHONY: backup
backup: ## Dump the database into the backups and say where (NAME=x.dump: one that is never pruned)
	$(COMPOSE) exec --no-TTY db backup $(NAME)

.PHONY: backup-verify
backup-verify: ## Restore the newest backup (or FILE=...) into a scratch database and compare row counts
	$(COMPOSE) exec --no-TTY db backup-verify $(FILE)

.PHONY: restore
restore: ## Replace the database with a backup: make restore FILE=app-....dump
	@test -n "$(FILE)" || { echo "Usage: make restore FILE=<name in the backups volume or a path>" >&2; exit 2; }
	scripts/db-restore $(STACK) "$(FILE)"

.PHONY: certs
certs: ## Make a self-signed certificate in CERTS_DIR (default certs/) for CERT_NAMES (default localhost)
	nginx/self-signed-cert $(CERTS_DIR) $(CERT_NAMES)

.PHONY: stack-test
stack-test: venv ## Boot both stacks in Docker, check them through nginx and in Chromium (tests/stack)
	scripts/stack-test $(PYTEST_ARGS)

.PHONY: browser-test
browser-test: venv ## Only the browser tests: the test SPA in headless Chromium against both stacks
	scripts/stack-test stack/test_spa_dev.py stack/test_spa_prod.py $(PYTEST_ARGS)
