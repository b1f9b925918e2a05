"""`make fault-test`: the production stack (compose.prod.yaml) on its own project name and ports, booted once
for test_faults.py and removed with its volumes whatever happens; the figures it measured are printed
at the end of the run."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack.stacks import FIGURES, PORT_OFFSET, REPO, SLOT, SUFFIX, Stack, prod_env_file

PROJECT = f"faulttest-prod{SUFFIX}"
PORTS = {"HTTPS_PORT": str(30443 + PORT_OFFSET), "HTTP_PORT": str(30080 + PORT_OFFSET)}
# Apart from the stack test's prod network (172.16.252-N), so both can run on one machine.
EDGE_SUBNET = f"172.16.{240 - SLOT}.0/24"
# The load comes from one address: the general and auth rates must not be what refuses it. The login
# failure limits keep their defaults, since the test checks that they hold while Redis is down.
RAISED = {
    "THROTTLE_ANON": "100000/m",
    "THROTTLE_USER": "100000/m",
    "THROTTLE_AUTH": "100000/m",
    "EDGE_SUBNET": EDGE_SUBNET,
    **PORTS,
}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("fault test figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory: Path = tmp_path_factory.mktemp("faults")
    env_file = prod_env_file(directory)
    lines = [line for line in env_file.read_text().splitlines() if line.split("=", 1)[0] not in RAISED]
    env_file.write_text("".join(f"{line}\n" for line in lines + [f"{k}={v}" for k, v in RAISED.items()]))
    stack = Stack.production(PROJECT, REPO, env_file, PORTS, ["compose.prod.yaml"])
    stack.down()
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
