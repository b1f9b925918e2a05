"""The test SPA (tests/spa) in headless Chromium against the prod stack over HTTPS, served from a second
origin of the same site (https://localhost:29444, in CORS_ALLOWED_ORIGINS), with both transports, and
in the production layout (https://app.example.com for https://api.example.com, both on 127.0.0.1).
What only a browser enforces is checked here: credentialed CORS, SameSite, Secure and HttpOnly cookies,
and CSRF against pages of other origins and sites."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from .api import CSRF_COOKIE, PASSWORD, new_email, signup
from .browser import (
    SPA_DIRECTORY,
    TRANSPORTS,
    admin_login,
    assert_session_cookie_flags,
    cookies,
    expect_error,
    expect_view,
    launch_chromium,
    me_status,
    open_spa,
    reload_logout_login,
    screenshot,
    serve,
    sign_up,
    submit,
)
from .spec_client import assert_the_spec_contract_holds
from .stacks import API_HOST, PROD_SPA_PORT, SPA_HOST, Stack

# An origin of the same site that is not in CORS_ALLOWED_ORIGINS, and a page of another site.
UNLISTED_PORT = PROD_SPA_PORT + 2
OTHER_SITE_PORT = PROD_SPA_PORT + 3


@pytest.fixture(scope="module")
def certificate(prod_stack: Stack) -> dict[str, Path]:
    """The prod stack's certificate for localhost (from `make certs`); the test's own HTTPS servers use it
    too."""
    assert prod_stack.certificate is not None
    return {"certificate": prod_stack.certificate, "key": prod_stack.certificate.with_name("privkey.pem")}


@pytest.fixture(scope="module")
def browser(playwright: Playwright, certificate: dict[str, Path]) -> Iterator[Browser]:
    chromium = launch_chromium(playwright, [certificate["certificate"]])
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def spa_origin(certificate: dict[str, Path]) -> Iterator[str]:
    with serve(SPA_DIRECTORY, PROD_SPA_PORT, **certificate) as origin:
        yield origin


def logged_in(context: BrowserContext, spa_origin: str, stack: Stack, transport: str = "fetch") -> Page:
    page = open_spa(context, spa_origin, stack.origin, transport)
    sign_up(page)
    return page


# ---------------------------------------------------------------- the SPA's whole flow


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_signup_reload_logout_login_from_another_origin(context, prod_stack, spa_origin, transport):
    page = open_spa(context, spa_origin, prod_stack.origin, transport)
    email, user_id = sign_up(page, first_name="Ada")  # from the login view: GET auth/me answered 401
    screenshot(page, f"spa-prod-{transport}-logged-in")

    held = cookies(context, prod_stack.origin)
    assert_session_cookie_flags(held, secure=True, session=prod_stack.session_cookie)
    # Host-only cookies (no Domain attribute), shared by the ports of localhost.
    assert {name: cookie["domain"] for name, cookie in held.items()} == {
        prod_stack.session_cookie: "localhost",
        "__Host-login_device": "localhost",
        CSRF_COOKIE: "localhost",
    }
    # The browser keeps the session cookie from scripts, not the CSRF cookie.
    visible = page.evaluate("document.cookie")
    assert f"{CSRF_COOKIE}=" in visible
    assert "sessionid" not in visible

    reload_logout_login(page, prod_stack.origin, email, user_id)


def test_a_spa_written_from_the_spec_works_against_the_production_stack(context, prod_stack, spa_origin):
    """The same checks as against the dev stack (test_spa_dev.py) and the Swarm stack (test_swarm.py),
    from a page of another port of the API's host, which can read its cookies."""
    assert_the_spec_contract_holds(context, f"{spa_origin}/spec.html?api={prod_stack.origin}")


