"""The production stack's certificate from a real ACME server (Pebble, tests/stack/acme.py), as
docs/operations.md has the operator get it: certbot's webroot mode into ACME_WEBROOT, which nginx serves on
port 80, and scripts/install-certificate as the deploy hook, run as root. Issued and then renewed (`certbot
renew`, unattended: the certificate is short-lived) while 16 clients call the API, with no failed request;
nginx's log says when the certificate expires. The stack's own certificate is put back afterwards, so the
tests that follow trust it again."""

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from .acme import (
    VALIDITY_DAYS,
    Acme,
    assert_issued_under_load,
    assert_renewed_under_load,
    assert_the_expiry_is_logged,
    copy_served_pair,
    expiry_lines,
    install_certificate,
    pebble_for,
    served_certificate,
)
from .stacks import Stack, json_lines

pytestmark = pytest.mark.usefixtures("prod_stack")


def hook_env(stack: Stack) -> dict[str, str]:
    """What install-certificate needs to find the test's stack (an operator's .env is the checkout's)."""
    assert stack.env_file is not None
    return {"ENV_FILE": str(stack.env_file), "COMPOSE_PROJECT_NAME": stack.project}


@pytest.fixture(scope="module")
def acme(prod_stack: Stack, workdir: Path) -> Iterator[Acme]:
    with pebble_for(prod_stack, workdir / "prod", hook_env(prod_stack)) as server:
        yield server


def test_nginx_logs_its_certificate_expiry_when_it_starts(prod_stack):
    served = served_certificate(prod_stack.https_port)
    # The local CA's, 30 days (nginx/local-cert): more than the 14 days under which it warns.
    assert_the_expiry_is_logged(prod_stack, served, "INFO")
    assert expiry_lines(prod_stack.logs("nginx"))[-1]["days_left"] >= 29


def test_a_missing_or_unreadable_certificate_is_logged_as_an_error_without_dates(prod_stack):
    # No file, a key instead of a certificate, a directory.
    for path in ("/etc/nginx/certs/missing.pem", "/etc/nginx/certs/privkey.pem", "/etc/nginx/certs"):
        [line] = json_lines(prod_stack.exec("nginx", "certificate-expiry", path).stdout)
        assert line["logger"] == "nginx.certificate", line
        assert line["level"] == "ERROR", line
        assert line["certificate"] == path, line
        assert line["not_after"] is None, line
        assert line["days_left"] is None, line


def test_certbot_gets_a_certificate_from_pebble_its_hook_installs_it_with_no_failed_request(prod_stack, acme):
    what = "certificate issuance (certbot certonly, Pebble)"
    served = assert_issued_under_load(prod_stack, acme, hook_env(prod_stack), what)
    lifetime = served.not_valid_after_utc - served.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=VALIDITY_DAYS), lifetime
    # Installed in place: the file nginx has mounted holds it.
    assert prod_stack.certificate is not None
    assert served.public_bytes(Encoding.PEM).decode() in prod_stack.certificate.read_text()
    # Ten days left: the reload's line warns.
    assert_the_expiry_is_logged(prod_stack, served, "WARNING")


def test_certbot_renew_renews_it_unattended_with_no_failed_request(prod_stack, acme):
    assert_renewed_under_load(prod_stack, acme, "certificate renewal (certbot renew, Pebble)")


@pytest.mark.skipif(os.geteuid() != 0, reason="the check applies to a hook run as root")
@pytest.mark.parametrize("writable", ["scripts", "env file"])
def test_install_certificate_as_root_refuses_a_checkout_others_may_change(prod_stack, workdir, writable):
    assert prod_stack.env_file is not None
    path = prod_stack.directory / "scripts" if writable == "scripts" else prod_stack.env_file
    served = served_certificate(prod_stack.https_port)
    pair = copy_served_pair(prod_stack, workdir / "prod" / f"refused-{writable.replace(' ', '-')}")
    mode = path.stat().st_mode
    path.chmod(mode | 0o002)
    try:
        refused = install_certificate(prod_stack, pair, hook_env(prod_stack))
    finally:
        path.chmod(mode)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "others than root may change" in refused.stderr
    assert str(path) in refused.stderr
    assert served_certificate(prod_stack.https_port) == served
