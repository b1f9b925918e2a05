"""The hot path against a floor, in one run: how fast the project's endpoints are next to a bare Django view.

Usage: backend/.venv/bin/python scripts/bench/hot_path.py [--stack native|prod] [--rounds N] [--seconds S]
       (`make bench`, `make bench STACK=prod`, `make bench BENCH_ARGS="--rounds 5"`)
Targets, through nginx: the floor (scripts/bench/floor.py), health/live, auth/csrf, auth/me (logged in) and
nginx's own `return 200`. What it measures, how and why: docs/decisions.md, "The hot path".
"""

import argparse
import contextlib
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"
PYTHON = BACKEND / ".venv" / "bin" / "python"
WORKERS, THREADS = "3", "2"
CONNECTIONS = 32
# wrk's units of latency, in milliseconds.
MILLISECONDS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
# The throttles would answer the load with 429s.
UNTHROTTLED = {"THROTTLE_ANON": "100000000/m", "THROTTLE_USER": "100000000/m"}
# Required with production settings (check core.E009); no mail is sent.
RESET_URL = "https://app.example.com/reset-password?uid={uid}&token={token}"
# Ports of the native run, and of the prod stack's published nginx: apart from the stack tests'.
NATIVE_HTTPS, BACKEND_PORT, FLOOR_PORT = 31443, 31800, 31801
PG_PORT, REDIS_PORT = 31432, 31379
PROD_HTTPS, PROD_HTTP, PROD_BENCH_HTTPS = 32443, 32080, 32444


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def run(args: list[str], **kwargs: Any) -> str:
    """The command's output; a failure stops the benchmark with what the command said."""
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return str(result.stdout)


def pinned(cpu: str) -> list[str]:
    return ["taskset", "--cpu-list", cpu] if cpu else []


def wrk(url: str, seconds: int, cookie: str, cpu: str) -> Result:
    limits = ["--threads=2", f"--connections={CONNECTIONS}", f"--duration={seconds}s", "--timeout=10s"]
    output = run([*pinned(cpu), "wrk", *limits, "--latency", f"--header=Cookie: {cookie}", url])
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    percentiles = {percentile: float(value) * MILLISECONDS[unit] for percentile, value, unit in latency}
    if rps is None or set(percentiles) != {"50", "99"}:
        sys.exit(f"bench: wrk gave no rate or latency distribution for {url}:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout|responses:) (\d+)", output))
    return Result(float(rps[1]), percentiles["50"], percentiles["99"], errors)


def local_client(**options: Any) -> httpx.Client:
    """A client of the benchmark's nginx on 127.0.0.1, which accepts its throwaway certificate."""
    return httpx.Client(transport=httpx.HTTPTransport(verify=False, local_address="127.0.0.1"), **options)


def session_cookie(origin: str) -> str:
    """Signs a benchmark user up through nginx; the Cookie header of its session."""
    with local_client(base_url=origin, timeout=30) as client:
        token = client.get("/api/v1/auth/csrf").json()["csrf_token"]
        client.post(
            "/api/v1/auth/signup",
            json={"email": f"bench-{secrets.token_hex(4)}@example.com", "password": secrets.token_urlsafe()},
            headers={"X-CSRFToken": token, "Origin": origin},
        ).raise_for_status()
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def measure(origin: str, bench_origin: str, args: argparse.Namespace, cpu: str) -> dict[str, list[Result]]:
    """Every target in turns, in a new order each round, so the machine's noise hits all of them alike."""
    say(f"gunicorn: {WORKERS} workers x {THREADS} threads per app; wrk: 2 threads, {CONNECTIONS} connections")
    cookie = session_cookie(origin)
    targets = {
        "floor": f"{bench_origin}/floor",
        "live": f"{origin}/api/v1/health/live",
        "csrf": f"{origin}/api/v1/auth/csrf",
        "me": f"{origin}/api/v1/auth/me",
        "nginx": f"{bench_origin}/nginx",
    }
    results: dict[str, list[Result]] = {name: [] for name in targets}
    say(f"a warm-up of 2 s per target, then {args.rounds} rounds of {args.seconds} s per target, in turns")
    for url in targets.values():
        wrk(url, 2, cookie, cpu)
    for round_number in range(1, args.rounds + 1):
        for name in random.sample(list(targets), len(targets)):
            results[name].append(wrk(targets[name], args.seconds, cookie, cpu))
        rates = ", ".join(f"{name} {runs[-1].rps:.0f}/s" for name, runs in results.items())
        say(f"round {round_number}: {rates}")
    return results


