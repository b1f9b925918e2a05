"""One request path: what a view declares (permissions, authentication, throttles, renderers) applies to
every request it answers, the common GET of auth/me and auth/csrf included. These views once answered
that GET outside DRF's cycle, where a permission class added later was silently skipped (issue 19)."""

import pytest
from rest_framework.permissions import IsAdminUser
from rest_framework.throttling import UserRateThrottle

from accounts.apis import AuthCsrfApi, UserMeApi
from testing import ME, assert_error, assert_throttled

CSRF = "/api/v1/auth/csrf"


@pytest.mark.django_db
def test_a_permission_added_to_me_refuses_a_normal_users_get(user_client, monkeypatch):
    assert user_client.get(ME).status_code == 200

    monkeypatch.setattr(UserMeApi, "permission_classes", [IsAdminUser])

    assert_error(user_client.get(ME), 403, "PERMISSION_DENIED")


@pytest.mark.django_db
def test_a_permission_added_to_me_lets_staff_through(staff_client, monkeypatch):
    monkeypatch.setattr(UserMeApi, "permission_classes", [IsAdminUser])

    assert staff_client.get(ME).status_code == 200


@pytest.mark.django_db
def test_me_without_authentication_classes_sees_nobody(user_client, monkeypatch):
    monkeypatch.setattr(UserMeApi, "authentication_classes", [])

    # Nobody is logged in for a view that reads no session; with no authenticator to ask for one, DRF
    # answers 403, not 401.
    assert_error(user_client.get(ME), 403, "PERMISSION_DENIED")


@pytest.mark.django_db
def test_a_permission_added_to_csrf_applies(client, monkeypatch):
    monkeypatch.setattr(AuthCsrfApi, "permission_classes", [IsAdminUser])

    assert_error(client.get(CSRF), 403, "PERMISSION_DENIED")


class TwoPerMinute(UserRateThrottle):
    """A stock DRF throttle (its own rate, DRF's own counter in the default cache)."""

    rate = "2/min"


@pytest.mark.django_db
def test_a_stock_drf_throttle_on_me_counts_every_get(user_client, monkeypatch):
    monkeypatch.setattr(UserMeApi, "throttle_classes", [TwoPerMinute])

    assert [user_client.get(ME).status_code for _ in range(2)] == [200, 200]
    assert_throttled(user_client.get(ME), period=60)


@pytest.mark.django_db
@pytest.mark.parametrize("path", [ME, CSRF])
def test_an_accept_without_json_is_406(user_client, path):
    assert_error(user_client.get(path, HTTP_ACCEPT="text/html"), 406, "NOT_ACCEPTABLE")


@pytest.mark.django_db
def test_an_accept_with_parameters_is_honoured(user_client):
    response = user_client.get(ME, HTTP_ACCEPT="application/json; indent=4")

    assert response.status_code == 200
    assert response.content.decode().startswith('{\n    "id"')


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "allow"), [(ME, "GET, PATCH, HEAD, OPTIONS"), (CSRF, "GET, HEAD, OPTIONS")])
def test_a_get_says_what_the_endpoint_allows(user_client, path, allow):
    assert user_client.get(path)["Allow"] == allow
