"""How much disk the production stack's container logs take per request, to size their rotation.

Usage: backend/.venv/bin/python scripts/bench/log_volume.py [REQUESTS]    (or: make bench-logs)
       (needs Docker with Compose v2 and the images of compose.prod.yaml; run as root, or as a user who
       can read Docker's log files)

It boots compose.prod.yaml as project "bench-logs" on 127.0.0.1:30543, signs one user up, then sends
REQUESTS (default 2000) requests in the mix of a logged-in SPA: for every ten, seven GET auth/me with a
session, one GET auth/me without one (401), one GET auth/csrf and one GET of a missing API path (404).
It measures what each container's json-file log (what `docker logs` reads) grew by, and prints the
bytes per request of each service and the disk a day of traffic takes at several rates. The stack is
removed (down -v) at the end.
"""

import gzip
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import prod_stack

PROJECT = "bench-logs"
HTTPS_PORT = 30543
ORIGIN = f"https://localhost:{HTTPS_PORT}"
# Requests per second, averaged over a day.
RATES = [1, 5, 10, 50]
DAY = 86_400


def compose(env_file: Path, *args: str) -> str:
    return prod_stack.compose(PROJECT, env_file, *args)


def log_files(env_file: Path) -> dict[str, Path]:
    """Each running service's json-file log."""
    files = {}
    for line in compose(env_file, "ps", "--format", "{{.Service}} {{.ID}}").splitlines():
        service, container = line.split()
        path = subprocess.run(
            ["docker", "inspect", "--format", "{{.LogPath}}", container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        files[service] = Path(path)
    return files


def send(context: ssl.SSLContext, requests: int) -> None:
    transport = httpx.HTTPTransport(verify=context, local_address="127.0.0.1")
    with httpx.Client(base_url=ORIGIN, transport=transport, timeout=30) as user:
        user.get("/api/v1/auth/csrf")
        user.post(
            "/api/v1/auth/signup",
            json={"email": f"bench-{secrets.token_hex(4)}@example.com", "password": "correct horse battery"},
            headers={"X-CSRFToken": user.cookies["__Host-csrftoken"], "Origin": ORIGIN},
        ).raise_for_status()
        with httpx.Client(base_url=ORIGIN, transport=transport, timeout=30) as anonymous:
            for number in range(requests):
                kind = number % 10
                if kind < 7:
                    user.get("/api/v1/auth/me").raise_for_status()
                elif kind == 7:
                    assert anonymous.get("/api/v1/auth/me").status_code == 401
                elif kind == 8:
                    anonymous.get("/api/v1/auth/csrf").raise_for_status()
                else:
                    assert anonymous.get("/api/v1/no-such-endpoint").status_code == 404


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as name:
        directory = Path(name)
        values = prod_stack.env_values(
            directory, https_port=HTTPS_PORT, http_port=30180, edge_subnet="172.16.250.0/24"
        )
        values.update(THROTTLE_ANON="1000000/m", THROTTLE_USER="1000000/m", GUNICORN_WORKERS="2")
        env_file = prod_stack.write_env(directory, values)
        context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
        compose(env_file, "down", "--volumes", "--remove-orphans")
        try:
            compose(env_file, "up", "--detach", "--build", "--wait")
            send(context, 20)  # warm-up: migrations' and start-up lines are not per request
            time.sleep(2)
            files = log_files(env_file)
            before = {service: path.stat().st_size for service, path in files.items()}
            send(context, requests)
            time.sleep(2)  # the last lines reach the log files
            written = {}
            for service, path in sorted(files.items()):
                with path.open("rb") as log:
                    log.seek(before[service])
                    written[service] = log.read()
        finally:
            compose(env_file, "down", "--volumes", "--remove-orphans")

    grown = {service: len(data) for service, data in written.items()}
    # What a rotated file takes with the json-file driver's compress option (gzip).
    compressed = {service: len(gzip.compress(data)) if data else 0 for service, data in written.items()}
    print(f"{requests} requests (7/10 GET auth/me with a session, 401, csrf, 404), json-file logs on disk")
    print(f"{'service':>10} {'bytes/request':>14} {'gzipped':>8}")
    for service, size in grown.items():
        print(f"{service:>10} {size / requests:14.0f} {compressed[service] / requests:8.0f}")
    print(f"{'all':>10} {sum(grown.values()) / requests:14.0f} {sum(compressed.values()) / requests:8.0f}")
    print("\none day at an average rate, per service and for all (MiB, uncompressed):")
    print(f"{'req/s':>10} " + " ".join(f"{service:>9}" for service in grown) + f" {'all':>9}")
    for rate in RATES:
        day = {service: size / requests * rate * DAY / 2**20 for service, size in grown.items()}
        print(f"{rate:>10} " + " ".join(f"{mib:9.0f}" for mib in day.values()) + f" {sum(day.values()):9.0f}")


if __name__ == "__main__":
    main()
