from django.urls import path

from accounts import apis

urlpatterns = [
    path("csrf", apis.AuthCsrfApi.as_view(), name="auth-csrf"),
    path("signup", apis.AuthSignupApi.as_view(), name="auth-signup"),
    path("login", apis.AuthLoginApi.as_view(), name="auth-login"),
    path("logout", apis.AuthLogoutApi.as_view(), name="auth-logout"),
    path("me", apis.UserMeApi.as_view(), name="auth-me"),
    path("password/change", apis.PasswordChangeApi.as_view(), name="auth-password-change"),
    path("password/reset", apis.PasswordResetApi.as_view(), name="auth-password-reset"),
    path(
        "password/reset/confirm",
        apis.PasswordResetConfirmApi.as_view(),
        name="auth-password-reset-confirm",
    ),
]
