"""Container health check: GET health/live on the local server, exit 0 when it answers 200.

It sends the first ALLOWED_HOSTS name as the Host header, because Django refuses any other host (in prod,
ALLOWED_HOSTS has only the public name). The settings are only loaded, not set up: no app is imported.
LIVE_PATH is health/live's route; config/tests/test_documentation.py checks that it still is.
Usage: python docker/healthcheck.py
"""

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LIVE_PATH = "/api/v1/health/live"


def health_host() -> str:
    # As manage.py does; the prod image sets DJANGO_SETTINGS_MODULE.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.conf import settings

    for host in settings.ALLOWED_HOSTS:
        if host != "*":
            # ".example.com" allows example.com and its subdomains.
            return str(host).lstrip(".")
    return "localhost"


def main() -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:8000{LIVE_PATH}",
        headers={"Host": health_host(), "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 (a constant http URL)
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        sys.stderr.write(f"unhealthy: {error}\n")
        return 1
    if status != 200:
        sys.stderr.write(f"unhealthy: health/live answered {status}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
