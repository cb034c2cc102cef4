"""pipeline: news feeds + long-lived guides -> review-ready Markdown drafts.

The stages, in order: config -> fetch -> extract -> store -> select -> guides -> render -> drafts -> check.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
