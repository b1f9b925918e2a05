"""scripts/test-services on a shared machine: every local user reaches 127.0.0.1, so neither the
PostgreSQL superuser nor Redis may answer there without a password; the passwords it makes are in DIR/env
(mode 0600) and work."""

import glob
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from config.env import BACKEND_DIR
from testing import closed_port

SCRIPT = BACKEND_DIR.parent / "scripts" / "test-services"

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.skipif(
        not (shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        or not shutil.which("redis-server"),
        reason="needs the PostgreSQL server binaries and redis-server (make test-postgres)",
    ),
]


def run(action: str, directory: Path, ports: dict[str, str]) -> None:
    result = subprocess.run(  # noqa: S603 (the project's script)
        [str(SCRIPT), action, str(directory)],
        env={**os.environ, **ports},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[dict[str, str], Path]]:
    """A PostgreSQL and Redis of this module's own; the variables of DIR/env and DIR."""
    # As `make test-postgres SERVICES_DIR=$(mktemp -d)`: run as root, the script lets the postgres user
    # into DIR, not into the private directories above it (pytest's tmp_path).
    directory = Path(tempfile.mkdtemp())
    ports = {"TEST_PG_PORT": str(closed_port()), "TEST_REDIS_PORT": str(closed_port())}
    try:
        run("start", directory, ports)
        env_file = directory / "env"
        yield dict(line.split("=", 1) for line in env_file.read_text().split()), directory
    finally:
        run("stop", directory, ports)
        shutil.rmtree(directory)


def test_the_postgresql_superuser_needs_a_password_on_the_loopback(services):
    env, _ = services

    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(host="127.0.0.1", port=env["DB_PORT"], user="postgres", dbname="postgres").close()


def test_the_backend_role_logs_in_with_the_password_in_the_env_file_only(services):
    env, _ = services
    login = {"host": "127.0.0.1", "port": env["DB_PORT"], "user": "backend", "dbname": "backend"}

    with psycopg.connect(**login, password=env["DB_PASSWORD"]) as connection:
        [(user,)] = connection.execute("SELECT current_user")
    assert user == "backend"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**login, password="backend").close()


def test_redis_needs_the_password_in_the_env_file(services):
    env, _ = services
    url = env["REDIS_URL"]
    anonymous = redis.Redis(host="127.0.0.1", port=int(url.rsplit(":", 1)[1].split("/")[0]))

    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert redis.Redis.from_url(url).ping() is True


def test_the_env_file_is_the_owners_alone(services):
    _, directory = services

    assert stat.S_IMODE((directory / "env").stat().st_mode) == 0o600
