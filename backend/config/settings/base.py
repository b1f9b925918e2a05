"""Settings shared by every environment; local.py, prod.py and test.py override a handful each.

Every environment variable the backend reads is read here (or, when production requires it, again in
prod.py) through config.env, and listed in the top-level .env.example.
"""

import re

from config.env import (
    BACKEND_DIR,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_networks,
    env_origins,
    env_secret,
    env_secret_lines,
    env_str,
    env_url,
)

BASE_DIR = BACKEND_DIR

# ---------------------------------------------------------------- core

# Overridden by prod.py, which requires a real key. This one is only good for a laptop. The first line
# signs; the lines after it are the keys it replaced, which still verify sessions and password-reset
# links (`make rotate-secret` keeps one, docs/operations.md).
SECRET_KEY, *SECRET_KEY_FALLBACKS = env_secret_lines(
    "SECRET_KEY", "django-insecure-local-development-key-do-not-use-in-production"
)
DEBUG = False
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "accounts",
]

MIDDLEWARE = [
    # First: the request id on every log line and the response, the Host check before anything reads
    # the header, no-store for the API, the liveness probe, the access line.
    "core.middleware.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before CommonMiddleware so that preflight and error responses get the CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- database

# SQLite unless DB_HOST names a PostgreSQL server; then every DB_* variable must be set.
SQLITE_DATABASE = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": BASE_DIR / "db.sqlite3",
    "OPTIONS": {
        # Several threads or processes write at once (runserver's threads, a second manage.py): WAL lets
        # readers work beside a writer; IMMEDIATE takes the write lock when a transaction starts, where
        # a read lock upgraded later fails at once with "database is locked" whatever the timeout; and a
        # writer waits up to 20 s for the lock.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    },
}
if env_str("DB_HOST", "") == "":
    DATABASES = {"default": SQLITE_DATABASE}
else:
    DATABASES = {
        "default": {
            # Django's backend, without a health-check ping for a connection used a moment ago.
            "ENGINE": "core.db.postgresql",
            "HOST": env_str("DB_HOST"),
            "PORT": env_int("DB_PORT", 5432, min_value=1, max_value=65535),
            "NAME": env_str("DB_NAME"),
            "USER": env_str("DB_USER"),
            "PASSWORD": env_secret("DB_PASSWORD"),
            # Persistent connections, checked before reuse (unless used within the last second) so a
            # restarted database costs one error-free reconnect instead of a failed request. The
            # measurements behind choosing this over psycopg's pool: docs/decisions.md.
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60, min_value=0),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                # Fail fast instead of hanging a worker when the server is unreachable.
                "connect_timeout": 5,
                "application_name": "backend",
            },
        }
    }

# The connection budget (core.checks.check_connection_budget, which `migrate` runs): every backend
# container holds up to GUNICORN_WORKERS x (GUNICORN_THREADS + 1) connections, and an update runs more
# containers beside the BACKEND_REPLICAS that serve: compose's `make deploy` as many new ones, Swarm's
# rolling update one at a time (compose.swarm.yaml sets BACKEND_UPDATE_SURGE to its parallelism).
BACKEND_REPLICAS = env_int("BACKEND_REPLICAS", 1, min_value=1)
BACKEND_UPDATE_SURGE = env_int("BACKEND_UPDATE_SURGE", BACKEND_REPLICAS, min_value=0)
# Beside the backend: migrate (1), the backup service (a dump holds 2) and 2 for people (psql, shell).
DB_CONNECTIONS_BESIDE_THE_BACKEND = 5

# The least-privilege role (data only, no DDL) that `migrate`, connected as the owner DB_USER, creates
# and grants after every run (core.database_roles); compose.prod.yaml runs the backend as it. Empty:
# none is managed.
DB_APP_USER = env_str("DB_APP_USER", "")
DB_APP_PASSWORD = env_secret("DB_APP_PASSWORD", "")

# ---------------------------------------------------------------- cache and sessions

REDIS_URL = env_url("REDIS_URL", ("redis", "rediss", "unix"), "")

REDIS_CACHE_OPTIONS = {
    # Redis answers a healthy request in well under a millisecond; one that is paused or cut off must
    # cost a request at most this, once (core.cache: no retries, a circuit breaker).
    "SOCKET_CONNECT_TIMEOUT": 0.5,
    "SOCKET_TIMEOUT": 0.5,
    "CONNECTION_POOL_CLASS": "core.cache.ConnectionPool",
    # JSON, not pickle: whoever can write to Redis must not be able to run code in the backend.
    "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
    # A Redis outage degrades to database-backed sessions (core.sessions), open anon/user throttles and
    # per-process security limits (core.rate_limit) instead of failing every request; /health/ready
    # reports 503. The breaker logs the outage once, not once per failed command.
    "IGNORE_EXCEPTIONS": True,
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
# Seconds Redis is skipped after a failure before one command probes it again (core.cache).
REDIS_BREAKER_SECONDS = 5

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "backend",
            "OPTIONS": REDIS_CACHE_OPTIONS,
        }
    }
