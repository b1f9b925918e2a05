"""The production stack's certificate from a real ACME server (Pebble, tests/stack/acme.py), as
docs/operations.md has the operator get it: certbot's webroot mode into ACME_WEBROOT, which nginx serves on
port 80, and scripts/install-certificate as the deploy hook, run as root. Issued and then renewed (`certbot
renew`, unattended: the certificate is short-lived) while 16 clients call the API, with no failed request;
nginx's log says when the certificate expires. The stack's own certificate is put back afterwards, so the
tests that follow trust it again."""

import datetime
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from .acme import (
    PEBBLE_ISSUER,
    VALIDITY_DAYS,
    Acme,
    expiry_lines,
    issuer_name,
    pebble,
    reload_times,
    served_certificate,
    trusting,
)
from .load import assert_served_everything, under_load
from .stacks import Stack, json_lines, run

pytestmark = pytest.mark.usefixtures("prod_stack")


def hook_env(stack: Stack) -> dict[str, str]:
    """What install-certificate needs to find the test's stack (an operator's .env is the checkout's)."""
    assert stack.env_file is not None
    return {"ENV_FILE": str(stack.env_file), "COMPOSE_PROJECT_NAME": stack.project}


def install(stack: Stack, directory: Path) -> None:
    installed = run(
        ["scripts/install-certificate", str(directory)],
        cwd=stack.directory,
        env={**stack.env, **hook_env(stack)},
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr


@pytest.fixture(scope="module")
def acme(prod_stack: Stack, workdir: Path) -> Iterator[Acme]:
    """Pebble for the prod stack; the stack's certificate from its local CA is installed again afterwards."""
    assert prod_stack.certificate is not None
    original = workdir / "prod" / "original-certificate"
    original.mkdir()
    env_values = prod_stack.env_values()
    shutil.copyfile(env_values["TLS_CERT_FILE"], original / "fullchain.pem")
    shutil.copyfile(env_values["TLS_KEY_FILE"], original / "privkey.pem")
    try:
        with pebble(workdir / "prod", prod_stack.http_port) as server:
            yield server
    finally:
        install(prod_stack, original)


def assert_the_expiry_is_logged(stack: Stack, certificate, level: str) -> None:
    """nginx's last certificate line names the certificate it serves, its notAfter and days left."""
    lines = expiry_lines(stack.logs("nginx"))
    assert lines, "nginx logged no certificate line"
    line = lines[-1]
    not_after = certificate.not_valid_after_utc
    assert line["level"] == level, line
    assert line["not_after"] == not_after.strftime("%Y-%m-%dT%H:%M:%SZ"), line
    assert line["issuer"].startswith(f"CN={issuer_name(certificate)}"), line
    now = datetime.datetime.now(datetime.UTC)
    assert line["days_left"] in {(not_after - now).days, (not_after - now).days + 1}, line


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
    context = trusting(prod_stack, acme.root())
    with under_load(prod_stack, context) as (load, window):
        issued = acme.issue(prod_stack, hook_env(prod_stack))

    assert issued.returncode == 0, issued.stdout[-3000:] + issued.stderr[-3000:]
    assert_served_everything(
        prod_stack, load, window, "certificate issuance (certbot certonly, Pebble)", reload_times(issued)
    )
    served = served_certificate(prod_stack.https_port)
    assert PEBBLE_ISSUER.match(issuer_name(served)), served.issuer
    lifetime = served.not_valid_after_utc - served.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=VALIDITY_DAYS), lifetime
    # Installed in place: the file nginx has mounted holds it.
    assert prod_stack.certificate is not None
    assert served.public_bytes(Encoding.PEM).decode() in prod_stack.certificate.read_text()
    # Ten days left: the reload's line warns.
    assert_the_expiry_is_logged(prod_stack, served, "WARNING")


def test_certbot_renew_renews_it_unattended_with_no_failed_request(prod_stack, acme):
    before = served_certificate(prod_stack.https_port)
    assert PEBBLE_ISSUER.match(issuer_name(before)), "the issuance test runs first"
    context = trusting(prod_stack, acme.root())
    with under_load(prod_stack, context) as (load, window):
        renewed = acme.renew()

    assert renewed.returncode == 0, renewed.stdout[-3000:] + renewed.stderr[-3000:]
    assert_served_everything(
        prod_stack, load, window, "certificate renewal (certbot renew, Pebble)", reload_times(renewed)
    )
    after = served_certificate(prod_stack.https_port)
    assert after.serial_number != before.serial_number
    assert PEBBLE_ISSUER.match(issuer_name(after)), after.issuer
    assert after.not_valid_after_utc >= before.not_valid_after_utc
    assert_the_expiry_is_logged(prod_stack, after, "WARNING")


@pytest.mark.skipif(os.geteuid() != 0, reason="the check applies to a hook run as root")
@pytest.mark.parametrize("writable", ["scripts", "env file"])
def test_install_certificate_as_root_refuses_a_checkout_others_may_change(prod_stack, workdir, writable):
    assert prod_stack.env_file is not None
    path = prod_stack.directory / "scripts" if writable == "scripts" else prod_stack.env_file
    served = served_certificate(prod_stack.https_port)
    pair = workdir / "prod" / f"refused-{writable.replace(' ', '-')}"
    pair.mkdir()
    env_values = prod_stack.env_values()
    shutil.copyfile(env_values["TLS_CERT_FILE"], pair / "fullchain.pem")
    shutil.copyfile(env_values["TLS_KEY_FILE"], pair / "privkey.pem")
    mode = path.stat().st_mode
    path.chmod(mode | 0o002)
    try:
        refused = run(
            ["scripts/install-certificate", str(pair)],
            cwd=prod_stack.directory,
            env={**prod_stack.env, **hook_env(prod_stack)},
            check=False,
        )
    finally:
        path.chmod(mode)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "others than root may change" in refused.stderr
    assert str(path) in refused.stderr
    assert served_certificate(prod_stack.https_port) == served
