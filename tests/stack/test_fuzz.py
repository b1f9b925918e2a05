"""The production stack's API fuzzed from its own OpenAPI schema (schemathesis), through nginx, with a
logged-in session and the CSRF header and Origin on unsafe requests, as the single-page app sends them.

Every operation gets schema-conforming and deliberately malformed requests (derandomized, so each run
sends the same ones); every answer is checked by schemathesis's default checks: no 5xx, a status, body,
content type and headers the schema documents, malformed input refused, well-formed input not refused
for an undocumented reason, unsupported methods answered 405 with Allow. The number of requests is
printed with the stack test's figures.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from .api import PASSWORD, new_email
from .stacks import FIGURES, Stack

pytestmark = pytest.mark.usefixtures("prod_stack")

# Generated requests per operation and generation phase; with the schema's own examples and the
# coverage phase's edge cases, about 1,500 requests in all, in about two minutes.
MAX_EXAMPLES = 60


@dataclass
class FuzzSession:
    """A requests session logged in to a fresh account, signed up again whenever a fuzzed request ended
    the session (a logout, a password change), so that every operation is tried logged in."""

    stack: Stack
    session: requests.Session = field(default_factory=requests.Session)
    logged_in: bool = False
    requests_sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.session.verify = str(self.stack.ca_file)

    def csrf_token(self) -> str:
        token = self.session.cookies.get(self.stack.csrf_cookie)
        if token is None:
            self.session.get(f"{self.stack.origin}/api/v1/auth/csrf", timeout=15).raise_for_status()
            token = self.session.cookies[self.stack.csrf_cookie]
        return str(token)

    def headers(self) -> dict[str, str]:
        """What the SPA sends with every request: the CSRF token from its cookie, and its Origin."""
        return {
            "X-CSRFToken": self.csrf_token(),
            "Origin": self.stack.origin,
            "Referer": self.stack.origin + "/",
        }

    def log_in(self) -> None:
        if self.logged_in:
            return
        self.session.cookies.clear()
        response = self.session.post(
            f"{self.stack.origin}/api/v1/auth/signup",
            json={"email": new_email(), "password": PASSWORD},
            headers=self.headers(),
            timeout=15,
        )
        assert response.status_code == 201, response.text
        self.logged_in = True

    def sent(self, response: requests.Response) -> None:
        self.requests_sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code == 401 or (
            response.request.path_url in ("/api/v1/auth/logout", "/api/v1/auth/password/change")
            and response.status_code < 300
        ):
            self.logged_in = False


@pytest.fixture(scope="session")
def fuzz_session(prod_stack: Stack) -> Iterator[FuzzSession]:
    fuzz = FuzzSession(prod_stack)
    yield fuzz
    statuses = ", ".join(f"{count} x {status}" for status, count in sorted(fuzz.statuses.items()))
    FIGURES.append(f"fuzzing: {fuzz.requests_sent} requests from the schema ({statuses})")


@pytest.fixture(scope="session")
def api_schema(prod_stack: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        f"{prod_stack.origin}/api/v1/schema", verify=str(prod_stack.ca_file), timeout=15
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
    # Nothing kept between runs (hypothesis would write .hypothesis/ into the checkout).
    database=None,
)
def test_the_api_keeps_to_its_schema(case, fuzz_session):
    fuzz_session.log_in()
    headers = fuzz_session.headers()
    response = case.call(session=fuzz_session.session, headers=headers, verify=fuzz_session.session.verify)
    fuzz_session.sent(response)
    case.validate_response(
        response, headers=headers, transport_kwargs={"verify": fuzz_session.session.verify}
    )
