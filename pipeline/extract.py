"""Feed bytes -> Items: headline, source, date and link, cleaned of everything a feed gets wrong.

Pure: no network, no files. Feed text is untrusted and comes out as plain one-line strings.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import hashlib
import html
import re
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

import feedparser
import feedparser.api
import feedparser.urls
from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

from .errors import FeedError
from .models import Extraction, Feed, Item
from .urls import WEB_SCHEMES

# Query parameters that only track the reader; dropping them makes one story one link.
TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
    "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id",
    "wickedid", "rb_clickid", "s_cid", "ncid", "cmpid", "ito", "at_medium", "at_campaign",
}
TRACKING_PREFIXES = ("utm_", "at_custom", "hsa_", "pk_", "mtm_")

_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>?")
# A summary is evidence of what a story is about, never shown as written: its opening is enough, and
# a bound keeps a feed that puts whole articles in <description> from filling the store.
SUMMARY_LIMIT = 400
_LOOKS_LIKE_MARKUP = re.compile(r"<[A-Za-z/!]|&(#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")


def _lighten_feedparser() -> None:
    """Spare feedparser two costs that buy us nothing; what it returns stays exactly the same.

    - To track xml:base, feedparser joins the document's address with itself at every start tag:
      a quarter of the time of a parse. That join (a pure function of one string) is remembered here,
      for a few short addresses only: any other join runs as before.
    - feedparser first asks xml.sax for libxml2's SAX driver, on every parse. That driver (a Python 2
      binding) is never installed, and the failed import costs about a twentieth of a small feed's parse.
      xml.sax then uses expat, its default, which is what feedparser gets without the request.
    Both are module globals feedparser reads at each call; should a release rename them, nothing changes.
    """
    join = getattr(feedparser.urls, "_urljoin", None)
    if callable(join) and not hasattr(join, "same_address"):
        feedparser.urls._urljoin = _remember_self_joins(join)
    if getattr(feedparser.api, "PREFERRED_XML_PARSERS", None) == ["drv_libxml2"]:
        try:
            import drv_libxml2  # noqa: F401
        except ImportError:
            feedparser.api.PREFERRED_XML_PARSERS = []


def _remember_self_joins(join: Callable[[str, str], str]) -> Callable[[str, str], str]:
    @functools.lru_cache(maxsize=32)
    def same_address(address: str) -> str:
        return join(address, address)

    @functools.wraps(join)
    def joined(base: str, uri: str) -> str:
        if base == uri and isinstance(base, str) and len(base) <= 2048:
            return same_address(base)
        return join(base, uri)

    joined.same_address = same_address  # type: ignore[attr-defined]  # for tests, and to patch once
    return joined


_lighten_feedparser()


def plain_text(fragment: str) -> str:
    """Strip HTML and decode entities (twice at most: feeds often escape HTML twice), one line."""
    text = fragment
    for _ in range(2):
        if not _LOOKS_LIKE_MARKUP.search(text):
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            soup = BeautifulSoup(text, "html.parser")
            for tag in soup.find_all(["br", "p", "div", "li"]):
                tag.insert_before(" ")  # block breaks separate words; inline tags do not
            text = soup.get_text()
    return _SPACE.sub(" ", text).strip()


def summary_text(fragment: str) -> str:
    """A feed's description as plain text of at most SUMMARY_LIMIT characters, cut between words.

    Cheaper than plain_text (no HTML parser: every item has a summary, and it is only ever searched
    for words): tags are dropped and entities decoded, twice for feeds that escape HTML twice.
    """
    text = fragment[: SUMMARY_LIMIT * 8]  # markup and entities take room; the rest is never read
    for _ in range(2):
        if not _LOOKS_LIKE_MARKUP.search(text):
            break
        text = html.unescape(_TAG.sub(" ", text))
    text = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    if len(text) > SUMMARY_LIMIT:
        text = text[:SUMMARY_LIMIT].rsplit(" ", 1)[0]
    return text


def strip_publisher_suffix(headline: str, publisher: str | None) -> str:
    """Google News appends ' - Publisher' to titles; drop it when it names the item's <source>."""
    if publisher:
        for dash in (" - ", " – ", " — ", " | "):
            suffix = f"{dash}{publisher}"
            if headline.endswith(suffix) and len(headline) > len(suffix):
                return headline[: -len(suffix)].rstrip()
    return headline


def canonical_link(link: str, base: str | None = None) -> str | None:
    """Absolute http(s) URL without tracking parameters or fragment; None for anything else."""
    link = _SPACE.sub("", link or "")
    if not link:
        return None
    try:
        if base:
            link = urljoin(base, link)
        parts = urlsplit(link)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    if parts.username or parts.password:
        return None  # credentials in a feed link are a trick, not a story
    # Filter the raw `name=value` pieces rather than re-encoding them: the parameters a site
    # needs (`?amp`, `q=one%20bed`) must reach it exactly as the feed wrote them.
    kept = [piece for piece in parts.query.split("&") if piece and not _is_tracking(piece)]
    return urlunsplit((scheme, host, parts.path or "/", "&".join(kept), ""))


