from django.urls import path

from core.apis import DocsApi, HealthLiveApi, HealthReadyApi, SchemaApi

urlpatterns = [
    path("health/live", HealthLiveApi.as_view(), name="health-live"),
    path("health/ready", HealthReadyApi.as_view(), name="health-ready"),
    path("schema", SchemaApi.as_view(), name="schema"),
    path("docs", DocsApi.as_view(url_name="schema"), name="docs"),
]
