"""`pipeline` with feedparser calls counted: `python -m benchmarks.counted COUNT_FILE ARGS...`.

Shows that a refresh where every feed answers 304 parses nothing. Instrumentation only: the
pipeline runs unchanged, feedparser.parse is wrapped to count its calls.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def main() -> None:
    import feedparser

    count_file = Path(sys.argv[1])
    count_file.write_text("")
    original = feedparser.parse

    def counting(*args: Any, **kwargs: Any) -> Any:
        # One byte per call, appended: counts calls made in forked parser processes too.
        with count_file.open("a") as tally:
            tally.write("x")
        return original(*args, **kwargs)

    feedparser.parse = counting
    from pipeline.cli import main as pipeline_main

    sys.argv = ["pipeline", *sys.argv[2:]]
    pipeline_main()


if __name__ == "__main__":
    main()
