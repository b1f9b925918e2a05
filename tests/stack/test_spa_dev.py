"""The test SPA (tests/spa) in headless Chromium against the dev stack, run the way the README tells a
frontend developer to: Vite's dev server on http://localhost with /api proxied to the stack's HTTPS
port (tests/spa/vite.config.js)."""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, expect
from playwright.sync_api import Error as PlaywrightError

from .api import PASSWORD, new_email
from .browser import (
    SPA_DIRECTORY,
    TRANSPORTS,
    admin_login,
    assert_session_cookie_flags,
    chromium_trusting,
    cookies,
    expect_error,
    expect_view,
    launch_chromium,
    open_spa,
    reload_logout_login,
    screenshot,
    sign_up,
    submit,
)
from .spec_client import assert_the_spec_contract_holds
from .stacks import DEV_SERVER_PORT, REPO, Stack, clean_environment, developer_home, run


@pytest.fixture(scope="module")
def dev_server(dev_stack: Stack, workdir: Path) -> Iterator[str]:
    """`npm run dev` in tests/spa (Vite), with API_ORIGIN pointing at the dev stack's port."""
    npm = shutil.which("npm")
    assert npm, "npm is not installed"
    assert (SPA_DIRECTORY / "node_modules" / ".bin" / "vite").exists(), "run npm ci in tests/spa"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "API_ORIGIN": dev_stack.origin,
    }
    log = workdir / "vite.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [npm, "run", "dev", "--", "--host", "127.0.0.1", "--port", str(DEV_SERVER_PORT), "--strictPort"],
            cwd=SPA_DIRECTORY,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    origin = f"http://localhost:{DEV_SERVER_PORT}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"vite exited:\n{log.read_text()}"
            try:
                httpx.get(f"http://127.0.0.1:{DEV_SERVER_PORT}/", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"vite did not answer in 60 s:\n{log.read_text()}"
                time.sleep(0.5)
        yield origin
    finally:
        with contextlib.suppress(ProcessLookupError):  # vite exited by itself
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(playwright: Playwright, dev_stack: Stack) -> Iterator[Browser]:
    yield from chromium_trusting(playwright, dev_stack)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_flow_through_the_vite_dev_server(context, dev_server, transport):
    page = open_spa(context, dev_server, "", transport)
    expect(page.locator("#api-origin")).to_have_text(dev_server)
    email, user_id = sign_up(page, first_name="Grace")
    screenshot(page, f"spa-dev-{transport}-logged-in")

    # Cookies of the dev server's origin: not Secure (plain HTTP on localhost), the same otherwise.
    assert_session_cookie_flags(cookies(context, dev_server), secure=False)

    reload_logout_login(page, dev_server, email, user_id)


def test_a_spa_written_from_the_spec_works_through_the_vite_dev_server(context, dev_server):
    assert_the_spec_contract_holds(context, f"{dev_server}/spec.html")


def test_calling_the_https_api_directly_from_the_http_dev_server_keeps_no_session(
    context, dev_server, dev_stack
):
    """The pitfall the proxy avoids: http://localhost:5173 and https://localhost:8443 are different
    sites, so the browser neither stores nor sends the API's SameSite=Lax cookies, even with CORS."""
    page = open_spa(context, dev_server, dev_stack.origin, "fetch")
    expect_view(page, "login-view")  # CORS allows the dev server's origin: the 401 is readable
    submit(page, "#signup-form", email=new_email(), password=PASSWORD)
    expect_error(page, "CSRF_FAILED")  # the csrftoken cookie was never stored
    expect(page.locator("#error li[data-field=reason]")).to_contain_text("cookie")
    assert cookies(context, dev_stack.origin) == {}


def test_a_login_form_on_the_api_origin_passes_django_s_origin_check(context, dev_stack):
    """As in production: through nginx, Django sees HTTPS because TRUSTED_PROXY_COUNT=1 makes it
    trust X-Forwarded-Proto, so the same-origin admin login passes the Origin check."""
    page = admin_login(context, dev_stack, new_email())
    expect(page.locator("#site-name")).to_be_visible()


# ---------------------------------------------------------------- make trust-ca


def test_the_dev_stack_opens_without_a_warning_once_make_trust_ca_installed_its_ca(playwright, dev_stack):
    """`make trust-ca` copies the running dev stack's CA out of its volume and prints the steps; with
    INSTALL=1, run by a developer (not root), it adds the CA to their NSS database, which Chromium on
    Linux reads. No certificate is trusted any other way here: no SPKI list."""
    shown = run(
        ["make", "--no-print-directory", "trust-ca"],
        cwd=dev_stack.directory,
        env={**dev_stack.env, "COMPOSE_PROJECT_NAME": dev_stack.project},
    )
    copied = dev_stack.directory / "certs" / "dev-ca.pem"
    assert copied.read_text() == dev_stack.ca_file.read_text()
    assert "sudo update-ca-certificates" in shown.stdout
    assert "certutil -d sql:$HOME/.pki/nssdb -A -t C,," in shown.stdout

    home, untrusting_home = developer_home(), developer_home()
    ca = home / "dev-ca.pem"
    shutil.copy(copied, ca)
    as_developer = ["runuser", "-u", "nobody", "--"] if os.getuid() == 0 else []
    installed = run(
        [*as_developer, "env", f"HOME={home}", str(REPO / "scripts" / "trust-ca"), "--install", str(ca)],
        cwd=home,
        env=clean_environment({}),
    )
    assert f"trusted in the NSS database {home}/.pki/nssdb" in installed.stdout
    assert "skipped the system store" in installed.stdout or os.getuid() != 0

    url = f"{dev_stack.origin}/api/v1/health/live"
    try:
        chromium = launch_chromium(playwright, [], home=home)
        try:
            response = chromium.new_page().goto(url)
            assert response is not None
            assert response.status == 200
        finally:
            chromium.close()

        # The same browser without the CA in its NSS database refuses the certificate.
        chromium = launch_chromium(playwright, [], home=untrusting_home)
        try:
            with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
                chromium.new_page().goto(url)
        finally:
            chromium.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(untrusting_home, ignore_errors=True)
