"""compose.yaml as a developer gets it: a fresh checkout without .env, `docker compose up`, the API at
https://localhost:<port>/api/v1/ with a certificate made on the first start, code reloaded on change."""

import datetime
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from .api import (
    assert_an_owned_resource_serves,
    csrf_headers,
    login,
    logout,
    me,
    new_email,
    set_cookies,
    signup,
)
from .stacks import REPO, Stack, clean_environment, developer_home, docker_inspect, make_app, run
from .tls import assert_server_certificate_from_the_ca, mozilla_intermediate_check

NEW_PASSWORD = "a new password from the reset mail"  # noqa: S105 (a test account)


def test_the_api_answers_over_https_with_a_certificate_from_the_local_ca(dev_stack):
    assert_server_certificate_from_the_ca(dev_stack.certificate, dev_stack.ca_file, ["localhost"])

    # The client trusts the CA alone, not the certificate itself.
    with dev_stack.client() as client:
        response = client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "NOT_AUTHENTICATED"
    assert "strict-transport-security" not in response.headers, "HSTS would pin every localhost port"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.headers["x-request-id"]) == 32


def test_nginx_passes_mozillas_intermediate_check(dev_stack):
    mozilla_intermediate_check(dev_stack)


def local_ca(stack: Stack, script: str) -> str:
    """A shell script in the dev stack's local-ca one-shot, where the CA is (/var/lib/local-ca) beside
    nginx's certificates (/etc/nginx/certs); its output."""
    return stack.compose("run", "--rm", "--no-deps", "--entrypoint", "sh", "local-ca", "-c", script).stdout


def test_the_certificate_is_renewed_at_a_start_when_close_to_expiry(dev_stack):
    # A certificate from the same CA with ten days left, as a volume twenty days old would hold.
    local_ca(
        dev_stack,
        "cd /etc/nginx/certs"
        " && openssl req -new -key privkey.pem -subj /CN=localhost -out /tmp/request.pem"
        " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\\n' > /tmp/extensions"
        " && openssl x509 -req -in /tmp/request.pem -CA ca.pem -CAkey /var/lib/local-ca/ca-key.pem"
        " -set_serial 1 -days 10 -extfile /tmp/extensions -out fullchain.pem",
    )
    ca_before = dev_stack.exec("nginx", "cat", "/etc/nginx/certs/ca.pem").stdout

    dev_stack.compose("stop", "nginx")
    dev_stack.compose("up", "--detach", "--wait", "--no-build", "nginx", timeout=300)

    renewed = dev_stack.exec("nginx", "cat", "/etc/nginx/certs/fullchain.pem").stdout
    assert dev_stack.exec("nginx", "cat", "/etc/nginx/certs/ca.pem").stdout == ca_before, "the CA is kept"
    certificate = x509.load_pem_x509_certificate(renewed.encode())
    assert certificate.serial_number != 1
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == datetime.timedelta(days=30)
    assert "local-cert: wrote /etc/nginx/certs/fullchain.pem" in dev_stack.compose("logs", "local-ca").stdout
    # The browser tests that follow trust the certificate nginx serves now.
    dev_stack.certificate.write_text(renewed)
    with dev_stack.client() as client:
        assert client.get("/api/v1/health/live").status_code == 200
    served = x509.load_der_x509_certificate(served_certificate(dev_stack))
    assert served.serial_number == certificate.serial_number, "nginx serves the renewed certificate"


