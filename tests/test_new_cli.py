"""`pipeline new TOPIC`: a guide file that parses and builds; drafted by a model only when one is set."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.assist import shared_title_words, topic_keywords, useful_keyword
from pipeline.guides import load_guide

TOPIC = "Renting an Apartment in Shanghai"
SLUG = "renting-an-apartment-in-shanghai"
MODEL = "openai:gpt-4o-mini"


def run(project: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["--root", str(project), *args], env={"PIPELINE_MODEL": "", **(env or {})})


def model_env(chat_server) -> dict[str, str]:
    return {"PIPELINE_MODEL": MODEL, "OPENAI_BASE_URL": chat_server.base_url, "OPENAI_API_KEY": "test"}


def test_no_model_writes_a_skeleton_that_parses_and_builds(project: Path, chat_server) -> None:
    result = run(project, "new", TOPIC, env={"OPENAI_BASE_URL": chat_server.base_url})
    assert result.exit_code == 0, result.output
    path = project / "templates" / "guides" / f"{SLUG}.md"
    assert f"wrote guide skeleton: {path}" in result.output
    guide = load_guide(path)
    assert guide.title == TOPIC
    assert [s.heading for s in guide.sections] == ["What to know first", "Step by step", "When something goes wrong"]
    assert guide.faq and guide.checklist and "shanghai" in guide.keywords
    assert "AI-drafted" not in path.read_text(encoding="utf-8")
    assert chat_server.requests == []
    built = run(project, "build", "--offline", SLUG)
    assert built.exit_code == 0, built.output
    assert (project / "output" / f"{SLUG}.md").exists()


def test_refuses_to_overwrite_an_existing_guide(project: Path) -> None:
    path = project / "templates" / "guides" / "mobile-payments.md"
    before = path.read_bytes()
    result = run(project, "new", "Mobile payments")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {path}: already exists; edit it, or choose another --slug"
    assert path.read_bytes() == before


def test_topic_without_latin_letters_needs_a_slug(project: Path) -> None:
    result = run(project, "new", "租房")
    assert result.exit_code == 1 and "pass --slug" in result.output and "Traceback" not in result.output
    result = run(project, "new", "租房", "--slug", "renting")
    assert result.exit_code == 0, result.output
    assert load_guide(project / "templates" / "guides" / "renting.md").title == "租房"


DRAFT = {
    "description": "How to find, check and sign for a flat in Shanghai.",
    "keywords": ["rent", "landlord", "deposit", "lease", "housing"],
    "intro": "Finding a flat takes time.\n\nThis guide walks you through it. See https://evil.example",
    "sections": [
        {"heading": "## Where to look", "body": "Agents and apps list flats. {{ site.secret }} <b>Visit</b> first."},
        {"heading": "Signing the lease", "body": "Read the [contract](http://evil.example/c) carefully."},
        {"heading": "FAQ", "body": "A section called FAQ would break the guide's structure."},
    ],
    "faq": [{"question": "How big is a deposit?", "answer": "Often a few months of rent; check your lease."}],
    "conclusion": "Take your time and keep records.",
    "checklist": ["Register your address with the police", "Keep every receipt"],
}


def test_model_drafts_sections_faq_and_checklist_marked_for_the_editor(project: Path, chat_server) -> None:
    chat_server.reply = "```json\n" + json.dumps(DRAFT) + "\n```"
    result = run(project, "new", TOPIC, env=model_env(chat_server))
    assert result.exit_code == 0, result.output
    assert "wrote AI-drafted guide (rewrite every line)" in result.output
    assert "model openai:gpt-4o-mini: 1 call, 0 cached, 120 input + 30 output tokens" in result.output
    assert len(chat_server.requests) == 1
    assert TOPIC in chat_server.requests[0]["body"]["messages"][-1]["content"]
    path = project / "templates" / "guides" / f"{SLUG}.md"
    text = path.read_text(encoding="utf-8")
    assert "# AI-drafted by openai:gpt-4o-mini" in text  # provenance in a YAML comment
    assert "*AI-drafted by openai:gpt-4o-mini: rewrite and verify every statement" in text
    for bad in ("http", "evil.example", "{{", "secret", "<b>"):
        assert bad not in text, bad
    guide = load_guide(path)
    assert [s.heading for s in guide.sections] == ["Where to look", "Signing the lease"]
    assert guide.faq[0].question == "How big is a deposit?"
    assert guide.checklist == ("Register your address with the police", "Keep every receipt")
    assert guide.keywords == ("rent", "landlord", "deposit", "lease", "housing")
    assert run(project, "build", "--offline", SLUG).exit_code == 0


def test_unusable_answer_or_failing_model_writes_the_skeleton(project: Path, chat_server) -> None:
    chat_server.reply = "I'd be happy to help with renting!"
    result = run(project, "new", TOPIC, env=model_env(chat_server))
    assert result.exit_code == 0, result.output
    assert "the model's answer was unusable" in result.output and "writing the skeleton" in result.output
    assert "wrote guide skeleton" in result.output

    chat_server.statuses = [401]
    result = run(project, "new", "Opening a bank account", env=model_env(chat_server))
    assert result.exit_code == 0, result.output
    assert "rejected the API key (401)" in result.output and "Traceback" not in result.output
    assert load_guide(project / "templates" / "guides" / "opening-a-bank-account.md").sections


def test_new_has_an_example_in_its_help(project: Path) -> None:
    result = run(project, "new", "--help")
    assert result.exit_code == 0 and "Example:" in result.output and 'pipeline new "' in result.output


def test_keywords_leave_out_stopwords_and_generic_guide_words(project: Path) -> None:
    result = run(project, "new", "Getting a SIM Card in China: the Guide for Foreigners")
    assert result.exit_code == 0, result.output
    guide = load_guide(project / "templates" / "guides" / "getting-a-sim-card-in-china-the-guide-for-foreigners.md")
    assert guide.keywords == ("sim", "card")


def test_words_in_every_guide_title_are_no_keyword() -> None:
    shared = shared_title_words(["Paying in Shanghai", "Renting a flat in Shanghai", "Shanghai banks, in short"])
    assert shared == {"in", "shanghai"}
    assert topic_keywords("Studying in Shanghai", shared) == ["studying"]
    assert shared_title_words(["Only one guide"]) == set()  # one title says nothing about what guides share
    assert not useful_keyword("china", ()) and not useful_keyword("shanghai", shared)
    assert useful_keyword("wechat pay", shared)
