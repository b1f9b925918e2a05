# Run `make` or `make help` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c

# What a command line (or the environment) gives is text: make does not expand a `$(...)` in it, and
# every recipe passes it to the shell quoted. $(call arg,VALUE) is VALUE as one shell word;
# $(call args,VALUE) its words split at spaces, each one a word of its own (ARGS="makemigrations accounts").
GIVEN_VARIABLES := ARGS BENCH_ARGS CA_FILE CERT_NAMES CERTS_DIR FILE MODEL NAME PORT PYTEST_ARGS SERVICE \
	SERVICES_DIR STACK
$(foreach variable,$(GIVEN_VARIABLES),$(if $(filter command environment,$(origin $(variable))),\
	$(eval override $(variable) := $$(value $(variable)))))
arg = '$(subst ','\'',$(1))'
args = $(foreach word,$(1),$(call arg,$(word)))

# The Python that makes the virtualenv: 3.11 or newer, with its venv module.
PYTHON ?= python3
VENV ?= backend/.venv
PY := $(abspath $(VENV))/bin/python
# What a fresh machine needs for the virtualenv, said when making it fails (README, Quick start).
VENV_HELP := make needs Python 3.11+ with its venv module as $(PYTHON). Debian/Ubuntu: sudo apt install \
	python3 python3-venv. macOS: a Python 3.11+ (brew install python@3.13, or python.org), then \
	make run PYTHON=python3.13. Windows: use WSL (Ubuntu) and follow the Debian/Ubuntu line.
MANAGE := cd backend && $(PY) manage.py
# $(call with_services,COMMAND): COMMAND with a throwaway PostgreSQL and Redis in SERVICES_DIR, their
# DB_* and REDIS_URL in its environment; stopped whatever COMMAND's exit status, which make then gets.
SERVICES_DIR ?= $(CURDIR)/.cache/test-services
with_services = scripts/test-services start $(call arg,$(SERVICES_DIR)) && \
	{ set -a; . $(call arg,$(SERVICES_DIR)/env); set +a; status=0; ($(1)) || status=$$?; \
	scripts/test-services stop $(call arg,$(SERVICES_DIR)); exit $$status; }
# The one way to pick the compose stack the container targets act on: dev (compose.yaml, the default)
# or prod (compose.prod.yaml with the variables of ENV_FILE), e.g. `make up STACK=prod`.
STACK ?= dev
# The port of `make run`; `make fuzz` uses 8001 unless PORT is given, so that both can run at once.
PORT ?= 8000
export ENV_FILE ?= .env
COMPOSE := scripts/compose $(call arg,$(STACK))
# Where `make certs` keeps its local CA and writes the certificate it signs, and for which names.
CERTS_DIR ?= certs
CERT_NAMES ?= localhost

