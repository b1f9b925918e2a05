"""Production behind nginx: everything required comes from the environment, and only hardening is here.

nginx terminates TLS, sets X-Forwarded-Proto and X-Forwarded-For, and sends Strict-Transport-Security.
"""

from config.env import env_choice, env_int, env_list, env_secret_lines, require

# Before base.py reads them, so one message lists every missing variable.
require(
    ["ALLOWED_HOSTS", "DB_NAME", "DB_USER", "DB_HOST", "DB_PORT"],
    secrets=["SECRET_KEY", "DB_PASSWORD", "REDIS_URL"],
)

from .base import *  # noqa: E402

DEBUG = False

SECRET_KEY, *SECRET_KEY_FALLBACKS = env_secret_lines("SECRET_KEY", min_length=50)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")

# ---------------------------------------------------------------- behind the TLS proxy

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1, min_value=0, max_value=5)
SECURE_SSL_REDIRECT = True
# Container health checks talk plain HTTP to gunicorn, bypassing nginx.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/"]

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# The __Host- prefix makes browsers accept the cookie only with Secure, Path=/ and no Domain, so a
# sibling subdomain (or a man in the middle over plain HTTP) cannot plant a session. No SPA reads it.
# The CSRF cookie keeps the name every SPA reads, csrftoken, as in every environment (core.E007 says
# what protects it instead of the prefix).
SESSION_COOKIE_NAME = "__Host-sessionid"
LOGIN_DEVICE_COOKIE_NAME = "__Host-login_device"

# nginx sends Strict-Transport-Security on every response, error pages included, so Django does not.
SILENCED_SYSTEM_CHECKS = ["security.W004"]

# ---------------------------------------------------------------- logs

LOG_FORMAT = env_choice("LOG_FORMAT", ("text", "json"), "json")
