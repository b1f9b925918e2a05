"""The Swarm stack's certificate from a real ACME server (Pebble, tests/stack/acme.py), as on each edge node:
certbot's webroot mode into ACME_WEBROOT and scripts/install-certificate as the deploy hook, which finds
the stack's nginx task on this node (audit N-8: it used to look for the compose.prod.yaml stack only, so a
renewal was never installed). Issued and then renewed (`certbot renew`, unattended) while 16 clients call
the API, with no failed request. The stack's own certificate is put back afterwards."""

import datetime
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .acme import (
    PEBBLE_ISSUER,
    Acme,
    expiry_lines,
    issuer_name,
    pebble,
    reload_times,
    served_certificate,
    trusting,
)
from .load import assert_served_everything, under_load
from .stacks import SwarmStack, run

pytestmark = pytest.mark.usefixtures("swarm_stack")


def hook_env(stack: SwarmStack) -> dict[str, str]:
    """What install-certificate needs to find the stack: its .env, which names it (SWARM_STACK)."""
    assert stack.env_file is not None
    return {"ENV_FILE": str(stack.env_file)}


@pytest.fixture(scope="module")
def acme(swarm_stack: SwarmStack, workdir: Path) -> Iterator[Acme]:
    """Pebble for the Swarm stack; the stack's certificate from its local CA is installed again afterwards."""
    original = workdir / "swarm" / "original-certificate"
    original.mkdir()
    env_values = swarm_stack.env_values()
    shutil.copyfile(env_values["TLS_CERT_FILE"], original / "fullchain.pem")
    shutil.copyfile(env_values["TLS_KEY_FILE"], original / "privkey.pem")
    try:
        with pebble(workdir / "swarm", swarm_stack.http_port) as server:
            yield server
    finally:
        installed = run(
            ["scripts/install-certificate", str(original)],
            cwd=swarm_stack.directory,
            env={**swarm_stack.env, **hook_env(swarm_stack)},
            check=False,
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr


def assert_nginx_warns_of_the_expiry(stack: SwarmStack, certificate) -> None:
    [line, *_] = reversed(expiry_lines(stack.logs("nginx")))
    assert line["level"] == "WARNING", line
    assert line["not_after"] == certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), line
    days_left = (certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)).days
    assert line["days_left"] in {days_left, days_left + 1}, line


def test_certbot_gets_a_certificate_from_pebble_its_hook_installs_it_on_the_nodes_nginx(swarm_stack, acme):
    nginx = swarm_stack.wait_for("nginx", 1)
    context = trusting(swarm_stack, acme.root())
    with under_load(swarm_stack, context) as (load, window):
        issued = acme.issue(swarm_stack, hook_env(swarm_stack))

    assert issued.returncode == 0, issued.stdout[-3000:] + issued.stderr[-3000:]
    assert_served_everything(
        swarm_stack, load, window, "Swarm certificate issuance (certbot, Pebble)", reload_times(issued)
    )
    served = served_certificate(swarm_stack.https_port)
    assert PEBBLE_ISSUER.match(issuer_name(served)), served.issuer
    # Reloaded, not replaced: the same task serves it.
    assert swarm_stack.wait_for("nginx", 1) == nginx
    assert_nginx_warns_of_the_expiry(swarm_stack, served)


def test_certbot_renew_renews_it_on_the_nodes_nginx_with_no_failed_request(swarm_stack, acme):
    before = served_certificate(swarm_stack.https_port)
    assert PEBBLE_ISSUER.match(issuer_name(before)), "the issuance test runs first"
    context = trusting(swarm_stack, acme.root())
    with under_load(swarm_stack, context) as (load, window):
        renewed = acme.renew()

    assert renewed.returncode == 0, renewed.stdout[-3000:] + renewed.stderr[-3000:]
    assert_served_everything(
        swarm_stack, load, window, "Swarm certificate renewal (certbot renew, Pebble)", reload_times(renewed)
    )
    after = served_certificate(swarm_stack.https_port)
    assert after.serial_number != before.serial_number
    assert PEBBLE_ISSUER.match(issuer_name(after)), after.issuer
    assert_nginx_warns_of_the_expiry(swarm_stack, after)
