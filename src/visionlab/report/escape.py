"""Text from run records (experiment names, overrides, errors, paths) placed in the report's inline markup.

The document's inline markup is Markdown-like (**bold**, `code`); a name such as ``**x**`` or one holding a
backtick must show as typed in REPORT.md and report.html, never as markup. HTML escaping itself happens once, in
``render``; these helpers only neutralise the inline markup.
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*\[\]])")


def md(text) -> str:
    """Plain text: Markdown's inline specials backslash-escaped (render turns ``\\x`` back into ``x`` in HTML)."""
    return _SPECIAL.sub(r"\\\1", str(text))


def code(text) -> str:
    """A code span holding ``text`` (backticks inside become ʼ, since a code span cannot hold its delimiter)."""
    return f"`{str(text).replace('`', 'ʼ')}`"
