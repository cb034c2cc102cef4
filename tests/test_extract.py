"""Feed bytes -> items: every rule of issue 2's "Items: what we extract", on real-world-shaped feeds.

Golden pairs live in tests/data/feeds/: `NAME.xml` beside `NAME.items.json`, which holds the feed's
configuration, the response headers it is served with, and exactly the items it must give.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import FeedError
from pipeline.extract import canonical_link, extract_items, plain_text, strip_publisher_suffix
from pipeline.models import Feed

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
GOLDEN = sorted(p.name.removesuffix(".items.json") for p in FEEDS.glob("*.items.json"))


def load_golden(name: str) -> dict:
    return json.loads((FEEDS / f"{name}.items.json").read_text(encoding="utf-8"))


def extract_sample(name: str, feed: Feed | None = None, headers: dict[str, str] | None = None):
    golden = load_golden(name)
    feed = feed or Feed(url=golden["feed"]["url"], publisher=golden["feed"]["publisher"])
    body = (FEEDS / f"{name}.xml").read_bytes()
    return extract_items(feed, body, golden["headers"] if headers is None else headers)


def by_guid(extraction) -> dict:
    return {item.guid: item for item in extraction.items}


def test_golden_pairs_are_all_there() -> None:
    # The parametrised test below would silently shrink if a pair lost a file.
    assert len(GOLDEN) >= 5
    for name in GOLDEN:
        assert (FEEDS / f"{name}.xml").is_file(), name


@pytest.mark.parametrize("name", GOLDEN)
def test_feed_gives_exactly_its_golden_items(name: str) -> None:
    golden = load_golden(name)
    extraction = extract_sample(name)
    got = [
        {"headline": i.headline, "source": i.source, "date": i.date.isoformat() if i.date else None,
         "url": i.url, "guid": i.guid, "summary": i.summary, "source_url": i.source_url}
        for i in extraction.items
    ]
    assert got == golden["items"]
    assert extraction.skipped == golden["skipped"]
    assert {item.feed_url for item in extraction.items} == {golden["feed"]["url"]}


# -- Headline -----------------------------------------------------------------------------------


def test_entities_inside_cdata_are_decoded() -> None:
    items = by_guid(extract_sample("rss2-cdata-entities"))
    headline = items["https://news.expatdesk.example/?p=40211"].headline
    assert headline.startswith("China\u2019s new visa-free rules")
    assert "&#" not in headline


def test_html_is_removed_and_whitespace_collapsed() -> None:
    items = by_guid(extract_sample("rss2-cdata-entities"))
    assert items["https://news.expatdesk.example/?p=40198"].headline == (
        "WeChat Pay & Alipay raise limits for foreign cards"
    )
    # <br/> separates words rather than gluing "2" to "from".
    assert items["https://news.expatdesk.example/?p=40150"].headline == "Metro fares change on Line 2 from April"
    atom = [i.headline for i in extract_sample("atom-xml-base").items]
    assert "Spring orientation for new arrivals" in atom  # type="html" with escaped <em>
    assert "Residence permit renewals move online" in atom  # type="xhtml" with <strong>
    for headline in atom:
        assert "<" not in headline and "\n" not in headline and "  " not in headline


def test_template_syntax_in_titles_is_kept_as_plain_text() -> None:
    items = by_guid(extract_sample("rss2-cdata-entities"))
    assert items["https://news.expatdesk.example/2026/03/wechat-encryption/"].headline == (
        "Is WeChat end-to-end encrypted? {{ config.SECRET }} and {% raw %}"
    )


def test_google_news_suffix_removed_only_when_it_names_the_items_source() -> None:
    items = by_guid(extract_sample("google-news"))
    assert items["CBMiakFVX3lxTE1abc123"].headline == "China extends visa-free entry to 30 days for more countries"
    assert items["CBMiZkFVX3lxTE9def456"].headline == "What the new China visa rules mean for US students"
    # A dash inside the headline stays; only the trailing " - Publisher" goes.
    assert items["CBMiXkFVX3lxTGhij789"].headline == "Beijing - Shanghai high-speed rail adds night trains"
    # "- Reuters analysis" is not the source's name, and an item without <source> keeps its title.
    assert items["CBMiQkFVX3lxTklmn000"].headline == "Students weigh study abroad options - Reuters analysis"
    assert items["CBMiNoSource999"].headline == "Embassy reminds travellers of passport validity rules - Reuters"


@pytest.mark.parametrize(
    ("headline", "publisher", "expected"),
    [
        ("Story - Reuters", "Reuters", "Story"),
        ("Story \u2013 Caixin Global", "Caixin Global", "Story"),
        ("Story - Reuters", None, "Story - Reuters"),
        ("Reuters", "Reuters", "Reuters"),  # never strip a headline down to nothing
        ("Story - Reuters", "AP", "Story - Reuters"),
    ],
)
def test_strip_publisher_suffix(headline: str, publisher: str | None, expected: str) -> None:
    assert strip_publisher_suffix(headline, publisher) == expected


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("It&#8217;s <b>here</b>", "It\u2019s here"),
        ("&lt;i&gt;double&lt;/i&gt; escaped", "double escaped"),
        ("line one\n\t line   two", "line one line two"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("5 < 6 is true", "5 < 6 is true"),
        ("{{ x }}", "{{ x }}"),
    ],
)
def test_plain_text(fragment: str, expected: str) -> None:
    assert plain_text(fragment) == expected


# -- Source -------------------------------------------------------------------------------------


def test_source_prefers_configured_publisher_then_item_source_then_feed_title() -> None:
    configured = extract_sample("google-news", feed=Feed(url="https://news.google.com/rss/x", publisher="Our Name"))
    assert {i.source for i in configured.items} == {"Our Name"}
    # The suffix is still stripped by the item's own <source>, whatever the configured name.
    assert by_guid(configured)["CBMiakFVX3lxTE1abc123"].headline.endswith("for more countries")

    plain = by_guid(extract_sample("google-news"))
    assert plain["CBMiakFVX3lxTE1abc123"].source == "Reuters"
    assert plain["CBMiNoSource999"].source == '"china visa" - Google News'  # no <source>: the feed title
    assert {i.source for i in extract_sample("rss1-rdf").items} == {"Asia Briefing Wire"}


# -- Date ---------------------------------------------------------------------------------------


def rss_with_dates(*stamps: str) -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>https://ex.example/{n}</link><guid>g{n}</guid>{stamp}</item>"
        for n, stamp in enumerate(stamps)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ("<pubDate>Fri, 06 Mar 2026 00:30:00 +0800</pubDate>", "2026-03-06"),  # UTC would say 03-05
        ("<pubDate>Thu, 05 Mar 2026 23:10:00 -0500</pubDate>", "2026-03-05"),  # UTC would say 03-06
        ("<pubDate>Thu, 05 Mar 2026 23:10:00 GMT</pubDate>", "2026-03-05"),
        ("<pubDate>6 Mar 2026 00:30 +0800</pubDate>", "2026-03-06"),
        ("<pubDate>2026-03-06T00:30:00+08:00</pubDate>", "2026-03-06"),
        ('<dc:date xmlns:dc="http://purl.org/dc/elements/1.1/">2026-03-06T01:15:00+08:00</dc:date>', "2026-03-06"),
        ("<pubDate>sometime last week</pubDate>", None),
        ("", None),
    ],
)
def test_date_is_the_publishers_own_calendar_day(element: str, expected: str | None) -> None:
    (item,) = extract_items(Feed(url="https://ex.example/rss"), rss_with_dates(element)).items
    assert (item.date.isoformat() if item.date else None) == expected


def test_atom_with_only_updated_and_rss1_dc_date_are_dated_in_their_own_offset() -> None:
    atom = by_guid(extract_sample("atom-xml-base"))
    # 07:45 +08:00 is still 03-05 in UTC; 23:30 -08:00 is already 03-02 in UTC.
    assert atom["tag:campus.example.edu,2026:intl-news/101"].date == dt.date(2026, 3, 6)
    assert atom["tag:campus.example.edu,2026:intl-news/102"].date == dt.date(2026, 3, 1)
    # With both, the publication date wins over the later update.
    assert atom["tag:campus.example.edu,2026:intl-news/103"].date == dt.date(2026, 2, 27)
    rdf = [i.date for i in extract_sample("rss1-rdf").items]
    assert rdf == [dt.date(2026, 3, 6), dt.date(2026, 3, 5)]


def test_item_without_a_date_is_kept_with_date_none() -> None:
    items = by_guid(extract_sample("rss2-cdata-entities"))
    assert items["https://news.expatdesk.example/?p=40150"].date is None
    assert items["https://news.expatdesk.example/2026/03/bad-date/"].date is None


# -- Link ---------------------------------------------------------------------------------------


def test_links_resolve_against_xml_base_and_the_feed_url() -> None:
    atom = {i.headline: i.url for i in extract_sample("atom-xml-base").items}
    assert atom["Spring orientation for new arrivals"] == (
        "https://campus.example.edu/intl/news/2026/spring-orientation.html?week=10"
    )
    assert atom["Dormitory internet: VPN policy reminder"] == "https://campus.example.edu/housing/notices/vpn.html"
    assert atom["Residence permit renewals move online"] == "https://campus.example.edu/visa/residence-permit-online"
    rss = {i.headline: i.url for i in extract_sample("rss2-cdata-entities").items}
    assert rss["Hospital in Pudong opens English-language clinic"] == (
        "https://news.expatdesk.example/2026/03/pudong-clinic/?id=77"
    )


def test_relative_links_resolve_against_the_final_url_after_redirects() -> None:
    body = rss_with_dates("").replace(b"https://ex.example/0", b"story/0")
    (item,) = extract_items(Feed(url="https://old.example/rss"), body, {}, base_url="https://new.example/feeds/rss").items
    assert item.url == "https://new.example/feeds/story/0"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_relative_xml_base_chain_resolves_against_the_documents_address(encoding: str) -> None:
    # feedparser is only told the document's address when xml:base appears (it costs a URL join per
    # element); a relative xml:base, in any encoding, must still end in an absolute link.
    body = (f'<?xml version="1.0" encoding="{encoding}"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom" xml:base="/intl/"><title>Campus</title>'
            '<entry xml:base="housing/"><title>Dorm rules</title><link href="notices/1.html"/>'
            "<id>tag:x,2026:1</id><updated>2026-03-06T08:00:00Z</updated></entry></feed>").encode(encoding)
    (item,) = extract_items(Feed(url="https://old.example/rss"), body, {},
                            base_url="https://campus.example.edu/feeds/atom").items
    assert item.url == "https://campus.example.edu/intl/housing/notices/1.html"


def test_a_relative_content_location_is_the_base_of_relative_links() -> None:
    body = rss_with_dates("").replace(b"https://ex.example/0", b"story/0")
    (item,) = extract_items(Feed(url="https://ex.example/feeds/rss"), body,
                            {"Content-Location": "/news/feed/"}).items
    assert item.url == "https://ex.example/news/feed/story/0"


def test_javascript_and_data_links_drop_the_item() -> None:
    extraction = extract_sample("rss2-cdata-entities")
    assert extraction.skipped == 2
    assert not {"spam-1", "spam-2"} & set(by_guid(extraction))
    assert all(i.url.startswith(("http://", "https://")) for i in extraction.items)


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", " JavaScript:alert(1)", "java\nscript:alert(1)", "data:text/html,<b>x</b>",
     "mailto:desk@ex.example", "ftp://ex.example/file", "file:///etc/passwd", "https://user:pw@ex.example/x", ""],
)
def test_canonical_link_refuses_everything_but_http(link: str) -> None:
    assert canonical_link(link, "https://ex.example/rss") is None


def test_tracking_parameters_removed_other_parameters_kept_as_written() -> None:
    rss = {i.headline: i.url for i in extract_sample("rss2-cdata-entities").items}
    assert rss["China\u2019s new visa-free rules: what U.S. students need to know"] == (
        "https://news.expatdesk.example/2026/03/visa-free-rules/"
    )
    assert rss["WeChat Pay & Alipay raise limits for foreign cards"] == (
        "https://news.expatdesk.example/2026/03/payments-limits/?ref=homepage"
    )
    assert rss["Metro fares change on Line 2 from April"] == (
        "https://news.expatdesk.example/2026/03/metro-fares/?page=2&lang=en"
    )
    assert rss["Apartment hunting checklist for new arrivals"] == (
        "https://news.expatdesk.example/guides/apartments?amp&tags=rent&tags=deposit&q=one%20bed"
    )
    (rdf, _) = extract_sample("rss1-rdf").items
    assert "gclid" not in rdf.url and "s_cid" not in rdf.url


_KEEP = st.sampled_from(["id", "page", "q", "lang", "ref", "tags", "amp", "p"])
_TRACK = st.sampled_from(["utm_source", "utm_medium", "UTM_Campaign", "fbclid", "gclid", "mc_eid", "msclkid"])
_VALUE = st.text(alphabet="abcXYZ019-._~%20", max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(_KEEP, _TRACK), _VALUE), max_size=6))
def test_canonical_link_drops_exactly_the_tracking_parameters(params: list[tuple[str, str]]) -> None:
    query = "&".join(f"{k}={v}" for k, v in params)
    got = canonical_link(f"https://ex.example/a?{query}#frag")
    kept = [f"{k}={v}" for k, v in params if not (k.lower().startswith("utm_") or k in {
        "fbclid", "gclid", "mc_eid", "msclkid"})]
    assert got == "https://ex.example/a" + (f"?{'&'.join(kept)}" if kept else "")


# -- Encoding and bad input -----------------------------------------------------------------------


def test_gb2312_feed_is_read_with_the_charset_from_the_http_header() -> None:
    headlines = [i.headline for i in extract_sample("gb2312-http-charset").items]
    assert headlines == ["外国人支付便利化新措施发布", "留学生签证办理指南更新"]


def test_not_a_feed_raises_feed_error_naming_the_url() -> None:
    with pytest.raises(FeedError) as caught:
        extract_items(Feed(url="https://ex.example/rss"), b"<html><body>Login required</body></html>",
                      {"content-type": "text/html"})
    assert caught.value.url == "https://ex.example/rss"
    assert "RSS or Atom" in caught.value.reason


@pytest.mark.parametrize("guid", ["<guid>/news/1</guid>", '<guid isPermaLink="true">/news/1</guid>',
                                  "<guid><![CDATA[ /news/1 ]]></guid>"])
def test_a_relative_permalink_guid_is_the_same_key_whatever_else_the_feed_says(guid: str) -> None:
    # The guid (with the feed's URL) is what the store knows an item by: it must not change because
    # another entry happens to mention xml:base, which changes how feedparser is called.
    entry = f"<item><title>Visa rules change</title>{guid}</item>"
    plain = f"<?xml version='1.0'?><rss version='2.0'><channel><title>P</title>{entry}</channel></rss>"
    mention = plain.replace("</channel>", "<item><title>How xml:base works</title><link>/news/2</link></item></channel>")
    feed = Feed(url="https://pub.example/feeds/rss.xml")
    guids = {extract_items(feed, body.encode(), {"Content-Type": "application/rss+xml"}).items[0].guid
             for body in (plain, mention)}
    assert guids == {"https://pub.example/news/1"}


def test_a_non_permalink_guid_is_kept_as_written() -> None:
    body = ("<?xml version='1.0'?><rss version='2.0'><channel><title>P</title><item><title>T</title>"
            "<guid isPermaLink='false'>story-77</guid><link>https://pub.example/77</link></item></channel></rss>")
    (item,) = extract_items(Feed(url="https://pub.example/rss"), body.encode(), {}).items
    assert item.guid == "story-77"


def test_summary_is_plain_bounded_text_from_the_description() -> None:
    from pipeline.extract import SUMMARY_LIMIT, summary_text

    feed = Feed(url="https://feeds.example/s")
    long_words = " ".join(["residence permits"] * 200)
    body = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>
<item><title>One</title><link>https://s.example/1</link>
<description>&lt;p&gt;Banks &amp;amp; &lt;b&gt;foreign&lt;/b&gt; customers&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</description></item>
<item><title>Two</title><link>https://s.example/2</link><description>{long_words}</description></item>
<item><title>Three</title><link>https://s.example/3</link></item>
</channel></rss>""".encode()
    one, two, three = extract_items(feed, body).items
    assert one.summary == "Banks & foreign customers x()"  # no tag survives; entities decoded once more
    assert "<" not in one.summary
    assert len(two.summary) <= SUMMARY_LIMIT and two.summary.endswith(("residence", "permits"))
    assert three.summary == ""
    assert summary_text("&amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt; text") == "bold text"
    assert summary_text("cut <a href='x") == "cut"


