"""Request rates like '10/m' or '5/15m'. Plain Python, so settings can validate rates when they load."""

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds

    @classmethod
    def parse(cls, text: str) -> "Rate":
        """'10/m', '100/h', '5/15m' (five per fifteen minutes)."""
        match = re.fullmatch(r"(\d+)/([1-9]\d*)?([smhd])", text)
        if not match:
            raise ValueError(f"Malformed rate {text!r}: expected e.g. 10/m, 100/h or 5/15m.")
        limit, multiple, unit = match.groups()
        return cls(limit=int(limit), period=int(multiple or 1) * _UNITS[unit])
