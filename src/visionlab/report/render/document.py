"""One report document, two renderings: REPORT.md (figures as files in figures/) and a self-contained
report.html.

The document is a flat list of blocks with Markdown-style inline text (**bold**, `code`), so both outputs
show exactly the same content.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visionlab.record.files import fsync_folder
from visionlab.report.render import escape

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
    """Drawn only when a page is written with figures (``draw`` returns the PNG): drawing is most of a
    report's time, and a report written without figures (``--no-figures``) never pays it."""

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
    """GitHub's heading anchor (lower case, punctuation dropped, spaces as hyphens); report.html uses the
    same."""
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
    """Code spans verbatim; elsewhere backslash escapes (``escape.md``) are literal characters, ``**x**``
    bold; everything HTML-escaped."""
    out = []
    for part in _CODE_SPAN.split(str(text)):
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        literal: list[str] = []
        marked = _ESCAPED.sub(
            lambda m, literal=literal: literal.append(m.group(1)) or f"\x00{len(literal) - 1}\x00", part
        )
        marked = _BOLD.sub(r"<strong>\1</strong>", html.escape(marked))
        out.append(
            re.sub("\x00(\\d+)\x00", lambda m, literal=literal: html.escape(literal[int(m.group(1))]), marked)
        )
    return "".join(out)


_LONG_CELL = 16  # characters: longer cell text may wrap; shorter (numbers, names) stays on one line
_UNIT = re.compile(r"(?<=[\d\]]) (?=%|pp\b|s\b)|(?<=±) | (?=±)|(?<=[\d%]) (?=–)|(?<=–) (?=[\d+-])")


def _glued(html_text: str) -> str:
    """Numbers stay with their units and ranges when a long cell wraps: ``95.35 ± 0.42 %`` never breaks
    inside."""
    return _UNIT.sub("\u00a0", html_text)


_TAG = re.compile(r"(<[^>]+>)")
_JOINT = re.compile(r"(?<=[_./=,])(?=[A-Za-z$])")  # not inside a number: 95.35 stays whole


def _joints(html_text: str) -> str:
    """A line-break opportunity (``<wbr>``) after each ``_ . / = ,`` inside a word of text (not in tags):
    a long name (``r2_intensity_dark_far_tta``, ``visionlab.tasks.schedules.warmup_cosine``) wraps at its
    joints, so a table fits a narrow window without breaking a name mid-word."""
    return "".join(
        part if part.startswith("<") else _JOINT.sub("<wbr>", part) for part in _TAG.split(html_text)
    )


def _cell(text) -> str:
    if len(str(text)) > _LONG_CELL:
        return f'<td class="long">{_joints(_glued(_inline(text)))}</td>'
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
p code, li code, figcaption code { overflow-wrap: anywhere; }  /* a path in a sentence breaks, not the page */
.scroll { overflow-x: auto; max-width: 100%; }
nav.contents { background: #f7f7f7; padding: 0.3em 1em; border: 1px solid #ddd; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; } figcaption { color: #555; font-style: italic; }
"""


def to_html(doc: Document, figures: bool = True) -> str:
    """Self-contained: inline CSS, figures embedded as base64 PNG."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(doc.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for block in doc.blocks:
        if isinstance(block, Contents):
            links = "".join(
                f'<li><a href="#{anchor(h.text)}">{_inline(h.text)}</a></li>' for h in _contents(doc)
            )
            out.append(f'<nav class="contents"><ul>{links}</ul></nav>')
        elif isinstance(block, Heading):
            out.append(f'<h{block.level} id="{anchor(block.text)}">{_inline(block.text)}</h{block.level}>')
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{_joints(_inline(h))}</th>" for h in block.header)
            body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block.rows)
            out.append(
                f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table></div>"
            )
        elif isinstance(block, Figure) and not figures:
            out.append(f'<p class="figure-skipped"><em>{_inline(NOT_DRAWN + block.caption)}</em></p>')
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode("ascii")
            out.append(
                f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)


REPORT_FILES = ("REPORT.md", "report.html", "report.json")
_TEMPORARY = re.compile(r"^\.(.+)\.\d+\.tmp$")


def _stage(path: Path, data: bytes, staged: list[tuple[Path, Path]]) -> None:
    """Write ``data`` in full under a temporary name beside ``path``, flushed to disk (renamed later)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.append((tmp, path))
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _remove_leftovers(folder: Path) -> None:
    """Temporary files of a writer that was killed before it could rename or remove them."""
    for path in folder.glob(".*.tmp") if folder.is_dir() else ():
        if _TEMPORARY.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def write(
    doc: Document, out_dir: Path, figures: bool = True, numbers: dict | None = None
) -> tuple[Path, Path]:
    """REPORT.md with its figures/ folder, report.html and (with ``numbers``) report.json; returns the first
    two. Without ``figures`` nothing is drawn and each figure's place says so (its caption stays).

    Atomic per file, and all or nothing on failure: every file is first written in full under a temporary name
    (``.<name>.<pid>.tmp``) in its own folder and flushed, and only when all are written are they renamed over
    the old ones. A failure while writing (a full disk) removes the temporary files and leaves the old report
    as it was; killed at any moment, no report file is ever half-written (a kill between two renames can leave
    whole files of both reports, and its temporary files, which the next write removes). Over an earlier
    report (``out_dir`` holds one of ``REPORT_FILES``), the figures in ``figures/`` that this one does not
    show are removed once the new report is in place, so no stale figure is left beside the page."""
    folder = out_dir / FIGURES
    for place in (out_dir, folder):
        _remove_leftovers(place)
    replacing = any((out_dir / name).is_file() for name in REPORT_FILES)
    markdown, page, data = out_dir / "REPORT.md", out_dir / "report.html", out_dir / "report.json"
    texts = [(markdown, to_markdown(doc, figures)), (page, to_html(doc, figures))]
    if numbers is not None:
        texts.append((data, json.dumps(numbers, indent=2, default=str)))
    shown = [block for block in doc.blocks if isinstance(block, Figure)] if figures else []
    staged: list[tuple[Path, Path]] = []
    try:
        if shown:
            folder.mkdir(parents=True, exist_ok=True)
        for block in shown:
            _stage(folder / block.name, block.png, staged)
        for path, text in texts:
            _stage(path, text.encode("utf-8"), staged)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    for place in {path.parent for _, path in staged}:
        fsync_folder(place)
    if replacing and folder.is_dir():
        kept = {block.name for block in shown}
        for old in folder.glob("*.png"):
            if old.name not in kept and old.is_file() and not old.is_symlink():
                old.unlink(missing_ok=True)
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
