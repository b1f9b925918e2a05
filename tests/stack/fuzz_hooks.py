"""schemathesis hooks for test_fuzz.py (loaded by `st run` through SCHEMATHESIS_HOOKS).

- Every generated request goes out as the single-page app sends it, logged in, with the CSRF cookie, the
  X-CSRFToken header and the Origin. The session is made again every few seconds, since a fuzzed logout
  or password change ends it: a login to the same account while that works, else a fresh account.
- domain_rejection: where schemathesis.toml lets well-formed data be refused with 400, the 400 must say
  one of the reasons a schema cannot state, and nothing else (a VALIDATION_ERROR about a field's format
  would mean the schema lacks a rule the API enforces).

The origin comes from FUZZ_ORIGIN, and the CA of an HTTPS one from FUZZ_CA_FILE. The cookies are those the
server sets; the CSRF cookie is the API contract's csrftoken everywhere, read by that name only.
"""

import os
import secrets
from dataclasses import dataclass
from typing import Any

import requests
import schemathesis

ORIGIN = os.environ["FUZZ_ORIGIN"]
VERIFY: str | bool = os.environ.get("FUZZ_CA_FILE", True)
PASSWORD = "correct horse battery staple 42"  # noqa: S105 (a test account)
CSRF_COOKIE = "csrftoken"


@dataclass(frozen=True)
class Session:
    cookies: dict[str, str]
    csrf_token: str


@schemathesis.auth(refresh_interval=5)
class LoggedIn:
    # One account while it can log in: what a scenario creates stays its own, which an API answering
    # 404 for another user's objects needs. A new one when it cannot (after a fuzzed password change,
    # or the login limits).
    email: str | None = None

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> Session:
        with requests.Session() as client:
            # verify on each request: a session's own would lose to REQUESTS_CA_BUNDLE from the environment.
            client.get(f"{ORIGIN}/api/v1/auth/csrf", timeout=15, verify=VERIFY).raise_for_status()

            def post(path: str, email: str) -> requests.Response:
                return client.post(
                    f"{ORIGIN}/api/v1/auth/{path}",
                    json={"email": email, "password": PASSWORD},
                    headers={"X-CSRFToken": client.cookies[CSRF_COOKIE], "Origin": ORIGIN},
                    timeout=15,
                    verify=VERIFY,
                )

            response = post("login", self.email) if self.email else None
            if response is None or not response.ok:
                self.email = f"fuzz-{secrets.token_hex(6)}@example.com"
                response = post("signup", self.email)
            response.raise_for_status()
            cookies = client.cookies.get_dict()
            return Session(cookies, cookies[CSRF_COOKIE])

    def set(self, case: schemathesis.Case, data: Session, context: schemathesis.AuthContext) -> None:
        cookies: dict[str, Any] = dict(case.cookies or {})
        cookies.update(data.cookies)
        case.cookies = cookies
        headers: dict[str, Any] = dict(case.headers or {})
        headers.update({"X-CSRFToken": data.csrf_token, "Origin": ORIGIN, "Referer": f"{ORIGIN}/"})
        case.headers = headers


# For each operation, the 400s well-formed input may get: error code, and for VALIDATION_ERROR the fields
# it may name (a taken email; a password too common, too close to the email, or only digits).
DOMAIN_REJECTIONS: dict[str, dict[str, set[str]]] = {
    "POST /api/v1/auth/signup": {"VALIDATION_ERROR": {"email", "password"}},
    "POST /api/v1/auth/login": {"INVALID_CREDENTIALS": set()},
    "POST /api/v1/auth/password/change": {"VALIDATION_ERROR": {"current_password", "new_password"}},
    "POST /api/v1/auth/password/reset/confirm": {
        "INVALID_TOKEN": set(),
        "VALIDATION_ERROR": {"new_password"},
    },
}


@schemathesis.check
def domain_rejection(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    meta = case.meta
    if response.status_code != 400 or meta is None or not meta.generation.mode.is_positive:
        return
    allowed = DOMAIN_REJECTIONS.get(case.operation.label)
    if allowed is None:
        return
    body = response.json()
    assert body["code"] in allowed, f"well-formed input refused with {body}"
    assert set(body["details"]) <= allowed[body["code"]], f"well-formed input refused with {body}"
