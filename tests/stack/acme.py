"""A real ACME server for the certificate tests: Pebble (Let's Encrypt's test server) and certbot, Debian's
packages in the image tests/acme builds, on the host's network. certbot gets a certificate for a stack as
docs/operations.md says: HTTP-01 challenges in the stack's ACME_WEBROOT, which its nginx serves on its
plain-HTTP port, and `scripts/install-certificate "$RENEWED_LINEAGE"` as the deploy hook, run as root on
the host (chroot into a read-only view of it), as certbot installed there would run it."""

import datetime
import json
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509

from .load import assert_served_everything, under_load
from .stacks import API_HOST, PORT_OFFSET, REPO, SPA_HOST, SUFFIX, Stack, clean_environment, run

IMAGE = f"stacktest-acme{SUFFIX}"
# Pebble's ACME directory and its management interface (the roots it signs with), on 127.0.0.1.
ACME_PORT = 26900 + PORT_OFFSET
MANAGEMENT_PORT = 26901 + PORT_OFFSET
# What Pebble's certificates are valid for: short, as Let's Encrypt's are becoming (45 days in 2028), and
# under nginx's warning threshold (nginx/certificate-expiry), so that certbot renews it at once, unattended,
# and nginx's log warns about it.
VALIDITY_DAYS = 10
# The stack's certificate names (stacks.prod_env_file); HTTP-01 checks each on the stack's HTTP port.
NAMES = ["localhost", API_HOST, SPA_HOST]
# Pebble's issuing CA: "Pebble Intermediate CA" and a random suffix.
PEBBLE_ISSUER = re.compile(r"^Pebble Intermediate CA [0-9a-f]+$")


def build_image() -> None:
    """tests/acme on the backend's Python image (backend/Dockerfile's PYTHON_IMAGE)."""
    dockerfile = (REPO / "backend" / "Dockerfile").read_text()
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert match, "backend/Dockerfile has no ARG PYTHON_IMAGE"
    image = f"--build-arg=PYTHON_IMAGE={match[1]}"
    run(
        ["docker", "build", "--quiet", f"--tag={IMAGE}", image, "tests/acme"],
        cwd=REPO,
        env=clean_environment({}),
        timeout=900,
    )


@dataclass
class Acme:
    container: str
    # certbot's configuration, work and log directories, at the same path on the host and in the container.
    directory: Path

    def certbot(self, *args: str) -> subprocess.CompletedProcess[str]:
        directories = [
            f"--config-dir={self.directory / 'etc'}",
            f"--work-dir={self.directory / 'work'}",
            f"--logs-dir={self.directory / 'logs'}",
        ]
        return run(
            ["docker", "exec", self.container, "certbot", *args, *directories, "--non-interactive"],
            cwd=REPO,
            env=clean_environment({}),
            check=False,
            timeout=300,
        )

    def issue(self, stack: Stack, hook_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """docs/operations.md's `certbot certonly --webroot` for the stack, with install-certificate as the
        deploy hook; `hook_env` is what the hook needs to find the stack (ENV_FILE, a project name)."""
        webroot = stack.env_values()["ACME_WEBROOT"]
        variables = " ".join(f"{name}={value}" for name, value in hook_env.items())
        # As root on the host: PATH and the variables only, as certbot's systemd timer runs it.
        hook = (
            "chroot /host /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
            f'HOME=/root {variables} {stack.directory}/scripts/install-certificate "$RENEWED_LINEAGE"'
        )
        return self.certbot(
            "certonly",
            f"--server=https://127.0.0.1:{ACME_PORT}/dir",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--key-type=ecdsa",
            "--webroot",
            f"--webroot-path={webroot}",
            *(f"--domain={name}" for name in NAMES),
            f"--deploy-hook={hook}",
        )

    def renew(self) -> subprocess.CompletedProcess[str]:
        """`certbot renew` as its timer runs it: renews what expires within 30 days, with the saved hook."""
        return self.certbot("renew", "--no-random-sleep-on-renew")

    def root(self) -> str:
        """The root Pebble signs with (a new one each time Pebble starts), PEM."""
        response = httpx.get(f"https://127.0.0.1:{MANAGEMENT_PORT}/roots/0", verify=False)  # noqa: S501 (Pebble's own test certificate)
        assert response.status_code == 200, response.text
        return response.text


@contextmanager
def pebble(workdir: Path, http_port: int) -> Iterator[Acme]:
    """Pebble validating HTTP-01 on http_port of 127.0.0.1 for NAMES, and certbot beside it, in one container
    that is removed afterwards, also when a check fails."""
    build_image()
    directory = workdir / "acme-client"
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{ACME_PORT}",
            "managementListenAddress": f"127.0.0.1:{MANAGEMENT_PORT}",
            "certificate": "/etc/pebble/cert.pem",
            "privateKey": "/etc/pebble/key.pem",
            "httpPort": http_port,
            # TLS-ALPN-01 is not used: any port nothing listens on.
            "tlsPort": MANAGEMENT_PORT + 1,
            "certificateValidityPeriod": VALIDITY_DAYS * 86400,
        }
    }
    (directory / "pebble.json").write_text(json.dumps(config))
    container = f"{IMAGE}-{http_port}"
    env = clean_environment({})
    run(["docker", "rm", "--force", container], cwd=REPO, env=env, check=False)
    host = str(workdir)
    run(
        [
            "docker",
            "run",
            "--detach",
            "--name",
            container,
            "--network=host",
            *(f"--add-host={name}:127.0.0.1" for name in NAMES[1:]),
            # The host for the hook: read-only but for the test's directory (the checkout, the certificate
            # files, certbot's directories, the webroot), and a /tmp of its own.
            "--volume=/:/host:ro",
            "--tmpfs=/host/tmp",
            f"--volume={host}:/host{host}",
            f"--volume={host}:{host}",
            IMAGE,
            "pebble",
            f"-config={directory / 'pebble.json'}",
        ],
        cwd=REPO,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"https://127.0.0.1:{ACME_PORT}/dir", verify=False)  # noqa: S501
                break
            except httpx.TransportError:
                logs = run(["docker", "logs", container], cwd=REPO, env=env, check=False)
                assert time.monotonic() < deadline, logs.stdout + logs.stderr
                time.sleep(0.2)
        yield Acme(container, directory)
    finally:
        run(["docker", "rm", "--force", container], cwd=REPO, env=env, check=False)


