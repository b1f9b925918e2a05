"""manage.py unlock_login EMAIL: lift the login limits of an account, from every address."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.models import normalize_email
from core.cache import CacheUnavailableError


class Command(BaseCommand):
    help = (
        "Lift the limits on failed logins of an account (per address and per account), e.g. after the "
        "owner locked themselves out. Works for any email, with or without an account."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, email: str, **options: Any) -> None:
        try:
            services.login_limits_clear(email=email)
        except CacheUnavailableError as error:
            raise CommandError(f"Redis is unavailable, nothing was changed: {error}") from None
        self.stdout.write(f"Login limits of {normalize_email(email)} lifted.")