.PHONY: help venv run app test test-postgres lint fuzz audit format check-deploy lock bench up down logs \
	ps manage migrate deploy rollback rotate-secret swarm-deploy swarm-update backup backup-verify restore \
	certs trust-ca stack-test fault-test

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: backend/requirements/dev.txt backend/requirements/stack-test.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) was not found. $(VENV_HELP)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
		|| { echo "$(PYTHON) is Python $$($(PYTHON) -V 2>&1 | cut -d' ' -f2). $(VENV_HELP)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "Could not create $(VENV). $(VENV_HELP)" >&2; exit 1; }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes \
		-r backend/requirements/dev.txt -r backend/requirements/stack-test.txt
	@touch $@

venv: $(VENV)/.installed ## Create backend/.venv with the locked dependencies (dev and stack-test groups)

run: venv ## Migrate and serve the API on http://127.0.0.1:8000 (SQLite, no Docker; PORT=8011 for another port)
	$(MANAGE) migrate --no-input
	$(MANAGE) runserver $(call arg,127.0.0.1:$(PORT))

app: venv ## A new app with an owner-only CRUD resource: make app NAME=notes MODEL=Note (docs/extending.md)
	@test -n $(call arg,$(NAME)) && test -n $(call arg,$(MODEL)) \
		|| { echo "Usage: make app NAME=<app, e.g. notes> MODEL=<its model, e.g. Note>" >&2; exit 2; }
	$(MANAGE) makeapp $(call arg,$(NAME)) $(call arg,$(MODEL))

# STACK=dev given: in the dev image on the dev stack's PostgreSQL and Redis, with the whole checkout
# mounted (some tests read docs, compose, scripts), as your own user so nothing it writes is root's.
ifeq ($(origin STACK),file)
test: venv ## Run the backend test suite (SQLite unless DB_*/REDIS_URL are set); STACK=dev: in the dev image and stack
	cd backend && $(PY) -m pytest $(call args,$(PYTEST_ARGS))
else ifeq ($(STACK),dev)
test:
	$(COMPOSE) run --rm --build --user "$$(id -u):$$(id -g)" --volume "$(CURDIR):/checkout" \
		--workdir /checkout/backend backend python -m pytest -p no:cacheprovider $(call args,$(PYTEST_ARGS))
else
test:
	@echo "make test runs natively, or in the dev stack with STACK=dev; not in the production stack" >&2; exit 2
endif

test-postgres: venv ## Run the suite against a throwaway PostgreSQL and Redis on 127.0.0.1
	$(call with_services,cd backend && $(PY) -m pytest $(call args,$(PYTEST_ARGS)))

lint: venv ## ruff, mypy, missing migrations and the OpenAPI schema
	cd backend && $(PY) -m ruff check . ../scripts ../tests
	cd backend && $(PY) -m ruff format --check . ../scripts ../tests
	cd backend && $(PY) -m mypy .
	$(MANAGE) makemigrations --check --dry-run
	$(MANAGE) spectacular --validate --fail-on-warn --file /dev/null

fuzz: venv ## Fuzz the API from its OpenAPI schema (schemathesis) on a native server, throwaway PostgreSQL
	$(call with_services,scripts/fuzz $(PY) $(call arg,$(if $(filter file,$(origin PORT)),8001,$(PORT))))

audit: venv ## Known vulnerabilities in the Python and npm locks (scripts/audit.py)
	$(PY) scripts/audit.py

format: venv ## Fix what ruff can fix and format the code
	cd backend && $(PY) -m ruff check --fix . ../scripts ../tests && $(PY) -m ruff format . ../scripts ../tests

check-deploy: venv ## `check --deploy` with production settings and sample values
	cd backend && set -a && . config/settings/sample-prod.env && set +a && \
		$(PY) manage.py check --deploy --fail-level WARNING

# The command each lock file's header records; Renovate re-runs it from there (.github/renovate.json),
# so options that take a value are written with "=".
lock: ## Re-resolve backend/requirements/*.txt from backend/pyproject.toml (needs uv)
	cd backend && uv pip compile pyproject.toml --universal --python-version=3.11 --generate-hashes \
		--quiet --output-file=requirements/prod.txt
	cd backend && uv pip compile pyproject.toml --group=dev --constraint=requirements/prod.txt \
		--universal --python-version=3.11 --generate-hashes --quiet --output-file=requirements/dev.txt
	cd backend && uv pip compile pyproject.toml --group=stack-test --constraint=requirements/dev.txt \
		--universal --python-version=3.11 --generate-hashes --quiet --output-file=requirements/stack-test.txt

bench: venv ## The hot path against a bare Django view, through nginx (STACK=prod: in the compose stack)
	$(PY) scripts/bench/hot_path.py --stack $(if $(filter prod,$(STACK)),prod,native) $(call args,$(BENCH_ARGS))

# ---------------------------------------------------------------- the compose stacks

up: ## Build and start the stack (STACK=dev|prod) and wait until it is healthy (updates: make deploy)
	$(COMPOSE) up --build --detach --wait
	@# Backends it recreated have new addresses: nginx follows them without a restart.
	scripts/nginx-reload $(call arg,$(STACK))
	@echo "nginx serves HTTPS on $$($(COMPOSE) port nginx 8443): the API under /api/v1/, docs /api/v1/docs, admin /admin/"

down: ## Stop the stack; volumes and data are kept
	$(COMPOSE) down

logs: ## Follow the stack's logs (SERVICE=nginx for one service)
	$(COMPOSE) logs --follow --tail 100 $(if $(SERVICE),$(call arg,$(SERVICE)))

ps: ## The stack's containers and their health
	$(COMPOSE) ps --all

manage: ## Run manage.py in the running backend: ARGS=shell, ARGS=createsuperuser, ARGS="makemigrations x"
	@# As your own user in dev, so files it writes into the bind-mounted source are yours.
	$(COMPOSE) exec $(if $(filter dev,$(STACK)),--user "$$(id -u):$$(id -g)") backend python manage.py $(call args,$(ARGS))

migrate: ## Apply migrations in the running stack (prod: the migrate one-shot, as the tables' owner)
	$(if $(filter prod,$(STACK)),$(COMPOSE) run --rm migrate,$(COMPOSE) exec backend python manage.py migrate --no-input)

deploy: ## Update the production stack to this checkout, no request dropped (ARGS=--help: options)
	scripts/deploy $(call args,$(ARGS))

rollback: ## Switch the production backend back to the image that served before (or ARGS=<version>)
	scripts/deploy --rollback $(call args,$(ARGS))

rotate-secret: ## A new SECRET_KEY (or SECRET=DB_APP_PASSWORD) in .env, applied with no request dropped
	scripts/deploy --rotate-secret $(or $(SECRET),SECRET_KEY)

swarm-deploy: ## Deploy the whole stack to Docker Swarm (compose.swarm.yaml) from a manager node
	scripts/swarm deploy $(call args,$(ARGS))

swarm-update: ## Roll the Swarm stack's backend over to this checkout's code, no request dropped
	scripts/swarm update $(call args,$(ARGS))

backup: ## Dump the database into the backups and say where (NAME=x.dump: one that is never pruned)
	$(COMPOSE) exec --no-TTY db backup $(if $(NAME),$(call arg,$(NAME)))

backup-verify: ## Restore the newest backup (or FILE=...) into a scratch database and compare row counts
	$(COMPOSE) exec --no-TTY db backup-verify $(if $(FILE),$(call arg,$(FILE)))

restore: ## Replace the database with a backup: make restore FILE=app-....dump
	@test -n $(call arg,$(FILE)) || { echo "Usage: make restore FILE=<name in the backups volume or a path>" >&2; exit 2; }
	scripts/db-restore $(call arg,$(STACK)) $(call arg,$(FILE))

certs: ## A certificate for CERT_NAMES (default localhost) from a local CA, both in CERTS_DIR (default certs/)
	nginx/local-cert $(call arg,$(CERTS_DIR)) $(call args,$(CERT_NAMES))

# INSTALL counts only on the command line: an INSTALL in the environment (e.g. the path of install(1))
# must not change the system's trust store.
trust-ca: ## Steps to trust the local CA (the running dev stack's, or CA_FILE=certs/ca.pem); INSTALL=1 does them
	scripts/trust-ca $(if $(filter command,$(origin INSTALL)),$(if $(value INSTALL),--install)) $(if $(CA_FILE),$(call arg,$(CA_FILE)))

stack-test: venv ## Boot both stacks in Docker, check them through nginx and in Chromium (tests/stack)
	scripts/stack-test $(call args,$(PYTEST_ARGS))

fault-test: venv ## Kill, stop, freeze and cut off db, redis and backend of the prod stack under load (tests/faults)
	scripts/stack-test faults $(call args,$(PYTEST_ARGS))
