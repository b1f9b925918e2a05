"""The compose stacks as the stack tests drive them: a Stack (project name, files, environment, ports) with
its docker compose commands and HTTPS clients, plus the helpers that run docker and prepare a checkout
and a production .env. conftest.py boots one Stack per compose file."""

import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

REPO = Path(__file__).resolve().parents[2]

# Own project names and ports, so a stack someone left running is never touched. STACK_TEST_SLOT (0-9,
# default 0) moves both by a slot, so two checkouts can run their stack tests on one machine at once.
SLOT = int(os.environ.get("STACK_TEST_SLOT", "0"))
SUFFIX = f"-{SLOT}" if SLOT else ""
PORT_OFFSET = 100 * SLOT
DEV_PROJECT = f"stacktest-dev{SUFFIX}"
PROD_PROJECT = f"stacktest-prod{SUFFIX}"
DEV_PORTS = {
    "HTTPS_PORT": str(28443 + PORT_OFFSET),
    "HTTP_PORT": str(28080 + PORT_OFFSET),
    "MAIL_UI_PORT": str(28108 + PORT_OFFSET),
}
PROD_PORTS = {"HTTPS_PORT": str(29443 + PORT_OFFSET), "HTTP_PORT": str(29080 + PORT_OFFSET)}
# The prod stack's nginx/backend network: not the default one, so a deployed stack can run beside.
PROD_EDGE_SUBNET = f"172.16.{252 - SLOT}.0/24"
# The Swarm stack (compose.swarm.yaml, test_swarm.py): its name, host ports and edge overlay network.
SWARM_STACK = f"stacktest-swarm{SUFFIX}"
SWARM_PORTS = {"HTTPS_PORT": str(27443 + PORT_OFFSET), "HTTP_PORT": str(27080 + PORT_OFFSET)}
SWARM_EDGE_SUBNET = f"172.16.{239 - SLOT}.0/24"
# The browser tests' single-page app: served by the test on a second origin of the prod stack's site,
# and by Vite, as the README tells frontend developers, in front of the dev stack.
PROD_SPA_PORT = 29444 + PORT_OFFSET
# The production layout, SPA and API on two hosts of one domain; the browser maps both to 127.0.0.1.
SPA_HOST = "app.example.com"
API_HOST = "api.example.com"
DEV_SERVER_PORT = 28173 + PORT_OFFSET
# The dev stack's default origins plus the test's dev server: the variable replaces the defaults.
DEV_CORS_ALLOWED_ORIGINS = f"http://localhost:3000,http://localhost:5173,http://localhost:{DEV_SERVER_PORT}"
# Screenshots of the browser tests, emptied at the start of a run.
ARTIFACTS = REPO / "artifacts" / "browser"

# What each phase took, and what the tests measured, printed at the end of the run.
TIMINGS: list[tuple[str, float]] = []
# Figures the tests measured (slow clients, fault windows, fuzzing counts), printed at the end of the run.
FIGURES: list[str] = []


@contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        TIMINGS.append((name, time.monotonic() - started))


