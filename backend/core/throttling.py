"""The DRF throttles, on core.rate_limit counters.

Rates are read from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] on each request, and clients are told apart
by core.request_context.client_ip, which trusts X-Forwarded-For only through the configured proxies
(IPv6 clients by their /64, core.rate_limit.address_bucket). While Redis is unavailable the anon and
user rates let requests through; the scoped (auth) rate is counted in this process.
"""

from typing import TYPE_CHECKING

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:  # DRF imports this module while loading its views
    from rest_framework.views import APIView

from core import rate_limit
from core.request_context import client_ip


class CounterThrottle(BaseThrottle):
    """A throttle on a core.rate_limit counter, for the scope and client that ``scope_and_ident`` names."""

    # Whether requests pass while the shared cache is unavailable: only for rates that are about fairness.
    fail_open = False
    _wait: float | None = None

    def scope_and_ident(self, request: Request, view: "APIView") -> tuple[str, str] | None:
        """The rate's scope and the client's identity within it; None when this rate does not apply."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: "APIView") -> bool:
        scoped = self.scope_and_ident(request, view)
        if scoped is None:
            return True
        scope, ident = scoped
        self._wait = rate_limit.hit(
            rate_limit.throttle_key(scope, ident), rate_limit.configured_rate(scope), fail_open=self.fail_open
        )
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class AnonRateThrottle(CounterThrottle):
    """The 'anon' rate, per client address, for requests without a session."""

    fail_open = True

    def scope_and_ident(self, request: Request, view: "APIView") -> tuple[str, str] | None:
        if request.user and request.user.is_authenticated:
            return None
        return rate_limit.ANON, rate_limit.address_bucket(client_ip(request._request))


class UserRateThrottle(CounterThrottle):
    """The 'user' rate, per account, for logged-in requests."""

    fail_open = True

    def scope_and_ident(self, request: Request, view: "APIView") -> tuple[str, str] | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return rate_limit.USER, str(request.user.pk)


class ScopedRateThrottle(CounterThrottle):
    """The rate named by the view's ``throttle_scope`` (e.g. rate_limit.AUTH), per client address."""

    def scope_and_ident(self, request: Request, view: "APIView") -> tuple[str, str] | None:
        scope = getattr(view, "throttle_scope", None)
        if scope is None:
            return None
        return scope, rate_limit.address_bucket(client_ip(request._request))
