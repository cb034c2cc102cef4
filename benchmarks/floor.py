"""The floor for goal 1: the same bytes a build writes (each draft and its merge state, issue 12)
written to temp files, made durable with one sync of the filesystem, then renamed into place (and
the folders synced so the renames last too).

Run as its own process (`python -m benchmarks.floor SRC DEST`) so start-up counts, as it does for
`pipeline build`. It does the least any crash-safe builder must: read, render through one Jinja2
template, write each file beside its place, one durability barrier, rename.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from pathlib import Path

import jinja2

STATE_DIR = ".pipeline"  # where a build keeps each draft's state (pipeline/config.py)


def sync_filesystem(folder: Path) -> None:
    """syncfs(2) on Linux (the pipeline's barrier too); os.sync() elsewhere."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
        os.fsync(fd)
    finally:
        os.close(fd)


def main(source: Path, dest: Path) -> int:
    template = jinja2.Environment(keep_trailing_newline=True).from_string("{{ text }}")
    staged: list[tuple[str, Path]] = []
    folders = {dest, dest / STATE_DIR}
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for path in sorted([*source.glob("*.md"), *(source / STATE_DIR).glob("*.json")]):
        final = dest / path.relative_to(source)
        text = template.render(text=path.read_text(encoding="utf-8"))
        fd, temp = tempfile.mkstemp(prefix=".floor-", suffix=".tmp", dir=final.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        staged.append((temp, final))
    sync_filesystem(dest)
    for temp, final in staged:
        os.replace(temp, final)
    for folder in folders:
        sync_filesystem(folder)
    return len(staged)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]), Path(sys.argv[2])))
