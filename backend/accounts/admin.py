from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from accounts import services
from accounts.models import User
from core.errors import ApplicationError


class UserCreationForm(BaseUserCreationForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = ("email",)


class UserAdminChangeForm(UserChangeForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):  # type: ignore[type-arg]
    form = UserAdminChangeForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_active", "is_staff", "date_joined")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class LimitedAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login, under the API's limits: the `auth` rate per client address (counted together with
    the API's auth endpoints) and the limits on password guesses per account."""

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        if email and self.request is not None:
            try:
                services.admin_login_allow(email=email, request=self.request)
            except ApplicationError as exc:
                raise ValidationError(exc.message, code="too_many_attempts") from None
            try:
                return super().clean()
            finally:
                # user_cache is set when the password was right, also for a user who is not staff.
                correct = self.user_cache is not None
                services.password_guess_register(email=email, request=self.request, correct=correct)
        return super().clean()


admin.site.login_form = LimitedAdminAuthenticationForm
_admin_login = admin.site.login


def admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The admin's login view, which also sets the known-device cookie when a POST logged someone in, as
    the API login does (accounts.services.login_device_remember)."""
    response = _admin_login(request, extra_context)
    if request.method == "POST" and response.status_code == 302 and isinstance(request.user, User):
        services.login_device_remember(request=request, response=response, user=request.user)
    return response


# Before config/urls.py builds the admin's URLs from it.
admin.site.login = admin_login  # type: ignore[method-assign]
admin.site.site_header = "Backend administration"
