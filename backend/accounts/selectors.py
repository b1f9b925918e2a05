from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from accounts.models import User, normalize_email


def user_get_active_by_email(*, email: str) -> User | None:
    return User.objects.filter(email=normalize_email(email), is_active=True).first()


def user_get_from_reset_uid(*, uid: str, for_update: bool = False) -> User | None:
    """The active user a password-reset uid names, or None for anything malformed or unknown."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, OverflowError):
        return None
    users = User.objects.select_for_update() if for_update else User.objects
    return users.filter(pk=pk, is_active=True).first()