def reload_times(certbot: subprocess.CompletedProcess[str]) -> str:
    """How long the hook's reload took (nginx-reload's last line, in certbot's output), for the figures."""
    output = certbot.stdout + certbot.stderr
    reloads = re.findall(r"reloaded in [\d.]+ s; old workers finished in [\d.]+ s", output)
    return "; ".join(f"nginx {reload}" for reload in reloads)


def trusting(stack: Stack, *roots: str) -> ssl.SSLContext:
    """A TLS context that trusts the stack's local CA and the roots (PEM)."""
    context = stack.tls_context()
    for root in roots:
        context.load_verify_locations(cadata=root)
    return context


def served_certificate(port: int) -> x509.Certificate:
    """The certificate nginx serves on 127.0.0.1:port for SNI localhost, unverified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost") as connection:
        der = connection.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def issuer_name(certificate: x509.Certificate) -> str:
    [name] = certificate.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(name.value)


def expiry_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """nginx's certificate lines (nginx/certificate-expiry) among its JSON log lines."""
    return [line for line in lines if line.get("logger") == "nginx.certificate"]


def copy_served_pair(stack: Stack, target: Path) -> Path:
    """A copy of the certificate and key the stack's nginx has mounted, in `target`."""
    target.mkdir()
    env_values = stack.env_values()
    shutil.copyfile(env_values["TLS_CERT_FILE"], target / "fullchain.pem")
    shutil.copyfile(env_values["TLS_KEY_FILE"], target / "privkey.pem")
    return target


def install_certificate(stack: Stack, pair: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """scripts/install-certificate PAIR from the stack's checkout, as certbot's hook runs it."""
    command = ["scripts/install-certificate", str(pair)]
    return run(command, cwd=stack.directory, env={**stack.env, **env}, check=False)


@contextmanager
def pebble_for(stack: Stack, directory: Path, hook_env: dict[str, str]) -> Iterator[Acme]:
    """Pebble for the stack; the stack's own certificate (its local CA's) is installed again afterwards,
    also when a test failed, so the tests that follow trust it."""
    original = copy_served_pair(stack, directory / "original-certificate")
    try:
        with pebble(directory, stack.http_port) as server:
            yield server
    finally:
        installed = install_certificate(stack, original, hook_env)
        assert installed.returncode == 0, installed.stdout + installed.stderr


def assert_the_expiry_is_logged(stack: Stack, certificate: x509.Certificate, level: str) -> None:
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


def assert_renewed_under_load(stack: Stack, acme: Acme, what: str) -> None:
    """`certbot renew` under load: no failed request, a new certificate from Pebble served, and nginx's
    line warns of its expiry (Pebble's are short-lived)."""
    before = served_certificate(stack.https_port)
    assert PEBBLE_ISSUER.match(issuer_name(before)), "the issuance test runs first"
    with under_load(stack, trusting(stack, acme.root())) as (load, window):
        renewed = acme.renew()

    assert renewed.returncode == 0, renewed.stdout[-3000:] + renewed.stderr[-3000:]
    assert_served_everything(stack, load, window, what, reload_times(renewed))
    after = served_certificate(stack.https_port)
    assert after.serial_number != before.serial_number
    assert PEBBLE_ISSUER.match(issuer_name(after)), after.issuer
    assert after.not_valid_after_utc >= before.not_valid_after_utc
    assert_the_expiry_is_logged(stack, after, "WARNING")


def assert_issued_under_load(
    stack: Stack, acme: Acme, hook_env: dict[str, str], what: str
) -> x509.Certificate:
    """`certbot certonly` with the hook under load: no failed request, and the certificate served is
    Pebble's; the certificate."""
    with under_load(stack, trusting(stack, acme.root())) as (load, window):
        issued = acme.issue(stack, hook_env)

    assert issued.returncode == 0, issued.stdout[-3000:] + issued.stderr[-3000:]
    assert_served_everything(stack, load, window, what, reload_times(issued))
    served = served_certificate(stack.https_port)
    assert PEBBLE_ISSUER.match(issuer_name(served)), served.issuer
    return served
