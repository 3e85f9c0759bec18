"""What `stylevault audit verify` proves, in one result (DESIGN.md rules 4 and 11).

Three checks, each catching what the one before cannot:
- the chain: every event links to the one before and the head names the last, so an edited,
  deleted, inserted or reordered event is caught, unless whoever changed it recomputed the chain;
- the checkpoints: heads signed with a key the database never held, kept outside it, so a
  recomputed chain no longer holds the signed hash at the signed position;
- the replay: the tables are what the events say, so a row changed without an event is caught.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session

from stylevault.governance.catalogue import audit
from stylevault.governance.upkeep import checkpoints
from stylevault.governance.upkeep.replay import Replay, replay


@dataclass
class Checkpoints:
    file: str
    key: str | None  # the fingerprint of the key given; None: each line's own key was used
    lines: list[checkpoints.Checked]

    @property
    def ok(self) -> bool:
        return all(line.ok for line in self.lines)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "file": self.file,
            "key": self.key,
            "key_given": self.key is not None,
            "lines": [line.as_dict() for line in self.lines],
        }


@dataclass
class LogVerification:
    chain: audit.Verification
    replay: Replay
    checkpoints: Checkpoints | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def failure(self) -> str | None:
        """The first check that failed, in one line: the chain, then the checkpoints, then the replay."""
        if not self.chain.ok:
            return f"audit chain broken at event {self.chain.broken_at}: {self.chain.problem}"
        if self.checkpoints is not None and not self.checkpoints.ok:
            bad = [line for line in self.checkpoints.lines if not line.ok]
            more = f" ({len(bad)} of {len(self.checkpoints.lines)} checkpoints fail)" if len(bad) > 1 else ""
            where = f"event {bad[0].seq}" if bad[0].seq is not None else "no event"
            return f"checkpoint {self.checkpoints.file} line {bad[0].line} ({where}): {bad[0].problem}{more}"
        if not self.replay.ok:
            count, first = len(self.replay.findings), self.replay.findings[0].problem
            rows = f"{count} place{'s' if count > 1 else ''}"
            return f"replay: the tables disagree with the log in {rows}; first: {first}"
        return None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "failure": self.failure,
            "chain": self.chain.as_dict(),
            "checkpoints": None if self.checkpoints is None else self.checkpoints.as_dict(),
            "replay": self.replay.as_dict(),
        }


def verify_log(
    session: Session,
    checkpoint_file: str | os.PathLike | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> LogVerification:
    """The chain, the checkpoints in `checkpoint_file` (if given) and the replay, read in one snapshot
    (`Catalogue.read()`). The file is read first, so a bad one fails before the catalogue is read."""
    lines = checkpoints.read_file(checkpoint_file) if checkpoint_file is not None else None
    result = LogVerification(audit.verify(session), replay(session))
    if lines is not None:
        key = checkpoints.fingerprint(public_key) if public_key is not None else None
        checked = checkpoints.check_lines(session, lines, public_key)
        result.checkpoints = Checkpoints(str(checkpoint_file), key, checked)
    return result