def served_certificate(stack: Stack) -> bytes:
    with socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as connection:
        context = ssl.create_default_context(cafile=str(stack.ca_file))
        with context.wrap_socket(connection, server_hostname="localhost") as tls:
            certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_the_local_ca_may_sign_for_localhost_only_and_for_90_days(dev_stack):
    """A leaked CA key vouches for no other site: the CA's nameConstraints permit localhost (with its
    subdomains), 127.0.0.0/8 and ::1, and it expires in 90 days."""
    authority = x509.load_pem_x509_certificate(dev_stack.ca_file.read_bytes())
    constraints = authority.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.permitted_subtrees == [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    ]
    assert constraints.value.excluded_subtrees is None
    assert authority.not_valid_after_utc - authority.not_valid_before_utc == datetime.timedelta(days=90)
    usage = authority.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]

    # Certificates signed with the CA's key as local-cert signs nginx's, one for another site.
    def signed_for(*names: str) -> x509.Certificate:
        alternative = ",".join(f"DNS:{name}" for name in names)
        pem = local_ca(
            dev_stack,
            "cd /tmp && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            f" -subj /CN={names[0]} -keyout key.pem -out request.pem 2>/dev/null"
            " && printf 'basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
            f"extendedKeyUsage=serverAuth\\nsubjectAltName={alternative}\\n"
            "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid:always\\n' > extensions"
            " && openssl x509 -req -in request.pem -CA /var/lib/local-ca/ca.pem"
            " -CAkey /var/lib/local-ca/ca-key.pem -set_serial 2 -days 10 -extfile extensions 2>/dev/null",
        )
        return x509.load_pem_x509_certificate(pem.encode())

    def verify(certificate: x509.Certificate, name: str) -> None:
        verifier = PolicyBuilder().store(Store([authority])).build_server_verifier(x509.DNSName(name))
        verifier.verify(certificate, [])

    verify(signed_for("localhost"), "localhost")
    verify(signed_for("api.localhost"), "api.localhost")
    verify(x509.load_pem_x509_certificate(dev_stack.certificate.read_bytes()), "localhost")
    forged = signed_for("github.com", "www.bank.example")
    assert forged.issuer == authority.subject
    with pytest.raises(VerificationError, match="name constraints"):
        verify(forged, "github.com")
    # openssl (curl, Python's ssl) refuses it too.
    forged_file = dev_stack.directory / "forged.pem"
    forged_file.write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    verified = run(
        ["openssl", "verify", "-CAfile", str(dev_stack.ca_file), "-purpose", "sslserver", str(forged_file)],
        cwd=REPO,
        env=clean_environment({}),
        check=False,
    )
    assert verified.returncode != 0
    assert "permitted subtree violation" in verified.stdout + verified.stderr


def test_the_serving_container_holds_no_ca_key(dev_stack):
    """nginx mounts its certificate and key only: the CA's key is in the local-ca volume, which only
    the one-shot that signs mounts. One an older version left beside nginx's key is removed."""
    keys = dev_stack.exec(
        "nginx", "sh", "-c", "grep -rl -- '-----BEGIN .*PRIVATE KEY' /etc /var /tmp /run 2>/dev/null || true"
    ).stdout.split()
    assert keys == ["/etc/nginx/certs/privkey.pem"]
    mounts = docker_inspect(dev_stack.container_ids()["nginx"])["Mounts"]
    assert [mount["Destination"] for mount in mounts if mount["Type"] == "volume"] == ["/etc/nginx/certs"]
    ca_public_key = local_ca(
        dev_stack, "openssl pkey -in /var/lib/local-ca/ca-key.pem -pubout && ls /etc/nginx/certs"
    )
    authority = x509.load_pem_x509_certificate(dev_stack.ca_file.read_bytes())
    assert (
        authority.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        in ca_public_key
    ), "the CA's key is in the local-ca volume"
    assert "ca-key.pem" not in ca_public_key

    # A CA key left in nginx-certs by the version that kept it there is gone after the next run.
    local_ca(dev_stack, "cp /var/lib/local-ca/ca-key.pem /etc/nginx/certs/ca-key.pem")
    output = dev_stack.compose("run", "--rm", "--no-deps", "local-ca").stdout
    assert "local-cert: removed the CA key an older version kept in /etc/nginx/certs" in output
    assert "ca-key.pem" not in local_ca(dev_stack, "ls /etc/nginx/certs")


