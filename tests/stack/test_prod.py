"""compose.prod.yaml booted with a test .env: nginx (TLS) -> gunicorn (prod settings) -> PostgreSQL,
Redis. Checked from outside through 127.0.0.1 like a client, and from inside with docker."""

import datetime
import json
import re
import socket
import ssl
import time
import warnings

import pytest
from cryptography import x509

from .api import (
    CSRF_COOKIE,
    PASSWORD,
    assert_security_headers_once,
    csrf_headers,
    login,
    logout,
    me,
    new_email,
    set_cookies,
    signup,
)
from .stacks import (
    API_HOST,
    PROD_SPA_PORT,
    REPO,
    SPA_HOST,
    Stack,
    clean_environment,
    docker_inspect,
    run,
)
from .tls import assert_server_certificate_from_the_ca, mozilla_intermediate_check

pytestmark = pytest.mark.usefixtures("prod_stack")

# The known-device cookie a login sets (LOGIN_DEVICE_COOKIE_NAME in config/settings/prod.py).
DEVICE_COOKIE = "__Host-login_device"

# The user created first; later tests check it survives restarts, down/up and a restore.
FIRST_USER = new_email()


def tls_handshake(stack: Stack, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


# ---------------------------------------------------------------- TLS and HTTP


def test_http_answers_308_to_https_on_the_public_port(prod_stack):
    with prod_stack.plain_http_client() as client:
        for method in ("GET", "POST"):
            # The redirect names the configured server, whatever Host the client sent.
            for host in (None, "evil.example.com"):
                headers = {"Host": host} if host else {}
                response = client.request(method, "/api/v1/auth/me?next=1", headers=headers)
                assert response.status_code == 308
                assert (
                    response.headers["location"]
                    == f"https://localhost:{prod_stack.https_port}/api/v1/auth/me?next=1"
                )


def test_acme_challenges_are_served_over_plain_http(prod_stack, workdir):
    challenge = workdir / "prod" / "acme" / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    (challenge / "token-123").write_text("token-123.key-authorization")

    with prod_stack.plain_http_client() as client:
        response = client.get("/.well-known/acme-challenge/token-123")
    assert response.status_code == 200
    assert response.text == "token-123.key-authorization"


def test_make_certs_gives_a_certificate_from_its_local_ca(prod_stack):
    assert_server_certificate_from_the_ca(
        prod_stack.certificate, prod_stack.ca_file, ["localhost", API_HOST, SPA_HOST]
    )


def test_the_quick_start_certificate_is_self_signed_and_makes_no_ca(tmp_path):
    """docs/operations.md's first certificate on a server, until certbot's: nginx can start on it, and
    no CA is made there."""
    certs = tmp_path / "certs"
    made = run(
        [str(REPO / "nginx" / "local-cert"), "--self-signed", str(certs), API_HOST],
        cwd=tmp_path,
        env=clean_environment({}),
    )
    assert "self-signed (no CA), valid 30 days" in made.stdout
    assert sorted(path.name for path in certs.iterdir()) == ["fullchain.pem", "privkey.pem"]
    leaf = x509.load_pem_x509_certificate((certs / "fullchain.pem").read_bytes())
    assert leaf.issuer == leaf.subject
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    alternative = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alternative.get_values_for_type(x509.DNSName) == [API_HOST]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(days=30)
    operations = (REPO / "docs" / "operations.md").read_text()
    assert f"sudo nginx/local-cert --self-signed certs {API_HOST}" in operations


def test_nginx_passes_mozillas_intermediate_check(prod_stack):
    mozilla_intermediate_check(prod_stack)


def test_tls_1_2_and_1_3_with_http2_and_nothing_older(prod_stack):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = prod_stack.tls_context()
        context.minimum_version = context.maximum_version = version
        context.set_alpn_protocols(["h2", "http/1.1"])
        with tls_handshake(prod_stack, context) as connection:
            assert connection.version() == version.name.replace("_", ".")
            assert connection.selected_alpn_protocol() == "h2"
            cipher, _, _ = connection.cipher()
            if version is ssl.TLSVersion.TLSv1_2:
                assert cipher.startswith("ECDHE-"), cipher
                assert "GCM" in cipher or "CHACHA20" in cipher, cipher

    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        context = prod_stack.tls_context()
        # Lower this client's own floor, so that only the server can be the one refusing.
        context.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # asking for old versions on purpose
            context.minimum_version = context.maximum_version = version
        with pytest.raises(ssl.SSLError) as refused:
            tls_handshake(prod_stack, context).close()
        assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value), "the client, not the server, refused"


