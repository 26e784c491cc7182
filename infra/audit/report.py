"""What verification reports: progress while it reads, then each problem found (its position and
kind) and the counts `parley audit verify` prints, as text or JSON."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Finding:
    kind: str
    """modified, deleted, inserted, reordered, signature, checkpoint, chain."""
    position: int
    detail: str

    def __str__(self) -> str:
        return f"position {self.position}: {self.kind}: {self.detail}"


@dataclass
class Report:
    events_checked: int = 0
    checkpoints_checked: int = 0
    sealed_to: int = 0
    chained_to: int = 0
    unsealed: int = 0
    """Chain entries after the last checkpoint (not signed yet)."""
    unchained: int = 0
    """Events after the ledger's head (not chained yet)."""
    key_ids: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return min(self.findings, key=lambda f: f.position) if self.findings else None

    def to_json(self) -> dict[str, Any]:
        first = self.first
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "sealed_to": self.sealed_to,
            "chained_to": self.chained_to,
            "unsealed": self.unsealed,
            "unchained": self.unchained,
            "key_ids": sorted(self.key_ids),
            "first_problem": None if first is None else first.__dict__,
            "findings": [f.__dict__ for f in sorted(self.findings, key=lambda f: f.position)],
        }
