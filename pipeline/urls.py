"""What counts as a web address: the one test every stage uses (config, fetch, extract, select,
render, check), so a link one stage accepts is never refused, or let through, by another."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, urlsplit

WEB_SCHEMES = ("http", "https")
# What may stay unencoded in a Markdown link target: no spaces, parentheses, angle brackets or quotes.
_LINK_SAFE = ":/?#&=%+,;@!$'*~.-_"


# The common shape, told without urlsplit: every build looks at every stored item's link once.
_PLAIN_WEB_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::([0-9]{0,5}))?(?:[/?#]|$)")


@lru_cache(maxsize=1 << 16)
def is_web_url(url: str) -> bool:
    """An absolute http(s) URL with a host and, if it names one, a valid port."""
    plain = _PLAIN_WEB_URL.match(url)
    if plain and int(plain.group(1) or 0) <= 65535:
        return True
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:  # e.g. an unclosed "[" in the host
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)


def link_target(url: str) -> str:
    """`url` as a draft writes it inside "(...)": spaces, parentheses, <>, quotes percent-encoded.

    Encoding twice changes nothing, so a link read back from a draft keys the same story as the
    stored item it was written from.
    """
    return quote(url.strip(), safe=_LINK_SAFE)
