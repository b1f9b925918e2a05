"""Fixtures for the accounts tests."""

from typing import cast

import pytest

from accounts.models import User
from accounts.tests.factories import UserFactory


@pytest.fixture
def inactive_user(db: None) -> User:
    return cast(User, UserFactory(is_active=False))


@pytest.fixture
def superuser(db: None) -> User:
    return cast(User, UserFactory(is_staff=True, is_superuser=True))
