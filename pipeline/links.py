"""What a link is in a draft: http(s) only, and written the one way a Markdown link target can hold it."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

SAFE_SCHEMES = ("http", "https")
# What may stay unencoded in a Markdown link target: no spaces, parentheses, angle brackets or quotes.
_LINK_SAFE = ":/?#&=%+,;@!$'*~.-_"


def link_target(url: str) -> str:
    """`url` as a draft writes it inside "(...)": spaces, parentheses, <>, quotes percent-encoded.

    Encoding twice changes nothing, so a link read back from a draft keys the same story as the
    stored item it was written from.
    """
    return quote(url.strip(), safe=_LINK_SAFE)


def is_web_link(url: str) -> bool:
    """An absolute http(s) link with a host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unclosed "[" in the host
        return False
    return parts.scheme.lower() in SAFE_SCHEMES and bool(parts.netloc)
