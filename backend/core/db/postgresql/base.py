"""Django's PostgreSQL backend (ENGINE "core.db.postgresql"), with its health check skipped for a
connection that was used moments ago.

CONN_HEALTH_CHECKS pings a persistent connection (SELECT 1) before the first query of every request,
so that a connection the server dropped (a restart, a network cut) is replaced before a request fails
on it. Under load that is a second round trip per request, for a connection that answered a query a
few milliseconds before. Here a connection that ran a query less than TRUSTED_FOR seconds ago is not
pinged. One that died within that second fails its next query instead; the API answers that request
503 with Retry-After (core.exceptions), and Django closes the broken connection when the request
ends, so the next request connects afresh.
"""

import time
from typing import Any

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    TRUSTED_FOR = 1.0  # seconds

    _used_at = float("-inf")

    def create_cursor(self, name: Any = None) -> Any:
        self._used_at = time.monotonic()
        return super().create_cursor(name)

    def close_if_health_check_failed(self) -> None:
        if self.connection is not None and time.monotonic() - self._used_at < self.TRUSTED_FOR:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
