"""Atomic JSON/CSV writers and the one bounded reader of run-record files: a crash never leaves a half-written
record behind, and a crafted record cannot make a reader follow a link out of its folder, block on a FIFO,
read a device, allocate without bound or recurse without bound.

Every read of a run-record file goes through ``read_bounded``: only a regular file whose real path is inside
the folder it belongs to (``root``), at most ``limit`` bytes counted on what is actually read (a file that
grows while read, or a size the file system misreports, cannot get past it). Parsed JSON and YAML are walked
(iteratively) for their depth and size. A file refused for any of these reasons raises ``RefusedFile``, whose
message names the file and says why, and never quotes the file's contents."""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import yaml

from visionlab.record.metric_keys import EPOCH, STEP

INTEGER_COLUMNS = (EPOCH, STEP)
MAX_RECORD_BYTES = (
    16 * 2**20
)  # a text file of a run record (summary, config, metrics, per-case and confusion CSVs)
MAX_NPZ_BYTES = 64 * 2**20  # an .npz as stored (compressed); what it unpacks to is bounded by ``check_npz``
MAX_ARRAY_BYTES = 64 * 2**20  # all arrays of an .npz together, once unpacked
MAX_NPZ_MEMBERS = (
    48  # qualitative.npz: 5 cases × up to 7 fields (K classes add the source and the image mIoU)
)
MAX_DEPTH = 64  # nesting levels of a JSON/YAML record (a real one has fewer than 10)
MAX_NODES = 1_000_000  # entries of a JSON/YAML record, YAML aliases counted each time they are reached


class RefusedFile(ValueError):
    """A record file that is not read (or not used): not a regular file inside its folder, over a bound,
    nested too deep, or of the wrong shape. ``file`` names it (relative to its folder), ``why`` says why;
    neither quotes the file's contents."""

    def __init__(self, file: str, why: str):
        super().__init__(f"{file}: {why}")
        self.file, self.why = file, why


class TooLarge(RefusedFile):
    """A run-record file over the reader's bounds."""


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return Path(path).name


def _kind(mode: int) -> str:
    for test, words in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return words
    return "not a regular file"


def resolve_inside(path: Path, root: Path | None) -> Path:
    """``path`` with every link resolved; a ``RefusedFile`` when that leaves ``root`` (when one is given)."""
    real = Path(os.path.realpath(path))
    if root is not None:
        base = Path(os.path.realpath(root))
        if real != base and base not in real.parents:
            raise RefusedFile(_display(path, root), "a link to a file outside the run folder; not read")
    return real


def check_record_file(path: Path, root: Path | None = None, limit: int | None = None) -> None:
    """The checks of ``read_bounded`` without reading: an absent file passes (its reader says so), a file that
    would be refused raises ``RefusedFile``."""
    if not os.path.lexists(path):
        return
    real = resolve_inside(path, root)
    try:
        info = real.stat()
    except OSError:
        return  # a dangling link: its reader says it is missing
    name = _display(path, root)
    if not stat.S_ISREG(info.st_mode):
        raise RefusedFile(name, f"{_kind(info.st_mode)}, not a regular file; not read")
    limit = limit if limit is not None else _limit_for(path)
    if info.st_size > limit:
        raise TooLarge(name, f"{info.st_size:,} bytes, more than the {limit:,} a report reads")


def _limit_for(path: Path) -> int:
    return MAX_NPZ_BYTES if Path(path).suffix == ".npz" else MAX_RECORD_BYTES