def run(
    args: list[str], *, cwd: Path, env: dict[str, str], check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited with {result.returncode}\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def docker_inspect(name: str) -> dict[str, Any]:
    """`docker inspect` of one container or network."""
    output = run(["docker", "inspect", name], cwd=REPO, env=clean_environment({})).stdout
    return json.loads(output)[0]


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without anything the stacks read, plus `extra`: a variable set in the
    shell that runs the tests must not change what is tested."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "DOCKER_HOST", "DOCKER_CONFIG", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(extra)
    return env


@dataclass
class Stack:
    project: str
    directory: Path
    # With an env file, compose.prod.yaml, which scripts/compose prod names itself.
    compose_files: list[str]
    env: dict[str, str]
    https_port: int
    http_port: int
    # The local CA that signed nginx's certificate (nginx/local-cert), which the clients trust, and the
    # certificate itself.
    ca_file: Path | None = None
    certificate: Path | None = None
    # compose.prod.yaml's variables; compose.yaml needs none.
    env_file: Path | None = None
    # The dev stack's mail catcher (MailDev): its web UI and REST API.
    mail_ui_port: int | None = None
    # Production settings name the session cookie __Host-sessionid; the CSRF cookie is the API
    # contract's csrftoken everywhere (api.CSRF_COOKIE).
    session_cookie: str = "sessionid"

    @classmethod
    def production(
        cls, project: str, checkout: Path, env_file: Path, ports: dict[str, str], compose_files: list[str]
    ) -> Self:
        """A stack of compose.prod.yaml with the .env, ports and certificate that prod_env_file wrote
        beside `env_file`."""
        return cls(
            project=project,
            directory=checkout,
            compose_files=compose_files,
            env=clean_environment({}),
            https_port=int(ports["HTTPS_PORT"]),
            http_port=int(ports["HTTP_PORT"]),
            ca_file=env_file.parent / "certs" / "ca.pem",
            certificate=env_file.parent / "certs" / "fullchain.pem",
            env_file=env_file,
            session_cookie="__Host-sessionid",
        )

    def env_values(self) -> dict[str, str]:
        """The env file's variables (compose.prod.yaml's stacks)."""
        assert self.env_file is not None
        lines = self.env_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def compose(
        self, *args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """docker compose for this stack; `env` adds variables, which win over the .env file's. A stack with
        an env file (compose.prod.yaml) goes through scripts/compose, which writes its secret files."""
        env = {**self.env, **(env or {})}
        if self.env_file is None:
            command = ["docker", "compose", "--project-name", self.project]
            for file in self.compose_files:
                command += ["--file", file]
        else:
            # compose.prod.yaml with the env file, as the Makefile's targets run it.
            command = ["scripts/compose", "prod", "--project-name", self.project]
            env = {**env, "ENV_FILE": str(self.env_file)}
        return run(
            [*command, *args],
            cwd=self.directory,
            env=env,
            check=check,
            timeout=timeout,
        )

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.https_port}"

    def tls_context(self) -> ssl.SSLContext:
        assert self.ca_file is not None, "the stack's CA is not known yet"
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, *, http2: bool = True, **kwargs: Any) -> httpx.Client:
        """An HTTPS client for https://localhost:<port> that trusts the stack's local CA (and nothing
        else), keeps cookies like a browser, and connects over IPv4 loopback only."""
        return httpx.Client(
            base_url=self.origin,
            transport=httpx.HTTPTransport(verify=self.tls_context(), local_address="127.0.0.1", http2=http2),
            timeout=15,
            **kwargs,
        )

    def plain_http_client(self) -> httpx.Client:
        """A client for the plain-HTTP port (http://127.0.0.1:<port>), sending Host: localhost."""
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.http_port}",
            transport=httpx.HTTPTransport(local_address="127.0.0.1"),
            headers={"Host": "localhost"},
            timeout=15,
        )

    def up(self) -> None:
        self.compose("up", "--detach", "--build", "--wait", "--wait-timeout", "300", timeout=900)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", check=False)

    def logs(self, *services: str) -> list[dict[str, Any]]:
        """Every JSON log line of the services (other lines are skipped)."""
        return json_lines(self.compose("logs", "--no-color", "--no-log-prefix", *services).stdout)

    def containers(self, *, all_states: bool = False) -> dict[str, dict[str, Any]]:
        """`docker compose ps` of each service: its ID, State, Health, ..."""
        args = ["ps", "--format", "json"] + (["--all"] if all_states else [])
        output = self.compose(*args).stdout
        entries = [json.loads(line) for line in output.splitlines() if line.strip()]
        return {entry["Service"]: entry for entry in entries}

    def container_ids(self, *, all_states: bool = False) -> dict[str, str]:
        return {service: entry["ID"] for service, entry in self.containers(all_states=all_states).items()}

    def exec(
        self, service: str, *command: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`docker compose exec` of a command, with extra environment variables for it."""
        options = [f"--env={name}={value}" for name, value in (env or {}).items()]
        return self.compose("exec", "--no-TTY", *options, service, *command, check=check)

    def make(
        self, *args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A Makefile target run in the stack's directory, pointed at this stack as STACK=prod would be
        (the dev stack's targets need no .env); `env` adds variables, which win over the .env file's."""
        env = {**self.env, "COMPOSE_PROJECT_NAME": self.project, **(env or {})}
        if self.env_file is not None:
            env.update(STACK="prod", ENV_FILE=str(self.env_file))
        return run(
            ["make", "--no-print-directory", *args], cwd=self.directory, env=env, check=check, timeout=timeout
        )

    def sql(self, query: str) -> list[str]:
        """The rows of a query in the stack's database, one string per row (columns joined by |)."""
        output = self.exec(
            "db",
            "sh",
            "-c",
            'psql --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --tuples-only --no-align '
            '--command "$1"',
            "sql",
            query,
        ).stdout
        return output.splitlines()

    def process_uids(self, service: str) -> set[str]:
        """The real uids of every process in the service's container, not only of the first one (a
        process that ends while they are read is left out)."""
        read_each = "for f in /proc/[0-9]*/status; do cat $f 2>/dev/null; done; true"
        status = self.exec(service, "sh", "-c", read_each).stdout
        uids = {line.split()[1] for line in status.splitlines() if line.startswith("Uid:")}
        assert uids, service
        return uids


def developer_home() -> Path:
    """An empty HOME that an unprivileged user (nobody, when the tests run as root) can write to: where
    `make trust-ca INSTALL=1` is run as a developer, never as root on this machine."""
    home = Path(tempfile.mkdtemp(prefix="developer-home-"))
    if os.getuid() == 0:
        shutil.chown(home, "nobody", "nogroup")
    return home


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON lines of a log (other lines are skipped)."""
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def clean_checkout(target: Path) -> Path:
    """The repository's files as a fresh clone has them (tracked and not ignored), without .env."""
    listed = run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        env=clean_environment({}),
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if not source.is_file() or name == ".env":
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    assert not (target / ".env").exists()
    return target


def git_checkout(target: Path) -> Path:
    """clean_checkout() as the first commit of a repository of its own, for the tests to commit to (a
    deploy tags its image with the commit)."""
    clean_checkout(target)
    for command in (
        ["git", "init", "--quiet"],
        ["git", "add", "--all"],
        ["git", "commit", "--quiet", "-m", "checkout"],
    ):
        run(command, cwd=target, env=git_environment())
    return target


def git_environment() -> dict[str, str]:
    return clean_environment(
        {
            "GIT_AUTHOR_NAME": "Stack test",
            "GIT_AUTHOR_EMAIL": "stack-test@example.com",
            "GIT_COMMITTER_NAME": "Stack test",
            "GIT_COMMITTER_EMAIL": "stack-test@example.com",
        }
    )


# ---------------------------------------------------------------- changes the update tests deploy


def commit(stack: Stack, message: str, change: Callable[[Path], None]) -> str:
    """A commit of `change` to the stack's checkout; its short hash."""
    change(stack.directory)
    run(["git", "add", "--all"], cwd=stack.directory, env=git_environment())
    run(["git", "commit", "--quiet", "-m", message], cwd=stack.directory, env=git_environment())
    return run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=stack.directory, env=git_environment()
    ).stdout.strip()


