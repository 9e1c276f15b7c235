"""Text from run records (experiment names, overrides, errors, paths) placed in the report's inline markup.

The document's inline markup is Markdown-like (**bold**, `code`); a name such as ``**x**`` or one holding a
backtick must show as typed in REPORT.md and report.html, never as markup. HTML escaping itself happens once,
in ``render``; these helpers only neutralise the inline markup."""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*\[\]])")


def md(text) -> str:
    """Plain text: Markdown's inline specials backslash-escaped (render turns ``\\x`` back into ``x`` in
    HTML)."""
    return _SPECIAL.sub(r"\\\1", str(text))


def code(text) -> str:
    """A code span holding ``text`` (backticks inside become ʼ, since a code span cannot hold its
    delimiter)."""
    return f"`{str(text).replace('`', 'ʼ')}`"


def no_tags(text) -> str:
    """Rendered Markdown text that can hold no HTML tag: outside code spans every ``<`` that could open a tag
    (one not followed by white space) becomes ``&lt;`` and every ``>`` ``&gt;``; "p < 0.05" stays readable.
    Inside a code span a Markdown viewer shows text as typed."""
    parts = re.split(r"(`[^`]+`)", str(text))
    return "".join(
        part
        if part.startswith("`") and part.endswith("`") and len(part) > 1
        else re.sub(r"<(?=\S)", "&lt;", part).replace(">", "&gt;")
        for part in parts
    )
