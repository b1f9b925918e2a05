"""The only place that reads environment variables.

Settings call these helpers; each one names the variable in its error, so a missing or malformed value
stops start-up with a message an operator can act on. ``.env`` at the repository root is loaded first,
without overriding variables that are already set in the real environment.
"""

import ipaddress
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BACKEND_DIR = Path(__file__).resolve().parent.parent
DOTENV_PATH = BACKEND_DIR.parent / ".env"

load_dotenv(DOTENV_PATH, override=False)

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()
"""Default for variables without which the process must not start."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _missing(name: str, hint: str = "") -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name} is required but not set.{hint}")


def _malformed(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is malformed: expected {expected}.")


def missing(names: Iterable[str], *, secrets: Iterable[str] = ()) -> list[str]:
    """The variables not set: of ``names``, and of ``secrets`` (which may also come as ``NAME_FILE``)."""
    absent = [name for name in names if _raw(name) is None]
    absent += [name for name in secrets if _raw(name) is None and _raw(f"{name}_FILE") is None]
    return absent


def require(names: Iterable[str], *, secrets: Iterable[str] = ()) -> None:
    """Stop start-up naming every required variable that is not set, not only the first."""
    absent = missing(names, secrets=secrets)
    if absent:
        raise ImproperlyConfigured(
            "Required environment variable(s) not set: " + ", ".join(absent) + ". See .env.example."
        )


def _parse(name: str, default: T | _Required, parse: Callable[[str], T]) -> T:
    raw = _raw(name)
    if raw is None:
        if isinstance(default, _Required):
            raise _missing(name)
        return default
    return parse(raw)


def env_str(
    name: str,
    default: str | _Required = REQUIRED,
    *,
    validate: Callable[[str], str | None] | None = None,
) -> str:
    """A string; ``validate`` returns a description of what a well-formed value looks like, or None."""

    def parse(raw: str) -> str:
        problem = validate(raw) if validate else None
        if problem:
            raise _malformed(name, raw, problem)
        return raw

    return _parse(name, default, parse)


def env_bool(name: str, default: bool | _Required = REQUIRED) -> bool:
    def parse(raw: str) -> bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise _malformed(name, raw, "one of true/false, 1/0, yes/no, on/off")

    return _parse(name, default, parse)


def env_int(
    name: str,
    default: int | _Required = REQUIRED,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
) -> int:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise _malformed(name, raw, "an integer") from None
        too_small = min_value is not None and value < min_value
        too_large = max_value is not None and value > max_value
        if too_small or too_large:
            if min_value is not None and max_value is not None:
                bounds = f"between {min_value} and {max_value}"
            else:
                bounds = f">= {min_value}" if min_value is not None else f"<= {max_value}"
            raise _malformed(name, raw, f"an integer {bounds}")
        return value

    return _parse(name, default, parse)


def env_list(
    name: str,
    default: list[str] | _Required = REQUIRED,
    *,
    validate: Callable[[str], str | None] | None = None,
) -> list[str]:
    """A comma-separated list; ``validate`` returns a description of what is wrong with an item, or None.
    A value with no items (",") counts as unset."""

    def parse(raw: str) -> list[str]:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if not items:
            if isinstance(default, _Required):
                raise _missing(name)
            return default
        for item in items:
            problem = validate(item) if validate else None
            if problem:
                raise _malformed(name, item, problem)
        return items

    return _parse(name, default, parse)


def _origin_problem(origin: str) -> str | None:
    if re.fullmatch(r"https?://[^/\s?#@]+", origin):
        return None
    return "origins like https://app.example.com, comma-separated (scheme and host, no path)"


def env_origins(name: str, default: list[str] | _Required = REQUIRED) -> list[str]:
    """Browser origins (scheme://host[:port]), as CORS and CSRF compare them."""
    return env_list(name, default, validate=_origin_problem)


def _network_problem(item: str) -> str | None:
    try:
        # Strict, as gunicorn reads them: no host bits set after the prefix (172.16.253.5/24).
        ipaddress.ip_network(item)
    except ValueError:
        return "addresses or networks like 172.16.253.0/24, comma-separated, or *"
    return None


def env_networks(name: str, default: list[str] | _Required = REQUIRED) -> list[str]:
    """IP addresses and networks (CIDR), or "*" for all, as gunicorn's forwarded_allow_ips takes them."""
    return env_list(name, default, validate=lambda item: None if item == "*" else _network_problem(item))


def env_url(name: str, schemes: tuple[str, ...], default: str | _Required = REQUIRED) -> str:
    """A URL that may carry credentials: read like a secret, and never echoed back in an error."""
    value = env_secret(name, default)
    if value == "":
        return value  # not set, and the default says that is fine
    scheme, separator, rest = value.partition("://")
    if not separator or scheme not in schemes or not rest:
        raise ImproperlyConfigured(
            f"Environment variable {name} is malformed: expected a URL starting with "
            + " or ".join(f"{s}://" for s in schemes)
            + "."
        )
    return value


def env_choice(name: str, choices: tuple[str, ...], default: str | _Required = REQUIRED) -> str:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise _malformed(name, raw, "one of " + ", ".join(choices))
        return raw

    return _parse(name, default, parse)


def env_secret(name: str, default: str | _Required = REQUIRED, *, min_length: int = 0) -> str:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (Docker/Compose secrets).

    Setting both is an error, so a stale value cannot silently win over a mounted secret.
    """
    direct, file_name = _raw(name), _raw(f"{name}_FILE")
    if direct is not None and file_name is not None:
        raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both.")
    if file_name is not None:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Environment variable {name}_FILE={file_name!r}: cannot read the file ({exc.strerror})."
            ) from None
        source = f"{name}_FILE"
    elif direct is not None:
        value, source = direct, name
    elif isinstance(default, _Required):
        raise _missing(name, f" (or {name}_FILE)")
    else:
        return default
    if len(value) < min_length:
        raise ImproperlyConfigured(
            f"Environment variable {source} is malformed: expected at least {min_length} characters."
        )
    return value


def env_secret_lines(name: str, default: str | _Required = REQUIRED, *, min_length: int = 0) -> list[str]:
    """A secret of one value per line (env_secret): the current value first, then the ones it replaced
    that must still verify (SECRET_KEY's fallbacks, written by `make rotate-secret`). Blank lines are
    skipped; ``min_length`` applies to each value."""
    values = [line.strip() for line in env_secret(name, default).splitlines() if line.strip()]
    if not values or any(len(value) < min_length for value in values):
        each = f", each of at least {min_length} characters" if min_length else ""
        raise ImproperlyConfigured(
            f"Environment variable {name} (or {name}_FILE) is malformed: expected one value per line{each}."
        )
    return values