def test_make_trust_ca_install_says_what_it_trusts_where_and_how_to_remove_it(dev_stack):
    home = developer_home()
    ca = home / "dev-ca.pem"
    shutil.copy(dev_stack.ca_file, ca)
    as_developer = ["runuser", "-u", "nobody", "--"] if os.getuid() == 0 else []
    installed = run(
        [*as_developer, "env", f"HOME={home}", str(REPO / "scripts" / "trust-ca"), "--install", str(ca)],
        cwd=home,
        env=clean_environment({}),
    ).stdout
    authority = x509.load_pem_x509_certificate(ca.read_bytes())
    name = authority.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert (
        "trust-ca: it may sign certificates for these names only: DNS:localhost IP:127.0.0.0/255.0.0.0 "
        "IP:0:0:0:0:0:0:0:1/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF"
    ) in installed
    assert f"valid until {authority.not_valid_after_utc:%b %e %H:%M:%S %Y} GMT" in installed
    database = f"{home}/.pki/nssdb"
    removal = f'certutil -d sql:{database} -D -n "{name}"'
    assert f"trust-ca: trusted in the NSS database {database} (remove: {removal})" in installed
    assert "update-ca-certificates --fresh" in installed

    # A CA without name constraints (what the older local-cert made) is not installed anywhere.
    unconstrained = home / "unconstrained.pem"
    run(
        [
            "openssl",
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=Unconstrained CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            str(home / "unconstrained-key.pem"),
            "-out",
            str(unconstrained),
        ],
        cwd=home,
        env=clean_environment({}),
    )
    os.chmod(unconstrained, 0o644)
    refused = run(
        [
            *as_developer,
            "env",
            f"HOME={home}",
            str(REPO / "scripts" / "trust-ca"),
            "--install",
            str(unconstrained),
        ],
        cwd=home,
        env=clean_environment({}),
        check=False,
    )
    assert refused.returncode == 1
    assert "it could vouch for any site" in refused.stdout
    listed = run(
        [*as_developer, "certutil", "-d", f"sql:{database}", "-L"], cwd=home, env=clean_environment({})
    ).stdout
    assert name in listed
    assert "Unconstrained CA" not in listed


def test_http_redirects_to_the_https_port(dev_stack):
    with dev_stack.plain_http_client() as client:
        response = client.get("/api/v1/auth/me")
    assert response.status_code == 308
    assert response.headers["location"] == f"https://localhost:{dev_stack.https_port}/api/v1/auth/me"


def test_migrations_ran_and_the_session_flow_works_through_nginx(dev_stack):
    email = new_email()
    with dev_stack.client() as client:
        signed_up = signup(client, dev_stack.origin, email)
        assert signed_up.status_code == 201, signed_up.text
        cookie = set_cookies(signed_up)[dev_stack.session_cookie]
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert me(client).json()["email"] == email
        assert logout(client, dev_stack.origin).status_code == 204
        assert me(client).status_code == 401
        assert login(client, dev_stack.origin, email).status_code == 200


def test_the_admin_and_its_static_files_are_served(dev_stack):
    with dev_stack.client() as client:
        page = client.get("/admin/login/")
        css = client.get("/static/admin/css/base.css")
    assert page.status_code == 200
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


# Django's StatReloader looks at the files once a second; a server that has answered this long has
# seen any write made before it started and is not about to restart for it.
RELOAD_SETTLED_SECONDS = 3


def live_body_within(
    stack: Stack, expected: dict[str, object], edit: tuple[Path, str], seconds: float = 60
) -> object:
    """Writes the edit (a file and its new text), then GETs health/live until it has answered
    `expected` for RELOAD_SETTLED_SECONDS without a break.

    The edit is written again every 5 s while the old answer lasts: Django's reloader takes its first
    look at the files only after a restarted server already answers, so an edit made in that moment
    (as the restore right after the first edit can be, on a busy machine) is never noticed. A write it
    did notice may restart the server once more just after it answers `expected`: hence the wait for a
    settled answer, so that the next test does not meet a restarting server."""
    path, text = edit
    deadline = time.monotonic() + seconds
    written: float | None = None
    settled_since: float | None = None
    body: object = None
    while time.monotonic() < deadline:
        old_answer_lasts = body is not None and body != expected
        if written is None or (old_answer_lasts and time.monotonic() - written >= 5):
            path.write_text(text)
            written = time.monotonic()
        try:
            with stack.client() as client:
                response = client.get("/api/v1/health/live")
            # nginx answers 503 while the dev server restarts.
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, json.JSONDecodeError):
            body = None
        if body != expected:
            settled_since = None
        elif settled_since is None:
            settled_since = time.monotonic()
        elif time.monotonic() - settled_since >= RELOAD_SETTLED_SECONDS:
            break
        time.sleep(0.5)
    return body


def test_the_dev_server_reloads_changed_code(dev_stack):
    # health/live's answer (core.middleware gives it).
    health = dev_stack.directory / "backend" / "core" / "health.py"
    source = health.read_text()
    unchanged = 'LIVE_BODY = {"status": OK}'
    assert unchanged in source
    edited = source.replace(unchanged, 'LIVE_BODY = {"status": OK, "edited": True}')
    try:
        assert live_body_within(dev_stack, {"status": "ok", "edited": True}, (health, edited)) == {
            "status": "ok",
            "edited": True,
        }
    finally:
        # Back to the code as committed, for the tests after this one.
        assert live_body_within(dev_stack, {"status": "ok"}, (health, source)) == {"status": "ok"}


