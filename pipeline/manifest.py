"""A clean build's record of what it read, so that the next build with nothing changed skips every
draft at once: no guide parsed, no draft read, no story selected.

Each draft's fingerprint (fingerprint.py) already lets a build skip an unchanged draft, but only
after reading its guide and files and selecting its stories. A run that changed nothing (the cron
refresh of a quiet half hour, a second `pipeline build`) can tell so from far less: one key for what
every draft shares (the pipeline's code and the templates, settings, feeds, stored items, link
verdicts and the dates that decide what is recent) and each guide's, draft's and state's file stamp. A file written,
checked out or touched since has a new stamp, and then the drafts are looked at one by one.

The record lives in the store beside the fingerprints (machine-local, as they are), under a key no
slug can take. It is written only after a run in which every draft came out clean.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import STATE_DIR, Settings, guide_paths
from .fingerprint import BuildInputs
from .models import BuildReport, DraftReport, Feed, LinkVerdicts
from .store import Store

# Slugs are lower-case letters, digits and dashes: a colon keeps the record apart from them.
RECORD_KEYS = {"build": ":run:build", "refresh": ":run:refresh"}
# Items carry dates in their publisher's offset; the furthest-ahead one decides what is "future"
# (select._EARLIEST_ZONE), so both dates are part of what a run read.
_AHEAD = dt.timedelta(hours=14)

Stamp = tuple[int, int, int] | None  # (size, mtime_ns, inode), None when there is no file


def shared_key(inputs: BuildInputs, settings: Settings, feeds: Sequence[Feed], now: dt.datetime,
               items_digest: str, links: LinkVerdicts | None = None) -> str:
    """What every draft of a run shares, as one digest; with a refresh's link verdicts, the links
    selection passes over or lists under a new URL are part of it."""
    utc = now.astimezone(dt.timezone.utc)
    verdicts = json.dumps([sorted(links.dead), [list(pair) for pair in links.moved]]) if links else ""
    digest = hashlib.sha256()
    for part in (inputs.digest, str(settings.guides_dir), utc.date().isoformat(), (utc + _AHEAD).date().isoformat(),
                 json.dumps([[feed.url, list(feed.tags)] for feed in feeds]), items_digest, verdicts):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _stamp(path: str) -> Stamp:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_size, found.st_mtime_ns, found.st_ino


def stamps(settings: Settings, guide_paths: Iterable[Path]) -> dict[str, list[Stamp]]:
    """slug -> the stamps of its guide, draft and state files."""
    output = str(settings.output_dir)
    states = os.path.join(output, STATE_DIR)
    found = {}
    for path in guide_paths:
        slug = path.stem
        found[slug] = [_stamp(str(path)), _stamp(os.path.join(output, slug + ".md")),
                       _stamp(os.path.join(states, slug + ".json"))]
    return found


def record(key: str, files: dict[str, list[Stamp]]) -> str:
    return json.dumps({"key": key, "files": files}, separators=(",", ":"))


def unchanged(recorded: str | None, key: str, files: dict[str, list[Stamp]]) -> bool:
    """Whether the last clean run read exactly these inputs and left exactly these files."""
    if not recorded:
        return False
    try:
        last = json.loads(recorded)
    except ValueError:
        return False
    if not isinstance(last, dict) or last.get("key") != key:
        return False
    # JSON gives lists where the stamps are tuples: compare them as JSON would write them.
    return bool(last.get("files") == json.loads(json.dumps(files)))


@dataclass(frozen=True)
class Shortcut:
    """What a run works out before it looks at any draft: the inputs every draft shares, the drafts'
    fingerprints and, when nothing changed since the last clean run, the report to give at once."""

    mode: str  # "build" or "refresh": each keeps its own record
    inputs: BuildInputs
    fingerprints: dict[str, str]
    key: str | None  # None: a run that may neither take the shortcut nor leave a record
    report: BuildReport | None  # None: look at the drafts one by one


def check(settings: Settings, store: Store, feeds: Sequence[Feed], now: dt.datetime, *, regions_only: bool,
          eligible: bool, links: LinkVerdicts | None = None) -> Shortcut:
    """The shortcut for this run. Only a run over every guide, not forced and with no model to ask
    (`eligible`) may take one or leave one for the next; `links`, a refresh's link verdicts, are part
    of its key (a link newly dead or moved sends the run draft by draft)."""
    mode = "refresh" if regions_only else "build"
    inputs = BuildInputs.collect(settings.templates_dir, settings.output_dir, settings.model, mode, settings.site)
    fingerprints = store.fingerprints()
    if not eligible or not settings.guides_dir.is_dir():
        return Shortcut(mode, inputs, fingerprints, None, None)
    key = shared_key(inputs, settings, feeds, now, store.items_digest(), links)
    last = fingerprints.get(RECORD_KEYS[mode])
    if last is None:  # no clean run to compare with (a first build): no file need be looked at
        return Shortcut(mode, inputs, fingerprints, key, None)
    paths = guide_paths(settings.guides_dir)
    files = stamps(settings, paths)
    if not unchanged(last, key, files):
        return Shortcut(mode, inputs, fingerprints, key, None)
    # A refresh reports only the drafts that exist (it never creates one), as the full path does.
    report = BuildReport(tuple(DraftReport(path.stem, settings.output_dir / f"{path.stem}.md", "unchanged")
                               for path in paths if not regions_only or files[path.stem][1] is not None))
    return Shortcut(mode, inputs, fingerprints, key, report)