@contextmanager
def committed(stack: Stack, message: str, change: Callable[[Path], None]) -> Iterator[str]:
    """A commit that is taken back afterwards."""
    sha = commit(stack, message, change)
    try:
        yield sha
    finally:
        run(["git", "reset", "--quiet", "--hard", "HEAD~1"], cwd=stack.directory, env=git_environment())


def make_app(checkout: Path, name: str = "notes", model: str = "Note") -> None:
    """`make app NAME=notes MODEL=Note` and its migration in a checkout, as a developer adds a resource,
    with this repository's virtualenv (a checkout of the stack tests has none)."""
    venv = REPO / "backend" / ".venv"
    env = clean_environment({})
    run(
        ["make", "--no-print-directory", "app", f"NAME={name}", f"MODEL={model}", f"VENV={venv}"],
        cwd=checkout,
        env=env,
    )
    run(
        [str(venv / "bin" / "python"), "manage.py", "makemigrations", name], cwd=checkout / "backend", env=env
    )


def set_site_header(header: str) -> Callable[[Path], None]:
    """A change of the backend's code that shows over HTTPS: the admin's site header."""

    def change(checkout: Path) -> None:
        urls = checkout / "backend" / "config" / "urls.py"
        urls.write_text(
            urls.read_text() + "\nfrom django.contrib import admin as stack_test_admin  # noqa: E402\n"
            f"stack_test_admin.site.site_header = {header!r}\n"
        )

    return change


def site_header(stack: Stack) -> str:
    with stack.client() as client:
        page = client.get("/admin/login/")
    assert page.status_code == 200
    [header] = re.findall(r'<div id="site-name"><a href="/admin/">([^<]*)</a>', page.text)
    return header