def _is_tracking(query_piece: str) -> bool:
    key = unquote_plus(query_piece.split("=", 1)[0]).strip().lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def publisher_local_date(entry: Any) -> dt.date | None:
    """The publication date in the publisher's own UTC offset, as the feed states it."""
    # dict.get: feedparser's own .get maps `updated` back to `published` (with a warning) and
    # `date` to `updated`; we ask for each stored key exactly once. dc:date is stored as `updated`.
    for key in ("published", "updated", "created"):
        raw = dict.get(entry, key)
        if not raw or not isinstance(raw, str):
            continue
        parsed = _parse_stated_date(raw.strip())
        if parsed is not None:
            return parsed
        # A format we cannot read with its offset: feedparser's UTC reading is the next best.
        struct = dict.get(entry, f"{key}_parsed")
        if struct:
            try:
                return dt.date(struct.tm_year, struct.tm_mon, struct.tm_mday)
            except ValueError:
                continue
    return None


def _parse_stated_date(raw: str) -> dt.date | None:
    try:
        stamp = email.utils.parsedate_to_datetime(raw)
        if stamp is not None:
            return stamp.date()
    except (TypeError, ValueError, IndexError):
        pass
    iso = raw.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        return dt.datetime.fromisoformat(iso).date()
    except ValueError:
        pass
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        return None


def extract_items(
    feed: Feed, body: bytes, headers: dict[str, str] | None = None, base_url: str | None = None
) -> Extraction:
    """Parse one feed document (with its response headers, so a declared charset is honoured)."""
    base_url = base_url or feed.url
    if not body.strip():
        raise FeedError(feed.url, "the server sent an empty body instead of a feed")
    response_headers = {key.lower(): value for key, value in (headers or {}).items()}
    base_url = _document_base(base_url, response_headers.pop("content-location", None))
    # feedparser resolves xml:base chains and relative permalink guids against the document's address;
    # always giving it keeps each item's guid, its key in the store, the same from run to run.
    response_headers["content-location"] = base_url
    # feedparser would follow a string that looks like a URL or a path; bytes are always data.
    # No HTML from a feed is ever kept: headlines go through plain_text, summaries through summary_text,
    # and the one link we keep is made absolute by canonical_link. So feedparser's HTML sanitizer and
    # relative-URI pass would only cost time (about a third of a parse).
    parsed = feedparser.parse(bytes(body), response_headers=response_headers, resolve_relative_uris=False,
                              sanitize_html=False)
    feed_title = plain_text(parsed.feed.get("title", "")) or None
    if not parsed.entries:
        if parsed.get("bozo") and not parsed.get("version"):
            reason = parsed.get("bozo_exception")
            raise FeedError(feed.url, f"not a readable RSS or Atom feed ({_short(reason)})")
        if not parsed.get("version"):
            raise FeedError(feed.url, "the response is not an RSS or Atom feed")
    items: list[Item] = []
    skipped = 0
    for entry in parsed.entries:
        item = _entry_item(feed, entry, feed_title, base_url)
        if item is None:
            skipped += 1
        else:
            items.append(item)
    warning = None
    if parsed.get("bozo") and parsed.entries:
        warning = f"feed is not well-formed, read what could be read ({_short(parsed.get('bozo_exception'))})"
    return Extraction(items=tuple(items), skipped=skipped, title=feed_title, warning=warning)


def _document_base(url: str, content_location: str | None) -> str:
    """The address relative links resolve against: the server's Content-Location, else where we got it."""
    if not content_location:
        return url
    try:
        return urljoin(url, content_location.strip())
    except ValueError:
        return url


def _entry_item(feed: Feed, entry: Any, feed_title: str | None, base_url: str) -> Item | None:
    entry_source = entry.get("source") or {}
    source_title = plain_text(entry_source.get("title", "")) if hasattr(entry_source, "get") else ""
    headline = strip_publisher_suffix(plain_text(entry.get("title", "")), source_title or None)
    if not headline:
        return None
    link = canonical_link(entry.get("link", ""), base_url)
    if link is None:
        return None
    source = feed.publisher or source_title or feed_title or (urlsplit(feed.url).hostname or feed.url)
    guid = (entry.get("id") or "").strip() or link or hashlib.sha1(headline.encode()).hexdigest()
    return Item(
        feed_url=feed.url,
        guid=guid[:2000],
        headline=headline[:500].rstrip(),  # a cut must not leave a trailing space
        source=source[:200],
        date=publisher_local_date(entry),
        url=link,
        summary=_entry_summary(entry),
        source_url=_source_site(entry_source, link),
    )


def _source_site(entry_source: Any, link: str) -> str:
    """The publisher's site from <source url="...">, when it is not the item's own site (a feed that
    names itself as source says nothing about another copy)."""
    href = entry_source.get("href", "") if hasattr(entry_source, "get") else ""
    site = canonical_link(href) if isinstance(href, str) else None
    if site is None or urlsplit(site).hostname == urlsplit(link).hostname:
        return ""
    return site[:500]


def _entry_summary(entry: Any) -> str:
    raw = dict.get(entry, "summary")
    if not isinstance(raw, str) or not raw.strip():
        content = dict.get(entry, "content") or []
        raw = content[0].get("value", "") if content and hasattr(content[0], "get") else ""
    return summary_text(raw) if isinstance(raw, str) else ""


def _short(reason: object) -> str:
    text = _SPACE.sub(" ", str(reason or "unknown error")).strip()
    return text[:160]