else:
    # Per-process memory: fine for one runserver, not for several workers (core.E006 in check --deploy).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sessions are written through to the database, so a Redis flush or outage logs nobody out; ending one
# needs Redis to confirm (core.sessions).
SESSION_ENGINE = "core.sessions"
# Seconds a session's Redis copy lives at most; the database row lives SESSION_COOKIE_AGE.
SESSION_CACHE_MAX_AGE = 5 * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14

# ---------------------------------------------------------------- authentication

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "accounts.backends.EmailBackend",
    # Only for sessions made before EmailBackend (a session names the backend that logged it in): they
    # keep working until their next login. It is never asked to check a password (EmailBackend settles).
    "django.contrib.auth.backends.ModelBackend",
]

PASSWORD_HASHERS = [
    # Argon2id with parameters chosen in accounts.hashers (measured cost in docs/decisions.md).
    "accounts.hashers.Argon2idPasswordHasher",
    # Only to verify (and then upgrade) hashes imported from elsewhere.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# New passwords; the OpenAPI schema states both limits.
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {
        "NAME": "accounts.validators.MaximumLengthValidator",
        "OPTIONS": {"max_length": PASSWORD_MAX_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The link mailed for a password reset; {uid} and {token} are filled in. It points at the frontend, which
# posts both to /api/v1/auth/password/reset/confirm.
PASSWORD_RESET_URL = env_str(
    "PASSWORD_RESET_URL",
    "http://localhost:5173/reset-password?uid={uid}&token={token}",
    validate=lambda url: (
        None
        if re.match(r"https?://", url) and "{uid}" in url and "{token}" in url
        else "an http(s) URL containing {uid} and {token}"
    ),
)
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 60 * 60, min_value=60)

# ---------------------------------------------------------------- CSRF and CORS

# Frontend origins allowed to call the API with credentials. None by default; local.py allows the usual
# dev-server ports. The SPA served by the same nginx host needs no entry.
CORS_ALLOWED_ORIGINS = env_origins("CORS_ALLOWED_ORIGINS", [])
CORS_ALLOW_CREDENTIALS = True
CORS_URLS_REGEX = r"^/api/.*$"
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]

# Unsafe cross-origin requests must come from a trusted origin; by default the same ones CORS allows.
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS", CORS_ALLOWED_ORIGINS)
CSRF_COOKIE_HTTPONLY = False  # The SPA reads the csrftoken cookie to send it back as X-CSRFToken.
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "core.exceptions.csrf_failure"

# ---------------------------------------------------------------- the admin

# The admin's path (nginx serves the same one: ADMIN_URL reaches it from the same .env). A path of your
# own keeps the admin out of scanners' first guesses; it is no secret, the allow-list below is the lock.
ADMIN_URL = env_str(
    "ADMIN_URL",
    "admin/",
    validate=lambda path: (
        None
        if re.fullmatch(r"(?:[A-Za-z0-9_-]+/)+", path) and not path.startswith(("api/", "static/"))
        else "a path like admin/ or staff-7f3a/ (letters, digits, - and _, ending in /), not under api/ "
        "or static/"
    ),
)
# Client addresses (core.request_context.client_ip) that may reach the admin; any other gets a 404, as if
# it were not there. Empty (the default): every address.
ADMIN_ALLOWED_NETWORKS = env_networks("ADMIN_ALLOWED_NETWORKS", [])

# ---------------------------------------------------------------- requests and proxies

# The peers whose X-Forwarded-For and X-Forwarded-Proto are believed: nginx's network (the production
# stacks' EDGE_SUBNET), never the data network, whose containers reach gunicorn past nginx. From any other
# peer core.middleware drops every X-Forwarded-* header before anything reads it. gunicorn reads the
# same variable for its own scheme (config/gunicorn.py). Addresses or networks, or * for any peer.
FORWARDED_ALLOW_IPS = env_networks("FORWARDED_ALLOW_IPS", ["127.0.0.1", "::1"])
# How many reverse proxies (nginx) append to X-Forwarded-For in front of the app. The client address is
# taken that many entries from the right, so a client cannot pick its own throttle bucket by sending
# the header itself. 0: use the socket address and ignore the header.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, min_value=0, max_value=5)
# Behind a TLS proxy (the compose stacks' nginx), its X-Forwarded-Proto says whether the client used
# HTTPS; CSRF's origin check and the URLs Django builds depend on it.
if TRUSTED_PROXY_COUNT > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Bodies larger than this are refused with 413 REQUEST_TOO_LARGE (nginx's client_max_body_size matches).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# JSON bodies nested deeper than this many arrays and objects are refused with 400 PARSE_ERROR before they
# are parsed (core.parsers; docs/decisions.md, "JSON nesting").
JSON_MAX_DEPTH = 64

APPEND_SLASH = False

# ---------------------------------------------------------------- REST framework


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.AnonRateThrottle",
        "core.throttling.UserRateThrottle",
        # The rate named by a view's throttle_scope, e.g. "auth" below.
        "core.throttling.ScopedRateThrottle",
    ],
    # One rate per scope of core.rate_limit.SCOPES, from THROTTLE_<SCOPE>; check core.E004 validates them.
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON", "120/m"),
        "user": env_str("THROTTLE_USER", "600/m"),
        # Signup, login and the password endpoints, per client address.
        "auth": env_str("THROTTLE_AUTH", "10/m"),
        # Failed password guesses (login, admin login, current password) per account and address: over
        # it, that address is refused for the account until the window ends.
        "login_failures": env_str("THROTTLE_LOGIN_FAILURES", "5/15m"),
        # Failed guesses per account from all addresses together: over it, the account is slowed to
        # one guess per LOGIN_SLOW_INTERVAL, not locked, so nobody can lock someone else out.
        "login_failures_account": env_str("THROTTLE_LOGIN_FAILURES_ACCOUNT", "30/h"),
        # Reset mails per account, so the endpoint cannot be used to flood someone's inbox.
        "password_reset_mail": env_str("THROTTLE_PASSWORD_RESET_MAIL", "3/h"),
    },
    # Every list: ?limit= (1-100, default 20) and ?offset=, a bad value a 400 (core.pagination).
    "DEFAULT_PAGINATION_CLASS": "core.pagination.LimitOffsetPagination",
    "EXCEPTION_HANDLER": "core.exceptions.custom_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Seconds between two password guesses on an account over its login_failures_account rate.
