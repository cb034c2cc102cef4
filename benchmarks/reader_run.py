"""The comparison for goal 3: the `reader` library updating the same feeds with 20 workers.

Run as its own process, like `pipeline fetch`: `python -m benchmarks.reader_run DB URLS_FILE`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(db: str, urls_file: str) -> int:
    from reader import make_reader

    reader = make_reader(db)
    for url in Path(urls_file).read_text().split():
        reader.add_feed(url, exist_ok=True)
    reader.update_feeds(workers=20)
    entries = reader.get_entry_counts().total
    reader.close()
    return entries


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2]))
