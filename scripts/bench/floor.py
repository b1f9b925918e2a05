"""The floor of the hot-path benchmark: a bare Django view returning JsonResponse, with no middleware,
no database, no session. Whatever the project's own endpoints cost beyond this is the project's.

Served by gunicorn with the backend's config (same workers, threads and timeouts):
    gunicorn --config config/gunicorn.py --pythonpath ../scripts/bench floor:application

With the backend's DB_* variables, REDIS_URL and SECRET_KEY in its environment (the native run of
hot_path.py) it also serves two bounds, /floor/me-bound and /floor/csrf-bound: the floor plus the work
that a logged-in `GET auth/me` and a `GET auth/csrf` cannot do without, and nothing else (``me_bound``,
``csrf_bound``), so what their guarantees alone cost is measured.
"""

import json
import os
import sys
import time
from pathlib import Path

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.urls import path

BOUND = bool(os.environ.get("DB_HOST") and os.environ.get("REDIS_URL"))

settings.configure(
    DEBUG=False,
    # The backend's, when given: the bound checks the session's password hash as Django does.
    SECRET_KEY=os.environ.get("SECRET_KEY", "floor-benchmark-not-a-secret"),
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    # The backend's gunicorn config sets up logging through core.logging; nothing here logs.
    LOGGING_CONFIG=None,
    # Persistent connections as the backend's (DB_CONN_MAX_AGE's default), without any health check.
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ["DB_HOST"],
            "PORT": os.environ.get("DB_PORT", "5432"),
            "NAME": os.environ["DB_NAME"],
            "USER": os.environ["DB_USER"],
            "PASSWORD": os.environ.get("DB_PASSWORD", ""),
            "CONN_MAX_AGE": 60,
        }
    }
    if BOUND
    else {},
)
django.setup()

# config/gunicorn.py's post_worker_init imports core.exceptions in every new worker. The backend has it
# loaded before the fork (preload_app); loaded here too, so that a worker recycled after max_requests
# costs both apps the same fork, not the floor a second of imports (DRF, psycopg, django-redis) per worker.
# (core is on the path under gunicorn, which runs in the backend's directory, in a checkout and in the
# image; scripts/bench/request_cost.py imports this module from elsewhere in a checkout.)
CHECKOUT_BACKEND = Path(__file__).resolve().parent.parent.parent / "backend"
if CHECKOUT_BACKEND.is_dir():
    sys.path.insert(0, str(CHECKOUT_BACKEND))
import core.exceptions  # noqa: F401


def floor(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("floor", floor)]

if BOUND:
    import redis
    from django.core import signing
    from django.db import connection
    from django.middleware.csrf import get_token
    from django.utils.crypto import constant_time_compare, salted_hmac

    from core.cache import COUNT_SCRIPT

    # The production settings' names and keys (config/settings/prod.py and base.py, cached_db sessions,
    # django-redis's "<KEY_PREFIX>:<version>:<key>", core.rate_limit's windows of the user and anon
    # throttles), kept in step by hand. A stale session name or key makes the bound answer 401, which
    # hot_path.py refuses before it measures; a stale counter key is not caught (it costs the same).
    SESSION_COOKIE = "__Host-sessionid"
    CSRF_COOKIE = "__Host-csrftoken"
    SESSION_KEY = "backend:1:django.contrib.sessions.cached_db{}"
    COUNTER_KEY = "backend:1:rate:throttle:{}:{}:{}"
    SESSION_ROW = "SELECT session_data FROM django_session WHERE session_key = %s AND expire_date > now()"
    SESSION_SALT = "django.contrib.sessions.SessionStore"
    USER = (
        "SELECT password, is_active, email, first_name, last_name, date_joined"
        " FROM accounts_user WHERE id = %s"
    )
    REDIS = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=0.5)
    COUNT_SHA = REDIS.script_load(COUNT_SCRIPT)

    def count(scope: str, ident: str) -> None:
        """One request counted in the throttle's window of the minute, as core.rate_limit does."""
        REDIS.evalsha(COUNT_SHA, 1, COUNTER_KEY.format(scope, ident, int(time.time()) // 60 * 60), 61)

    def me_bound(request: HttpRequest) -> JsonResponse:
        """The floor plus what a logged-in `GET auth/me` cannot leave out, with the same guarantees: the
        session read from Redis (a round trip), the user's row read from PostgreSQL on every request (a
        round trip: a deactivated user or a changed password ends access at once), the session's password
        hash checked, and the user's throttle counted in one script (a round trip). Nothing else: no
        middleware, no DRF, no ORM, no access line, no security or CORS headers, no fallbacks for a
        Redis or database outage. So its ratio to the floor is about the most an implementation of `me`
        with these three round trips could reach.
        """
        session_key = request.COOKIES.get(SESSION_COOKIE, "")
        data = REDIS.get(SESSION_KEY.format(session_key))
        session = json.loads(data) if data else session_from_database(session_key)
        user_id = int(session.get("_auth_user_id", 0))
        with connection.cursor() as cursor:
            cursor.execute(USER, [user_id])
            row = cursor.fetchone()
        if row is None or not row[1]:
            return JsonResponse({"message": "Not logged in."}, status=401)
        password, _, email, first_name, last_name, date_joined = row
        expected = salted_hmac(
            "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash", password, algorithm="sha256"
        ).hexdigest()
        if not constant_time_compare(session.get("_auth_user_hash", ""), expected):
            return JsonResponse({"message": "Not logged in."}, status=401)
        count("user", str(user_id))
        return JsonResponse(
            {
                "id": user_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "date_joined": date_joined.isoformat(),
            }
        )

    def session_from_database(session_key: str) -> dict[str, str]:
        """cached_db's fallback when the Redis copy expired (it lives 5 minutes): the row, copied back."""
        with connection.cursor() as cursor:
            cursor.execute(SESSION_ROW, [session_key])
            row = cursor.fetchone()
        if row is None:
            return {}
        session: dict[str, str] = signing.loads(row[0], salt=SESSION_SALT, serializer=signing.JSONSerializer)
        REDIS.set(SESSION_KEY.format(session_key), json.dumps(session), ex=300)
        return session

    def csrf_bound(request: HttpRequest) -> JsonResponse:
        """The floor plus what `GET auth/csrf` cannot leave out: the anon throttle counted per address (a
        round trip), the cookie's secret masked into a token, and the cookie set again. Nothing else."""
        count("anon", request.META["HTTP_X_FORWARDED_FOR"].rsplit(",", 1)[-1].strip())
        secret = request.COOKIES.get(CSRF_COOKIE, "")
        if len(secret) == 32:  # what CsrfViewMiddleware reads from a valid cookie
            request.META["CSRF_COOKIE"] = secret
        response = JsonResponse({"csrf_token": get_token(request)})
        response.set_cookie(
            CSRF_COOKIE, request.META["CSRF_COOKIE"], max_age=31449600, secure=True, samesite="Lax"
        )
        return response

    urlpatterns += [path("floor/me-bound", me_bound), path("floor/csrf-bound", csrf_bound)]

application = WSGIHandler()
