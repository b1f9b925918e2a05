"""GETs answered without DRF's request cycle, for the two endpoints a SPA calls on every page load and
before every unsafe request: `GET auth/me` and `GET auth/csrf`.

DRF's cycle around a view (its Request wrapper, content negotiation, authenticator, permission and
throttle instances, its Response and the renderer's negotiation) is a fixed cost of every request: about
0.4 ms of the 2.3 ms of CPU a `GET auth/me` took (docs/decisions.md, "The hot path"). A view with
DirectGetMixin answers the common GET itself, with the parts DRF would have used:

- the view's own throttle classes count the request (core.throttling.CounterThrottle.count), all of
  them, as DRF does, and a request over a rate gets DRF's 429;
- DRF's JSONRenderer renders the body, and the response carries DRF's Allow header;
- a database or Redis that does not answer gives the same 503 as in DRF (core.exceptions).

Every other request goes through DRF's dispatch, as before: another method; an Accept header or a
``?format=`` for which DRF's content negotiation would not pick plain JSON; and whatever the view's
``direct_get`` declines (returns None for), such as an anonymous user, whom DRF answers with its 401. So
the errors keep their shape, and the OpenAPI schema still describes the view.
"""

import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.views import APIView

from core import errors
from core.errors import ApplicationError
from core.exceptions import DEPENDENCY_ERRORS, application_error_body, dependency_error
from core.throttling import CounterThrottle

_renderer = JSONRenderer()


# Longer Accept headers go through DRF: the cache below keeps at most this much of client input.
MAX_ACCEPT_LENGTH = 200


@functools.lru_cache(maxsize=128)  # a SPA sends one Accept header; a client sending many meets the bound
def plain_json(accept: str, renderer_classes: tuple[type[BaseRenderer], ...]) -> bool:
    """Whether DRF's content negotiation, given this Accept header and no ``?format=``, picks the
    JSONRenderer with a media type without parameters (a parameter, e.g. ``indent=2``, changes the
    output). Decided by DRF's own negotiation, once per header value."""
    stand_in = SimpleNamespace(query_params={}, headers={"accept": accept})
    try:
        renderer, media_type = DefaultContentNegotiation().select_renderer(
            stand_in,  # type: ignore[arg-type]  # the negotiation reads only these two attributes
            [renderer_class() for renderer_class in renderer_classes],
        )
    except NotAcceptable:
        return False
    return type(renderer) is JSONRenderer and media_type == renderer.media_type


# Answers GET with ``direct_get`` when it can, and everything else through DRF (module docstring). No
# docstring: drf-spectacular would take it as the description of every endpoint of such a view.
class DirectGetMixin(APIView):
    def direct_get(self, request: HttpRequest) -> HttpResponse | None:
        """The response, by way of ``respond``; None to let DRF answer the request."""
        raise NotImplementedError

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "GET" and self.takes_directly(request):
            try:
                direct = self.direct_get(request)
            except DEPENDENCY_ERRORS as exc:
                direct = self.direct_error(dependency_error(exc))
            if direct is not None:
                return direct
        return super().dispatch(request, *args, **kwargs)

    def takes_directly(self, request: HttpRequest) -> bool:
        accept = request.headers.get("accept", "*/*")
        return (
            self.content_negotiation_class is DefaultContentNegotiation
            and "format" not in request.GET
            and len(accept) <= MAX_ACCEPT_LENGTH
            and plain_json(accept, tuple(self.renderer_classes))
        )

    def respond(self, request: HttpRequest, user: Any, data: Callable[[], Any]) -> HttpResponse:
        """The view's throttles count the request of ``user`` (what DRF's request.user would be), then
        ``data()`` is rendered, or the 429 of the rate the request went over."""
        waits = []
        for throttle in self.get_throttles():
            if not isinstance(throttle, CounterThrottle):
                raise TypeError(f"{type(throttle).__name__} cannot count outside DRF (core.throttling)")
            wait = throttle.count(request, user, self)
            if wait is not None:
                waits.append(wait)
        if waits:
            return self.direct_error(errors.throttled(max(waits)))
        return self.render_direct(data())

    def render_direct(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> HttpResponse:
        response = HttpResponse(
            _renderer.render(data), status=status, headers=headers, content_type=_renderer.media_type
        )
        response["Allow"] = ", ".join(self.allowed_methods)
        return response

    def direct_error(self, error: ApplicationError) -> HttpResponse:
        return self.render_direct(
            application_error_body(error), status=error.code.status, headers=error.headers
        )
