"""The production stack (compose.prod.yaml) as the benchmarks boot it: an .env of production values
for 127.0.0.1 with a certificate from nginx/local-cert, and `docker compose` under the benchmark's
own project name. Used by hot_path.py (`make bench STACK=prod`), gunicorn_sizing.py and
log_volume.py."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env_values(directory: Path, *, https_port: int, http_port: int, edge_subnet: str) -> dict[str, str]:
    """What an operator's .env holds (fresh secrets), with a certificate for localhost made in
    `directory` by the local CA (its ca.pem is there too) and ports published on 127.0.0.1 only."""
    subprocess.run([ROOT / "nginx" / "local-cert", directory, "localhost"], check=True, capture_output=True)
    (directory / "acme").mkdir(exist_ok=True)
    return {
        "SERVER_NAME": "localhost",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DB_PASSWORD": secrets.token_hex(16),
        "DB_APP_PASSWORD": secrets.token_hex(16),
        "REDIS_PASSWORD": secrets.token_hex(16),
        "TLS_CERT_FILE": f"{directory}/fullchain.pem",
        "TLS_KEY_FILE": f"{directory}/privkey.pem",
        "ACME_WEBROOT": f"{directory}/acme",
        "PUBLISH_ADDRESS": "127.0.0.1",
        "HTTPS_PORT": str(https_port),
        "HTTP_PORT": str(http_port),
        "EDGE_SUBNET": edge_subnet,
    }


def write_env(directory: Path, values: dict[str, str]) -> Path:
    """`values` as directory/bench.env."""
    env_file = directory / "bench.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return env_file


def compose(project: str, env_file: Path, *args: str, files: tuple[str, ...] = ("compose.prod.yaml",)) -> str:
    """`docker compose` of the stack, its output; a failure stops the benchmark with compose's message."""
    command = ["docker", "compose", "--project-name", project]
    for file in files:
        command += ["--file", file]
    # compose.prod.yaml hands the same file to the backend (env_file: ${ENV_FILE}).
    result = subprocess.run(
        [*command, "--env-file", str(env_file), *args],
        cwd=ROOT,
        env={**os.environ, "ENV_FILE": str(env_file)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"bench: docker compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
