"""The test suite: base settings made deterministic, whatever a developer's .env says.

The database and cache still follow DB_* and REDIS_URL, so the same suite runs on SQLite and local memory
or on PostgreSQL and Redis.
"""

from .base import *

# Hashing is tested with the real hasher in accounts/tests/test_hashers.py; elsewhere it would only be slow.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Keep test keys apart from a development stack sharing the same Redis.
CACHES["default"]["KEY_PREFIX"] = "test"

CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
CSRF_TRUSTED_ORIGINS = CORS_ALLOWED_ORIGINS
TRUSTED_PROXY_COUNT = 0
# The private ranges the tests' proxies come from; the documentation ranges (203.0.113.0/24, ...) are
# clients that reach the app directly.
FORWARDED_ALLOW_IPS = ["127.0.0.1", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
API_DOCS = "public"
PASSWORD_RESET_URL = "https://app.example.com/reset-password?uid={uid}&token={token}"  # noqa: S105

REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": "1000/m",
    "user": "1000/m",
    "auth": "10/m",
    "login_failures": "5/15m",
    "login_failures_account": "30/h",
    "password_reset_mail": "3/h",
}

# Static files straight from the apps, as under runserver: no collectstatic before the tests.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
