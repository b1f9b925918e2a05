"""The Swarm stack's certificate from a real ACME server (Pebble, tests/stack/acme.py), as on each edge node:
certbot's webroot mode into ACME_WEBROOT and scripts/install-certificate as the deploy hook, which finds
the stack's nginx task on this node (audit N-8: it used to look for the compose.prod.yaml stack only, so a
renewal was never installed). Issued and then renewed (`certbot renew`, unattended) while 16 clients call
the API, with no failed request. The stack's own certificate is put back afterwards."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from .acme import (
    Acme,
    assert_issued_under_load,
    assert_renewed_under_load,
    assert_the_expiry_is_logged,
    pebble_for,
)
from .stacks import SwarmStack

pytestmark = pytest.mark.usefixtures("swarm_stack")


def hook_env(stack: SwarmStack) -> dict[str, str]:
    """What install-certificate needs to find the stack: its .env, which names it (SWARM_STACK)."""
    assert stack.env_file is not None
    return {"ENV_FILE": str(stack.env_file)}


@pytest.fixture(scope="module")
def acme(swarm_stack: SwarmStack, workdir: Path) -> Iterator[Acme]:
    with pebble_for(swarm_stack, workdir / "swarm", hook_env(swarm_stack)) as server:
        yield server


def test_certbot_gets_a_certificate_from_pebble_its_hook_installs_it_on_the_nodes_nginx(swarm_stack, acme):
    nginx = swarm_stack.wait_for("nginx", 1)
    what = "Swarm certificate issuance (certbot, Pebble)"
    served = assert_issued_under_load(swarm_stack, acme, hook_env(swarm_stack), what)
    # Reloaded, not replaced: the same task serves it.
    assert swarm_stack.wait_for("nginx", 1) == nginx
    assert_the_expiry_is_logged(swarm_stack, served, "WARNING")


def test_certbot_renew_renews_it_on_the_nodes_nginx_with_no_failed_request(swarm_stack, acme):
    assert_renewed_under_load(swarm_stack, acme, "Swarm certificate renewal (certbot renew, Pebble)")