def wait_until_served(stack: Stack, path: str, served: bool, seconds: float = 90) -> None:
    """Until the dev server, reloaded, has listed (or not listed) `path` in its schema for
    RELOAD_SETTLED_SECONDS without a break."""
    deadline = time.monotonic() + seconds
    settled_since: float | None = None
    while time.monotonic() < deadline:
        with stack.client() as client:
            response = client.get("/api/v1/schema", headers={"Accept": "application/json"})
        if response.status_code == 200 and (path in response.json()["paths"]) == served:
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since >= RELOAD_SETTLED_SECONDS:
                return
        else:
            settled_since = None
        time.sleep(0.5)
    raise AssertionError(f"{path} {'not ' if served else ''}served after {seconds} s")


def test_an_app_made_by_make_app_serves_at_once(dev_stack):
    """docs/extending.md's first steps against the dev stack: `make app`, its migration, and the dev
    server serves the new resource after its reload. The checkout is put back afterwards."""
    backend = dev_stack.directory / "backend"
    wiring = [backend / "config" / "settings" / "base.py", backend / "config" / "urls.py"]
    committed_text = {path: path.read_text() for path in wiring}
    try:
        make_app(dev_stack.directory)
        wait_until_served(dev_stack, "/api/v1/notes", served=True)
        dev_stack.exec("backend", "python", "manage.py", "migrate", "--no-input")
        assert_an_owned_resource_serves(dev_stack.origin, dev_stack.client)
    finally:
        for path, text in committed_text.items():
            path.write_text(text)
        shutil.rmtree(backend / "notes", ignore_errors=True)
        (backend / "db.sqlite3").unlink(missing_ok=True)
        wait_until_served(dev_stack, "/api/v1/notes", served=False)


def mails_to(stack: Stack, address: str, seconds: float = 15) -> list[dict[str, Any]]:
    """The mails MailDev holds for the address, from its REST API; waits for at least one (the backend
    sends from a background thread after its response)."""
    deadline = time.monotonic() + seconds
    while True:
        response = httpx.get(
            f"http://127.0.0.1:{stack.mail_ui_port}/api/email", params={"to.address": address}, timeout=5
        )
        response.raise_for_status()
        mails: list[dict[str, Any]] = response.json()
        if mails or time.monotonic() > deadline:
            return mails
        time.sleep(0.5)


def test_a_password_reset_mail_lands_in_the_mail_catcher_and_completes_through_nginx(dev_stack):
    email = new_email()
    with dev_stack.client() as client:
        assert signup(client, dev_stack.origin, email).status_code == 201
        assert logout(client, dev_stack.origin).status_code == 204
        requested = client.post(
            "/api/v1/auth/password/reset",
            json={"email": email},
            headers=csrf_headers(client, dev_stack.origin),
        )
        assert requested.status_code == 202, requested.text

        [mail] = mails_to(dev_stack, email)
        # The link points at the frontend's page (PASSWORD_RESET_URL), which posts uid and token back.
        link = re.search(r"http://localhost:5173/reset-password\?uid=(\S+)&token=(\S+)", mail["text"])
        assert link, mail["text"]
        uid, token = link.groups()
        confirmed = client.post(
            "/api/v1/auth/password/reset/confirm",
            json={"uid": uid, "token": token, "new_password": NEW_PASSWORD},
            headers=csrf_headers(client, dev_stack.origin),
        )
        assert confirmed.status_code == 204, confirmed.text

        assert login(client, dev_stack.origin, email).status_code == 400, "the old password is gone"
        logged_in = client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": NEW_PASSWORD},
            headers=csrf_headers(client, dev_stack.origin),
        )
        assert logged_in.status_code == 200, logged_in.text
    # The mail went to the catcher, not into the backend's log.
    assert token not in dev_stack.compose("logs", "backend").stdout


def test_the_mail_catchers_web_ui_is_served_on_loopback(dev_stack):
    # As a browser asks for it (MailDev answers 404 to a request that does not accept HTML).
    page = httpx.get(
        f"http://127.0.0.1:{dev_stack.mail_ui_port}/", headers={"Accept": "text/html"}, timeout=5
    )
    assert page.status_code == 200
    assert "<title>MailDev" in page.text


