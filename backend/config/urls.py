from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from core.apis import NotFoundApi

api_v1 = [
    path("auth/", include("accounts.urls")),
    path("", include("core.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    # Anything else under /api/ is a 404 in the API's error shape, whatever DEBUG says.
    re_path(r"^api/", NotFoundApi.as_view()),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "core.exceptions.bad_request"
handler403 = "core.exceptions.permission_denied"
handler404 = "core.exceptions.page_not_found"
handler500 = "core.exceptions.server_error"