def test_a_browser_holding_the_csrf_cookie_of_0_2_keeps_working(context, prod_stack, spa_origin):
    """Until 0.2 the production CSRF cookie was __Host-csrftoken, and the SPA of that time read that name
    first. A browser that still holds it, logged in, loads such a SPA: the session check on load drops
    the old cookie, and the SPA's next POST sends the csrftoken Django checks."""
    page = logged_in(context, spa_origin, prod_stack)
    context.add_cookies(
        [
            {
                "name": "__Host-csrftoken",
                "value": "0" * 32,
                "url": prod_stack.origin,
                "secure": True,
                "sameSite": "Lax",
            }
        ]
    )
    assert me_status(page) == 200  # the SPA's load, with both cookies
    assert "__Host-csrftoken" not in cookies(context, prod_stack.origin)
    status, body = page.evaluate(
        """async api => {
             const read = (name) => document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`))?.[1];
             const token = read('__Host-csrftoken') ?? read('csrftoken');  // 0.2's api.js
             const response = await fetch(`${api}/api/v1/auth/me`, {
               method: 'PATCH', credentials: 'include', body: JSON.stringify({first_name: 'Upgraded'}),
               headers: {'Content-Type': 'application/json', 'X-CSRFToken': token}});
             return [response.status, await response.json()];
           }""",
        prod_stack.origin,
    )
    assert (status, body.get("first_name")) == (200, "Upgraded"), body


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_production_layout_spa_and_api_on_two_hosts_of_one_domain(
    context, prod_stack, spa_origin, transport
):
    """app.example.com and api.example.com are one site, so the cookies travel with every call; but
    the SPA cannot read the API's CSRF cookie, and sends the token from auth/csrf's body."""
    api_origin = f"https://{API_HOST}:{prod_stack.https_port}"
    page = open_spa(context, spa_origin.replace("localhost", SPA_HOST), api_origin, transport)
    email, user_id = sign_up(page)

    held = cookies(context, api_origin)
    assert_session_cookie_flags(held, secure=True, session=prod_stack.session_cookie)
    assert {name: cookie["domain"] for name, cookie in held.items()} == {
        prod_stack.session_cookie: API_HOST,
        "__Host-login_device": API_HOST,
        CSRF_COOKIE: API_HOST,
    }
    assert page.evaluate("document.cookie") == ""

    reload_logout_login(page, api_origin, email, user_id)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_api_errors_are_shown_from_the_error_body(context, prod_stack, spa_origin, transport):
    page = open_spa(context, spa_origin, prod_stack.origin, transport)
    expect_view(page, "login-view")

    submit(page, "#login-form", email=new_email(), password=PASSWORD)
    expect_error(page, "INVALID_CREDENTIALS")
    expect_view(page, "login-view")

    submit(page, "#signup-form", email=new_email(), password="short", first_name="")  # noqa: S106
    expect_error(page, "VALIDATION_ERROR")
    expect(page.locator("#error .message")).not_to_be_empty()
    expect(page.locator("#error li[data-field=password]")).to_contain_text("password: ")
    expect_view(page, "login-view")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_401_after_the_load_check_shows_the_login_view(context, prod_stack, spa_origin, transport):
    page = logged_in(context, spa_origin, prod_stack, transport)
    expect_view(page, "user-view")

    # The session ends in another tab; this tab still shows the user until its next call.
    other_tab = context.new_page()
    other_tab.goto(page.url)
    other_tab.locator("#logout").click()
    expect_view(other_tab, "login-view")
    expect_view(page, "user-view")

    page.locator("#logout").click()
    expect_view(page, "login-view")
    expect_error(page, "NOT_AUTHENTICATED")


# ---------------------------------------------------------------- what the browser refuses


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_origin_not_in_cors_allowed_origins_cannot_read_responses(
    context, prod_stack, spa_origin, certificate, transport
):
    with serve(SPA_DIRECTORY, UNLISTED_PORT, **certificate) as unlisted_origin:
        page = open_spa(context, unlisted_origin, prod_stack.origin, transport)
        expect_error(page, "NETWORK_ERROR")  # the session check got no readable response
        expect(page.locator("#login-view")).to_be_hidden()
        expect(page.locator("#user-view")).to_be_hidden()

        # The same request from a script fails as a network error: the browser withholds a response
        # that does not allow this origin.
        with page.expect_event("requestfailed") as failed:
            error = page.evaluate(
                """api => fetch(`${api}/api/v1/auth/csrf`, {credentials: 'include'})
                            .then(() => 'read', error => error.name)""",
                prod_stack.origin,
            )
        assert error == "TypeError"
        assert failed.value.url == f"{prod_stack.origin}/api/v1/auth/csrf"

    # The API answered, without allowing this origin; it does allow the listed one.
    with prod_stack.client() as client:
        for origin, allowed in ((unlisted_origin, None), (spa_origin, spa_origin)):
            response = client.get("/api/v1/auth/csrf", headers={"Origin": origin})
            assert response.status_code == 200
            assert response.headers.get("access-control-allow-origin") == allowed


