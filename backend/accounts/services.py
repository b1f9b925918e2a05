"""Everything the API does to accounts and sessions. Views validate input and call these; so does the admin
login form for the limits on password guesses."""

import hashlib
import logging
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.debug import sensitive_variables

from accounts.models import EMAIL_TAKEN, User, normalize_email
from accounts.selectors import user_get_active_by_email, user_get_from_reset_uid
from core import background, errors, rate_limit
from core.cache import CacheUnavailableError, strict
from core.errors import DEPENDENCY_ERRORS, ApplicationError
from core.request_context import client_ip

logger = logging.getLogger(__name__)


def _email_key(purpose: str, email: str) -> str:
    # Hashed: cache keys are visible to whoever can reach Redis, and emails are personal data.
    return f"{purpose}:{hashlib.sha256(normalize_email(email).encode()).hexdigest()}"


def _validate_new_password(password: str, *, user: User, field: str) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None


# ---------------------------------------------------------------- users


@sensitive_variables("password")
@transaction.atomic
def user_create(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    user = User(email=normalize_email(email), first_name=first_name, last_name=last_name)
    if User.objects.filter(email=user.email).exists():
        raise ValidationError({"email": [EMAIL_TAKEN]})
    _validate_new_password(password, user=user, field="password")
    user.set_password(password)
    # Uniqueness was checked above, and the database enforces it below.
    user.full_clean(validate_unique=False, validate_constraints=False)
    try:
        # A savepoint, so losing a race on the unique email leaves the outer transaction usable.
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise ValidationError({"email": [EMAIL_TAKEN]}) from None
    logger.info("User %s signed up", user.pk)
    return user


@transaction.atomic
def user_update(*, user: User, data: dict[str, Any]) -> User:
    """Update the name fields present in ``data``."""
    fields = [name for name in ("first_name", "last_name") if name in data]
    for name in fields:
        setattr(user, name, data[name])
    user.full_clean(validate_unique=False, validate_constraints=False)
    user.save(update_fields=fields)
    return user


# ---------------------------------------------------------------- password guesses

# Every failed password guess on an account (API login, admin login, current_password of a password
# change) is counted twice: per (account, client address), with a hard limit (THROTTLE_LOGIN_FAILURES),
# and per account over all addresses (THROTTLE_LOGIN_FAILURES_ACCOUNT). Over the second, the account is
# slowed: one guess per LOGIN_SLOW_INTERVAL, whoever makes it. A request the per-address limit refuses
# never takes that turn. A browser that has logged in to the account before (a known device, below)
# does not wait for the turn while its own failures stay under THROTTLE_LOGIN_FAILURES, so guesses from
# elsewhere, however many addresses make them, do not keep the owner out (docs/decisions.md, "Known
# devices"). Unknown accounts are counted the same way, so the limits reveal nothing about which
# accounts exist. Keys carry a per-account generation, so unlocking an account (unlock_login) is one
# increment, not a search for the keys of every address.

# Django's signing salt of the known-device cookie (LOGIN_DEVICE_COOKIE_NAME).
LOGIN_DEVICE_SALT = "accounts.login_device"


def _account_key(email: str) -> str:
    return _email_key("login", email)


def _generation(account: str) -> int:
    try:
        return int(strict(cache).get(f"{account}:generation") or 0)
    except CacheUnavailableError:
        return 0  # the counters are process-local meanwhile (core.rate_limit)


def _password_state(user: User) -> str:
    # An HMAC of the password hash (what sessions store too): a password change or reset voids it.
    return user.get_session_auth_hash()[:32]


def _known_device(request: HttpRequest, *, email: str) -> str | None:
    """The device id of the request's known-device cookie if it is valid for the account ``email``: signed
    by this site, younger than LOGIN_DEVICE_COOKIE_AGE, of this active user and its current password."""
    value = request.COOKIES.get(settings.LOGIN_DEVICE_COOKIE_NAME)
    if not value:
        return None
    try:
        payload = signing.loads(value, salt=LOGIN_DEVICE_SALT, max_age=settings.LOGIN_DEVICE_COOKIE_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("device"), str):
        return None
    user = user_get_active_by_email(email=email)
    if (
        user is None
        or payload.get("user") != user.pk
        or not constant_time_compare(str(payload.get("password")), _password_state(user))
    ):
        return None
    return str(payload["device"])


def _guess_keys(email: str, request: HttpRequest) -> tuple[str, str | None, str]:
    """The counter keys of (account, address), of (account, known device) if the request comes from one,
    and of the account."""
    account = _account_key(email)
    generation = _generation(account)
    address = rate_limit.address_bucket(client_ip(request))
    device = _known_device(request, email=email)
    device_key = None if device is None else f"{account}:{generation}:device:{device}"
    return f"{account}:{generation}:{address}", device_key, f"{account}:{generation}"


def password_guess_allow(*, email: str, request: HttpRequest) -> None:
    """Raise THROTTLED if this address may not guess the password of ``email`` now.

    The (account, address) counter is incremented here, before the password is checked, so parallel
    guesses cannot slip in between check and count; a correct guess takes it back
    (password_guess_register). It is checked first: a request it refuses never takes the account's turn.
    """
    pair_key, device_key, account_key = _guess_keys(email, request)
    pair_rate = rate_limit.configured_rate(rate_limit.LOGIN_FAILURES)
    wait = rate_limit.hit(pair_key, pair_rate)
    if wait is not None:
        raise errors.throttled(wait, "Too many failed logins for this account. Try again in {wait} seconds.")
    if device_key is not None and rate_limit.hit(device_key, pair_rate) is None:
        return  # a known device within its own budget: no turn to wait for
    per_account = rate_limit.configured_rate(rate_limit.LOGIN_FAILURES_ACCOUNT)
    if rate_limit.current(account_key, per_account) >= per_account.limit:
        wait = rate_limit.take_turn(account_key, settings.LOGIN_SLOW_INTERVAL)
        if wait is not None:
            # Refused before any password was checked: not a guess of this address.
            rate_limit.unhit(pair_key, pair_rate)
            raise errors.throttled(
                wait, "Too many failed logins for this account. Try again in {wait} seconds."
            )


def password_guess_register(*, email: str, request: HttpRequest, correct: bool) -> None:
    """Count a wrong guess against the account; a correct one clears the failures of this address and
    device."""
    pair_key, device_key, account_key = _guess_keys(email, request)
    if correct:
        pair_rate = rate_limit.configured_rate(rate_limit.LOGIN_FAILURES)
        rate_limit.reset(pair_key, pair_rate)
        if device_key is not None:
            rate_limit.reset(device_key, pair_rate)
    else:
        rate_limit.hit(account_key, rate_limit.configured_rate(rate_limit.LOGIN_FAILURES_ACCOUNT))


def login_device_remember(*, request: HttpRequest, response: HttpResponse, user: User) -> None:
    """Set the known-device cookie of ``user`` on the response to a successful login or signup: the
    browser keeps its device id if it had a valid cookie of this account, else gets a new one."""
    device = _known_device(request, email=user.email) or secrets.token_urlsafe(16)
    value = signing.dumps(
        {"user": user.pk, "device": device, "password": _password_state(user)}, salt=LOGIN_DEVICE_SALT
    )
    response.set_cookie(
        settings.LOGIN_DEVICE_COOKIE_NAME,
        value,
        max_age=settings.LOGIN_DEVICE_COOKIE_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def admin_login_allow(*, email: str, request: HttpRequest) -> None:
    """The admin login form's limits: the API's `auth` rate for this address, then password_guess_allow."""
    address = rate_limit.address_bucket(client_ip(request))
    wait = rate_limit.hit(
        rate_limit.throttle_key(rate_limit.AUTH, address), rate_limit.configured_rate(rate_limit.AUTH)
    )
    if wait is not None:
        raise errors.throttled(
            wait, "Too many login attempts from your address. Try again in {wait} seconds."
        )
    password_guess_allow(email=email, request=request)


def login_limits_clear(*, email: str) -> None:
    """Lift every login limit of the account, from every address (`manage.py unlock_login`, a reset)."""
    generation_key = f"{_account_key(email)}:generation"
    store = strict(cache)
    # add() then incr(): atomic, and the generation never expires.
    store.add(generation_key, 0, None)
    store.incr(generation_key)


# ---------------------------------------------------------------- sessions


def _session_save(request: HttpRequest) -> None:
    # Saved here rather than by the session middleware after the view, where a failure could no longer
    # change the response.
    request.session.save()


@sensitive_variables("password")
def session_login(*, request: HttpRequest, email: str, password: str) -> User:
    """Log in with a new session id (Django's login() rotates it, and the CSRF token)."""
    password_guess_allow(email=email, request=request)
    user = authenticate(request, email=normalize_email(email), password=password)
    password_guess_register(email=email, request=request, correct=user is not None)
    if user is None:
        raise ApplicationError("Invalid email or password.", code=errors.INVALID_CREDENTIALS)
    key_before = request.session.session_key
    login(request, user)
    if request.session.session_key == key_before:
        # login() keeps the key when the session already belongs to this user; every login gets a new one.
        request.session.cycle_key()
    _session_save(request)
    return user


def session_start(*, request: HttpRequest, user: User) -> None:
    """Log in a user who has just proven who they are (signup). The account exists by now: if the
    session cannot be stored, the 503 says so, and that logging in will work."""
    try:
        login(request, user, backend="accounts.backends.EmailBackend")
        _session_save(request)
    except DEPENDENCY_ERRORS as error:
        logger.warning("User %s signed up, but the session could not be stored: %s", user.pk, error)
        raise errors.unavailable(
            "Your account was created, but you could not be logged in because a service is briefly "
            "unavailable. Log in to continue.",
            details={"account_created": True},
        ) from error


def session_logout(*, request: HttpRequest) -> None:
    """Delete the session server-side: the old cookie is worthless afterwards. If the session store
    cannot confirm that, core.sessions raises and the session stays as it was (503)."""
    logout(request)


# ---------------------------------------------------------------- passwords


@sensitive_variables("current_password", "new_password")
@transaction.atomic
def user_password_change(
    *, request: HttpRequest, user: User, current_password: str, new_password: str
) -> None:
    """Change the password; this session stays logged in, the user's other sessions stop working.

    Each session stores a hash derived from the password hash, so the others fail verification at their
    next request and are flushed then.
    """
    password_guess_allow(email=user.email, request=request)
    correct = user.check_password(current_password)
    password_guess_register(email=user.email, request=request, correct=correct)
    if not correct:
        raise ValidationError({"current_password": ["Your current password is incorrect."]})
    _validate_new_password(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    update_session_auth_hash(request, user)
    # Inside the transaction: if the session cannot be stored, the password stays as it was.
    _session_save(request)
    logger.info("User %s changed their password", user.pk)


def password_reset_link(*, user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return settings.PASSWORD_RESET_URL.replace("{uid}", uid).replace("{token}", token)


def password_reset_request(*, email: str) -> None:
    """Mail a reset link if an active account has this email; otherwise do nothing, in the same time.

    The mail goes out from a background thread after the response, so response times do not tell
    which addresses have accounts. At most THROTTLE_PASSWORD_RESET_MAIL mails per address.
    """
    over_limit = rate_limit.hit(
        _email_key("password-reset-mail", email), rate_limit.configured_rate(rate_limit.PASSWORD_RESET_MAIL)
    )
    user = user_get_active_by_email(email=email)
    if user is None or not user.has_usable_password():
        return
    if over_limit is not None:
        logger.info("Password reset mail for user %s not sent: per-account limit reached", user.pk)
        return
    link = password_reset_link(user=user)
    background.submit(
        send_mail,
        "Reset your password",
        "Someone asked to reset the password of your account. If it was you, open this link "
        f"within {settings.PASSWORD_RESET_TIMEOUT // 60} minutes:\n\n{link}\n\n"
        "If it was not you, ignore this mail; your password stays as it is.",
        None,
        [user.email],
    )
    logger.info("Password reset mail queued for user %s", user.pk)


@sensitive_variables("token", "new_password")
@transaction.atomic
def password_reset_confirm(*, uid: str, token: str, new_password: str) -> User:
    """Set a new password with a reset token. The token embeds the current password hash, so it stops
    working once used; the row lock makes two concurrent uses of one token run one after the other."""
    user = user_get_from_reset_uid(uid=uid, for_update=True)
    if user is None or not default_token_generator.check_token(user, token):
        raise ApplicationError(
            "The password reset link is invalid, already used or expired.",
            code=errors.INVALID_TOKEN,
        )
    _validate_new_password(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    try:
        login_limits_clear(email=user.email)
    except CacheUnavailableError:
        logger.warning("User %s reset their password; their login limits could not be cleared", user.pk)
    logger.info("User %s reset their password", user.pk)
    return user
