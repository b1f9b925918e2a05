import re
from typing import cast

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from core import background
from core.rate_limit import configured_rate
from testing import SpaClient, assert_error, logged_in_client, logged_in_id

LOGIN = "/api/v1/auth/login"
CHANGE = "/api/v1/auth/password/change"
RESET = "/api/v1/auth/password/reset"
CONFIRM = "/api/v1/auth/password/reset/confirm"
NEW_PASSWORD = "a completely different passphrase"


def can_log_in(email, password):
    return SpaClient().post(LOGIN, {"email": email, "password": password}).status_code == 200


def reset_params(user):
    user.refresh_from_db()  # the token depends on last_login, which logging in has changed
    return {
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
    }


def sent_mail(mailoutbox):
    background.drain()
    return list(mailoutbox)


def link_in(body):
    """uid and token of the reset link in a mail body, matched against settings.PASSWORD_RESET_URL."""
    pattern = re.escape(settings.PASSWORD_RESET_URL)
    pattern = pattern.replace(re.escape("{uid}"), r"(?P<uid>[\w-]+)")
    pattern = pattern.replace(re.escape("{token}"), r"(?P<token>[\w-]+)")
    match = re.search(pattern, body)
    assert match, body
    return match.groupdict()


# ---------------------------------------------------------------- change


@pytest.mark.django_db
def test_change_password_keeps_this_session_and_ends_the_others(user):
    this_client = logged_in_client(user)
    other_client = logged_in_client(user)
    assert logged_in_id(other_client) == user.pk

    response = this_client.post(CHANGE, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert response.status_code == 204, response.content
    assert response.content == b""
    assert logged_in_id(this_client) == user.pk
    assert_error(other_client.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")
    assert not can_log_in(user.email, PASSWORD)
    assert can_log_in(user.email, NEW_PASSWORD)


def assert_refused_and_unchanged(response, field, user_client, user):
    """A 400 naming only `field`; the password is the old one and the session still logged in."""
    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {field}
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert logged_in_id(user_client) == user.pk


@pytest.mark.django_db
def test_change_password_with_a_wrong_current_password_is_refused(user_client, user):
    response = user_client.post(CHANGE, {"current_password": "not my password", "new_password": NEW_PASSWORD})

    assert_refused_and_unchanged(response, "current_password", user_client, user)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "weak_password",
    [
        lambda user: "short",
        lambda user: "qwertyuiop",
        lambda user: "8203917465023",
        lambda user: user.email,
        lambda user: "x" * 257,
    ],
    ids=["too-short", "common", "numeric", "same-as-email", "too-long"],
)
def test_change_password_to_a_weak_one_is_refused(user_client, user, weak_password):
    response = user_client.post(CHANGE, {"current_password": PASSWORD, "new_password": weak_password(user)})

    assert_refused_and_unchanged(response, "new_password", user_client, user)


@pytest.mark.django_db
def test_change_password_when_not_logged_in_is_401(client, user):
    response = client.post(CHANGE, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert_error(response, 401, "NOT_AUTHENTICATED")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["current_password", "new_password"])
def test_change_password_requires_both_fields(user_client, user, missing):
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    del body[missing]

    assert set(assert_error(user_client.post(CHANGE, body), 400, "VALIDATION_ERROR")["details"]) == {missing}
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# ---------------------------------------------------------------- reset request


@pytest.mark.django_db
def test_reset_request_mails_a_link_to_an_existing_account(client, user, mailoutbox):
    response = client.post(RESET, {"email": user.email})

    assert response.status_code == 202, response.content
    messages = sent_mail(mailoutbox)
    assert len(messages) == 1
    assert messages[0].to == [user.email]
    params = link_in(messages[0].body)
    assert int(urlsafe_base64_decode(params["uid"])) == user.pk
    assert default_token_generator.check_token(user, params["token"])


@pytest.mark.django_db
def test_reset_request_finds_the_account_whatever_the_case_of_the_email(client, user, mailoutbox):
    response = client.post(RESET, {"email": user.email.upper()})

    assert response.status_code == 202, response.content
    assert [message.to for message in sent_mail(mailoutbox)] == [[user.email]]


@pytest.mark.django_db
def test_reset_request_answers_the_same_for_unknown_and_inactive_accounts(user, inactive_user, mailoutbox):
    existing = SpaClient().post(RESET, {"email": user.email})
    sent_to_existing = len(sent_mail(mailoutbox))
    unknown = SpaClient().post(RESET, {"email": "nobody@example.com"})
    inactive = SpaClient().post(RESET, {"email": inactive_user.email})

    assert existing.status_code == 202, existing.content
    assert (unknown.status_code, unknown.content) == (existing.status_code, existing.content)
    assert (inactive.status_code, inactive.content) == (existing.status_code, existing.content)
    assert sent_to_existing == 1
    assert [message.to for message in sent_mail(mailoutbox)] == [[user.email]]


@pytest.mark.django_db
def test_reset_request_sends_nothing_to_an_account_without_a_usable_password(client, mailoutbox):
    user = cast(User, UserFactory())
    user.set_unusable_password()
    user.save()

    response = client.post(RESET, {"email": user.email})

    assert response.status_code == 202, response.content
    assert sent_mail(mailoutbox) == []


@pytest.mark.django_db
def test_reset_mails_per_address_are_limited(user, other_user, mailoutbox):
    limit = configured_rate("password_reset_mail").limit
    for i in range(limit + 2):
        response = SpaClient().post(RESET, {"email": user.email}, REMOTE_ADDR=f"203.0.113.{i}")
        assert response.status_code == 202, response.content

    assert [message.to for message in sent_mail(mailoutbox)] == [[user.email]] * limit
    # The limit is per address: another account still gets its mail.
    assert SpaClient().post(RESET, {"email": other_user.email}).status_code == 202
    assert [message.to for message in sent_mail(mailoutbox)][limit:] == [[other_user.email]]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"email": "not-an-email"}, {}, {"email": "a@example.com", "extra": 1}])