def forged_form_page(directory: Path, action: str, fields: dict[str, str]) -> None:
    """A page of another origin with a form that posts to the API, adding the CSRF cookie's value
    when the page can read it (same host, other port)."""
    inputs = "".join(f'<input type="hidden" name="{name}" value="{value}">' for name, value in fields.items())
    (directory / "forged.html").write_text(
        f"""<!doctype html><meta charset="utf-8"><title>forged</title>
<form method="post" action="{action}">{inputs}
<input type="hidden" name="csrfmiddlewaretoken" id="token"><button>Win a prize</button></form>
<script>
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]*)/);
  document.getElementById('token').value = match ? match[1] : '';
</script>"""
    )


@pytest.mark.parametrize(
    ("path", "attacker"),
    [
        ("/api/v1/auth/logout", "other site"),
        ("/api/v1/auth/logout", "same site, untrusted origin"),
        ("/api/v1/auth/login", "other site"),
        ("/api/v1/auth/login", "same site, untrusted origin"),
    ],
)
def test_a_form_post_from_another_origin_is_rejected_by_csrf(
    context, prod_stack, spa_origin, certificate, tmp_path, path, attacker
):
    page = logged_in(context, spa_origin, prod_stack)
    user_id = page.locator("#user-id").inner_text()
    # A login CSRF would log the victim into the attacker's account.
    intruder = new_email()
    with prod_stack.client() as client:
        assert signup(client, prod_stack.origin, intruder).status_code == 201

    forged_form_page(tmp_path, f"{prod_stack.origin}{path}", {"email": intruder, "password": PASSWORD})
    if attacker == "other site":
        server = serve(tmp_path, OTHER_SITE_PORT)  # http://127.0.0.1 is not the site of localhost
        page_url = f"http://127.0.0.1:{OTHER_SITE_PORT}/forged.html"
    else:
        server = serve(tmp_path, UNLISTED_PORT, **certificate)
        page_url = f"https://localhost:{UNLISTED_PORT}/forged.html"
    with server:
        forged = context.new_page()
        forged.goto(page_url)
        with forged.expect_response(lambda response: response.url.endswith(path)) as posted:
            forged.locator("button").click()
        response = posted.value
        assert response.request.method == "POST"
        assert response.status == 403
        body = json.loads(forged.locator("body").inner_text())
        assert body["code"] == "CSRF_FAILED"
        assert "origin" in body["details"]["reason"].lower()

    # The victim is still logged in as themself.
    assert me_status(page) == 200
    expect(page.locator("#user-id")).to_have_text(user_id)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_unsafe_request_without_the_csrf_header_is_rejected(context, prod_stack, spa_origin, transport):
    page = logged_in(context, spa_origin, prod_stack)
    # What the SPA's client does, minus the header: a bare fetch, or axios without the opt-in that
    # newer axios needs to send the header to another origin.
    without_header = {
        "fetch": """api => fetch(`${api}/api/v1/auth/logout`, {
                          method: 'POST', credentials: 'include', body: '{}',
                          headers: {'Content-Type': 'application/json'}})
                      .then(async response => [response.status, await response.json()])""",
        "axios": """async api => {
                      const {default: axios} = await import('axios');
                      const http = axios.create({baseURL: `${api}/api/v1`, withCredentials: true,
                          xsrfCookieName: 'csrftoken', xsrfHeaderName: 'X-CSRFToken'});
                      return http.post('/auth/logout').then(
                          response => [response.status, response.data],
                          error => [error.response.status, error.response.data]);
                    }""",
    }[transport]
    status, body = page.evaluate(without_header, prod_stack.origin)
    assert status == 403
    assert body["code"] == "CSRF_FAILED"
    assert "token" in body["details"]["reason"].lower()
    assert me_status(page) == 200  # still logged in


def test_a_login_form_on_the_api_origin_passes_django_s_origin_check(context, prod_stack):
    """Django compares a same-origin Origin (https://...) with the scheme nginx reports in
    X-Forwarded-Proto: the admin's login works only if Django sees the request as HTTPS."""
    page = admin_login(context, prod_stack, new_email())
    expect(page.locator("#site-name")).to_be_visible()


# ---------------------------------------------------------------- the API docs


def test_the_api_docs_render_with_nothing_loaded_from_outside_the_stack(context, prod_stack):
    page = context.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{prod_stack.origin}/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Backend API")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/auth/me").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    screenshot(page, "api-docs")

    assert any(url.endswith("/api/v1/schema") or "/api/v1/schema?" in url for url in requested)
    assert any("/static/" in url for url in requested)
    outside = [url for url in requested if not url.startswith(f"{prod_stack.origin}/")]
    assert outside == []
    assert problems == []
