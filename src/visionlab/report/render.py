"""One report document, two renderings: REPORT.md (figures as files in figures/) and a self-contained report.html.

The document is a flat list of blocks with Markdown-style inline text (**bold**, `code`), so both outputs
show exactly the same content.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visionlab.report import escape

FIGURES = "figures"


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    id: str = ""  # names the table in report.json (a study README copies tables by it: ``report.readme``)


@dataclass
class Figure:
    """Drawn only when a page is written with figures (``draw`` returns the PNG): drawing is most of a report's
    time, and a report written without figures (``--no-figures``) never pays it."""

    name: str  # file name under figures/
    draw: Callable[[], bytes]
    caption: str
    _png: bytes | None = field(default=None, repr=False)

    @property
    def png(self) -> bytes:
        if self._png is None:
            self._png = self.draw()
        return self._png


NOT_DRAWN = "Figure not drawn (the report was written with `--no-figures`): "


@dataclass
class Contents:
    """Where the table of contents goes: a link to every level-2 heading after it."""


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(b for b in blocks if b is not None)


def _md_text(text) -> str:
    """Run text (experiment names, overrides, errors) as Markdown text, never as HTML."""
    return escape.no_tags(text)


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ")


def anchor(text: str) -> str:
    """GitHub's heading anchor (lower case, punctuation dropped, spaces as hyphens); report.html uses the same."""
    plain = re.sub(r"\\(.)", r"\1", str(text)).replace("`", "").replace("*", "").lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def _contents(doc: Document) -> list[Heading]:
    return [b for b in doc.blocks if isinstance(b, Heading) and b.level == 2]


def to_markdown(doc: Document, figures: bool = True) -> str:
    out = [f"# {_md_text(doc.title)}", ""]
    for block in doc.blocks:
        if isinstance(block, Contents):
            out += [f"- [{_md_text(h.text)}](#{anchor(h.text)})" for h in _contents(doc)] + [""]
        elif isinstance(block, Heading):
            out += [f"{'#' * block.level} {_md_text(block.text)}", ""]
        elif isinstance(block, Paragraph):
            out += [_md_text(block.text), ""]
        elif isinstance(block, Bullets):
            out += [f"- {_md_text(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            out.append("|" + "|".join("---" for _ in block.header) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        elif isinstance(block, Figure) and not figures:
            out += [f"*{_md_text(NOT_DRAWN + block.caption)}*", ""]
        elif isinstance(block, Figure):
            caption = _md_text(block.caption)
            out += [f"![{caption}]({FIGURES}/{block.name})", "", f"*{caption}*", ""]
    return "\n".join(out)


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE_SPAN = re.compile(r"(`[^`]+`)")
_ESCAPED = re.compile(r"\\(.)")


def _inline(text: str) -> str:
    """Code spans verbatim; elsewhere backslash escapes (``escape.md``) are literal characters, ``**x**`` bold;
    everything HTML-escaped."""
    out = []
    for part in _CODE_SPAN.split(str(text)):
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        literal: list[str] = []
        marked = _ESCAPED.sub(lambda m: literal.append(m.group(1)) or f"\x00{len(literal) - 1}\x00", part)
        marked = _BOLD.sub(r"<strong>\1</strong>", html.escape(marked))
        out.append(re.sub("\x00(\\d+)\x00", lambda m: html.escape(literal[int(m.group(1))]), marked))
    return "".join(out)


_LONG_CELL = 16  # characters: longer cell text may wrap; shorter (numbers, names) stays on one line
_UNIT = re.compile(r"(?<=[\d\]]) (?=%|pp\b|s\b)|(?<=±) | (?=±)|(?<=[\d%]) (?=–)|(?<=–) (?=[\d+-])")


def _glued(html_text: str) -> str:
    """Numbers stay with their units and ranges when a long cell wraps: ``95.35 ± 0.42 %`` never breaks inside."""
    return _UNIT.sub("\u00a0", html_text)


def _cell(text) -> str:
    if len(str(text)) > _LONG_CELL:
        return f'<td class="long">{_glued(_inline(text))}</td>'
    return f"<td>{_inline(text)}</td>"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.45em; text-align: left; vertical-align: top; }
th { white-space: normal; }
td { white-space: nowrap; } td.long { white-space: normal; min-width: 6em; }  /* short cells never squeezed */
td.long { overflow-wrap: break-word; }  /* words (variant names) break only where nothing else fits */
td.long code { overflow-wrap: anywhere; }  /* paths and commands break anywhere */
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f4f4f4; padding: 0 0.2em; font-size: 0.95em; }
.scroll { overflow-x: auto; max-width: 100%; }
nav.contents { background: #f7f7f7; padding: 0.3em 1em; border: 1px solid #ddd; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; } figcaption { color: #555; font-style: italic; }
"""


def to_html(doc: Document, figures: bool = True) -> str:
    """Self-contained: inline CSS, figures embedded as base64 PNG."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(doc.title)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>{html.escape(doc.title)}</h1>"]
    for block in doc.blocks:
        if isinstance(block, Contents):
            links = "".join(f'<li><a href="#{anchor(h.text)}">{_inline(h.text)}</a></li>' for h in _contents(doc))
            out.append(f'<nav class="contents"><ul>{links}</ul></nav>')
        elif isinstance(block, Heading):
            out.append(f'<h{block.level} id="{anchor(block.text)}">{_inline(block.text)}</h{block.level}>')
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
            body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block.rows)
            out.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')
        elif isinstance(block, Figure) and not figures:
            out.append(f'<p class="figure-skipped"><em>{_inline(NOT_DRAWN + block.caption)}</em></p>')
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{_inline(block.caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def write(doc: Document, out_dir: Path, figures: bool = True) -> tuple[Path, Path]:
    """REPORT.md with its figures/ folder, and report.html; returns both paths. Without ``figures`` nothing is
    drawn and each figure's place says so (its caption stays)."""
    if figures:
        folder = out_dir / FIGURES
        folder.mkdir(parents=True, exist_ok=True)
        for block in doc.blocks:
            if isinstance(block, Figure):
                (folder / block.name).write_bytes(block.png)
    markdown, page = out_dir / "REPORT.md", out_dir / "report.html"
    markdown.write_text(to_markdown(doc, figures))
    page.write_text(to_html(doc, figures))
    return markdown, page


def page_data(doc: Document) -> list[dict]:
    """Every block as plain data (tables with their cells, figures by name and caption) for report.json."""
    out = []
    for block in doc.blocks:
        if isinstance(block, Figure):
            out.append({"figure": block.name, "caption": block.caption})
        elif isinstance(block, Contents):
            out.append({"contents": [h.text for h in _contents(doc)]})
        else:
            out.append({type(block).__name__.lower(): vars(block)})
    return out
