"""What the browser tests need besides the stacks: Debian's headless Chromium driven by Playwright, the
test SPA (tests/spa) served from a second origin, and pages of other origins and sites."""

import base64
import functools
import hashlib
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from .api import CSRF_COOKIE, PASSWORD, new_email
from .stacks import ARTIFACTS, REPO, Stack

SPA_DIRECTORY = REPO / "tests" / "spa"
# The SPA's API clients (tests/spa/api.js), picked with ?transport=.
TRANSPORTS = ["fetch", "axios"]

# No sandbox (CI runs as root), no GPU, and none of Chromium's own traffic (updates, sync, field
# trials), which this machine's closed network would refuse at every start.
# localhost and the test's example.com hosts are IPv4 loopback, like the other stack tests' clients;
# every other name fails to resolve: nothing the browser does can leave this machine.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP localhost 127.0.0.1, MAP *.example.com 127.0.0.1, MAP * ~NOTFOUND,"
    " EXCLUDE 127.0.0.1",
]


def spki_hash(certificate: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: what Chromium's
    --ignore-certificate-errors-spki-list takes to trust that one key."""
    public_key = subprocess.run(
        ["openssl", "x509", "-in", str(certificate), "-noout", "-pubkey"],
        capture_output=True,
        check=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=public_key,
        capture_output=True,
        check=True,
    ).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def launch_chromium(
    playwright: Playwright, trusted_certificates: list[Path], *, home: Path | None = None
) -> Browser:
    """Headless Chromium from Debian's package with a fresh profile (Playwright makes a new
    --user-data-dir for every launch) that also trusts the given certificates, whatever signed them.
    With `home`, Chromium runs with that HOME, whose NSS database (.pki/nssdb) holds the CAs the user
    trusts, as on a developer's Linux desktop."""
    executable = shutil.which("chromium")
    assert executable, "Chromium is not installed: apt-get install chromium (Debian's package)"
    args = list(CHROMIUM_FLAGS)
    if trusted_certificates:
        trusted = ",".join(spki_hash(certificate) for certificate in trusted_certificates)
        args.append(f"--ignore-certificate-errors-spki-list={trusted}")
    env = {**os.environ, "HOME": str(home)} if home is not None else None
    return playwright.chromium.launch(executable_path=executable, headless=True, args=args, env=env)


def chromium_trusting(playwright: Playwright, stack: Stack) -> Iterator[Browser]:
    """launch_chromium trusting the stack's certificate, closed afterwards: a module's `browser` fixture
    yields from it."""
    assert stack.certificate is not None
    chromium = launch_chromium(playwright, [stack.certificate])
    yield chromium
    chromium.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        connection.settimeout(15)
        if self.tls is not None:
            # The handshake runs in the request's thread (finish_request), not in the accept loop.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.do_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a connection the browser dropped, or a handshake it gave up on