def read_bounded(path: Path, root: Path | None = None, limit: int | None = None) -> bytes:
    """The bytes of ``path``: a regular file whose real path is inside ``root`` (when given), at most
    ``limit`` bytes (at most ``limit`` + 1 are ever read). Raises ``FileNotFoundError`` when absent,
    ``OSError`` when it cannot be opened, ``RefusedFile`` otherwise."""
    name = _display(path, root)
    limit = limit if limit is not None else _limit_for(path)
    real = resolve_inside(path, root)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link after it was resolved
            raise RefusedFile(name, "a symbolic link; not read") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFile(name, f"{_kind(info.st_mode)}, not a regular file; not read")
        if info.st_size > limit:
            raise TooLarge(name, f"{info.st_size:,} bytes, more than the {limit:,} a report reads")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(2**20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise TooLarge(name, f"more than the {limit:,} bytes a report reads")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path, root: Path | None = None, limit: int | None = None) -> str:
    """``read_bounded`` as UTF-8 text (a ValueError naming the file when it is not)."""
    data = read_bounded(path, root, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{_display(path, root)}: not UTF-8 text") from None


def check_structure(data, name: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Walk parsed JSON/YAML without recursion: a ``RefusedFile`` when it nests deeper than ``max_depth`` or
    holds more than ``max_nodes`` entries (YAML aliases, even recursive ones, are counted each time
    reached)."""
    stack, seen = [(data, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > max_nodes:
            raise RefusedFile(name, f"more than {max_nodes:,} entries")
        if depth > max_depth:
            raise RefusedFile(name, f"nested more than {max_depth} levels deep")
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
            stack.extend((key, depth + 1) for key in node if isinstance(key, (tuple, frozenset)))
        elif isinstance(node, (list, tuple)):
            stack.extend((value, depth + 1) for value in node)


def parse_json(text: str, name: str, max_nodes: int = MAX_NODES):
    """JSON of a record file, its depth and size bounded (``RefusedFile``); a ValueError when it is not
    JSON."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise RefusedFile(name, f"nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    check_structure(data, name, max_nodes=max_nodes)
    return data


def _flow_depth(text: str) -> int:
    """An upper bound of how deep YAML flow collections (``[``, ``{``) nest in ``text``: brackets inside
    quoted strings count too (no real record nests 64 of them)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    codes = np.frombuffer(text.encode("utf-8", "replace"), np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int32) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps, dtype=np.int32).max())


def parse_yaml(text: str, name: str, max_nodes: int = MAX_NODES):
    """YAML (safe loader: data only) of a record file, its depth and size bounded (``RefusedFile``); a
    ValueError when it is not YAML. The parser's own message is not used: it quotes the offending line."""
    if (
        _flow_depth(text) > MAX_DEPTH
    ):  # refused in milliseconds (the parser takes seconds to hit its recursion limit)
        raise RefusedFile(name, f"nested more than {MAX_DEPTH} levels deep")
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise RefusedFile(name, f"nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ValueError(f"{name}: not valid YAML{where}") from None
    check_structure(data, name, max_nodes=max_nodes)
    return data


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def write_json(path: Path, data: dict) -> None:
    """Whole or not at all: a write that fails (a full disk) leaves the old file and no temporary behind."""
    tmp = _temporary(path)
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, write) -> None:
    """``write(file)`` fills a temporary file beside ``path`` (same filesystem), flushed to disk, then renamed
    over ``path`` and the rename flushed too: killed at any moment (or on a power cut after it returned),
    ``path`` is the old file or the new one, whole, never a truncated one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    """Make the entries of ``folder`` (a rename into it) durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: Path, root: Path | None = None):
    """A record's JSON through ``read_bounded``. Raises FileNotFoundError when absent, ``RefusedFile`` when it
    is refused, ValueError when it is not JSON."""
    return parse_json(read_text(path, root), _display(path, root))


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> None:
    fieldnames = fieldnames or list(dict.fromkeys(k for row in rows for k in row))
    tmp = _temporary(path)
    try:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:  # e.g. a full disk: the old file stays, no temporary is left
        tmp.unlink(missing_ok=True)
        raise


MAX_COUNTER = 10**9  # an epoch or step beyond this is not one a run recorded


def _number(key: str, value: str | None, name: str, line: int):
    if value in ("", None):
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    if key not in INTEGER_COLUMNS:
        return number
    if not math.isfinite(number) or abs(number) > MAX_COUNTER:
        raise RefusedFile(name, f"line {line}: {key} is not a finite whole number up to {MAX_COUNTER:,}")
    return int(number)


def read_csv(path: Path, root: Path | None = None) -> list[dict]:
    """Rows of a numeric CSV (epoch/step as int, other numbers as float, anything else as text), read through
    ``read_bounded``. A row with more fields than the header, an epoch or step that is not a finite whole
    number, or text the csv module cannot parse is a ``RefusedFile``."""
    name = _display(path, root)
    text = read_text(path, root)
    rows = []
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            if None in row:
                raise RefusedFile(name, f"line {reader.line_num} has more fields than the header")
            rows.append({k: _number(k, v, name, reader.line_num) for k, v in row.items()})
    except csv.Error as exc:
        raise RefusedFile(name, f"not a CSV table ({exc})") from None
    return rows


def check_npz(data: bytes, name: str, limit: int = MAX_ARRAY_BYTES) -> None:
    """Raise ``TooLarge`` when the arrays of an .npz would need more than ``limit`` bytes, or ``ValueError``
    when it is not a plain .npz of numeric arrays; only the archive's directory and each array's header are
    read (a few KB of compressed zeros can unpack to gigabytes)."""
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise TooLarge(name, f"holds {len(members)} arrays, more than {MAX_NPZ_MEMBERS}")
            for info in members:
                try:
                    with archive.open(info) as stream:
                        version = np.lib.format.read_magic(stream)
                        reader = (
                            np.lib.format.read_array_header_1_0
                            if version == (1, 0)
                            else np.lib.format.read_array_header_2_0
                        )
                        shape, _, dtype = reader(stream)
                except (ValueError, TypeError):  # numpy's message quotes the header: not repeated
                    raise ValueError(f"{name}: a member is not a NumPy array") from None
                if dtype.hasobject:
                    raise ValueError(f"{name}: an array holds Python objects, not numbers")
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
                if total > limit:
                    raise TooLarge(name, f"unpacks to more than the {limit:,} bytes a report reads")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError) as exc:
        raise ValueError(f"{name}: not an .npz archive ({type(exc).__name__})") from None


def read_npz(path: Path, root: Path | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz through ``read_bounded`` and ``check_npz`` (no pickles:
    ``allow_pickle=False``)."""
    name = _display(path, root)
    data = read_bounded(path, root)
    check_npz(data, name)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return dict(arrays)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
        raise ValueError(f"{name}: not an .npz archive ({type(exc).__name__})") from None
