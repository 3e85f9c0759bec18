"""What ingest is offered: every entry under a folder, or every row of a manifest.

Each offer is a file to read, or a refusal decided before reading it (a path outside the ingest
root, a symlink loop, a repeated manifest row...), so that every offer ends as exactly one
catalogued image, duplicate or rejection (DESIGN.md rule 1).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stylevault.governance.errors import BadInput
from stylevault.governance.ingest.manifest import ManifestRow, parse_bool, unstorable
from stylevault.governance.rules import licences


def printable(path: str) -> str:
    """A path as text: undecodable bytes in file names become \\x escapes instead of failing."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def name_problem(path: str) -> str | None:
    """Why a path cannot be catalogued as text, or None. Paths are stored as UTF-8 text; a name
    whose bytes are not UTF-8 would be stored escaped, a spelling that names no file, so the image
    could never be read again from its source (an index build would fail for it)."""
    data = os.fsencode(path)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"its name is not UTF-8 (byte {data[exc.start]:#04x}); rename it to ingest it"
    return None


@dataclass
class Offer:
    """One file offered to ingest, and why it is refused before it is read (if it is)."""

    display: str  # relative to the ingest root, printable
    path: str | None  # the path as offered (a symlink stays a symlink), for its source row
    row: ManifestRow | None = None
    refusal: tuple[str, str] | None = None
    # What the checks passed: the file's real path as (real folder, path below it, free of symlinks).
    # Reading opens exactly that, never the offered path again (see open_inside).
    real: tuple[str, str] | None = None


@dataclass
class _Folder:
    """A folder met while walking, to be listed next."""

    path: str
    real: Path


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def open_inside(folder: str, relative: str) -> int:
    """A read-only descriptor of the regular file `relative` below `folder`, opened one part at a time
    relative to the last (openat) without following a symlink in any part (O_NOFOLLOW).

    The checks ran on paths; between them and the read a file or folder can be swapped for a link to
    anywhere. Opening this way, the read reaches only what is below `folder` now, and fstat checks the
    file opened rather than a path. O_NONBLOCK keeps a FIFO swapped in from blocking the open. Raises
    OSError: ELOOP when the file became a symlink, ENOTDIR when a folder on its path did, and
    IsADirectoryError/OSError(EINVAL) for what is not a regular file."""
    *folders, name = Path(relative).parts
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    try:
        for part in folders:
            inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        opened = os.open(name, flags | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(opened).st_mode):
        os.close(opened)
        raise OSError(errno.EINVAL, "not a regular file")
    os.set_blocking(opened, True)
    return opened


def _checked(real_root: Path, resolved: Path) -> tuple[str, str]:
    return str(real_root), str(resolved.relative_to(real_root))


def _real(path: str | os.PathLike) -> Path:
    """The path with symlinks resolved. A symlink loop stays unresolved, so it reads as missing
    (Path.resolve raises RuntimeError on a loop before Python 3.13)."""
    return Path(os.path.realpath(path))


def offers_from_folder(root: Path, skip: set[Path]) -> Iterator[Offer]:
    """Every entry under `root`, in name order. Symlinks are followed only to files inside it."""
    real_root = _real(root)

    def offer(entry_path: str, **kwargs) -> Offer:
        relative = os.path.relpath(entry_path, root)
        problem = name_problem(relative)
        if problem and kwargs.get("refusal") is None:
            kwargs |= {"refusal": ("unreadable-name", problem), "real": None}
        return Offer(display=printable(relative), path=entry_path, **kwargs)

    def listing(folder: str, real_folder: Path) -> Iterator[Offer]:
        # Folders are entered only through real directories, so an entry's real path is its real
        # folder plus its name; only symlinks need resolving.
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield offer(folder, refusal=("unreadable", f"cannot list folder: {exc.strerror}"))
            return
        for entry in entries:
            is_link = entry.is_symlink()
            resolved = _real(entry.path) if is_link else real_folder / entry.name
            if resolved in skip:
                continue
            if is_link:
                if not _inside(resolved, real_root):
                    yield offer(entry.path, refusal=("outside-root", "symlink leads outside the ingest root"))
                elif not resolved.exists():
                    yield offer(entry.path, refusal=("missing-file", "broken symlink"))
                elif not resolved.is_file():
                    yield offer(entry.path, refusal=("not-a-file", "symlink to a folder is not followed"))
                else:
                    yield offer(entry.path, real=_checked(real_root, resolved))
            elif entry.is_dir(follow_symlinks=False):
                yield _Folder(entry.path, resolved)
            elif entry.is_file(follow_symlinks=False):
                yield offer(entry.path, real=_checked(real_root, resolved))
            else:
                yield offer(entry.path, refusal=("not-a-file", "not a regular file"))

    def walk() -> Iterator[Offer]:
        # Depth first in name order, with a stack of listings rather than recursion: a folder nested a
        # thousand deep is a collection to read, not a RecursionError.
        stack = [listing(str(root), real_root)]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
            elif isinstance(item, _Folder):
                stack.append(listing(item.path, item.real))
            else:
                yield item

    if root.is_file():
        yield Offer(
            display=printable(root.name), path=str(root), real=(str(real_root.parent), real_root.name)
        )
    else:
        yield from walk()


def _row_refusal(row: ManifestRow) -> tuple[str, str] | None:
    try:
        parse_bool(row.values.get("opt_out"), "opt_out")
        if row.values.get("licence_expires"):
            licences.parse_date(row.values["licence_expires"], "licence_expires")
    except (ValueError, BadInput) as exc:
        return "bad-row", f"line {row.line}: {exc}"
    return None


def offers_from_manifest(root: Path, rows: list[ManifestRow]) -> Iterator[Offer]:
    """One offer per manifest row; rows that point outside the root or repeat a path are refused."""
    real_root = _real(root)
    seen: dict[str, int] = {}
    for row in rows:
        relative = row.path
        problem = unstorable(row) if relative else "empty 'path'"
        if problem:
            yield Offer(
                display=f"(line {row.line})",
                path=None,
                row=row,
                refusal=("bad-row", f"line {row.line}: {problem}"),
            )
            continue
        display = printable(relative)
        candidate = Path(relative)
        target = _real(root / candidate)
        key = os.path.normpath(relative)
        if candidate.is_absolute() or not _inside(target, real_root):
            refusal = ("outside-root", f"line {row.line}: path leaves the ingest root")
        elif problem := name_problem(relative):
            refusal = ("unreadable-name", f"line {row.line}: {problem}")
        elif key in seen:
            refusal = ("duplicate-row", f"line {row.line}: repeats the path of line {seen[key]}")
        elif not target.exists():
            refusal = ("missing-file", f"line {row.line}: no such file")
        elif not target.is_file():
            refusal = ("not-a-file", f"line {row.line}: not a regular file")
        else:
            refusal = _row_refusal(row)
        seen.setdefault(key, row.line)
        real = _checked(real_root, target) if refusal is None else None
        yield Offer(display=display, path=str(root / candidate), row=row, refusal=refusal, real=real)
