"""The two guides we ship build into drafts with every required section, offline."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import cli

SECTIONS = [
    "## 🙋 Frequently Asked Questions (FAQ)",
    "## 🧩 Conclusion",
    "## 📣 How to Join the Group",
    "## 📚 Further Reading",
    "## 📌 Disclaimer",
]


def test_offline_build_writes_every_shipped_guide(project: Path) -> None:
    result = CliRunner().invoke(cli, ["--root", str(project), "build", "--offline"])
    assert result.exit_code == 0, result.output
    drafts = sorted(p.name for p in (project / "output").glob("*.md"))
    assert drafts == ["mobile-payments.md", "wechat-encryption.md"]
    for name in drafts:
        text = (project / "output" / name).read_text(encoding="utf-8")
        positions = [text.index(heading) for heading in SECTIONS]
        assert positions == sorted(positions), name
        assert "<!-- pipeline:begin further-reading -->" in text
        assert "<!-- pipeline:begin context -->" in text
