from typing import cast

import pytest
from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    PBKDF2PasswordHasher,
    check_password,
    make_password,
)
from django.test import override_settings

from accounts.hashers import Argon2idPasswordHasher
from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from testing import SpaClient

PREFIX = "argon2$argon2id$v=19$m=19456,t=2,p=1$"

# The production list (config.settings.base); test settings use a fast hasher everywhere else.
PRODUCTION_HASHERS = [
    "accounts.hashers.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


@override_settings(PASSWORD_HASHERS=["accounts.hashers.Argon2idPasswordHasher"])
def test_hash_uses_argon2id_with_the_chosen_parameters():
    encoded = make_password(PASSWORD)

    assert encoded.startswith(PREFIX)
    assert check_password(PASSWORD, encoded)
    assert not check_password(PASSWORD + "x", encoded)
    assert not Argon2idPasswordHasher().must_update(encoded)


@override_settings(PASSWORD_HASHERS=["accounts.hashers.Argon2idPasswordHasher"])
def test_each_hash_has_its_own_salt():
    assert make_password(PASSWORD) != make_password(PASSWORD)


def test_hash_made_with_djangos_default_parameters_must_be_updated():
    default = Argon2PasswordHasher()
    encoded = default.encode(PASSWORD, default.salt())
    assert not encoded.startswith(PREFIX)

    assert Argon2idPasswordHasher().verify(PASSWORD, encoded)
    assert Argon2idPasswordHasher().must_update(encoded)


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 with other parameters than ours, cheap to compute."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "old_hash",
    [
        lambda: CheapArgon2PasswordHasher().encode(PASSWORD, "somesaltsomesalt"),
        lambda: PBKDF2PasswordHasher().encode(PASSWORD, "somesaltsomesalt", iterations=1000),
    ],
    ids=["argon2-other-parameters", "pbkdf2"],
)
def test_login_upgrades_an_old_hash(old_hash):
    user = cast(User, UserFactory())
    user.password = old_hash()
    user.save()
    assert not user.password.startswith(PREFIX)

    with override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS):
        response = SpaClient().post("/api/v1/auth/login", {"email": user.email, "password": PASSWORD})

        assert response.status_code == 200, response.content
        user.refresh_from_db()
        assert user.password.startswith(PREFIX)
        assert user.check_password(PASSWORD)
