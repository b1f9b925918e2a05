"""Size gunicorn for the production stack: requests per second, latency and memory of the backend
container for several GUNICORN_WORKERS x GUNICORN_THREADS, measured through nginx over HTTPS.

Usage: backend/.venv/bin/python scripts/bench/gunicorn_sizing.py [SECONDS] [CLIENTS]
       (or: make bench-gunicorn; needs Docker with Compose v2 and the images of compose.prod.yaml)

It boots compose.prod.yaml as project "bench-gunicorn" on 127.0.0.1:30443 with a certificate
from a local CA, signs one user up, and for each sizing recreates the backend, then lets CLIENTS threads
(default 16) call GET /api/v1/auth/me (session from Redis, user from PostgreSQL) over keep-alive
HTTPS connections for SECONDS (default 10). Prints requests per second, median and p99 latency, errors,
and the backend container's memory afterwards. The stack is removed (down -v) at the end.
"""

import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import prod_stack

PROJECT = "bench-gunicorn"
HTTPS_PORT = 30443
ORIGIN = f"https://localhost:{HTTPS_PORT}"
SIZINGS = [(1, 4), (2, 4), (4, 4), (4, 1), (2, 8), (8, 2)]


def sizing(workers: int, threads: int) -> dict[str, str]:
    return {"GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads)}


def compose(env_file: Path, *args: str) -> str:
    return prod_stack.compose(PROJECT, env_file, *args)


def client(context: ssl.SSLContext, session: str | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(verify=context, local_address="127.0.0.1")
    headers = {"Cookie": f"__Host-sessionid={session}"} if session else None
    return httpx.Client(base_url=ORIGIN, transport=transport, timeout=30, headers=headers)


def session_cookie(context: ssl.SSLContext) -> str:
    with client(context) as http:
        http.get("/api/v1/auth/csrf")
        response = http.post(
            "/api/v1/auth/signup",
            json={"email": f"bench-{secrets.token_hex(4)}@example.com", "password": "correct horse battery"},
            headers={"X-CSRFToken": http.cookies["__Host-csrftoken"], "Origin": ORIGIN},
        )
        response.raise_for_status()
        return http.cookies["__Host-sessionid"]


def load(context: ssl.SSLContext, session: str, seconds: float, clients: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        mine: list[float] = []
        failed = 0
        with client(context, session) as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = http.get("/api/v1/auth/me")
                mine.append(time.perf_counter() - started)
                if response.status_code != 200:
                    failed += 1
                    failures.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        print(f"first failure: {failures[0]}")
    return latencies, errors


def backend_memory() -> str:
    output = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line.split()[1] for line in output.splitlines() if line.startswith(f"{PROJECT}-backend-"))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    with tempfile.TemporaryDirectory(prefix="bench-gunicorn-") as name:
        directory = Path(name)
        # The same secrets for every sizing: a new key would invalidate the benchmark's session, and
        # new passwords would not open the kept database volume.
        values = prod_stack.env_values(
            directory, https_port=HTTPS_PORT, http_port=30080, edge_subnet="172.16.251.0/24"
        )
        values.update(THROTTLE_USER="1000000/m", THROTTLE_AUTH="1000/m")
        workers, threads = SIZINGS[0]
        env_file = prod_stack.write_env(directory, {**values, **sizing(workers, threads)})
        context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
        compose(env_file, "down", "--volumes", "--remove-orphans")
        try:
            compose(env_file, "up", "--detach", "--build", "--wait")
            session = session_cookie(context)
            print(f"{clients} clients, {seconds:.0f} s each, GET /api/v1/auth/me through nginx (HTTPS)")
            columns = ("req/s", "p50 ms", "p99 ms", "errors")
            print(f"{'workers x threads':>18} " + " ".join(f"{c:>8}" for c in columns) + f" {'memory':>10}")
            for workers, threads in SIZINGS:
                env_file = prod_stack.write_env(directory, {**values, **sizing(workers, threads)})
                compose(env_file, "up", "--detach", "--wait", "--no-build")
                _, errors = load(context, session, 2, clients)  # warm-up: connections, caches
                if errors:
                    sys.exit(f"{errors} requests of the warm-up failed: is the session valid?")
                latencies, errors = load(context, session, seconds, clients)
                latencies.sort()
                print(
                    f"{f'{workers} x {threads}':>18} {len(latencies) / seconds:8.0f} "
                    f"{statistics.median(latencies) * 1000:8.1f} "
                    f"{latencies[int(len(latencies) * 0.99)] * 1000:8.1f} {errors:8d} {backend_memory():>10}"
                )
        finally:
            compose(env_file, "down", "--volumes", "--remove-orphans")


if __name__ == "__main__":
    main()
