"""Project invariants as system checks, so `manage.py check --deploy` catches a settings change that would
quietly weaken the API. Each check has a test in core/tests/test_checks.py."""

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import get_hashers
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from core import rate_limit

SESSION_ENGINES_SURVIVING_CACHE_LOSS = (
    "core.sessions",
    "django.contrib.sessions.backends.cached_db",
    "django.contrib.sessions.backends.db",
)
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.security)
def check_api_defaults(app_configs: Sequence[Any] | None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    rest: dict[str, Any] = settings.REST_FRAMEWORK
    if rest.get("DEFAULT_PERMISSION_CLASSES") != ["rest_framework.permissions.IsAuthenticated"]:
        problems.append(
            Error(
                "REST_FRAMEWORK['DEFAULT_PERMISSION_CLASSES'] must be [IsAuthenticated].",
                hint="Public views opt out in the view itself (permission_classes = [AllowAny]).",
                id="core.E001",
            )
        )
    if rest.get("DEFAULT_AUTHENTICATION_CLASSES") != ["core.authentication.SessionAuthentication"]:
        problems.append(
            Error(
                "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'] must be "
                "['core.authentication.SessionAuthentication'].",
                hint="DRF's own class skips CSRF for anonymous requests and answers 403 instead of 401.",
                id="core.E002",
            )
        )
    if settings.SESSION_ENGINE not in SESSION_ENGINES_SURVIVING_CACHE_LOSS:
        problems.append(
            Error(
                f"SESSION_ENGINE {settings.SESSION_ENGINE!r} loses sessions when the cache is flushed.",
                hint="Use core.sessions.",
                id="core.E003",
            )
        )
    # The one place rates are validated: a malformed THROTTLE_* value stops runserver and migrate (which
    # the production stack runs before the backend starts) naming the variable.
    rates = rest.get("DEFAULT_THROTTLE_RATES", {})
    for scope in rate_limit.SCOPES:
        try:
            rate_limit.Rate.parse(rates[scope])
        except (KeyError, TypeError, ValueError):
            problems.append(
                Error(
                    f"Throttle rate {scope!r} is missing or malformed: {rates.get(scope)!r}.",
                    hint=f"Set {rate_limit.variable_for(scope)} to a rate like 10/m, 100/h or 5/15m "
                    "(requests per optional number of s, m, h or d).",
                    id="core.E004",
                )
            )
    return problems


@register(Tags.security, deploy=True)
def check_deployment(app_configs: Sequence[Any] | None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    if get_hashers()[0].algorithm != "argon2":
        problems.append(
            Error(
                "The first of PASSWORD_HASHERS must be an Argon2 hasher.",
                hint="accounts.hashers.Argon2idPasswordHasher",
                id="core.E005",
            )
        )
    if settings.CACHES["default"]["BACKEND"] in PROCESS_LOCAL_CACHES:
        problems.append(
            Error(
                "The default cache is local to one process, so throttles are per worker and easy to evade.",
                hint="Set REDIS_URL.",
                id="core.E006",
            )
        )
    for cookie in ("SESSION", "CSRF"):
        name = getattr(settings, f"{cookie}_COOKIE_NAME")
        secure, path = (
            getattr(settings, f"{cookie}_COOKIE_SECURE"),
            getattr(settings, f"{cookie}_COOKIE_PATH"),
        )
        if name.startswith("__Host-") and not (
            secure and path == "/" and not getattr(settings, f"{cookie}_COOKIE_DOMAIN")
        ):
            problems.append(
                Error(
                    f"{cookie}_COOKIE_NAME {name!r} has the __Host- prefix, so browsers drop the cookie "
                    "unless it is Secure, on Path=/ and without a Domain.",
                    hint=f"Set {cookie}_COOKIE_SECURE = True, {cookie}_COOKIE_PATH = '/' and no "
                    f"{cookie}_COOKIE_DOMAIN, or drop the prefix.",
                    id="core.E007",
                )
            )
    if settings.SECURE_PROXY_SSL_HEADER and settings.TRUSTED_PROXY_COUNT == 0:
        problems.append(
            Warning(
                "SECURE_PROXY_SSL_HEADER is set but TRUSTED_PROXY_COUNT is 0: behind the proxy every "
                "client would share the proxy's address and one throttle bucket.",
                hint="Set TRUSTED_PROXY_COUNT to the number of proxies in front of the app (1 for nginx).",
                id="core.W001",
            )
        )
    return problems
