"""Publishing follows review: a draft is published exactly when its status is `approved`.

Hugo reads `draft` (true keeps a page out of a plain `hugo` build); Jekyll ignores `draft` and reads
`published` (false keeps a page out). By default both keys are written, so either generator publishes
right; a project that names its generator (`site = "hugo"` or `"jekyll"` in [tool.pipeline]) gets that
one's key alone, since Hugo warns on every page that carries both. The keys are kept in step with
`status`, whichever way the status changed: `pipeline status`, a reviewer's hand edit (the next build or
refresh notices), or a refresh that sends an approved draft back to in-review.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from .drafts import drop_front_matter_key, set_front_matter_key

PUBLISH_KEYS = ("draft", "published")
# The one key each static site generator reads to keep a page out.
SITE_KEYS: dict[str, tuple[str, ...]] = {"hugo": ("draft",), "jekyll": ("published",)}  # every one of SITES


def keys_for(site: str | None) -> tuple[str, ...]:
    """The publishing keys a draft carries: its generator's, or both when the project names none."""
    return SITE_KEYS[site] if site else PUBLISH_KEYS


def is_published(status: object) -> bool:
    """Only `approved` publishes; a misspelt status ('aproved') is protected from changes but never published."""
    return str(status).strip().lower() == "approved"


def publish_keys(status: object, site: str | None = None) -> dict[str, bool]:
    published = is_published(status)
    values = {"draft": not published, "published": published}
    return {key: values[key] for key in keys_for(site)}


def follow_status(fm_text: str, front_matter: Mapping[str, object] | None = None, site: str | None = None) -> str:
    """The front matter YAML with the site's publishing keys set from its own `status`, and the other
    generator's key, if any, taken out.

    `front_matter` is `fm_text` parsed, when the caller has it; every other byte is left alone.
    """
    if front_matter is None:
        loaded = yaml.safe_load(fm_text) or {}
        front_matter = loaded if isinstance(loaded, dict) else {}
    for key, value in publish_keys(front_matter.get("status", "draft"), site).items():
        if front_matter.get(key) is not value:
            fm_text = set_front_matter_key(fm_text, key, value)
    for key in PUBLISH_KEYS:
        if key in front_matter and key not in keys_for(site):
            fm_text = drop_front_matter_key(fm_text, key)
    return fm_text
