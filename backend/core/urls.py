from django.urls import path

from core.apis import HealthLiveApi, HealthReadyApi
from core.views import ApiDocsView, ApiSchemaApi

urlpatterns = [
    path("health/live", HealthLiveApi.as_view(), name="health-live"),
    path("health/ready", HealthReadyApi.as_view(), name="health-ready"),
    path("schema", ApiSchemaApi.as_view(), name="schema"),
    path("docs", ApiDocsView.as_view(url_name="schema"), name="docs"),
]