def report(results: dict[str, list[Result]]) -> None:
    """Each figure is the median over the rounds; each ratio the median of the rounds' own ratios to the
    floor of the same round, so that a busy spell of the machine cancels within a round."""
    floor = results["floor"]
    print(f"\n{'target':<10} {'req/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'p99/floor':>9} errors")
    for name, runs in results.items():
        rps = statistics.median(run.rps for run in runs)
        p50 = statistics.median(run.p50_ms for run in runs)
        p99 = statistics.median(run.p99_ms for run in runs)
        rps_ratio = statistics.median(run.rps / base.rps for run, base in zip(runs, floor, strict=True))
        p99_ratio = statistics.median(run.p99_ms / base.p99_ms for run, base in zip(runs, floor, strict=True))
        errors = sum(run.errors for run in runs)
        print(
            f"{name:<10} {rps:>9.0f} {rps_ratio:>6.2f} {p50:>8.1f} {p99:>8.1f} {p99_ratio:>9.2f} {errors:>7}"
        )


NGINX_CONF = """
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 16; keepalive_timeout 60s; }}
    upstream floor {{ server 127.0.0.1:{floor}; keepalive 16; keepalive_timeout 60s; }}
    server {{
        listen 127.0.0.1:{https} ssl http2;
        ssl_certificate {dir}/fullchain.pem;
        ssl_certificate_key {dir}/privkey.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Request-ID $request_id;
        location /api/ {{ proxy_pass http://backend; }}
        location = /floor {{ proxy_pass http://floor; }}
        location = /nginx {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
    }}
}}
"""


@contextlib.contextmanager
def native_stack(directory: Path) -> Iterator[tuple[str, str, str]]:
    """PostgreSQL, Redis, both apps' gunicorns and nginx, run here; yields the origins and wrk's CPU."""
    cpus = len(os.sched_getaffinity(0))
    app_cpu, other_cpu = ("0", "1") if cpus >= 2 and shutil.which("taskset") else ("", "")
    pinning = "both gunicorns on CPU 0; nginx, wrk, PostgreSQL and Redis on CPU 1"
    say(f"{cpus} CPUs: {pinning}" if app_cpu else "1 CPU (or no taskset), shared by every part")
    services = directory / "services"
    service_ports = {**os.environ, "TEST_PG_PORT": str(PG_PORT), "TEST_REDIS_PORT": str(REDIS_PORT)}
    test_services = str(ROOT / "scripts" / "test-services")
    run([*pinned(other_cpu), test_services, "start", str(services)], env=service_ports)
    processes: list[subprocess.Popen[bytes]] = []
    log = (directory / "servers.log").open("w")
    try:
        env = {
            **{name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG")},
            **dict(line.split("=", 1) for line in (services / "env").read_text().split()),
            **UNTHROTTLED,
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "localhost",
            "PASSWORD_RESET_URL": RESET_URL,
            "TRUSTED_PROXY_COUNT": "1",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "GUNICORN_WORKERS": WORKERS,
            "GUNICORN_THREADS": THREADS,
            "LOG_LEVEL": "WARNING",
        }
        run([str(PYTHON), "manage.py", "migrate", "--no-input"], cwd=BACKEND, env=env)
        conf = NGINX_CONF.format(dir=directory, backend=BACKEND_PORT, floor=FLOOR_PORT, https=NATIVE_HTTPS)
        (directory / "nginx.conf").write_text(conf)
        gunicorn = [*pinned(app_cpu), str(PYTHON), "-m", "gunicorn", "--config=config/gunicorn.py"]
        floor = [f"--pythonpath={ROOT}/scripts/bench", "floor:application"]
        nginx = ["nginx", "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"]
        for command in (
            [*gunicorn, f"--bind=127.0.0.1:{BACKEND_PORT}", "config.wsgi"],
            [*gunicorn, f"--bind=127.0.0.1:{FLOOR_PORT}", *floor],
            [*pinned(other_cpu), *nginx],
        ):
            processes.append(subprocess.Popen(command, cwd=BACKEND, env=env, stdout=log, stderr=log))
        origin = f"https://localhost:{NATIVE_HTTPS}"
        wait_until_up(f"{origin}/api/v1/health/live", f"{origin}/floor", log=Path(log.name))
        yield origin, origin, other_cpu
        pss = process_tree_pss_mib(processes[0].pid)
        print(f"backend memory after the load (PSS of gunicorn's master and workers): {pss:.0f} MiB")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=40)
        log.close()
        run([test_services, "stop", str(services)], env=service_ports)


def wait_until_up(*urls: str, log: Path) -> None:
    """Each url answers 200 within 2 minutes, or the benchmark stops with the servers' log."""
    deadline = time.monotonic() + 120
    with local_client(timeout=5) as client:
        for url in urls:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        break
                time.sleep(0.5)
            else:
                sys.exit(f"bench: {url} did not answer 200 within 2 minutes\n{log.read_text()[-3000:]}")