def test_tls_1_2_refuses_ciphers_without_forward_secrecy(prod_stack):
    context = prod_stack.tls_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-GCM-SHA256:AES256-SHA:DHE-RSA-AES128-GCM-SHA256")
    with pytest.raises(ssl.SSLError):
        tls_handshake(prod_stack, context).close()


# ---------------------------------------------------------------- the session flow and its cookies


def test_signup_me_logout_me_with_secure_cookies(prod_stack):
    with prod_stack.client() as client:
        csrf = client.get("/api/v1/auth/csrf")
        assert csrf.status_code == 200
        assert csrf.http_version == "HTTP/2"
        # The API contract's name, as in development.
        csrf_cookie = set_cookies(csrf)[CSRF_COOKIE]
        assert csrf_cookie["secure"] is True
        assert csrf_cookie["samesite"] == "Lax"
        assert not csrf_cookie["httponly"], "the SPA must read the CSRF cookie"

        signed_up = signup(client, prod_stack.origin, FIRST_USER)
        assert signed_up.status_code == 201, signed_up.text
        session_cookie = set_cookies(signed_up)[prod_stack.session_cookie]
        assert session_cookie["secure"] is True
        assert session_cookie["httponly"] is True
        assert session_cookie["samesite"] == "Lax"
        # The session cookie is __Host-: browsers take it only so, and no sibling subdomain can set it.
        # The CSRF cookie is host-only on Path=/ too, without the prefix.
        assert prod_stack.session_cookie.startswith("__Host-")
        for name, cookie in ((CSRF_COOKIE, csrf_cookie), (prod_stack.session_cookie, session_cookie)):
            assert (cookie["path"], cookie["domain"]) == ("/", ""), name

        assert me(client).json()["email"] == FIRST_USER

        assert logout(client, prod_stack.origin).status_code == 204
        anonymous = me(client)
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "NOT_AUTHENTICATED"

        logged_in = login(client, prod_stack.origin, FIRST_USER)
        assert logged_in.status_code == 200
        assert me(client).status_code == 200
        # The known-device cookie of a login: __Host- too, so only as browsers take such a cookie.
        device_cookie = set_cookies(logged_in)[DEVICE_COOKIE]
        assert (device_cookie["secure"], device_cookie["httponly"]) == (True, True)
        assert device_cookie["samesite"] == "Lax"
        assert (device_cookie["path"], device_cookie["domain"]) == ("/", "")


def test_a_post_without_the_csrf_header_is_refused(prod_stack):
    with prod_stack.client() as client:
        client.get("/api/v1/auth/csrf")
        response = client.post(
            "/api/v1/auth/login",
            json={"email": FIRST_USER, "password": PASSWORD},
            headers={"Origin": prod_stack.origin},
        )
    assert response.status_code == 403
    assert response.json()["code"] == "CSRF_FAILED"


# ---------------------------------------------------------------- nginx: headers, errors, static files


def test_security_headers_are_sent_once_on_every_kind_of_response(prod_stack):
    with prod_stack.client() as client:
        responses = [
            client.get("/api/v1/auth/csrf"),  # 200 from Django
            client.get("/api/v1/auth/me"),  # 401 from Django
            client.get("/api/v1/no-such-endpoint"),  # 404 from Django
            client.get("/no-such-page"),  # 404 from nginx
        ]
    # HTTP/1.1: after its 413, nginx resets the HTTP/2 stream of the upload it refused, which httpx
    # reports instead of the answer (test_edge.py reads that answer over HTTP/2 with its own client).
    with prod_stack.client(http2=False) as client:
        responses.append(
            client.post(
                "/api/v1/auth/login",
                content=b"x" * (1024 * 1024 + 1),
                headers={"Content-Type": "application/json", **csrf_headers(client, prod_stack.origin)},
            )
        )  # 413 from nginx
    assert [response.status_code for response in responses] == [200, 401, 404, 404, 413]
    for response in responses:
        assert_security_headers_once(response)
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        if response.status_code >= 400:
            assert set(body) == {"message", "code", "details"}
    assert responses[3].json()["code"] == "NOT_FOUND"
    assert responses[4].json()["code"] == "REQUEST_TOO_LARGE"