# -- What feedparser is spared (speed only: its answers stay the same) ------------------------------


def test_feedparser_joins_each_document_address_with_itself_once() -> None:
    import feedparser.urls

    remembered = feedparser.urls._urljoin.same_address  # installed when pipeline.extract is imported
    remembered.cache_clear()
    extract_sample("atom-xml-base")
    extract_sample("atom-xml-base")
    info = remembered.cache_info()
    assert info.misses >= 1
    assert info.hits > 10 * info.misses  # one join per start tag, one miss per address


@pytest.mark.parametrize(("base", "uri"), [
    ("https://ex.example/feeds/rss", "https://ex.example/feeds/rss"),
    ("https://ex.example/feeds/rss", "story/1"),
    ("https://ex.example/a/", "../b"),
    ("", ""),
    ("", "/news/1"),
    ("https://ex.example/a", "javascript:alert(1)"),
    ("https:////ex.example/a", "https:////ex.example/a"),
    ("https://ex.example/" + "a" * 3000, "https://ex.example/" + "a" * 3000),
])
def test_a_remembered_join_is_feedparsers_own(base: str, uri: str) -> None:
    import feedparser.urls

    joined = feedparser.urls._urljoin
    assert joined(base, uri) == joined(base, uri) == joined.__wrapped__(base, uri)


def test_feedparser_no_longer_asks_for_the_libxml2_driver_it_cannot_import() -> None:
    import feedparser.api

    assert feedparser.api.PREFERRED_XML_PARSERS == []
    assert extract_sample("atom-xml-base").items  # expat, xml.sax's default, reads it