def prod_env_file(directory: Path, **overrides: str) -> Path:
    """A production .env as an operator writes it, with a certificate from `make certs` (a local CA) and
    loopback ports; `overrides` replace or add values (the Swarm stack's ports, say)."""
    certs = directory / "certs"
    run(
        [
            "make",
            "--no-print-directory",
            "certs",
            f"CERTS_DIR={certs}",
            f"CERT_NAMES=localhost {API_HOST} {SPA_HOST}",
        ],
        cwd=REPO,
        env=clean_environment({}),
    )
    acme = directory / "acme"
    acme.mkdir()
    values = {
        "SERVER_NAME": "localhost",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DB_PASSWORD": secrets.token_hex(16),
        "DB_APP_PASSWORD": secrets.token_hex(16),
        "REDIS_PASSWORD": secrets.token_hex(16),
        "BACKUP_KEY": secrets.token_hex(32),
        "TLS_CERT_FILE": str(certs / "fullchain.pem"),
        "TLS_KEY_FILE": str(certs / "privkey.pem"),
        "ACME_WEBROOT": str(acme),
        "PUBLISH_ADDRESS": "127.0.0.1",
        "EDGE_SUBNET": PROD_EDGE_SUBNET,
        # SERVER_NAME stays localhost for the other tests; the browser's production layout reaches the
        # same stack as api.example.com, so both names are allowed (a deployment sets SERVER_NAME only).
        "ALLOWED_HOSTS": f"localhost,{API_HOST}",
        "CORS_ALLOWED_ORIGINS": f"https://localhost:{PROD_SPA_PORT},https://{SPA_HOST}:{PROD_SPA_PORT}",
        # Required in production (check core.E009): the test SPA's reset page.
        "PASSWORD_RESET_URL": f"https://{SPA_HOST}:{PROD_SPA_PORT}/reset-password?uid={{uid}}&token={{token}}",
        # A large JSON response for anonymous clients, to see nginx compress it.
        "API_DOCS": "public",
        # The tests sign up and log in more often than a person would, test_prod_deploy.py's clients all
        # come from one address (Docker's userland proxy) many times a second, and the fuzzing
        # (test_fuzz.py) sends some 1,500 requests in two minutes, logged in and not.
        "THROTTLE_AUTH": "100000/m",
        "THROTTLE_ANON": "100000/m",
        "THROTTLE_USER": "100000/m",
        "GUNICORN_WORKERS": "2",
        **PROD_PORTS,
        **overrides,
    }
    env_file = directory / "prod.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return env_file


@dataclass
class SwarmStack(Stack):
    """The Swarm stack (compose.swarm.yaml), deployed by `make swarm-deploy`: `project` is the stack's
    name, its services are <stack>_<service>, and the HTTPS clients are Stack's."""

    # What `make swarm-deploy` printed when the fixture deployed it.
    deploy_output: str = ""

    def service(self, name: str) -> str:
        return f"{self.project}_{name}"

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run(["docker", *args], cwd=self.directory, env=self.env, check=check, timeout=timeout)

    def tasks(self, service: str) -> list[dict[str, Any]]:
        """`docker inspect` of the service's tasks that should run."""
        ids = self.docker(
            "service",
            "ps",
            "--quiet",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            self.service(service),
        ).stdout.split()
        return json.loads(self.docker("inspect", *ids).stdout) if ids else []

    def running_containers(self, service: str) -> dict[str, str]:
        """The short container id (a container's host name) of each running task, by task id."""
        return {
            task["ID"]: task["Status"]["ContainerStatus"]["ContainerID"][:12]
            for task in self.tasks(service)
            if task["Status"]["State"] == "running"
        }

    def container(self, service: str) -> str:
        """The id of a running container of the service."""
        return next(iter(self.running_containers(service).values()))

    def logs(self, *services: str, since: str | None = None) -> list[dict[str, Any]]:
        """Every JSON log line of the services' running containers (other lines are skipped). Read with
        `docker logs`: `docker service logs` can hang on a task whose container was killed."""
        lines = []
        for service in services:
            for container in self.running_containers(service).values():
                args = ["logs"] + (["--since", since] if since else [])
                lines += json_lines(self.docker(*args, container).stdout)
        return lines

    def exec(
        self, service: str, *command: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`docker exec` of a command in a running container of the service (what Stack.sql and the
        other helpers run their commands with)."""
        options = [f"--env={name}={value}" for name, value in (env or {}).items()]
        return self.docker("exec", *options, self.container(service), *command, check=check)

    def wait_for(self, service: str, replicas: int, timeout: float = 180) -> dict[str, str]:
        """Waits until exactly `replicas` tasks run, healthy; their container ids by task id."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.tasks(service)
            running = self.running_containers(service)
            if len(tasks) == len(running) == replicas:
                return running
            assert time.monotonic() < deadline, f"{service}: {len(running)} of {replicas} tasks run"
            time.sleep(1)

    def remove(self) -> None:
        """`docker stack rm`, then, once its containers stopped, what it leaves (the migrate job's exited
        containers, the volumes) or could not remove while they ran (networks, secrets)."""
        self.docker("stack", "rm", self.project, check=False)
        label = f"label=com.docker.stack.namespace={self.project}"
        deadline = time.monotonic() + 90
        while self.docker("ps", "--quiet", "--filter", label).stdout.split():
            if time.monotonic() > deadline:
                break  # what is left, `docker swarm leave` removes, or the next run's first remove()
            time.sleep(1)
        for kind in ("container", "network", "secret", "volume"):
            all_states = ["--all"] if kind == "container" else []
            leftovers = self.docker(kind, "ls", *all_states, "--quiet", "--filter", label).stdout.split()
            if leftovers:
                self.docker(kind, "rm", *leftovers, check=False)