def test_backend_down_gives_a_json_503_with_the_headers(prod_stack):
    prod_stack.compose("stop", "backend")
    try:
        with prod_stack.client() as client:
            response = client.get("/api/v1/auth/me")
        assert response.status_code == 503
        assert response.json()["code"] == "SERVICE_UNAVAILABLE"
        assert_security_headers_once(response)
    finally:
        prod_stack.compose("start", "backend")
        prod_stack.compose("up", "--detach", "--wait", "--no-build", "backend", "nginx", timeout=300)
        # The restarted container may have another address.
        run(
            ["scripts/nginx-reload", "prod"],
            cwd=prod_stack.directory,
            env={
                **prod_stack.env,
                "ENV_FILE": str(prod_stack.env_file),
                "COMPOSE_PROJECT_NAME": prod_stack.project,
            },
        )


def test_json_is_gzipped(prod_stack):
    with prod_stack.client() as client:
        # The OpenAPI schema, JSON from Django (API_DOCS=public in the test .env), which does not compress.
        response = client.get("/api/v1/schema", headers={"Accept-Encoding": "gzip"})
        static = client.get("/static/admin/css/base.css", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    assert response.headers["content-encoding"] == "gzip"
    assert "openapi" in response.json()
    # WhiteNoise's pre-compressed file.
    assert static.headers["content-encoding"] == "gzip"


def test_admin_pages_and_their_hashed_static_files_are_served(prod_stack):
    with prod_stack.client() as client:
        page = client.get("/admin/login/")
        assert page.status_code == 200
        assert_security_headers_once(page)
        stylesheets = re.findall(r'href="(/static/admin/css/[^"]+\.[0-9a-f]{12}\.css)"', page.text)
        assert stylesheets, "collectstatic at build time gives hashed names"
        css = client.get(stylesheets[0])
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    assert len(css.content) > 100


def test_the_admin_takes_posts_from_its_own_origin_only_not_the_spas(prod_stack):
    """CSRF_TRUSTED_ORIGINS names the SPA for the API; a form posted to the admin from the SPA's origin,
    token and all, is refused (security audit I-1)."""
    spa_origin = f"https://{SPA_HOST}:{PROD_SPA_PORT}"
    assert spa_origin in prod_stack.env_values()["CORS_ALLOWED_ORIGINS"]
    with prod_stack.client() as client:
        page = client.get("/admin/login/")
        [token] = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        form = {"username": "nobody@example.com", "password": "wrong", "csrfmiddlewaretoken": token}
        statuses = {
            origin: client.post("/admin/login/", data=form, headers={"Origin": origin}).status_code
            for origin in (spa_origin, prod_stack.origin)
        }
    # From its own origin the form is processed (a wrong password: the page again).
    assert statuses == {spa_origin: 403, prod_stack.origin: 200}


# ---------------------------------------------------------------- logs


def test_nginx_and_django_each_log_one_access_line_with_the_same_request_id(prod_stack):
    with prod_stack.client() as client:
        request_id = client.get("/api/v1/auth/me").headers["x-request-id"]

    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in prod_stack.logs("nginx", "backend") if line.get("request_id") == request_id]
        loggers = {line["logger"] for line in lines}
        if {"nginx.access", "core.access"} <= loggers or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # One line per layer: nginx's (bytes, upstream time) and Django's (user id); gunicorn writes none.
    access_lines = sorted(line["logger"] for line in lines if line["logger"].endswith(".access"))
    assert access_lines == ["core.access", "nginx.access"], lines
    nginx_line = next(line for line in lines if line["logger"] == "nginx.access")
    assert nginx_line["status"] == 401
    assert nginx_line["path"] == "/api/v1/auth/me"
    assert float(nginx_line["upstream_response_time"]) >= 0
    backend_line = next(line for line in lines if line["logger"] == "core.access")
    assert backend_line["status"] == 401
    assert backend_line["client_ip"] == nginx_line["client_ip"]
    # The container that served it: its host name is Docker's short container id.
    assert prod_stack.container_ids()["backend"].startswith(backend_line["hostname"])


