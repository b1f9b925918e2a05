"""The floor of the hot-path benchmark (scripts/bench/hot_path.py): a bare Django view returning
JsonResponse, with no middleware, no database, no session. Whatever the project's own endpoints cost
beyond this is the project's.

Served by gunicorn with the backend's config (same workers, threads and timeouts), from the backend's
directory (in a checkout and in the image):
    gunicorn --config config/gunicorn.py --pythonpath ../scripts/bench floor:application
"""

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="floor-benchmark-not-a-secret",  # noqa: S106 (signs nothing: no sessions, no CSRF)
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    # The backend's gunicorn config sets up logging through core.logging; nothing here logs.
    LOGGING_CONFIG=None,
)
django.setup()

# config/gunicorn.py's post_worker_init imports core.exceptions in every new worker. The backend has it
# loaded before the fork (preload_app); loaded here too, so that a worker recycled after max_requests
# costs both apps the same fork, not the floor a second of imports (DRF, psycopg, django-redis) per worker.
import core.exceptions  # noqa: E402, F401


def floor(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("floor", floor)]
application = WSGIHandler()
