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


def assert_an_owned_resource_serves(origin: str, client_for, path: str = "/api/v1/notes") -> None:
    """What `make app` gives (docs/extending.md), through nginx: create, list with search, read, PATCH,
    DELETE by its owner; another user's row answers 404 like a missing one. ``client_for()`` makes an
    HTTPS client of the stack."""
    with client_for() as owner, client_for() as other:
        for client in (owner, other):
            assert signup(client, origin, new_email()).status_code == 201
        created = owner.post(
            path, json={"title": "groceries", "body": "milk"}, headers=csrf_headers(owner, origin)
        )
        assert created.status_code == 201, created.text
        row = f"{path}/{created.json()['id']}"
        listed = owner.get(path, params={"q": "milk"})
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()["results"]] == [created.json()["id"]]
        assert owner.get(row).json()["title"] == "groceries"
        stranger = other.get(row)
        assert (stranger.status_code, stranger.json()["code"]) == (404, "NOT_FOUND")
        assert other.get(path).json()["results"] == []
        patched = owner.patch(row, json={"title": "shopping"}, headers=csrf_headers(owner, origin))
        assert (patched.status_code, patched.json()["title"]) == (200, "shopping"), patched.text
        assert owner.delete(row, headers=csrf_headers(owner, origin)).status_code == 204
        assert owner.get(row).status_code == 404