def process_tree_pss_mib(pid: int) -> float:
    """The memory of a process and its children (gunicorn's master and workers), as PSS: pages the
    workers share with the master (preload_app) are counted once, not once per process."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    total_kib = 0
    for each in [pid, *map(int, children.read_text().split() if children.exists() else [])]:
        with contextlib.suppress(OSError):
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
            total_kib += sum(int(kib) for kib in re.findall(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE))
    return total_kib / 1024


def compose(env_file: Path, *args: str) -> str:
    """compose.prod.yaml and the benchmark's overlay, through scripts/compose (which writes the secrets)."""
    overlay = ["--project-name=bench-prod", "--file=scripts/bench/compose.bench.yaml"]
    env = {**os.environ, "ENV_FILE": str(env_file)}
    return run(["scripts/compose", "prod", *overlay, *args], cwd=ROOT, env=env)


def container_memory_mib(env_file: Path) -> dict[str, float]:
    ids = compose(env_file, "ps", "--quiet").split()
    output = run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *ids])
    units = {"B": 1 / 1024**2, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}
    return {
        name: float(value) * units[unit]
        for name, value, unit in re.findall(r"^(\S+) ([\d.]+)([KMG]?i?B) ", output, re.MULTILINE)
    }


@contextlib.contextmanager
def prod_stack(directory: Path) -> Iterator[tuple[str, str, str]]:
    """compose.prod.yaml booted with an operator's .env of fresh secrets for localhost and ports on 127.0.0.1;
    yields the origins. Times the cold start of the built images and reads the idle memory."""
    say(f"{len(os.sched_getaffinity(0))} CPUs, shared by wrk and the containers within their CPU limits")
    (directory / "acme").mkdir()
    passwords = ("DB_PASSWORD", "DB_APP_PASSWORD", "REDIS_PASSWORD", "BACKUP_KEY")
    values = {
        "SERVER_NAME": "localhost",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PASSWORD_RESET_URL": RESET_URL,
        **{name: secrets.token_hex(16) for name in passwords},
        "TLS_CERT_FILE": f"{directory}/fullchain.pem",
        "TLS_KEY_FILE": f"{directory}/privkey.pem",
        "ACME_WEBROOT": f"{directory}/acme",
        "PUBLISH_ADDRESS": "127.0.0.1",
        "HTTPS_PORT": str(PROD_HTTPS),
        "HTTP_PORT": str(PROD_HTTP),
        # Apart from the stack tests' networks (172.16.230-252) and compose.prod.yaml's default (253).
        "EDGE_SUBNET": "172.16.254.0/24",
        "BENCH_HTTPS_PORT": str(PROD_BENCH_HTTPS),
        "GUNICORN_WORKERS": WORKERS,
        "GUNICORN_THREADS": THREADS,
        **UNTHROTTLED,
    }
    env_file = directory / "bench.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    compose(env_file, "down", "--volumes", "--remove-orphans")
    try:
        say("building the images and starting the stack once")
        compose(env_file, "up", "--detach", "--build", "--wait")
        compose(env_file, "down")
        started = time.monotonic()
        compose(env_file, "up", "--detach", "--wait")
        say(f"cold start of the built images (up --wait, volumes kept): {time.monotonic() - started:.1f} s")
        time.sleep(10)
        # The production services only: the floor app is the benchmark's.
        idle = {name: mib for name, mib in container_memory_mib(env_file).items() if "-floor-" not in name}
        listed = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in sorted(idle.items()))
        say(f"idle memory of the production services: {listed}; in all {sum(idle.values()):.0f} MiB")
        yield f"https://localhost:{PROD_HTTPS}", f"https://localhost:{PROD_BENCH_HTTPS}", ""
        backend = sum(mib for name, mib in container_memory_mib(env_file).items() if "-backend-" in name)
        print(f"backend container memory after the load: {backend:.0f} MiB")
    finally:
        compose(env_file, "down", "--volumes", "--remove-orphans")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", choices=("native", "prod"), default="native")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    server = ("nginx", "nginx-light") if args.stack == "native" else ("docker", "docker.io")
    for tool, package in (("wrk", "wrk"), server):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (Debian: apt-get install {package})")
    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        directory = Path(name)
        directory.chmod(0o711)  # PostgreSQL, run as its own user, keeps its data below
        run([str(ROOT / "nginx" / "local-cert"), name, "localhost"])
        with (prod_stack if args.stack == "prod" else native_stack)(directory) as (origin, bench_origin, cpu):
            report(measure(origin, bench_origin, args, cpu))


if __name__ == "__main__":
    main()
