"""Publishing follows review: a draft is published exactly when its status is `approved`.

Hugo reads `draft` (true keeps a page out of a plain `hugo` build); Jekyll ignores `draft` and reads
`published` (false keeps a page out). Both keys are written and kept in step with `status`, whichever
way the status changed: `pipeline status`, a reviewer's hand edit (the next build or refresh notices),
or a refresh that sends an approved draft back to in-review.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from .drafts import set_front_matter_key

PUBLISH_KEYS = ("draft", "published")


def is_published(status: object) -> bool:
    """Only `approved` publishes; a misspelt status ('aproved') is protected from changes but never published."""
    return str(status).strip().lower() == "approved"


def publish_keys(status: object) -> dict[str, bool]:
    published = is_published(status)
    return {"draft": not published, "published": published}


def follow_status(fm_text: str, front_matter: Mapping[str, object] | None = None) -> str:
    """The front matter YAML with `draft` and `published` set from its own `status`.

    `front_matter` is `fm_text` parsed, when the caller has it; every other byte is left alone.
    """
    if front_matter is None:
        loaded = yaml.safe_load(fm_text) or {}
        front_matter = loaded if isinstance(loaded, dict) else {}
    for key, value in publish_keys(front_matter.get("status", "draft")).items():
        if front_matter.get(key) is not value:
            fm_text = set_front_matter_key(fm_text, key, value)
    return fm_text
