"""Assertions shared by the accounts API tests."""

from typing import Any

from django.http import HttpResponse

from conftest import SpaClient

ME = "/api/v1/auth/me"


def assert_error(response: HttpResponse, status: int, code: str) -> dict[str, Any]:
    """Asserts the API's one error shape with this status and code; returns its details."""
    assert response.status_code == status, response.content
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"message", "code", "details"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    details: dict[str, Any] = body["details"]
    return details


def assert_throttled(response: HttpResponse, *, period: int) -> int:
    """429 THROTTLED with Retry-After equal to details.wait, a wait within the rate's period; returns it."""
    details = assert_error(response, 429, "THROTTLED")
    wait = details["wait"]
    assert isinstance(wait, int)
    assert 1 <= wait <= period
    assert response["Retry-After"] == str(wait)
    return wait


def logged_in_id(client: SpaClient) -> int | None:
    """The id of the user the client's session belongs to, or None when auth/me says 401."""
    response = client.get(ME)
    if response.status_code == 401:
        return None
    assert response.status_code == 200, response.content
    user_id: int = response.json()["id"]
    return user_id
