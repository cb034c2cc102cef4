"""Front matter YAML written without the YAML library's emitter, byte for byte as it would write it.

The emitter costs about half a millisecond a draft, most of a first build's time once the writes are
batched. Generated front matter is plain data (strings, numbers, lists, small mappings), and most
of its strings need no quoting; this writes those directly and asks the library for every other
string (cached: dates and quoted titles repeat from draft to draft). Anything else, such as a list
inside a list, returns None and takes the library's whole path. tests/test_yamlout.py holds the
two paths to the same bytes over random data.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Strings the emitter writes plain (unquoted): a letter first; then printable characters; no ": " or
# " #" (a mapping value or a comment), no ":" or space at the end. With a letter first, only these
# words would read back as something else than a string (YAML 1.1 booleans and null).
_PLAIN = re.compile(r"[A-Za-z](?:[ -~\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*[!-9;-~\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd])?")
_WORDS = {"yes", "no", "true", "false", "on", "off", "null"}
_LONGEST = 1000  # longer strings may be folded at the emitter's line width: left to the library


class _NotPlainData(Exception):
    pass


def fast_dump(data: dict[str, object], scalar: Callable[[str], str]) -> str | None:
    """`data` as block YAML, or None when it holds anything but the shapes written here.

    `scalar(text)` is the library's rendering of one string as a mapping value, or ValueError when
    that takes more than one line.
    """
    if not data:
        return None
    out: list[str] = []
    try:
        for key, value in data.items():
            _entry(out, "", "", key, value, scalar)
    except _NotPlainData:
        return None
    return "".join(out)


def _entry(out: list[str], first: str, indent: str, key: object, value: object,
           scalar: Callable[[str], str]) -> None:
    """`key: value` at `indent`; its first line starts with `first` instead (a list item's "- ")."""
    if type(key) is not str or len(key) > 100 or not _plain(key):
        raise _NotPlainData  # a key the library would quote may need the long "? key" form
    name = key
    lead = first or indent
    if type(value) is list and value:
        out.append(f"{lead}{name}:\n")
        for item in value:
            _item(out, indent + "  ", item, scalar)
    elif type(value) is dict and value:
        out.append(f"{lead}{name}:\n")
        for sub_key, sub_value in value.items():
            _entry(out, "", indent + "  ", sub_key, sub_value, scalar)
    else:
        out.append(f"{lead}{name}: {_text(value, scalar)}\n")


def _item(out: list[str], indent: str, item: object, scalar: Callable[[str], str]) -> None:
    if type(item) is dict and item:
        first = f"{indent}- "
        for key, value in item.items():
            if type(value) in (list, dict) and value:
                raise _NotPlainData  # a block inside a list item's mapping: the library's layout
            _entry(out, first, indent + "  ", key, value, scalar)
            first = ""
    elif type(item) in (list, dict) and item:
        raise _NotPlainData
    else:
        out.append(f"{indent}- {_text(item, scalar)}\n")


def _plain(text: str) -> bool:
    return (len(text) <= _LONGEST and _PLAIN.fullmatch(text) is not None and ": " not in text
            and " #" not in text and text.lower() not in _WORDS)


def _text(value: object, scalar: Callable[[str], str]) -> str:
    kind = type(value)
    if isinstance(value, str) and kind is str:
        text = value
        if _plain(text):
            return text
        if len(text) > _LONGEST:
            raise _NotPlainData
        try:
            return scalar(text)
        except ValueError:  # written on several lines
            raise _NotPlainData from None
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if value == [] and kind is list:
        return "[]"
    if value == {} and kind is dict:
        return "{}"
    raise _NotPlainData