# ---------------------------------------------------------------- state: Redis, volumes, backups


def test_the_session_survives_a_redis_restart(prod_stack):
    with prod_stack.client() as client:
        assert login(client, prod_stack.origin, FIRST_USER).status_code == 200
        prod_stack.compose("restart", "redis")
        prod_stack.compose("up", "--detach", "--wait", "--no-build", "redis", timeout=120)

        response = me(client)
    assert response.status_code == 200
    assert response.json()["email"] == FIRST_USER


def test_data_survives_down_and_up(prod_stack):
    prod_stack.compose("down", "--timeout", "20")
    prod_stack.up()

    with prod_stack.client() as client:
        assert login(client, prod_stack.origin, FIRST_USER).status_code == 200


def user_emails(stack: Stack) -> list[str]:
    return stack.sql("SELECT email FROM accounts_user ORDER BY id")


def test_backup_then_restore_gives_the_same_rows(prod_stack, workdir):
    before = user_emails(prod_stack)
    assert FIRST_USER in before

    backup = prod_stack.make("backup")
    [name] = re.findall(r"backup: wrote /backups/(\S+\.dump)", backup.stdout)
    # Off the host and back, as an operator would: the dump and its signed manifest, private files of
    # root's, and gone from the volume as on a new host.
    manifest = name.removesuffix(".dump") + ".counts"
    for file in (name, manifest):
        prod_stack.compose("cp", f"db:/backups/{file}", str(workdir / "prod" / file))
        (workdir / "prod" / file).chmod(0o600)
    prod_stack.exec("db", "rm", f"/backups/{name}", f"/backups/{manifest}")
    copy = workdir / "prod" / name

    with prod_stack.client() as client:
        assert signup(client, prod_stack.origin, new_email()).status_code == 201
    assert len(user_emails(prod_stack)) == len(before) + 1

    restored = prod_stack.make("restore", f"FILE={copy}")
    assert f"copied {copy} into the backups volume as {name}" in restored.stdout
    assert "restore: app now holds" in restored.stdout

    assert user_emails(prod_stack) == before
    with prod_stack.client() as client:
        assert me(client).status_code == 401
        assert login(client, prod_stack.origin, FIRST_USER).status_code == 200


def test_restore_of_a_broken_file_changes_nothing(prod_stack):
    before = user_emails(prod_stack)
    prod_stack.exec("db", "sh", "-c", "echo not-a-dump > /backups/broken.dump")

    result = prod_stack.make("restore", "FILE=broken.dump", check=False)

    assert result.returncode != 0
    assert "cannot be read as a pg_dump custom-format archive" in result.stderr + result.stdout
    assert user_emails(prod_stack) == before
    with prod_stack.client() as client:
        assert login(client, prod_stack.origin, FIRST_USER).status_code == 200


# ---------------------------------------------------------------- containers


def test_every_container_runs_as_non_root_and_hardened(prod_stack):
    containers = prod_stack.container_ids(all_states=True)
    assert set(containers) == {"db", "redis", "migrate", "backend", "nginx", "backup"}
    for service, container_id in containers.items():
        details = docker_inspect(container_id)
        config, host = details["Config"], details["HostConfig"]
        assert config["User"] not in ("", "root", "0"), service
        assert host["ReadonlyRootfs"] is True, service
        assert host["CapDrop"] == ["ALL"], service
        assert not host["CapAdd"], service
        assert "no-new-privileges:true" in host["SecurityOpt"], service
        assert host["Memory"] > 0, service
        assert host["NanoCpus"] > 0, service
        if service in ("nginx", "backend"):  # a line per request: a day's worth (compose.prod.yaml)
            rotation = {"max-file": "10", "max-size": "50m", "compress": "true"}
        else:
            rotation = {"max-file": "5", "max-size": "10m"}
        assert host["LogConfig"] == {"Type": "json-file", "Config": rotation}, service
        if service == "migrate":
            assert (details["State"]["Status"], details["State"]["ExitCode"]) == ("exited", 0)
            continue
        assert host["RestartPolicy"]["Name"] == "unless-stopped", service
        assert "0" not in prod_stack.process_uids(service), service


