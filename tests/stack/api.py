"""What the stack tests do through nginx, as a single-page app on the same origin would."""

import re
import secrets
from http.cookies import Morsel, SimpleCookie

import httpx

PASSWORD = "correct horse battery staple 42"  # noqa: S105 (a test account)
# The production stack's nginx sends each of these exactly once on every response, errors included.
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
}
# The CSRF cookie: the API contract's name, in every stack.
CSRF_COOKIE = "csrftoken"


def csrf_cookie(client: httpx.Client) -> str | None:
    return client.cookies.get(CSRF_COOKIE)


def csrf_headers(client: httpx.Client, origin: str) -> dict[str, str]:
    """The CSRF cookie's value as X-CSRFToken, with the Origin a browser sends on a POST. The token
    rotates at login, signup and logout, so it is read again before each unsafe request."""
    token = csrf_cookie(client)
    if token is None:
        response = client.get("/api/v1/auth/csrf")
        assert response.status_code == 200, response.text
        token = csrf_cookie(client)
        assert token is not None, response.headers
    return {"X-CSRFToken": token, "Origin": origin}


def set_cookies(response: httpx.Response) -> dict[str, Morsel[str]]:
    """The cookies a response sets, with their attributes."""
    cookies: dict[str, Morsel[str]] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        cookies.update(jar)
    return cookies


def new_email() -> str:
    return f"stack-{secrets.token_hex(4)}@example.com"


def signup(client: httpx.Client, origin: str, email: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD},
        headers=csrf_headers(client, origin),
    )


def login(client: httpx.Client, origin: str, email: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers=csrf_headers(client, origin),
    )


def logout(client: httpx.Client, origin: str) -> httpx.Response:
    return client.post("/api/v1/auth/logout", headers=csrf_headers(client, origin))


def me(client: httpx.Client) -> httpx.Response:
    return client.get("/api/v1/auth/me")


def assert_security_headers_once(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], (name, response.status_code, response.url)
    assert len(response.headers.get_list("x-request-id")) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.headers["server"] == "nginx", "no version in the Server header"
