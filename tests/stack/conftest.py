"""Fixtures that boot the real compose stacks (compose.yaml and compose.prod.yaml) on their own project
names and 127.0.0.1 ports, and tear them down with their volumes whatever happens.

Run by scripts/stack-test (`make stack-test`), which first makes sure a Docker engine and the images
are there. What each module checks, and the names and ports used: docs/operations.md, "The stack test".
"""

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from .stacks import (
    ARTIFACTS,
    DEV_CORS_ALLOWED_ORIGINS,
    DEV_PORTS,
    DEV_PROJECT,
    FIGURES,
    PROD_PORTS,
    PROD_PROJECT,
    REPO,
    SWARM_EDGE_SUBNET,
    SWARM_PORTS,
    SWARM_STACK,
    TIMINGS,
    Stack,
    SwarmStack,
    clean_checkout,
    clean_environment,
    git_checkout,
    phase,
    prod_env_file,
    run,
)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        TIMINGS.append((report.nodeid.split("::")[-1], report.duration))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.section("stack test phases")
    for name, seconds in TIMINGS:
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
    terminalreporter.write_line(f"{sum(seconds for _, seconds in TIMINGS):7.1f} s  in all")
    if FIGURES:
        terminalreporter.section("stack test figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
    screenshots = sorted(ARTIFACTS.glob("*.png"))
    if screenshots:
        terminalreporter.section("browser screenshots")
        for path in screenshots:
            terminalreporter.write_line(str(path.relative_to(REPO)))


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="stack-test-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# Each stack is booted once per run and shared by the stack tests and the browser tests that follow
# them (pytest runs the files in name order): test_dev.py, test_prod.py, test_spa_dev.py,
# test_spa_prod.py. Booting a stack costs 20-40 s; the tests leave it running and healthy.


# ---------------------------------------------------------------- dev: compose.yaml from a clean checkout


@pytest.fixture(scope="session")
def dev_stack(workdir: Path) -> Iterator[Stack]:
    checkout = clean_checkout(workdir / "checkout")
    stack = Stack(
        project=DEV_PROJECT,
        directory=checkout,
        compose_files=["compose.yaml"],
        # The dev server's origin is trusted for unsafe requests, as the README says to do for a port
        # other than 5173 or 3000.
        env=clean_environment({**DEV_PORTS, "CORS_ALLOWED_ORIGINS": DEV_CORS_ALLOWED_ORIGINS}),
        https_port=int(DEV_PORTS["HTTPS_PORT"]),
        http_port=int(DEV_PORTS["HTTP_PORT"]),
        mail_ui_port=int(DEV_PORTS["MAIL_UI_PORT"]),
    )
    with phase("dev: remove leftovers"):
        stack.down()
    try:
        with phase("dev: build and start (docker compose up)"):
            stack.up()
        # The local CA nginx made on this first start, which the clients trust, and the certificate it
        # signed.
        stack.ca_file = workdir / "dev-ca.pem"
        stack.ca_file.write_text(stack.exec("nginx", "cat", "/etc/nginx/certs/ca.pem").stdout)
        stack.certificate = workdir / "dev-certificate.pem"
        stack.certificate.write_text(stack.exec("nginx", "cat", "/etc/nginx/certs/fullchain.pem").stdout)
        yield stack
    finally:
        with phase("dev: down --volumes"):
            stack.down()


# ---------------------------------------------------------------- prod: compose.prod.yaml with a test env


@pytest.fixture(scope="session")
def prod_stack(workdir: Path) -> Iterator[Stack]:
    """From a git repository of its own holding the checkout, as on a production host, so that
    test_prod_deploy.py can commit a change and deploy it."""
    directory = workdir / "prod"
    directory.mkdir()
    env_file = prod_env_file(directory)
    checkout = git_checkout(directory / "checkout")
    stack = Stack.production(PROD_PROJECT, checkout, env_file, PROD_PORTS, ["compose.prod.yaml"])
    with phase("prod: remove leftovers"):
        stack.down()
    try:
        with phase("prod: build and start (docker compose up)"):
            stack.up()
        yield stack
    finally:
        with phase("prod: down --volumes"):
            stack.down()


# ---------------------------------------------------------------- Swarm: compose.swarm.yaml, one node


# A node label the fixture puts on the swarm it makes, so that a later run knows a swarm left behind by
# a run that was killed for its own, and leaves it.
MADE_BY_THE_STACK_TEST = "stack-test-made-this-swarm"


def swarm_node() -> tuple[str, str, dict[str, str]]:
    """This engine's swarm state, node id and node labels."""
    env = clean_environment({})
    info = ["docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}"]
    state, _, node = run(info, cwd=REPO, env=env).stdout.strip().partition(" ")
    labels: dict[str, str] = {}
    if state == "active":
        output = run(
            ["docker", "node", "inspect", "--format", "{{json .Spec.Labels}}", node], cwd=REPO, env=env
        )
        labels = json.loads(output.stdout) or {}
    return state, node, labels


@pytest.fixture(scope="session")
def swarm_stack(workdir: Path) -> Iterator[SwarmStack]:
    """`make swarm-deploy` from a git repository of its own holding the checkout, on this engine made a
    one-node swarm (`docker swarm init --advertise-addr 127.0.0.1`) unless it is one already; the stack,
    its volumes, secrets and images are removed afterwards, and the swarm is left again if this made
    it, also when a check fails."""
    env = clean_environment({})
    directory = workdir / "swarm"
    directory.mkdir()
    env_file = prod_env_file(directory, **SWARM_PORTS, EDGE_SUBNET=SWARM_EDGE_SUBNET, SWARM_STACK=SWARM_STACK)
    checkout = git_checkout(directory / "checkout")
    stack = SwarmStack.production(SWARM_STACK, checkout, env_file, SWARM_PORTS, [])
    state, node, labels = swarm_node()
    made_here = state != "active" or MADE_BY_THE_STACK_TEST in labels
    try:
        with phase("swarm: docker swarm init, remove leftovers"):
            if state != "active":
                run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], cwd=REPO, env=env)
                _, node, labels = swarm_node()
                stack.docker("node", "update", "--label-add", f"{MADE_BY_THE_STACK_TEST}=true", node)
            stack.remove()
        with phase("swarm: make swarm-deploy"):
            deployed = stack.make("swarm-deploy", check=False, timeout=900)
            assert deployed.returncode == 0, deployed.stdout[-4000:] + deployed.stderr[-4000:]
        stack.deploy_output = deployed.stdout
        yield stack
    finally:
        with phase("swarm: docker stack rm, docker swarm leave"):
            stack.remove()
            images = stack.docker(
                "image",
                "ls",
                "--format",
                "{{.Repository}}:{{.Tag}}",
                "--filter",
                f"reference={SWARM_STACK}-*",
            ).stdout.split()
            if images:
                stack.docker("image", "rm", *images, check=False)
            if made_here:
                stack.docker("swarm", "leave", "--force", check=False)
            else:
                # Only the labels scripts/swarm put on a swarm that was there before.
                for label in ("data", "edge"):
                    if label not in labels:
                        stack.docker("node", "update", "--label-rm", label, node, check=False)


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A new browser context per test, with its own cookies and storage, in the module's `browser`.
    An uncaught exception or unhandled rejection in any of its pages fails the test."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    script_errors: list[str] = []
    context.on(
        "weberror", lambda error: script_errors.append(f"{error.page and error.page.url}: {error.error}")
    )
    yield context
    context.close()
    assert script_errors == []
