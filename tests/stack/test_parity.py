"""What a client sees of the dev stack and of the production stack, side by side: the same requests sent
through each stack's nginx, as a SPA on an allowed origin sends them, and every difference in status,
headers, cookies (names and attributes), CORS answers, error bodies and the schema's paths is one that
docs/frontend.md lists ("What differs between development and production"), and every listed one of
these kinds is still there."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import httpx

from .api import PASSWORD, csrf_headers, new_email
from .stacks import DEV_SERVER_PORT, PROD_SPA_PORT, REPO, Stack

# The SPA origin each stack's CORS_ALLOWED_ORIGINS lists (conftest.py), and one neither lists.
SPA_ORIGINS = {"dev": f"http://localhost:{DEV_SERVER_PORT}", "prod": f"https://localhost:{PROD_SPA_PORT}"}
UNLISTED_ORIGIN = "https://unlisted.example.com"
# Headers whose values differ from one response to the next.
VOLATILE_HEADERS = {"date", "content-length", "x-request-id", "set-cookie", "etag", "last-modified"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: dict[str, dict[str, str]] = field(default_factory=dict)
    body: Any = None


def answer(response: httpx.Response, stack: Stack, spa_origin: str) -> Answer:
    """What a client sees, with the stack's own origins and the test's email addresses made neutral."""

    def neutral(text: str) -> str:
        text = text.replace(spa_origin, "<spa>").replace(stack.origin, "<api>")
        text = re.sub(rf"localhost:({stack.https_port}|{stack.http_port})", "localhost:<port>", text)
        return re.sub(r"stack-[0-9a-f]{8}@example\.com", "<email>", text)

    headers = {
        name: neutral(", ".join(response.headers.get_list(name)))
        for name in response.headers
        if name not in VOLATILE_HEADERS
    }
    cookies: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            cookies[name] = {attribute: str(value) for attribute, value in morsel.items() if value}
            cookies[name].pop("expires", None)
    body: Any = None
    if response.headers.get("content-type", "").startswith("application/json") and response.content:
        data = response.json()
        if isinstance(data, dict) and set(data) == {"message", "code", "details"}:
            body = {"message": data["message"], "code": data["code"], "details": sorted(data["details"])}
        elif isinstance(data, dict) and "paths" in data:
            body = {path: sorted(operations) for path, operations in data["paths"].items()}
        elif isinstance(data, dict):
            body = sorted(data)
    return Answer(response.status_code, headers, cookies, body)


def probes(stack: Stack, spa_origin: str) -> dict[str, Answer]:
    """The same requests to one stack, in order: anonymous, then signed up, then logged out."""
    seen: dict[str, Answer] = {}
    origin = {"Origin": spa_origin}
    with stack.client() as client:

        def probe(name: str, send: Callable[[], httpx.Response]) -> None:
            seen[name] = answer(send(), stack, spa_origin)

        probe("GET auth/me, anonymous", lambda: client.get("/api/v1/auth/me", headers=origin))
        probe("GET auth/csrf", lambda: client.get("/api/v1/auth/csrf", headers=origin))
        probe(
            "OPTIONS auth/signup (preflight)",
            lambda: client.options(
                "/api/v1/auth/signup",
                headers={
                    **origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,x-csrftoken",
                },
            ),
        )
        probe(
            "OPTIONS auth/signup (preflight), unlisted origin",
            lambda: client.options(
                "/api/v1/auth/signup",
                headers={"Origin": UNLISTED_ORIGIN, "Access-Control-Request-Method": "POST"},
            ),
        )
        probe(
            "GET auth/me, unlisted origin",
            lambda: client.get("/api/v1/auth/me", headers={"Origin": UNLISTED_ORIGIN}),
        )
        probe(
            "POST auth/login, wrong password",
            lambda: client.post(
                "/api/v1/auth/login",
                json={"email": new_email(), "password": PASSWORD},
                headers=csrf_headers(client, spa_origin),
            ),
        )
        probe(
            "POST auth/signup",
            lambda: client.post(
                "/api/v1/auth/signup",
                json={"email": new_email(), "password": PASSWORD},
                headers=csrf_headers(client, spa_origin),
            ),
        )
        probe("GET auth/me", lambda: client.get("/api/v1/auth/me", headers=origin))
        probe(
            "PATCH auth/me without X-CSRFToken",
            lambda: client.patch("/api/v1/auth/me", json={"first_name": "Ada"}, headers=origin),
        )
        probe(
            "PATCH auth/me, a form body",
            lambda: client.patch(
                "/api/v1/auth/me",
                content="first_name=Ada",
                headers={
                    **csrf_headers(client, spa_origin),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            ),
        )
        probe(
            "PATCH auth/me, an unknown field",
            lambda: client.patch(
                "/api/v1/auth/me", json={"nick": "Ada"}, headers=csrf_headers(client, spa_origin)
            ),
        )
        probe(
            "PATCH auth/me",
            lambda: client.patch(
                "/api/v1/auth/me", json={"first_name": "Ada"}, headers=csrf_headers(client, spa_origin)
            ),
        )
        probe(
            "DELETE auth/me",
            lambda: client.delete("/api/v1/auth/me", headers=csrf_headers(client, spa_origin)),
        )
        probe("GET an unknown API path", lambda: client.get("/api/v1/no-such-endpoint", headers=origin))
        probe("GET a path outside the API", lambda: client.get("/no-such-page"))
        probe(
            "POST auth/logout",
            lambda: client.post("/api/v1/auth/logout", headers=csrf_headers(client, spa_origin)),
        )
        probe("GET auth/me, logged out", lambda: client.get("/api/v1/auth/me", headers=origin))
        probe("GET schema", lambda: client.get("/api/v1/schema", headers={"Accept": "application/json"}))
    with stack.plain_http_client() as client:
        probe("GET auth/me over plain HTTP", lambda: client.get("/api/v1/auth/me"))
    return seen


def differences(dev: dict[str, Answer], prod: dict[str, Answer]) -> dict[str, list[str]]:
    """Each difference by the name docs/frontend.md lists it under, with where it was seen."""
    found: dict[str, list[str]] = {}

    def note(name: str, where: str) -> None:
        found.setdefault(name, []).append(where)

    for probe, seen in dev.items():
        other = prod[probe]
        if seen.status != other.status:
            note(f"status {probe}", f"{seen.status} / {other.status}")
        for header in seen.headers.keys() | other.headers.keys():
            if seen.headers.get(header) != other.headers.get(header):
                note(f"header {header}", f"{probe}: {seen.headers.get(header)} / {other.headers.get(header)}")
        names = {name.removeprefix("__Host-"): name for name in seen.cookies}
        other_names = {name.removeprefix("__Host-"): name for name in other.cookies}
        for cookie in names.keys() | other_names.keys():
            if names.get(cookie) != other_names.get(cookie):
                note(f"cookie {cookie} name", f"{probe}: {names.get(cookie)} / {other_names.get(cookie)}")
            attributes = seen.cookies.get(names.get(cookie, ""), {})
            other_attributes = other.cookies.get(other_names.get(cookie, ""), {})
            if cookie in names and cookie in other_names:
                for attribute in attributes.keys() | other_attributes.keys():
                    if attributes.get(attribute) != other_attributes.get(attribute):
                        note(f"cookie {cookie} {attribute}", probe)
        if seen.body != other.body:
            note(f"body {probe}", json.dumps([seen.body, other.body])[:500])
    return found


def listed_differences() -> set[str]:
    """The names in the first column of docs/frontend.md's table that are of the kinds compared here."""
    section = (REPO / "docs" / "frontend.md").read_text()
    section = section.split("## What differs between development and production", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names = {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}
    return {name for name in names if name.split(" ", 1)[0] in {"status", "header", "cookie", "body"}}


def test_what_a_client_sees_differs_between_the_stacks_only_as_the_frontend_guide_lists(
    dev_stack, prod_stack
):
    dev = probes(dev_stack, SPA_ORIGINS["dev"])
    prod = probes(prod_stack, SPA_ORIGINS["prod"])
    # The probes did what they should, in both.
    assert prod["POST auth/signup"].status == 201
    assert prod["GET auth/me"].status == 200
    assert prod["GET auth/me, logged out"].status == 401
    assert prod["GET schema"].body, "the schema's paths"
    assert "access-control-allow-origin" in prod["GET auth/csrf"].headers

    found = differences(dev, prod)

    assert set(found) == listed_differences(), found
