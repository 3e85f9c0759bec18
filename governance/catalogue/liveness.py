"""Whether the process that started a run is still at it: a lock the run holds while it works.

On PostgreSQL a session advisory lock on a connection of its own, which any machine can test; on
SQLite an flock on a file in the content store (a SQLite catalogue is one machine's). The holder's
death releases either, so `stylevault doctor` takes a run whose lock it can take for dead.
"""

from __future__ import annotations

import fcntl
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.errors import BadInput

KINDS = {"ingest": 1, "index": 2, "generate": 3}
SPACE = 0x53560000  # "SV": the advisory-lock class ids of these locks, one per kind


def _keys(kind: str, ident: object) -> dict[str, int]:
    # pg_advisory_lock(int4, int4): the kind's class, and the run's id folded into a signed int4.
    return {"space": SPACE + KINDS[kind], "ident": zlib.crc32(str(ident).encode()) - 2**31}


def _lock_file(catalogue: Catalogue, kind: str, ident: object) -> Path:
    return catalogue.store / "locks" / f"{kind}-{ident}.lock"


def _postgres(catalogue: Catalogue) -> bool:
    return catalogue.engine.dialect.name == "postgresql"


@contextmanager
def held(catalogue: Catalogue, kind: str, ident: object) -> Iterator[None]:
    """Hold the lock that says run `ident` of `kind` is alive, for the block."""
    if _postgres(catalogue):
        keys = _keys(kind, ident)
        with catalogue.engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:space, :ident)"), keys)
            connection.commit()  # the lock is the session's; no transaction stays open
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:space, :ident)"), keys)
                connection.commit()
        return
    path = _lock_file(catalogue, kind, ident)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def alive(catalogue: Catalogue, kind: str, ident: object) -> bool:
    """Whether a process holds run `ident`'s lock now."""
    if _postgres(catalogue):
        keys = _keys(kind, ident)
        with catalogue.engine.connect() as connection:
            free = connection.execute(sa.text("SELECT pg_try_advisory_lock(:space, :ident)"), keys).scalar()
            if free:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:space, :ident)"), keys)
            connection.commit()
        return not free
    path = _lock_file(catalogue, kind, ident)
    if not path.exists():
        return False
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:  # its holder finished and removed it meanwhile
        return False


@contextmanager
def staged(catalogue: Catalogue, kind: str, ident: object, out: Path) -> Iterator[Path]:
    """The hidden folder `.OUT.tmp-ID` beside `out` that a run of `kind` writes into, held alive for
    the block (`doctor` leaves a live run's folders alone) and removed if the block fails; the block
    renames it to `out` once the run is recorded."""
    tmp = out.parent / f".{out.name}.tmp-{ident}"
    with held(catalogue, kind, ident):
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def fresh_out(out: str | Path, what: str, *, advice: str = "", empty_ok: bool = False) -> Path:
    """`out` made absolute, refused (saying `what`, then `advice`) if something is already there (an
    empty folder is fine where `empty_ok`) or if its parent folder is missing."""
    out = Path(out).absolute()
    taken = out.exists() and not (empty_ok and out.is_dir() and not any(out.iterdir()))
    if taken:
        raise BadInput(f"--out {out}: {what} ({advice}{interrupted_hint(out)})")
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: folder {out.parent} does not exist")
    return out


def interrupted_hint(out: Path) -> str:
    """What a refusal of an existing --out says about a run killed before it was recorded."""
    return (
        f"if a killed run left it unrecorded, `stylevault doctor {out.parent}` finds it and "
        "`--repair` moves it aside"
    )
