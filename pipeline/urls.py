"""What counts as a web address: the one test every stage uses (config, fetch, extract, select,
render, check), so a link one stage accepts is never refused, or let through, by another."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

WEB_SCHEMES = ("http", "https")


@lru_cache(maxsize=1 << 16)
def is_web_url(url: str) -> bool:
    """An absolute http(s) URL with a host and, if it names one, a valid port."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:  # e.g. an unclosed "[" in the host
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)
