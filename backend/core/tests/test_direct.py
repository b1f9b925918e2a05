"""GETs answered without DRF's request cycle (core.direct): auth/me and auth/csrf give what DRF gives."""

import json
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.views import APIView

from accounts import backends
from core import direct, errors
from core.tests.urls import DEPENDENCY_FAILURES
from testing import ME, SpaClient, assert_error, assert_throttled, with_throttle_rates

CSRF = "/api/v1/auth/csrf"
# Sent by the SPA's fetch, by axios, and by clients that send none.
PLAIN_ACCEPTS = ["application/json", "*/*", "application/json, text/plain, */*", None]


@pytest.fixture
def drf_cycles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests DRF's request cycle handled from now on."""
    handled: list[str] = []
    original = APIView.initial

    def initial(self: APIView, request: Any, *args: Any, **kwargs: Any) -> None:
        handled.append(request.path)
        original(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "initial", initial)
    return handled


def get(client: SpaClient, path: str, accept: str | None = "application/json") -> Any:
    if accept is None:
        return client.get(path)
    return client.get(path, HTTP_ACCEPT=accept)


@pytest.mark.django_db
@pytest.mark.parametrize("accept", PLAIN_ACCEPTS)
def test_me_is_answered_without_drfs_cycle_as_drf_answers_it(user_client, user, drf_cycles, accept):
    direct_response = get(user_client, ME, accept)
    assert drf_cycles == []
    drf_response = get(user_client, f"{ME}?format=json", accept)
    assert drf_cycles == [ME]

    assert (direct_response.status_code, drf_response.status_code) == (200, 200)
    assert direct_response.content == drf_response.content
    assert json.loads(direct_response.content)["email"] == user.email
    for header in ("Content-Type", "Allow", "Cache-Control", "X-Frame-Options", "Vary"):
        assert direct_response.get(header) == drf_response.get(header), header


@pytest.mark.django_db
@pytest.mark.parametrize("accept", PLAIN_ACCEPTS)
def test_csrf_is_answered_without_drfs_cycle_as_drf_answers_it(drf_cycles, settings, accept):
    direct_client, drf_client = SpaClient(), SpaClient()

    direct_response = get(direct_client, CSRF, accept)
    assert drf_cycles == []
    drf_response = get(drf_client, f"{CSRF}?format=json", accept)
    assert drf_cycles == [CSRF]

    assert (direct_response.status_code, drf_response.status_code) == (200, 200)
    assert set(direct_response.json()) == set(drf_response.json()) == {"csrf_token"}
    for header in ("Content-Type", "Allow", "Cache-Control", "X-Frame-Options", "Vary"):
        assert direct_response.get(header) == drf_response.get(header), header
    cookie = direct_client.cookies[settings.CSRF_COOKIE_NAME]
    assert cookie.value
    assert cookie["samesite"] == drf_client.cookies[settings.CSRF_COOKIE_NAME]["samesite"]


@pytest.mark.django_db
def test_the_csrf_token_of_the_direct_answer_passes_the_csrf_check(client, user, password):
    token = get(client, CSRF).json()["csrf_token"]

    response = client.post(
        "/api/v1/auth/login", {"email": user.email, "password": password}, HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_an_accept_with_parameters_is_left_to_drf(user_client, drf_cycles):
    response = get(user_client, ME, "application/json; indent=4")

    assert drf_cycles == [ME]
    assert response.status_code == 200
    assert response.content.decode().startswith('{\n    "id"')


@pytest.mark.django_db
@pytest.mark.parametrize("path", [ME, CSRF])
def test_an_accept_without_json_is_drfs_406(user_client, drf_cycles, path):
    assert_error(get(user_client, path, "text/html"), 406, "NOT_ACCEPTABLE")
    assert drf_cycles == [path]


@pytest.mark.django_db
def test_a_long_accept_header_is_left_to_drf_and_not_cached(user_client, drf_cycles):
    accept = "application/json, " + ", ".join(f"text/x-{number}" for number in range(40))
    assert len(accept) > direct.MAX_ACCEPT_LENGTH
    hits_before = direct.plain_json.cache_info().currsize

    response = get(user_client, ME, accept)

    assert response.status_code == 200
    assert drf_cycles == [ME]
    assert direct.plain_json.cache_info().currsize == hits_before


@pytest.mark.django_db
def test_an_anonymous_me_is_drfs_401(client, drf_cycles):
    response = get(client, ME)

    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"] == 'Session realm="api"'
    assert drf_cycles == [ME]


@pytest.mark.django_db
def test_direct_and_drf_answers_count_against_the_same_user_rate(user_client, settings, drf_cycles):
    with_throttle_rates(settings, user="3/m")

    statuses = [
        get(user_client, ME).status_code,
        get(user_client, f"{ME}?format=json").status_code,
        get(user_client, ME).status_code,
    ]
    refused = get(user_client, ME)

    assert statuses == [200, 200, 200]
    assert drf_cycles == [ME]  # the ?format=json one
    assert_throttled(refused, period=60)
    assert refused["Allow"] == "GET, PATCH, HEAD, OPTIONS"
    # DRF, counting the next request too, refuses it the same way.
    assert_throttled(get(user_client, f"{ME}?format=json"), period=60)


@pytest.mark.django_db
def test_a_throttled_csrf_request_sets_no_cookie(settings):
    with_throttle_rates(settings, anon="1/m")
    assert get(SpaClient(), CSRF).status_code == 200
    late = SpaClient()

    assert_throttled(get(late, CSRF), period=60)
    assert settings.CSRF_COOKIE_NAME not in late.cookies


@pytest.mark.django_db
def test_a_database_that_does_not_answer_is_503_in_the_direct_answer(
    user_client, monkeypatch, caplog, drf_cycles
):
    def unreachable(*, pk: int) -> None:
        DEPENDENCY_FAILURES["database"]()

    monkeypatch.setattr(backends, "user_get_for_session", unreachable)

    response = get(user_client, ME)

    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response["Retry-After"] == str(errors.RETRY_AFTER_UNAVAILABLE)
    assert drf_cycles == []
    [warning] = [record for record in caplog.records if record.name == "core.exceptions"]
    assert warning.getMessage().startswith("Service unavailable: ")


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["head", "options"])
def test_other_methods_go_through_drf(user_client, drf_cycles, method):
    response = getattr(user_client, method)(ME)

    assert response.status_code == 200
    assert drf_cycles == [ME]


def test_the_schema_describes_the_views_as_drf_serves_them():
    """The direct answer is an implementation detail: nothing of it reaches the OpenAPI schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    me = schema["paths"][ME]
    csrf = schema["paths"][CSRF]

    assert set(me) == {"get", "patch"}
    assert set(csrf) == {"get"}
    for operation in (me["get"], me["patch"], csrf["get"]):
        assert "direct" not in operation.get("description", "").lower()
    assert me["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/UserOutput"
    )
