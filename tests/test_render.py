"""Render: feed text is inert data, templates are strict, front matter is YAML, writes are atomic."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import FIXTURE
from markdown_it import MarkdownIt

from pipeline import drafts
from pipeline.cli import cli
from pipeline.drafts import compose_draft_text, split_draft, write_atomic
from pipeline.errors import DraftError, TemplateError
from pipeline.guides import load_guide
from pipeline.models import Item
from pipeline.render import (
    escape_markdown,
    make_environment,
    render_draft,
    render_further_reading,
    render_offline_context,
)

TEMPLATES = FIXTURE / "templates"
NOW = dt.datetime(2026, 3, 6, tzinfo=dt.timezone.utc)
GUIDE = load_guide(TEMPLATES / "guides" / "wechat-encryption.md")

HOSTILE = [
    "Click [x](javascript:alert(1)) now",
    "Look ![img](http://x.example/i.png) here",
    "# heading",
    "<script>alert(1)</script> and <img src=x onerror=alert(1)>",
    "Math {{ 7*7 }} and {{ guide.title }}",
    "Liquid {% raw %} and {%- include x -%} {# note #}",
    "Ticks `code` and ``more`` and ```fence",
    "Table a | b | c",
    "*bold* _em_ ~~strike~~ **strong**",
    "Autolink <http://auto.example/> and bare https://bare.example/x and www.example.com and mail@example.com",
    "Entities &lt;b&gt; &amp; &#169; &copy;",
    "Multi\nline --- \n# not a heading\n\n- not a list",
    "[ref]: http://x.example/ \"title\"",
    "Trailing backslash \\",
]
# Values that would make a list, quote, rule or heading if a template printed them first on a line.
LINE_START = ["===", "---", "- Pub", "+ Pub", "* Pub", "1. Pub", "1) Pub", "> Pub", "# Pub", "```", "    code"]


def item(headline: str, source: str = "Pub", url: str = "https://news.example/a", n: int = 0) -> Item:
    return Item(feed_url="https://feeds.example/x", guid=f"g{n}", headline=headline, source=source,
                date=dt.date(2026, 3, 5), url=url)


def to_html(markdown: str) -> str:
    # CommonMark with raw HTML allowed: the most permissive reading a site generator may apply.
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def visible_text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


@pytest.fixture(scope="module")
def env():
    return make_environment(TEMPLATES)


@pytest.mark.parametrize("headline", HOSTILE)
def test_hostile_headline_renders_as_itself_and_nothing_else(env, headline: str) -> None:
    entry = render_further_reading(env, [item(headline, url="https://news.example/story")])
    page = to_html(entry)
    assert re.findall(r"<(a|img|script|h\d|table|code|em|strong|del|pre|ul|ol|blockquote|hr)\b", page) == ["a"]
    assert '<a href="https://news.example/story">Read Full Article</a>' in page
    assert " ".join(headline.split()) in visible_text(page)


@pytest.mark.parametrize("headline", HOSTILE)
def test_hostile_headline_is_inert_in_the_whole_draft(env, headline: str) -> None:
    items = [item(headline, source=headline, url="https://news.example/story")]
    draft = render_draft(env, GUIDE, items, Path("output"), NOW)
    clean = render_draft(env, GUIDE, [item("Plain words", source="Pub", url="https://news.example/story")],
                         Path("output"), NOW)
    tags = lambda text: sorted(re.findall(r"<([a-z0-9]+)\b", to_html(text)))  # noqa: E731
    # The same HTML elements as a draft with a harmless headline: feed text added none.
    assert tags(draft.body) == tags(clean.body)
    assert "49" not in draft.body and "Plain words" not in draft.body


@pytest.mark.parametrize("value", LINE_START)
def test_a_value_at_the_start_of_a_line_cannot_make_structure(env, value: str) -> None:
    # Any shared template may print feed text first on a line, under a line of prose.
    text = env.from_string("**Real-world context:** as reported\n{{ value }}\nand more.\n").render(value=value)
    page = to_html(text)
    assert re.findall(r"<(h\d|ul|ol|li|blockquote|hr|pre|code)\b", page) == []
    assert f"as reported {value.strip()} and more." in visible_text(page)


def test_template_delimiters_from_feeds_are_not_evaluated_by_jinja_or_liquid(env) -> None:
    text = render_further_reading(env, [item("{{ 7*7 }} {% if true %}yes{% endif %} {{ guide }}")])
    assert "49" not in text and "yes{" not in text
    # Liquid (Jekyll) would see "{{" or "{%" as its own syntax.
    assert "{{" not in text and "{%" not in text and "%}" not in text and "}}" not in text
    assert "{{ 7*7 }} {% if true %}yes{% endif %} {{ guide }}" in visible_text(to_html(text))


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://x.example/a) [evil](javascript:alert(1))",
         "https://x.example/a%29%20%5Bevil%5D%28javascript:alert%281%29%29"),
        ("https://x.example/a b\"c<d>e", "https://x.example/a%20b%22c%3Cd%3Ee"),
        ("https://x.example/p?q=1&r=(2)#frag", "https://x.example/p?q=1&amp;r=%282%29#frag"),
        ("https://x.example/already%20encoded", "https://x.example/already%20encoded"),
    ],
)
def test_a_url_cannot_break_out_of_its_link(env, url: str, href: str) -> None:
    page = to_html(render_further_reading(env, [item("Story", url=url)]))
    # One link, the whole URL inside its target, nothing after it turned into markup.
    assert re.findall(r"<a\b[^>]*>[^<]*</a>", page) == [f'<a href="{href}">Read Full Article</a>']
    assert page.count("<a") == 1


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://x.example/f", "//x.example/a"])
def test_only_http_links_are_rendered(env, url: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render_further_reading(env, [item("Story", url=url)])
    assert "further-reading.md.j2" in str(caught.value)
    assert "non-http(s)" in str(caught.value)


def test_further_reading_entries_have_the_exact_format(env) -> None:
    items = [
        item("Australia doubles post-study work visa fee", "Economic Times", "https://et.example/a", 1),
        item("Sejong University earns certification", "Korea Herald", "https://kh.example/b", 2),
    ]
    assert render_further_reading(env, items) == (
        "🔸 Australia doubles post-study work visa fee  \n"
        "🗞️ Source: Economic Times – 📅 2026-03-05  \n"
        "🔗 [Read Full Article](https://et.example/a)\n"
        "\n"
        "🔸 Sejong University earns certification  \n"
        "🗞️ Source: Korea Herald – 📅 2026-03-05  \n"
        "🔗 [Read Full Article](https://kh.example/b)"
    )


def test_context_paragraph_cites_each_item_as_publisher_and_date(env) -> None:
    items = [item("One", "Economic Times", n=1), item("Two", "Korea Herald", "https://kh.example/b", n=2)]
    context = render_offline_context(env, GUIDE, items)
    assert "[Economic Times, 2026-03-05]" in context and "[Korea Herald, 2026-03-05]" in context
    assert len(to_html(context).split("<p>")) == 2, "one paragraph"


def test_escape_markdown_collapses_whitespace_to_one_line() -> None:
    assert escape_markdown("a\n\n  b\tc\r\n") == "a b c"


# -- StrictUndefined: a template using a missing variable is a one-line error ------------------------


@pytest.mark.parametrize(
    ("template", "old", "new", "words"),
    [
        ("layout/article.md.j2", "{{ guide.conclusion }}", "{{ guide.conclusion }} {{ author_name }}", "'author_name' is undefined"),
        ("partials/faq.md.j2", "{{ entry.question }}", "{{ entry.question_text }}", "has no attribute 'question_text'"),
        ("partials/further-reading.md.j2", "No recent news", "{{ empty_note }} No recent news", "'empty_note' is undefined"),
    ],
)
def test_missing_variable_names_template_and_variable_through_the_cli(
    project: Path, template: str, old: str, new: str, words: str
) -> None:
    path = project / "templates" / template
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")

    result = CliRunner().invoke(cli, ["--root", str(project), "build", "--offline", "wechat-encryption"])

    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(f"error: {path}:"), errors[0]
    assert words in errors[0]
    assert not (project / "output" / "wechat-encryption.md").exists()


def test_template_syntax_error_names_file_and_line(project: Path) -> None:
    path = project / "templates" / "partials" / "join.md.j2"
    path.write_text("## 📣 How to Join the Group\n\n{% if %}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--root", str(project), "build", "--offline", "wechat-encryption"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"error: {path}:3: template syntax error" in result.output


# -- Front matter --------------------------------------------------------------------------------

TRICKY = "Breaking: #1 - it's \"big\" ---\n---\nnext: line # not a comment\n..."


def front_matter_of(text: str) -> tuple[str, dict]:
    assert text.startswith("---\n")
    fm_text, _, _ = text[4:].partition("\n---\n")
    documents = list(yaml.safe_load_all(fm_text))
    assert len(documents) == 1, "exactly one YAML document"
    assert isinstance(documents[0], dict)
    return fm_text, documents[0]


def test_front_matter_is_one_yaml_mapping_with_what_a_reviewer_needs(env) -> None:
    items = [item(TRICKY, source="Times: \"Asia\" # 1", url="https://news.example/a?x=1&y='2'")]
    draft = render_draft(env, GUIDE, items, Path("output"), NOW)
    text = compose_draft_text(draft.front_matter, draft.body)
    _, data = front_matter_of(text)
    assert data["title"] == GUIDE.title
    assert data["slug"] == "wechat-encryption"
    assert data["date"] == data["lastmod"] == "2026-03-06T00:00:00Z"
    assert data["draft"] is True
    assert data["status"] == "draft"
    assert data["tags"] == list(GUIDE.tags)
    assert data["further_reading"] == [
        {"headline": TRICKY, "source": "Times: \"Asia\" # 1", "date": "2026-03-05",
         "url": "https://news.example/a?x=1&y='2'"}
    ]
    # Our own reader finds the same front matter and the body right after it.
    again = split_draft(Path("output/wechat-encryption.md"), text)
    assert again.front_matter == data
    assert again.body == draft.body


def test_front_matter_lines_never_close_the_block_early(env) -> None:
    items = [item(TRICKY, n=n, url=f"https://news.example/{n}") for n in range(3)]
    draft = render_draft(env, GUIDE, items, Path("output"), NOW)
    fm_text, _ = front_matter_of(compose_draft_text(draft.front_matter, draft.body))
    # Only a line that is exactly "---" or "..." ends the block for YAML, Hugo and Jekyll.
    assert not any(line in ("---", "...") for line in fm_text.splitlines())
    assert sum(1 for line in fm_text.splitlines() if line.strip() == "---") == 3, "the test must be hard"


def test_front_matter_is_written_by_the_yaml_emitter_not_by_a_template() -> None:
    # Every scalar, quoted or not, reads back as exactly the string that went in.
    values = ["yes", "no", "null", "1.0", "2026-03-05", "@handle", "%", "*star", "&anchor", "!tag", "[a]",
              "{a: b}", "a: b", "'", '"', "- dash", "? q", "| pipe", "> fold", "#", "\t tab", " lead"]
    data = {"further_reading": [{"headline": v, "source": v, "date": "2026-03-05", "url": "https://x.example/"}
                                for v in values]}
    loaded = yaml.safe_load(drafts.dump_yaml(data))
    assert [e["headline"] for e in loaded["further_reading"]] == values


# -- Atomic writes -------------------------------------------------------------------------------


def test_write_replaces_through_a_temp_file_in_the_same_folder(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out" / "guide.md"
    seen: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spying_replace(src: str, dst: str) -> None:
        seen.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(drafts.os, "replace", spying_replace)
    write_atomic(target, "new text\n")
    assert target.read_text(encoding="utf-8") == "new text\n"
    assert len(seen) == 1 and seen[0][0].parent == target.parent and seen[0][1] == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["guide.md"]


def test_a_failing_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "guide.md"
    target.write_text("reviewed text\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "half written \ud800 text")  # a lone surrogate cannot be encoded: fails mid-write
    assert target.read_text(encoding="utf-8") == "reviewed text\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guide.md"]


def test_a_disk_error_before_the_rename_leaves_the_old_file_and_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "guide.md"
    target.write_text("reviewed text\n", encoding="utf-8")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(drafts.os, "fsync", disk_full)
    with pytest.raises(DraftError) as caught:
        write_atomic(target, "new text\n")
    assert str(caught.value).startswith(f"{target}: cannot be written")
    assert target.read_text(encoding="utf-8") == "reviewed text\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guide.md"]


_TEXT = st.lists(st.sampled_from(list("ab :#-'\"\n\t|>?*&!%@[]{},") + ["ü", "—", "---", "...", "\r\n", "\u2028"]),
                 max_size=12).map("".join)
_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | _TEXT,
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                       max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["title", "tags", "further_reading", "on", "yes", "a b", "x:y", "-k", "n"]),
                       _VALUES, min_size=1, max_size=6))
def test_cached_front_matter_yaml_is_byte_for_byte_what_the_emitter_writes(data) -> None:
    # Each key's block is dumped alone and reused across drafts: the result must not differ by a
    # byte from dumping the mapping whole.
    assert drafts.dump_yaml(data) == drafts._dump(data)
    assert drafts.dump_yaml(data) == drafts._dump(data)  # again, now from the cache


_PLAINISH = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24),
    st.text(st.sampled_from("aZ09 :#-'\"?,[]{}!&*|>%@`.~/=\t\\’é中\n\x85\u2028\u2029\ufeff"), max_size=12),
    st.builds(lambda a, b: f"{a}{b}", st.sampled_from(["A", "https://e.com/x?a=1&b=2#f", "Tencent’s ", "x"]),
              st.sampled_from(["", ":", " ", " #t", "#t", ": b", "yes", "\u00a0", "…"])),
    st.sampled_from(["yes", "No", "NULL", "On", "~", "2026-03-04", "1.5", "0x1F", ".inf", "-a", "x" * 1200]))
_SHAPES = st.recursive(st.none() | st.booleans() | st.integers() | _PLAINISH | st.builds(list) | st.builds(dict),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_PLAINISH, inner, max_size=3),
                       max_leaves=10)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(["title", "further_reading", "ai", "yes", "a b", "k:"]), _PLAINISH),
                       _SHAPES, min_size=1, max_size=6))
def test_front_matter_written_without_the_emitter_is_byte_for_byte_what_it_writes(data) -> None:
    # yamlout writes plain strings itself and asks the emitter for the rest: never a byte of difference.
    text = drafts.dump_yaml(data)
    assert text == drafts._dump(data)
    # Read back (libyaml first, as every written draft is): what the pure-Python parser reads.
    assert drafts._load_front_matter(text) == yaml.load(text, Loader=drafts._UniqueKeyLoader)  # noqa: S506


def test_a_batch_puts_drafts_in_place_only_when_it_commits(tmp_path: Path) -> None:
    old, new = tmp_path / "old.md", tmp_path / "new.md"
    old.write_text("reviewed\n", encoding="utf-8")
    done: list[str] = []
    with drafts.batched_writes() as batch:
        write_atomic(old, "regenerated\n")
        write_atomic(new, "created\n")
        drafts.after_write(new, lambda: done.append("new recorded"))
        drafts.after_write(tmp_path / "unstaged.md", lambda: done.append("at once"))
        assert old.read_text(encoding="utf-8") == "reviewed\n" and not new.exists()  # staged only
        assert done == ["at once"]
        assert batch.commit() == {}
    assert old.read_text(encoding="utf-8") == "regenerated\n" and new.read_text(encoding="utf-8") == "created\n"
    assert done == ["at once", "new recorded"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.md", "old.md"]  # no temp file left


def test_a_batch_leaves_a_draft_saved_meanwhile_and_forgets_what_it_would_record(tmp_path: Path) -> None:
    draft = tmp_path / "guide.md"
    draft.write_text("reviewed\n", encoding="utf-8")
    recorded: list[str] = []
    with drafts.batched_writes() as batch:
        write_atomic(draft, "regenerated\n")
        drafts.after_write(draft, lambda: recorded.append("guide"))
        draft.write_text("the reviewer saved this meanwhile\n", encoding="utf-8")
        left = batch.commit()
    assert left == {draft: ("kept", "changed on disk while the pipeline worked on it; left alone until the next run")}
    assert draft.read_text(encoding="utf-8") == "the reviewer saved this meanwhile\n"
    assert recorded == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guide.md"]


def test_a_batch_left_uncommitted_leaves_the_old_drafts_and_no_temp_file(tmp_path: Path) -> None:
    draft = tmp_path / "guide.md"
    draft.write_text("reviewed\n", encoding="utf-8")
    with pytest.raises(RuntimeError), drafts.batched_writes():
        write_atomic(draft, "regenerated\n")
        raise RuntimeError("a bug half way through a build")
    assert draft.read_text(encoding="utf-8") == "reviewed\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guide.md"]


def test_a_batch_past_its_limit_commits_on_its_own_and_stays_one_barrier_per_batch(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    barriers: list[int] = []
    real = drafts._make_durable
    monkeypatch.setattr(drafts, "_make_durable", lambda entries: (barriers.append(len(entries)), real(entries)))
    with drafts.batched_writes() as batch:
        batch.limit = 3
        for n in range(7):
            write_atomic(tmp_path / f"d{n}.md", f"draft {n}\n")
        batch.commit()
    assert barriers == [3, 3, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"d{n}.md" for n in range(7)]


_REGION_TEXT = st.lists(st.sampled_from(["<!-- pipeline:begin context -->", "<!-- pipeline:end context -->",
                                         "<!-- pipeline:begin further-reading -->", "<!-- pipeline:end further-reading -->",
                                         "text", "x <!-- pipeline:begin context -->", "", "\n"]), max_size=12)


@given(_REGION_TEXT)
def test_regions_are_found_as_the_anchored_pattern_finds_them(lines) -> None:
    # The fast, unanchored pattern is used only where it finds exactly what the anchored one does.
    body = "\n".join(lines)
    expected = {m.group("name"): m.group("content") for m in drafts._REGION.finditer(body)}
    assert drafts.find_regions(body) == expected
    assert drafts.blank_regions(body) == drafts._REGION.sub(
        lambda m: f"<!-- pipeline:begin {m.group('name')} -->\n<!-- pipeline:end {m.group('name')} -->", body)