def test_no_container_definition_holds_a_secret(prod_stack):
    """The secrets reach the containers as files (compose.prod.yaml's secrets, written by scripts/compose
    from .env): `docker inspect` of every container, the exited migrate included, shows no secret's value
    (environment, command, mounts, labels), and the backend reads them from its files."""
    values = prod_stack.env_values()
    secrets = ("SECRET_KEY", "DB_PASSWORD", "DB_APP_PASSWORD", "REDIS_PASSWORD", "BACKUP_KEY")
    containers = prod_stack.container_ids(all_states=True)
    assert set(containers) == {"db", "redis", "migrate", "backend", "nginx", "backup"}
    for service, container_id in containers.items():
        inspected = json.dumps(docker_inspect(container_id))
        for name in secrets:
            assert values[name] not in inspected, (service, name)
    listing = prod_stack.exec("backend", "ls", "/run/secrets").stdout.split()
    assert set(listing) == {"secret_key", "redis_url", "email_host_password", "db_app_password"}
    environment = prod_stack.exec("backend", "env").stdout.splitlines()
    assert "SECRET_KEY_FILE=/run/secrets/secret_key" in environment


def test_only_nginx_publishes_ports_and_data_services_have_no_way_out(prod_stack):
    containers = prod_stack.container_ids()
    for service, container_id in containers.items():
        details = docker_inspect(container_id)
        published = {
            port: bindings for port, bindings in details["NetworkSettings"]["Ports"].items() if bindings
        }
        if service == "nginx":
            assert {binding["HostIp"] for bindings in published.values() for binding in bindings} == {
                "127.0.0.1"
            }
        else:
            assert published == {}, service
        if service in ("db", "redis"):
            networks = details["NetworkSettings"]["Networks"]
            assert list(networks) == [f"{prod_stack.project}_data"], service
    assert docker_inspect(f"{prod_stack.project}_data")["Internal"] is True


# Sent from a container on the data network straight to gunicorn, past nginx: forged forwarding headers.
FORGED_REQUEST = """
import http.client, sys
connection = http.client.HTTPConnection("backend", 8000, timeout=10)
connection.request("GET", "/api/v1/auth/csrf", headers={
    "Host": "localhost", "X-Request-ID": sys.argv[1],
    "X-Forwarded-Proto": "https", "X-Forwarded-For": "6.6.6.6",
})
print(connection.getresponse().status, connection.sock.getsockname()[0])
"""


def test_a_container_on_the_data_network_cannot_forge_the_forwarded_headers(prod_stack):
    """Only nginx's network may say which scheme the client used and which address it has: a container on
    the data network (db, redis, backup, migrate) reaches gunicorn directly, and is answered as what it
    is, a plain-HTTP client with its own address, counted as that by the throttles."""
    image = docker_inspect(prod_stack.container_ids()["backend"])["Config"]["Image"]
    request_id = f"forged-{time.time_ns()}"
    output = run(
        [
            "docker", "run", "--rm", "--network", f"{prod_stack.project}_data",
            image, "python", "-c", FORGED_REQUEST, request_id,
        ],
        cwd=REPO,
        env=clean_environment({}),
    ).stdout  # fmt: skip
    status, own_address = output.split()

    # Plain HTTP is redirected to HTTPS, not served as if nginx had terminated TLS.
    assert status == "301"
    [line] = [line for line in prod_stack.logs("backend") if line.get("request_id") == request_id]
    assert line["client_ip"] == own_address != "6.6.6.6"


# ---------------------------------------------------------------- configuration errors


def test_compose_names_a_missing_required_variable(prod_stack, workdir):
    env_file = prod_stack.env_file
    without_secret = workdir / "prod" / "no-secret.env"
    without_secret.write_text(
        "".join(
            line + "\n" for line in env_file.read_text().splitlines() if not line.startswith("SECRET_KEY=")
        )
    )
    result = run(
        ["scripts/compose", "prod", "config"],
        cwd=REPO,
        env={**prod_stack.env, "ENV_FILE": str(without_secret)},
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_the_backend_refuses_to_start_without_secret_key(prod_stack):
    result = prod_stack.compose(
        "run", "--rm", "--no-deps", "--env", "SECRET_KEY_FILE=", "backend", check=False, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr
    assert "Required environment variable(s) not set: SECRET_KEY" in result.stdout + result.stderr
