"""A study README's tables, copied from its report.json so they cannot drift from the page.

A README marks each copied table by the ``id`` the page gives it (see ``report.json``'s ``page``)::

    <!-- report-table: over-seeds:<task>:<key> -->
    | ... the table, as ``table_markdown`` writes it ... |
    <!-- /report-table -->

``python -m visionlab.report.readme experiments/<study>`` rewrites every marked block of ``<study>/README.md``
from ``<study>/report/report.json``; a test checks that every committed README equals what this would write.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from visionlab.report.render.document import _md_cell

BLOCK = re.compile(
    r"(<!-- report-table: (?P<id>[^>]+?) -->\n)(?P<body>.*?)(<!-- /report-table -->)", re.DOTALL
)


def table_markdown(table: dict) -> str:
    """The Markdown of one page table (``{"header": [...], "rows": [[...]]}``), as REPORT.md writes it."""
    lines = [
        "| " + " | ".join(_md_cell(h) for h in table["header"]) + " |",
        "|" + "|".join("---" for _ in table["header"]) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table["rows"]]
    return "\n".join(lines) + "\n"


def page_tables(numbers: dict) -> dict[str, dict]:
    return {
        block["table"]["id"]: block["table"]
        for block in numbers.get("page", [])
        if "table" in block and block["table"].get("id")
    }


def marked(text: str) -> list[str]:
    return [m.group("id") for m in BLOCK.finditer(text)]


def synced(text: str, numbers: dict) -> str:
    """``text`` with every marked block replaced by the page's table of that id (KeyError for an unknown
    id)."""
    tables = page_tables(numbers)

    def replace(match: re.Match) -> str:
        return match.group(1) + table_markdown(tables[match.group("id")]) + match.group(4)

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    for study in map(Path, argv if argv is not None else sys.argv[1:]):
        readme, report = study / "README.md", study / "report" / "report.json"
        text = readme.read_text()
        new = synced(text, json.loads(report.read_text()))
        readme.write_text(new)
        print(f"{readme}: {len(marked(text))} tables {'updated' if new != text else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
