"""pipeline: news feeds + long-lived guides -> review-ready Markdown drafts.

The stages, in order: config -> fetch -> extract -> store -> update -> select -> guides -> render
-> drafts -> build (review policies in policy, merge state in state) -> check, with assist (LangChain) optional. Everything a caller needs is named
here; each name is imported from its stage on first use, so `import pipeline` (and the CLI's
start-up) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # records, one per stage
    "Feed": "models", "FeedState": "models", "FetchResult": "models", "Item": "models",
    "Guide": "models", "Draft": "models", "Problem": "models",
    # errors
    "PipelineError": "errors", "ConfigError": "errors", "GuideError": "errors", "FeedError": "errors",
    "DraftError": "errors", "StoreError": "errors", "LockHeld": "errors",
    # stages
    "Settings": "config", "load_settings": "config", "load_feeds": "config", "now_utc": "config",
    "Store": "store", "open_store": "store",
    "extract_items": "extract",
    "update_feeds": "update",
    "select_further_reading": "select",
    "load_guide": "guides",
    "build_drafts": "build", "set_status": "build",
    "DraftState": "state", "Approval": "state", "Change": "state", "load_state": "state",
    "check_files": "check",
    "project_lock": "lock",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
