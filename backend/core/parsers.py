"""Request body parsing."""

import re
from collections.abc import Mapping
from io import BytesIO
from itertools import accumulate
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.exceptions import RequestTooLarge

# What the depth count skips and keeps: JSON strings (brackets inside them do not nest), then anything
# but brackets.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether arrays and objects in ``text`` nest more than ``limit`` levels (``[]`` is one level).

    Counted on the text before any parser sees it, the same way on every Python. Up to the first syntax
    error, where a parser stops, strings are skipped exactly where JSON has them, so the deepest level
    counted is at least the deepest a parser reaches. A text without more than ``limit`` opening
    brackets in all, strings included, is not counted further.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with Django's body size limit, which DRF skips by reading the stream itself, and
    a nesting limit.

    Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are refused with 413 before they are read into memory when
    Content-Length says so, and after reading at most one byte more than the limit otherwise. Bodies
    nested deeper than JSON_MAX_DEPTH are a 400 PARSE_ERROR before they reach the parser, whose C code
    recurses once per level, as do DRF's serializers after it (docs/decisions.md, "JSON nesting").
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
        # Decoded as DRF decodes it, so the count sees the characters the parser will.
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        max_depth: int = settings.JSON_MAX_DEPTH
        if nesting_exceeds(text, max_depth):
            raise ParseError(f"JSON parse error - nested too deeply (more than {max_depth} levels).")
        return super().parse(BytesIO(body), media_type, parser_context)