def test_reset_request_validates_its_input(client, body, mailoutbox):
    details = assert_error(client.post(RESET, body), 400, "VALIDATION_ERROR")["details"]

    assert set(details) == ({"extra"} if "extra" in body else {"email"})
    assert sent_mail(mailoutbox) == []


# ---------------------------------------------------------------- reset confirm


@pytest.mark.django_db
def test_reset_link_from_the_mail_sets_a_new_password(client, user, mailoutbox):
    client.post(RESET, {"email": user.email})
    (message,) = sent_mail(mailoutbox)

    response = SpaClient().post(CONFIRM, {**link_in(message.body), "new_password": NEW_PASSWORD})

    assert response.status_code == 204, response.content
    assert response.content == b""
    assert can_log_in(user.email, NEW_PASSWORD)
    assert not can_log_in(user.email, PASSWORD)


@pytest.mark.django_db
def test_reset_token_works_only_once(client, user):
    params = reset_params(user)
    first = client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD})
    assert first.status_code == 204, first.content

    second = client.post(CONFIRM, {**params, "new_password": "yet another fine passphrase"})

    assert_error(second, 400, "INVALID_TOKEN")
    assert can_log_in(user.email, NEW_PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    [
        lambda params, other: {**params, "token": "garbage"},
        lambda params, other: {**params, "token": params["token"][:-1] + "x"},
        lambda params, other: {**params, "uid": "garbage!"},
        lambda params, other: {**params, "uid": urlsafe_base64_encode(b"not a number")},
        lambda params, other: {**params, "uid": urlsafe_base64_encode(b"\xff\xfe")},
        lambda params, other: {**params, "uid": urlsafe_base64_encode(b"99999999999999999999999999")},
        lambda params, other: {**params, "uid": urlsafe_base64_encode(b"-1")},
        lambda params, other: {**params, "uid": urlsafe_base64_encode(force_bytes(other.pk))},
        lambda params, other: {"uid": "AA", "token": "1-1"},
    ],
    ids=[
        "garbage-token",
        "altered-token",
        "garbage-uid",
        "non-numeric-uid",
        "undecodable-uid",
        "out-of-range-uid",
        "negative-uid",
        "another-users-uid",
        "made-up-pair",
    ],
)
def test_reset_with_an_invalid_uid_or_token_is_refused(client, user, other_user, tamper):
    response = client.post(CONFIRM, {**tamper(reset_params(user), other_user), "new_password": NEW_PASSWORD})

    assert_error(response, 400, "INVALID_TOKEN")
    for account in (user, other_user):
        account.refresh_from_db()
        assert account.check_password(PASSWORD)


@pytest.mark.django_db
def test_reset_for_a_deactivated_user_is_refused(client, user):
    params = reset_params(user)
    user.is_active = False
    user.save()

    assert_error(client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}), 400, "INVALID_TOKEN")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "new_password",
    ["short", "qwertyuiop", "8203917465023", "x" * 257],
    ids=["too-short", "common", "numeric", "too-long"],
)
def test_reset_to_a_weak_password_is_refused_and_the_token_stays_usable(client, user, new_password):
    params = reset_params(user)

    weak = client.post(CONFIRM, {**params, "new_password": new_password})

    assert set(assert_error(weak, 400, "VALIDATION_ERROR")["details"]) == {"new_password"}
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    strong = client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD})
    assert strong.status_code == 204, strong.content


@pytest.mark.django_db
def test_reset_ends_every_existing_session_of_the_user(client, user):
    sessions = [logged_in_client(user), logged_in_client(user)]

    response = client.post(CONFIRM, {**reset_params(user), "new_password": NEW_PASSWORD})

    assert response.status_code == 204, response.content
    assert [logged_in_id(session) for session in sessions] == [None, None]


@pytest.mark.django_db
def test_reset_lifts_the_login_limits(client, user):
    limit = configured_rate("login_failures").limit
    for _ in range(limit):
        SpaClient().post(LOGIN, {"email": user.email, "password": "wrong guess"})
    assert not can_log_in(user.email, PASSWORD)

    assert client.post(CONFIRM, {**reset_params(user), "new_password": NEW_PASSWORD}).status_code == 204

    assert can_log_in(user.email, NEW_PASSWORD)