LOGIN_SLOW_INTERVAL = 5
# The known-device cookie a successful API login sets (accounts.services): from a browser that holds it,
# logging in to its account does not wait for that turn (docs/decisions.md, "Known devices"). Signed,
# HttpOnly, SameSite=Lax, Secure when the session cookie is; void once the password changes.
LOGIN_DEVICE_COOKIE_NAME = "login_device"
LOGIN_DEVICE_COOKIE_AGE = 60 * 60 * 24 * 90

# ---------------------------------------------------------------- API docs

# public: anyone; staff: logged-in staff only; off: not routed. local.py defaults to public.
API_DOCS = env_choice("API_DOCS", ("public", "staff", "off"), "staff")

SPECTACULAR_SETTINGS = {
    "TITLE": "Backend API",
    "DESCRIPTION": "Session-authenticated JSON API for a browser single-page app. "
    'Errors have the body {"message", "code", "details"}.',
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.email_addresses_as_checked",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Assets from the sidecar package: the docs page loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# ---------------------------------------------------------------- health

# Seconds /health/ready waits for the database and Redis before answering 503.
HEALTH_CHECK_TIMEOUT = 2.0
# Seconds a process answers /health/ready from its last result, so a flood of calls costs one check.
HEALTH_CHECK_CACHE_SECONDS = 1.0

# ---------------------------------------------------------------- static files

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Hashed, pre-compressed files from collectstatic (run at image build, with these base settings), served
# by WhiteNoise. With DEBUG on (local settings) files are served by their plain names instead.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# ---------------------------------------------------------------- email

# smtp sends through EMAIL_HOST; console prints each mail to stdout instead (local settings' default, so
# `make run` needs no mail server; the dev stack sends to its mail catcher over SMTP).
EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
}
EMAIL_BACKEND = EMAIL_BACKENDS[env_choice("EMAIL_DELIVERY", tuple(EMAIL_BACKENDS), "smtp")]
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, min_value=1, max_value=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "no-reply@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# ---------------------------------------------------------------- logging

LOG_LEVEL = env_choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
# text: one readable line per record; json: one JSON object per line, for log collectors.
LOG_FORMAT = env_choice("LOG_FORMAT", ("text", "json"), "text")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.logging.RequestContextFilter"}},
    # Text or JSON by the LOG_FORMAT setting, read when logging is configured.
    "formatters": {"default": {"()": "core.logging.formatter_from_settings"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["request_context"],
            "formatter": "default",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Only through the stdout handler: Django's own console handler (DEBUG on) would print each of
        # its records a second time, unformatted and without the control characters escaped.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # core.middleware writes the one access line per request; Django's 4xx warnings and runserver's
        # own access lines would repeat it. Unhandled errors are still logged at ERROR.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
        # SQL with its parameters (logged at DEBUG when DEBUG is on) carries session keys and password
        # hashes; lower this deliberately, and only on your own machine, to see queries.
        "django.db.backends": {"level": "INFO"},
    },
}
