"""Request body parsing."""

from collections.abc import Mapping
from io import BytesIO
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.exceptions import RequestTooLarge


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with Django's body size limit, which DRF skips by reading the stream itself, and a
    400 for JSON nested too deeply to parse.

        Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are refused with 413 before they are read into memory when
        Content-Length says so, and after reading at most one byte more than the limit otherwise.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit: int = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge()
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge()
        try:
            return super().parse(BytesIO(body), media_type, parser_context)
        except RecursionError:
            # Nested deeper than Python's recursion limit (about a thousand levels): a few kilobytes of
            # "[[[[" would otherwise be a 500 with a traceback in the log.
            raise ParseError("JSON parse error - nested too deeply.") from None
