"""Signed checkpoints of the audit chain's head, kept outside the catalogue (DESIGN.md rule 11).

A hash chain proves nothing against whoever can rewrite all of it: the hash function is public.
A checkpoint is the chain head (its sequence number and hash) signed with an Ed25519 key (RFC 8032)
that the database never holds, written to a file that legal keeps elsewhere; it is the signed tree
head of a transparency log (RFC 9162, section 4.10) for a chain. A later log still holds the signed
event at the signed position, with the same hash, only if history up to there is untouched: the log
may only have grown since.

A checkpoint file is JSON Lines, one checkpoint a line, appended to by every `audit checkpoint`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import AuditEvent
from stylevault.governance.errors import BadInput, Refused

FORMAT = "stylevault-checkpoint/1"
# What the signature covers, in this order of keys (canonical JSON sorts them anyway).
SIGNED = ("format", "catalogue", "seq", "head", "at", "actor", "key", "public_key")


# ---------------------------------------------------------------- keys


def fingerprint(public: Ed25519PublicKey) -> str:
    """`ed25519:` and the sha256 of the 32 raw key bytes: what a checkpoint names its key by."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()


def keygen(out: str | os.PathLike) -> dict:
    """A new Ed25519 key: the private key in PKCS#8 PEM at `out` (mode 0600), the public key at
    `out`.pub. Refuses to overwrite either file: a lost key cannot sign again, a replaced one
    would orphan every checkpoint it signed."""
    private_path = Path(out)
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise BadInput(f"{path}: exists; a key file is never overwritten")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return {
        "key": str(private_path),
        "public_key": str(public_path),
        "fingerprint": fingerprint(key.public_key()),
    }


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except FileExistsError:
        raise BadInput(f"{path}: exists; a key file is never overwritten") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot create ({exc.strerror})") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # the umask may have taken bits off the public key's mode


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """The signing key; refused when others may read its file, as ssh refuses."""
    path = Path(path)
    try:
        info = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"--key {path}: cannot read ({exc.strerror})") from None
    if os.name == "posix" and info.st_mode & 0o077:
        raise Refused(
            f"--key {path}: readable by others (mode {stat.filemode(info.st_mode)}); `chmod 600` it first"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"--key {path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput(f"--key {path}: not an Ed25519 key (make one with `stylevault audit keygen`)")
    return key


def load_public_key(path: str | os.PathLike) -> Ed25519PublicKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"--pubkey {path}: cannot read ({exc.strerror})") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise BadInput(f"--pubkey {path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadInput(f"--pubkey {path}: not an Ed25519 public key")
    return key


# ---------------------------------------------------------------- checkpoints


def _signed_bytes(checkpoint: dict) -> bytes:
    return audit.canonical_json({name: checkpoint.get(name) for name in SIGNED}).encode("utf-8")


def catalogue_id(session: Session) -> str | None:
    """The catalogue's identity: the hash of its first event, which no other catalogue shares and
    which a history rewritten from the start changes. None for a log with no events."""
    event = AuditEvent.__table__
    return session.execute(sa.select(event.c.hash).where(event.c.id == 1)).scalar_one_or_none()


def checkpoint(catalogue: Catalogue, actor_name: str | None, key_path: str | os.PathLike, out) -> dict:
    """Record an `audit.checkpoint` event, sign the head that event makes, append it to `out`.

    The event comes first so that the checkpoint covers its own record: the log says who took each
    checkpoint and when, and removing that event breaks the checkpoint like any other. The chain
    is verified before anything is signed (a broken chain is never blessed), and so is every
    checkpoint already in `out`: a log that no longer extends them is refused, not signed again."""
    key = load_private_key(key_path)
    public = key.public_key()
    out = Path(out)
    earlier = read_file(out, "--out", empty_ok=True) if out.exists() else []
    with catalogue.read() as session:
        actors.require(session, actor_name, "audit.checkpoint")
        chain = audit.verify(session)
    if not chain.ok:
        raise Refused(f"audit chain broken at event {chain.broken_at}: {chain.problem}; nothing signed")
    with catalogue.write() as session:
        actor = actors.require(session, actor_name, "audit.checkpoint")
        change = audit.Change("audit.checkpoint", "audit", "head", None, {"key": fingerprint(public)})
        (seq,) = audit.record(session, actor.name, [change])  # the head is locked from here to COMMIT
        # What others appended since the verification above, and this event, are checked too.
        since = audit.verify(session, start_seq=chain.events, start_hash=chain.head_hash)
        if not since.ok:
            raise Refused(f"audit chain broken at event {since.broken_at}: {since.problem}; nothing signed")
        problems = [c for c in check_lines(session, earlier, None) if not c.ok]
        if problems:
            raise Refused(
                f"{out} line {problems[0].line}: {problems[0].problem}; the log does not extend the "
                "checkpoints already kept, nothing signed (see `stylevault audit verify --checkpoint`)"
            )
        event = AuditEvent.__table__
        row = session.execute(sa.select(event.c.hash, event.c.at).where(event.c.id == seq)).one()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        body = {
            "format": FORMAT,
            "catalogue": catalogue_id(session),
            "seq": seq,
            "head": row.hash,
            "at": row.at,
            "actor": actor.name,
            "key": fingerprint(public),
            "public_key": _b64(raw),
        }
    # Appended only once the event is committed: a line naming a head the log never kept would make
    # every later verification fail.
    signed = {**body, "signature": _b64(key.sign(_signed_bytes(body)))}
    _append(out, signed)
    return signed


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _append(path: Path, checkpoint: dict) -> None:
    line = json.dumps(checkpoint, sort_keys=True, ensure_ascii=True) + "\n"
    try:
        with path.open("a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell():
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = "\n" + line
            handle.write(line.encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise BadInput(
            f"--out {path}: cannot append ({exc.strerror}); the audit.checkpoint event at {checkpoint['seq']}"
            " is recorded but unsigned in any file: run `audit checkpoint` again"
        ) from None


def read_file(
    path: str | os.PathLike, option: str = "--checkpoint", *, empty_ok: bool = False
) -> list[tuple[int, dict]]:
    """(line number, checkpoint) for each non-blank line of a checkpoint file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{option} {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise BadInput(f"{option} {path}: not UTF-8 text") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise BadInput(f"{option} {path} line {number}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise BadInput(f"{option} {path} line {number}: not a JSON object")
        found.append((number, value))
    if not found and not empty_ok:
        raise BadInput(f"{option} {path}: holds no checkpoint")
    return found


@dataclass
class Checked:
    """One checkpoint line judged: its signature, and whether the log still holds what it signed."""

    line: int
    seq: int | None
    head: str | None
    at: str | None
    key: str | None
    signature_ok: bool = False
    log_ok: bool = False
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def check_lines(
    session: Session, lines: list[tuple[int, dict]], public: Ed25519PublicKey | None
) -> list[Checked]:
    """Each checkpoint's signature (against `public` when given, else the key the line names) and
    its place in the log: the event at its seq exists with the hash it signed, in this catalogue.
    One query for all the lines. With no key given an unsigned line is refused; with a key, a line
    signed by another key is."""
    wanted = sorted({c["seq"] for _, c in lines if isinstance(c.get("seq"), int)})
    event = AuditEvent.__table__
    stored = dict(session.execute(sa.select(event.c.id, event.c.hash).where(event.c.id.in_(wanted))).all())
    head = audit.revision(session)
    identity = catalogue_id(session)
    return [_check(number, c, public, stored, head, identity) for number, c in lines]


def _check(number: int, c: dict, public, stored: dict, head: dict, identity: str | None) -> Checked:
    seq, at = c.get("seq"), c.get("at")
    result = Checked(number, seq if isinstance(seq, int) else None, c.get("head"), at, c.get("key"))
    result.problem = _signature_problem(c, public)
    result.signature_ok = result.problem is None
    if result.problem is None:
        result.problem = _log_problem(c, stored, head, identity)
        result.log_ok = result.problem is None
    return result


def _signature_problem(c: dict, public: Ed25519PublicKey | None) -> str | None:
    if c.get("format") != FORMAT:
        return f"not a stylevault checkpoint (format {c.get('format')!r}, expected {FORMAT!r})"
    missing = [name for name in ("catalogue", "head", "at", "key") if not isinstance(c.get(name), str)]
    if missing or "seq" not in c:
        return f"checkpoint without {', '.join(missing + ([] if 'seq' in c else ['seq']))}"
    if not isinstance(c["seq"], int) or isinstance(c["seq"], bool) or c["seq"] < 1:
        return f"seq {c['seq']!r} is not an event number"
    if not c.get("signature"):
        return "unsigned checkpoint: nothing vouches for it" + (
            "" if public else " (and no --pubkey was given)"
        )
    if public is not None:
        if c["key"] != fingerprint(public):
            return f"signed by key {c['key']}, not by the given key {fingerprint(public)}"
        named = public
    else:
        try:
            named = Ed25519PublicKey.from_public_bytes(
                base64.b64decode(c.get("public_key") or "", validate=True)
            )
        except (ValueError, binascii.Error):
            return "the public key the checkpoint carries is not an Ed25519 key"
        if fingerprint(named) != c["key"]:
            return f"the public key the checkpoint carries is not key {c['key']}"
    try:
        signature = base64.b64decode(c["signature"], validate=True)
        named.verify(signature, _signed_bytes(c))
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        return f"bad signature: the checkpoint was altered or not signed by key {c['key']}"
    return None


def _log_problem(c: dict, stored: dict, head: dict, identity: str | None) -> str | None:
    seq = c["seq"]
    if identity != c["catalogue"]:
        return (
            f"made for catalogue {c['catalogue'][:16]}…, but this catalogue's first event is "
            f"{(identity or 'missing')[:16]}…: another catalogue, or history rewritten from its first event"
        )
    if seq > head["seq"]:
        return (
            f"signed event {seq}, but the log ends at event {head['seq']}: events were removed since "
            "the checkpoint"
        )
    if seq not in stored:
        return f"signed event {seq}, which the log no longer holds"
    if stored[seq] != c["head"]:
        return (
            f"event {seq} has hash {stored[seq][:16]}…, not the {c['head'][:16]}… signed on {c.get('at')}: "
            "history up to it was rewritten"
        )
    return None
