"""Log formats for stdout: readable text locally, one JSON object per line in production.

Records carry the request id of the request being served (RequestContextFilter); the access line of
core.middleware adds method, path, status, duration, user id, client address and the host name of the
container that served it. Nothing here logs request bodies, headers or cookies, so passwords, session
ids, CSRF and reset tokens never reach the log.
"""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from core.request_context import request_id

# Fields that code may pass in `extra=`, copied into JSON lines when present.
EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "bytes", "user_id", "client_ip", "hostname")


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


# C0 and C1 control characters and the Unicode line and paragraph separators: any of them in a message
# (a path with %0a, a header echoed in an error) could start what looks like a log line of its own.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class TextFormatter(logging.Formatter):
    """One line per record: control characters in the message are escaped (a newline becomes \\x0a); a
    traceback follows on lines of its own, as Python writes it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return _CONTROL.sub(_escape, super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for field in EXTRA_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter_from_settings() -> logging.Formatter:
    """The formatter named by the LOG_FORMAT setting (logging's dictConfig calls this at start-up)."""
    return JsonFormatter() if settings.LOG_FORMAT == "json" else TextFormatter()
