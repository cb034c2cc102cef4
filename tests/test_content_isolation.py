"""An editor's ordinary work never changes what the suite says.

The suite builds from its own project under tests/data/project/; the live templates/, sources/ and
output/ are content, checked by `pipeline check`. Here a copy of the checkout gets what an editor does
on a normal day (a new guide from `pipeline new`, a feed added and one removed, a reworded partial,
drafts built into output/), and the tests that once read the live content give the same outcomes there
as in an untouched copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import REPO

# The test modules that read the live content before it moved under tests/data/project/.
SUBSET = ["tests/test_guides.py", "tests/test_config.py", "tests/test_end_to_end.py", "tests/test_render.py",
          "tests/test_smoke.py"]
# Not part of a checkout: environments, caches, a store, and whatever a run left in output/.
IGNORED = shutil.ignore_patterns(".git", ".venv", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache",
                                 ".hypothesis", "pipeline.sqlite3*", ".pipeline.lock", "build")


def checkout_copy(target: Path) -> Path:
    shutil.copytree(REPO, target, ignore=IGNORED)
    for leftover in (target / "output").glob("*"):
        leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    return target


def pipeline(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # `-c` with the copy as the current folder imports the copy's own package.
    return subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--root", str(root), *args],
                          cwd=root, capture_output=True, text=True, timeout=120, env={**os.environ, "PIPELINE_MODEL": ""})


def an_editors_day(root: Path) -> None:
    made = pipeline(root, "new", "Renting a flat in Shanghai")
    assert made.returncode == 0, made.stderr
    assert (root / "templates" / "guides" / "renting-a-flat-in-shanghai.md").is_file()
    feeds = root / "sources" / "feeds.toml"
    text = feeds.read_text(encoding="utf-8")
    first = text.index("\n[[feeds]]\n")
    second = text.index("\n[[feeds]]\n", first + 1)
    text = text[:first] + text[second:]  # one feed retired by the editor ...
    text += '\n[[feeds]]\nurl = "https://rent.example/feed.xml"\npublisher = "Rent Weekly"\ntags = ["housing"]\n'
    feeds.write_text(text, encoding="utf-8")  # ... and one added
    disclaimer = root / "templates" / "partials" / "disclaimer.md.j2"
    disclaimer.write_text(disclaimer.read_text(encoding="utf-8") + "\nChecked by our editors every month.\n",
                          encoding="utf-8")
    built = pipeline(root, "build", "--offline")
    assert built.returncode == 0, built.stderr
    assert len(list((root / "output").glob("*.md"))) == 3


def outcomes(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", str(root / "report.xml"),
         *SUBSET],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def read_report(root: Path) -> dict[str, str]:
    results = {}
    for case in ET.parse(root / "report.xml").iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        results[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return results


def test_adding_a_guide_and_editing_feeds_leaves_the_suites_results_unchanged(tmp_path: Path) -> None:
    pristine = checkout_copy(tmp_path / "pristine")
    edited = checkout_copy(tmp_path / "edited")
    an_editors_day(edited)

    runs = [outcomes(pristine), outcomes(edited)]  # side by side: two cores
    logs = [run.communicate(timeout=600)[0] for run in runs]

    before, after = read_report(pristine), read_report(edited)
    assert len(before) > 40, logs[0]
    assert set(before.values()) == {"passed"}, logs[0]
    assert after == before, logs[1]