@contextmanager
def serve(
    directory: Path, port: int, *, certificate: Path | None = None, key: Path | None = None
) -> Iterator[str]:
    """Serves the directory's files on 127.0.0.1:port, over HTTPS when a certificate is given; yields
    the origin (http[s]://localhost:port)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _Server(("127.0.0.1", port), handler)
    scheme = "http"
    if certificate is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(certificate, key)
        server.tls = tls
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, name=f"serve-{port}", daemon=True)
    thread.start()
    try:
        yield f"{scheme}://localhost:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG in artifacts/browser/ (ignored by git; listed at the end of the run)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


# ---------------------------------------------------------------- driving the test SPA


def open_spa(context: BrowserContext, spa_origin: str, api_origin: str, transport: str) -> Page:
    page = context.new_page()
    page.goto(f"{spa_origin}/?transport={transport}&api={api_origin}")
    expect(page.locator("#transport")).to_have_text(transport)
    return page


def expect_view(page: Page, view: str) -> None:
    expect(page.locator("body")).to_have_attribute("data-view", view)


def expect_error(page: Page, code: str) -> None:
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error .code")).to_have_text(code)


def submit(page: Page, form: str, **fields: str) -> None:
    for name, value in fields.items():
        page.locator(f"{form} [name={name}]").fill(value)
    page.locator(f"{form} button").click()


def me_status(page: Page) -> int:
    """Reloads the page and returns the status of its session check (GET auth/me)."""
    with page.expect_response(lambda response: response.url.endswith("/api/v1/auth/me")) as check:
        page.reload()
    return check.value.status


def cookies(context: BrowserContext, origin: str) -> dict[str, dict[str, Any]]:
    return {cookie["name"]: dict(cookie) for cookie in context.cookies(origin)}


def sign_up(page: Page, first_name: str = "") -> tuple[str, str]:
    """Signs a new user up with the SPA's form, from its login view; returns the email and the user
    id the SPA shows."""
    expect_view(page, "login-view")
    email = new_email()
    submit(page, "#signup-form", email=email, password=PASSWORD, first_name=first_name)
    expect_view(page, "user-view")
    expect(page.locator("#user-name")).to_have_text(first_name or email)
    expect(page.locator("#user-email")).to_have_text(email)
    return email, page.locator("#user-id").inner_text()


def reload_logout_login(page: Page, cookie_origin: str, email: str, user_id: str) -> None:
    """The flow after signup: a reload keeps the session; logout ends it (the session cookie of
    cookie_origin is gone, and the load check's 401 shows the login view, not an error); logging in
    again opens the same user."""
    assert me_status(page) == 200
    expect_view(page, "user-view")
    expect(page.locator("#user-id")).to_have_text(user_id)

    page.locator("#logout").click()
    expect_view(page, "login-view")
    assert not {"sessionid", "__Host-sessionid"} & set(cookies(page.context, cookie_origin))
    assert me_status(page) == 401
    expect_view(page, "login-view")
    expect(page.locator("#error")).to_be_hidden()

    submit(page, "#login-form", email=email, password=PASSWORD)
    expect_view(page, "user-view")
    expect(page.locator("#user-id")).to_have_text(user_id)
    assert me_status(page) == 200


def assert_session_cookie_flags(
    held: dict[str, dict[str, Any]], *, secure: bool, session: str = "sessionid"
) -> None:
    """The flags of the cookies the browser holds after a signup: the session's (__Host-sessionid in
    production), the known-device cookie's (login_device, __Host-login_device in production) and the
    CSRF cookie's (csrftoken everywhere): all SameSite=Lax and Secure over HTTPS, and host-only on
    Path=/; the session and device cookies HttpOnly, the CSRF cookie readable by the SPA."""
    csrf = CSRF_COOKIE
    device = "__Host-login_device" if session.startswith("__Host-") else "login_device"
    assert set(held) == {session, device, csrf}
    assert held[session]["httpOnly"] is True
    assert held[device]["httpOnly"] is True
    assert held[csrf]["httpOnly"] is False
    for name in (session, device, csrf):
        assert held[name]["secure"] is secure, name
        assert held[name]["sameSite"] == "Lax", name
        assert held[name]["path"] == "/", name


def admin_login(context: BrowserContext, stack: Stack, email: str) -> Page:
    """Logs a new superuser into the Django admin with its login form: a POST from the API's own
    origin, which passes Django's same-origin check only when Django sees the request as HTTPS."""
    createsuperuser = ["python", "manage.py", "createsuperuser", "--noinput", "--email", email]
    stack.exec("backend", *createsuperuser, env={"DJANGO_SUPERUSER_PASSWORD": PASSWORD})
    page = context.new_page()
    page.goto(f"{stack.origin}/admin/login/")
    page.locator("[name=username]").fill(email)
    page.locator("[name=password]").fill(PASSWORD)
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.locator("[type=submit]").click()
    assert posted.value.status == 302, posted.value.url
    page.wait_for_url(f"{stack.origin}/admin/")
    return page
