"""One exception hierarchy: every expected failure is a PipelineError.

The CLI turns these into one-line messages and a non-zero exit status; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """Base class of every failure the pipeline expects and reports in one line."""

    default_message = "pipeline error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class FileError(PipelineError):
    """A problem with one file, optionally at one line (1-based)."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line else str(self.path)
        super().__init__(f"{where}: {message}")


class ConfigError(FileError):
    """sources/feeds.toml or [tool.pipeline] is wrong."""


class GuideError(FileError):
    """A guide under templates/guides/ cannot be read."""


class TemplateError(FileError):
    """A shared Jinja2 template is broken or uses a variable that does not exist."""


class DraftError(FileError):
    """A draft in output/ could not be read, merged or written."""


class FeedError(PipelineError):
    """One feed could not be fetched or parsed; carries the feed URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class StoreError(PipelineError):
    """The SQLite item store failed."""


class LockHeld(PipelineError):
    """Another pipeline run holds the project lock."""


class AssistError(PipelineError):
    """The configured AI model failed or answered with something unusable."""
