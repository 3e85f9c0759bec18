"""What one ingest run did: every file offered counted once, as catalogued, duplicate or rejected."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Summary:
    run_id: int
    root: str
    offered: int = 0
    catalogued: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    licences: dict[str, int] = field(default_factory=dict)  # status -> images touched by this run
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "root": self.root,
            "offered": self.offered,
            "catalogued": self.catalogued,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "licences": self.licences,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.rejections.items()))
        flagged = sum(self.licences.get(s, 0) for s in ("missing", "unrecognised", "conflict"))
        return (
            f"ingest run {self.run_id}: {self.offered} offered = {self.catalogued} catalogued"
            f" + {self.duplicates} duplicates + {self.rejected} rejected"
            + (f" ({reasons})" if reasons else "")
            + (f"; {flagged} licences flagged for legal" if flagged else "")
            + f" in {self.seconds:.1f}s"
            + (f"; see `stylevault images rejections --run {self.run_id}`" if self.rejected else "")
            + ("; see `stylevault images list --flagged`" if flagged else "")
        )
