"""The floor of the hot-path benchmark (scripts/bench/hot_path.py): a bare Django view returning
JsonResponse, with no middleware, no database, no session; what the project's endpoints cost beyond it
is the project's. Served from the backend's directory with its gunicorn config:
    gunicorn --config config/gunicorn.py --pythonpath ../scripts/bench floor:application
"""

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.urls import path

settings.configure(
    SECRET_KEY="floor-benchmark-not-a-secret",  # noqa: S106 (signs nothing: no sessions, no CSRF)
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    # The backend's gunicorn config sets up logging through core.logging; nothing here logs.
    LOGGING_CONFIG=None,
)
django.setup()

# Loaded before the fork as the backend does (preload_app), so that a worker max_requests recycles costs
# both apps the same (config/gunicorn.py's post_worker_init; docs/decisions.md, "A correction").
import core.exceptions  # noqa: E402, F401


def floor(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("floor", floor)]
application = WSGIHandler()
