"""File-name parts for figures named after a variant: every task's figures use the same rule, so two variants
never share a figure file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SLUG_LENGTH = 80


def _readable(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(text))


def slug(text: str, among: Iterable[str] = ()) -> str:
    """A file-name part for ``text`` (a variant's name), unique among ``among`` (the other names of its
    figures): the name itself where it is a plain name of at most ``SLUG_LENGTH`` characters that no other
    name of ``among`` shares once spelled so; else its first characters and a short hash of the whole name
    (two variants whose names share their first 80 characters, or differ only in punctuation, never share a
    figure)."""
    readable = _readable(text)
    clash = any(other != text and _readable(other) == readable for other in among)
    if len(readable) <= SLUG_LENGTH and not clash:
        return readable
    digest = hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:10]
    return f"{readable[: SLUG_LENGTH - 11]}_{digest}"