def test_the_mail_catcher_answers_its_own_origin_only(dev_stack):
    """Any page the developer visits may fetch http://localhost:1080/api/email: the mail catcher must
    not let it read the caught mails (reset links), nor a DNS name rebound to 127.0.0.1."""
    email = new_email()
    secret = secrets.token_urlsafe(16)
    dev_stack.exec(
        "backend",
        "python",
        "-c",
        "import smtplib, sys; smtplib.SMTP('maildev', 1025).sendmail('noreply@example.com', [sys.argv[1]],"
        " f'To: {sys.argv[1]}\\nSubject: Reset\\n\\ntoken={sys.argv[2]}\\n')",
        email,
        secret,
    )
    [mail] = mails_to(dev_stack, email)
    assert secret in mail["text"]

    api = f"http://127.0.0.1:{dev_stack.mail_ui_port}/api/email"
    foreign = [
        ("GET", api, {"Origin": "https://evil.example"}),
        ("GET", api, {"Origin": "null"}),
        ("GET", api, {"Origin": f"http://localhost:{dev_stack.mail_ui_port}"}),  # not the Host it asked
        ("GET", api, {"Host": f"rebind.evil.example:{dev_stack.mail_ui_port}"}),
        (
            "OPTIONS",
            f"{api}/all",
            {"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"},
        ),
        ("DELETE", f"{api}/all", {"Origin": "https://evil.example"}),
    ]
    for method, url, headers in foreign:
        response = httpx.request(method, url, headers=headers, params={"to.address": email}, timeout=5)
        assert response.status_code == 403, (method, headers, response.status_code)
        assert "access-control-allow-origin" not in response.headers, (method, headers)
        assert secret not in response.text

    # The UI's own origin (its pages' requests carry it) reads and deletes; no CORS header is sent to it
    # either, as a same-origin page needs none.
    own = httpx.get(
        api, headers={"Origin": f"http://127.0.0.1:{dev_stack.mail_ui_port}"}, params={"to.address": email}
    )
    assert own.status_code == 200
    assert secret in own.text
    assert not [name for name in own.headers if name.startswith("access-control-")]
    deleted = httpx.delete(
        f"{api}/{mail['id']}",
        headers={
            "Origin": f"http://localhost:{dev_stack.mail_ui_port}",
            "Host": f"localhost:{dev_stack.mail_ui_port}",
        },
    )
    assert deleted.status_code == 200, deleted.text
    assert httpx.get(api, params={"to.address": email}).json() == []


def test_make_test_stack_dev_runs_the_suite_in_the_dev_image_on_postgresql_and_redis(dev_stack):
    """For someone with Docker only: the backend's tests in the dev image, against the stack's database
    and Redis. The Redis tests are skipped without a real Redis, so none may be skipped here; those of
    a Redis the test pauses start redis-server in the image, and the JSON nesting limit is the
    images' Python's too. (CI runs the whole suite this way; here, a few modules.)"""
    result = run(
        [
            "make",
            "--no-print-directory",
            "test",
            "STACK=dev",
            "PYTEST_ARGS=-p no:randomly core/tests/test_rate_limit.py accounts/tests/test_apis_signup.py "
            "core/tests/test_cache.py core/tests/test_exceptions.py",
        ],
        cwd=dev_stack.directory,
        env={**dev_stack.env, "COMPOSE_PROJECT_NAME": dev_stack.project},
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"=+ \d+ passed in ", summary), summary
    assert "skipped" not in summary


def test_every_container_runs_as_non_root(dev_stack):
    containers = dev_stack.container_ids()
    assert set(containers) == {"db", "redis", "backend", "nginx", "maildev"}
    for service in containers:
        assert "0" not in dev_stack.process_uids(service), service


def test_every_service_is_healthy(dev_stack):
    health = {service: entry["Health"] for service, entry in dev_stack.containers().items()}
    assert health == dict.fromkeys(("db", "redis", "backend", "nginx", "maildev"), "healthy")


def test_ports_are_published_on_loopback_as_configured(dev_stack):
    ports = docker_inspect(dev_stack.container_ids()["nginx"])["NetworkSettings"]["Ports"]
    assert ports["8443/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(dev_stack.https_port)}]
    assert ports["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(dev_stack.http_port)}]
    ports = docker_inspect(dev_stack.container_ids()["maildev"])["NetworkSettings"]["Ports"]
    assert ports["1080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(dev_stack.mail_ui_port)}]
    assert ports["1025/tcp"] is None, "SMTP only on the stack's network"
