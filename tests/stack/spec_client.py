"""The API contract as a SPA written from the specification alone meets it (tests/spa/spec.js): the same
checks in headless Chromium against the dev stack, the production stack and the Swarm stack, so that a
frontend that works in development works in production."""

from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from .api import PASSWORD, new_email

WRONG_PASSWORD = "not the password at all"  # noqa: S105 (a test account)


def call(page: Page, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """spec.js's call: the status and the JSON body (None for a 204)."""
    answer = page.evaluate(
        "([method, path, body]) => spec.call(method, path, body ?? undefined)", [method, path, body]
    )
    return answer["status"], answer["body"]


def assert_error(answer: tuple[int, Any], status: int, code: str) -> None:
    assert answer[0] == status, answer
    assert set(answer[1]) == {"message", "code", "details"}, answer
    assert answer[1]["code"] == code, answer


def expect_view(page: Page, view: str) -> None:
    expect(page.locator("body")).to_have_attribute("data-view", view)


def open_spec_spa(context: BrowserContext, page_url: str) -> Page:
    """The spec's SPA, loaded: its session check (GET auth/me) has answered."""
    page = context.new_page()
    with page.expect_response(lambda response: response.url.endswith("/api/v1/auth/me")) as loaded:
        page.goto(page_url)
    assert loaded.value.status in (200, 401)
    return page


def assert_the_spec_contract_holds(context: BrowserContext, page_url: str) -> None:
    """The spec's whole flow: on load GET auth/me is 401 and shows the login view (and the browser holds
    the csrftoken cookie the spec says to read); signup, PATCH me, a reload that keeps the session,
    logout, a 401 that shows the login view, a wrong password's error in the error shape, and login,
    each unsafe request with the csrftoken cookie's value in X-CSRFToken, all with credentials. Three
    requests under the `auth` rate, which the dev stack keeps at its default."""
    page = open_spec_spa(context, page_url)
    expect_view(page, "login-view")
    assert page.evaluate("spec.cookie('csrftoken')"), "GET auth/me set no csrftoken cookie the SPA can read"

    email = new_email()
    status, user = call(page, "POST", "auth/signup", {"email": email, "password": PASSWORD})
    assert status == 201, user
    assert user["email"] == email
    expect_view(page, "user-view")

    status, user = call(page, "PATCH", "auth/me", {"first_name": "Ada"})
    assert (status, user["first_name"]) == (200, "Ada"), user

    with page.expect_response(lambda response: response.url.endswith("/api/v1/auth/me")) as reloaded:
        page.reload()
    assert reloaded.value.status == 200
    expect_view(page, "user-view")
    expect(page.locator("#user-email")).to_have_text(email)

    assert call(page, "POST", "auth/logout") == (204, None)
    assert_error(call(page, "GET", "auth/me"), 401, "NOT_AUTHENTICATED")
    expect_view(page, "login-view")

    assert_error(
        call(page, "POST", "auth/login", {"email": email, "password": WRONG_PASSWORD}),
        400,
        "INVALID_CREDENTIALS",
    )
    status, user = call(page, "POST", "auth/login", {"email": email, "password": PASSWORD})
    assert (status, user["email"]) == (200, email), user
    expect_view(page, "user-view")
    status, user = call(page, "GET", "auth/me")
    assert (status, user["first_name"]) == (200, "Ada"), user
