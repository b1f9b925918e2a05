"""Measure what a password hash and a whole login cost with the project's Argon2 parameters.

Usage: backend/.venv/bin/python scripts/bench/argon2_cost.py [ROUNDS]   (or: make bench-argon2)

Prints, for the project's hasher and for Django's default Argon2 parameters: the median and p90
milliseconds to hash and to verify, and the memory each hash holds; then the median milliseconds of
a whole POST /api/v1/auth/login through Django (SQLite in memory, local-memory cache).
"""

import logging
import os
import statistics
import sys
import time
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2] / "backend"
sys.path.insert(0, str(BACKEND))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"

import django

django.setup()
logging.disable(logging.INFO)  # no access line per measured request

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test.utils import override_settings, setup_test_environment

from accounts.hashers import Argon2idPasswordHasher

PASSWORD = "correct horse battery staple"


def timed(fn, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    p90 = statistics.quantiles(samples, n=10)[-1]
    return f"median {statistics.median(samples):6.1f} ms   p90 {p90:6.1f} ms"


def bench_hasher(name: str, hasher: Argon2PasswordHasher, rounds: int) -> None:
    encoded = hasher.encode(PASSWORD, hasher.salt())
    print(f"{name}: m={hasher.memory_cost // 1024} MiB, t={hasher.time_cost}, p={hasher.parallelism}")
    print(f"  hash    {summary(timed(lambda: hasher.encode(PASSWORD, hasher.salt()), rounds))}")
    print(f"  verify  {summary(timed(lambda: hasher.verify(PASSWORD, encoded), rounds))}")


def bench_login(rounds: int) -> None:
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases
    from rest_framework.test import APIClient

    from accounts.models import User

    setup_test_environment()
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        with override_settings(
            PASSWORD_HASHERS=["accounts.hashers.Argon2idPasswordHasher"],
            REST_FRAMEWORK={
                **settings.REST_FRAMEWORK,
                "DEFAULT_THROTTLE_RATES": {
                    **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                    "auth": "100000/m",
                    "login_failures": "100000/m",
                },
            },
        ):
            User.objects.create_user("bench@example.com", PASSWORD)
            client = APIClient()

            def login() -> None:
                response = client.post(
                    "/api/v1/auth/login", {"email": "bench@example.com", "password": PASSWORD}
                )
                assert response.status_code == 200, response.content

            login()
            print(f"POST /api/v1/auth/login ({connection.vendor}, whole request)")
            print(f"  login   {summary(timed(login, rounds))}")
    finally:
        teardown_databases(old_config, verbosity=0)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(f"{rounds} rounds each, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    bench_hasher("project (accounts.hashers.Argon2idPasswordHasher)", Argon2idPasswordHasher(), rounds)
    bench_hasher("Django default (Argon2PasswordHasher)", Argon2PasswordHasher(), rounds)
    print()
    bench_login(rounds)


if __name__ == "__main__":
    main()
