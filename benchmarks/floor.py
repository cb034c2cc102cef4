"""The floor for goal 1: render the same drafts' text through one Jinja2 template, write atomically.

Run as its own process (`python -m benchmarks.floor SRC DEST`) so start-up counts, as it does for
`pipeline build`. It does the least any builder must: read, render, write each file safely.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import jinja2


def main(source: Path, dest: Path) -> int:
    template = jinja2.Environment(keep_trailing_newline=True).from_string("{{ text }}")
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(source.glob("*.md")):
        text = template.render(text=path.read_text(encoding="utf-8"))
        # Same durability as the pipeline's write_atomic: temp file, fsync, rename.
        fd, temp = tempfile.mkstemp(prefix=".floor-", suffix=".tmp", dir=dest)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, dest / path.name)
        count += 1
    return count


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(sys.argv[2])))
