"""The session engine (SESSION_ENGINE = "core.sessions"): Django's cached_db, made honest under Redis faults.

cached_db reads a session from Redis and writes it through to the database, so a Redis outage logs
nobody out: reads fall back to the database. Three things change here:

- Ending a session deletes the Redis copy first, and only if Redis confirmed it, the database row. If
  Redis does not answer (or its circuit is open, core.cache), SessionNotEndedError is raised and nothing is
  deleted: the client gets 503, never a logout that a replayed cookie could undo once Redis answers again
  (Django deletes the row, and its cache delete fails silently).
- Ending a session leaves a tombstone in Redis for SESSION_CACHE_MAX_AGE seconds, set in the same step
  that deletes the copy, and a copy is written only while there is no tombstone (one Redis script,
  core.cache). So a request that read the database row before the logout deleted it cannot write the
  ended session back to Redis, where later requests would find it without looking at the database; it
  is answered as having no session.
- The Redis copy lives at most SESSION_CACHE_MAX_AGE seconds, so a copy that a failed delete or a race
  left behind cannot outlive minutes; the database keeps the session for SESSION_COOKIE_AGE.
- A database outage while saving is raised as the database error it is (a 503), not as Django's
  UpdateError, which the session middleware reports as 400 "session deleted in a concurrent request".

A save whose data did not change since the last save of this request is skipped, so the service that
saves a session explicitly (and can report its failure) does not pay for a second write when the
session middleware saves again.
"""

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.db import InterfaceError, OperationalError

from core.cache import CacheUnavailableError, strict


class SessionNotEndedError(CacheUnavailableError):
    """The session could not be ended (its Redis copy may still be live); nothing was deleted."""


# Where the tombstone of an ended session lives, beside cached_db's copies.
ENDED_KEY_PREFIX = "django.contrib.sessions.ended"


class SessionStore(cached_db.SessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._last_saved: tuple[str | None, dict[str, Any]] | None = None

    def _cache_timeout(self, **kwargs: Any) -> int:
        return min(self.get_expiry_age(**kwargs), settings.SESSION_CACHE_MAX_AGE)

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] | None = self._cache.get(self.cache_key)  # type: ignore[attr-defined]
        if data is None:
            row = self._get_session_from_db()  # type: ignore[attr-defined]
            if row is None:
                return {}
            data = self.decode(row.session_data)
            if not self._cache_unless_ended(data, self._cache_timeout(expiry=row.expire_date)):
                self._session_key = None  # ended while it was read: no session, as for a missing row
                return {}
        return data

    def _cache_unless_ended(self, data: dict[str, Any], timeout: int) -> bool:
        """Write the Redis copy unless the session has been ended; False if it has."""
        try:
            return strict(self._cache).set_unless_ended(  # type: ignore[attr-defined]
                self.cache_key, data, timeout, f"{ENDED_KEY_PREFIX}{self.session_key}"
            )
        except CacheUnavailableError:
            return True  # the database row is what counts, and the copy expires (cached_db's view too)

    def save(self, must_create: bool = False) -> None:
        data = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        if not must_create and self._last_saved == (self.session_key, data):
            return
        try:
            DatabaseStore.save(self, must_create)
        except UpdateError as error:
            if isinstance(error.__context__, OperationalError | InterfaceError):
                raise error.__context__ from None
            raise
        self._last_saved = (self.session_key, dict(data))
        self._cache_unless_ended(self._session, self._cache_timeout())  # type: ignore[attr-defined]

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        try:
            strict(self._cache).end(  # type: ignore[attr-defined]
                self.cache_key_prefix + session_key,
                ENDED_KEY_PREFIX + session_key,
                settings.SESSION_CACHE_MAX_AGE,
            )
        except CacheUnavailableError as error:
            raise SessionNotEndedError(str(error)) from error
        DatabaseStore.delete(self, session_key)

    def cycle_key(self) -> None:
        # Django creates the new session before deleting the old one; the other way round, a failed
        # delete leaves no orphan behind.
        data = self._session  # type: ignore[attr-defined]
        old_key = self.session_key
        if old_key:
            self.delete(old_key)
        self.create()
        self._session_cache = data

    def flush(self) -> None:
        # Deleted first: if that fails, the session and its data are still there, as the 503 says.
        self.delete(self.session_key)
        self.clear()
        self._session_key = None
        self._last_saved = None

    # The async variants (ASGI) follow the same rules.
    async def aload(self) -> dict[str, Any]:
        return await sync_to_async(self.load)()

    async def asave(self, must_create: bool = False) -> None:
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        await sync_to_async(self.delete)(session_key)

    async def aflush(self) -> None:
        await sync_to_async(self.flush)()
