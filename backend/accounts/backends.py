"""The authentication backend (AUTHENTICATION_BACKENDS): Django's ModelBackend, email and password, with
the user of a session looked up cheaply on every request (accounts.selectors.user_get_for_session)."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts.models import User
from accounts.selectors import user_get_for_session


class EmailBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> User | None:
        user = super().authenticate(request, *args, **kwargs)
        if user is None:
            # Settled here: Django would otherwise ask the next backend, ModelBackend (kept only for the
            # sessions made before this one), and hash the wrong password a second time.
            raise PermissionDenied
        return user

    def get_user(self, user_id: Any) -> User | None:
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        user = user_get_for_session(pk=pk)
        return user if user is not None and self.user_can_authenticate(user) else None
