"""Verifying history: the events as they are now against the audit chain and signed checkpoints.

One algorithm, three sources (Postgres, the Kafka topic, an exported bundle):

1. **Checkpoints.** Every checkpoint's Ed25519 signature must verify under a trusted public key,
   and each must link to the one before (previous-hash, contiguous ranges).
2. **Chain.** The chain entries (leaf and chain hash per position) must be a valid hash chain,
   and each checkpoint's range must have its count, Merkle root and final chain hash. So the
   chain cannot be rewritten without forging a signature.
3. **Events.** Each event's leaf, recomputed from its stored bytes, must equal the chain's leaf
   at its position. A mismatch is classified by comparing event identities (aggregate id and
   version) on both sides:
   - `modified`: same identity, different bytes;
   - `deleted`: the chain has an event here that the source no longer has;
   - `inserted`: the source has an event the chain never recorded;
   - `reordered`: both events exist, at other positions.
"""

import base64
import json
import zipfile
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from uuid import UUID

from infra.audit.chain import (
    GENESIS,
    Checkpoint,
    chain_hash,
    key_id_of,
    leaf_hash,
    load_public_key,
    merkle_root,
    public_key_pem,
    signature_valid,
)

Progress = Callable[[int, int], None]
Identity = tuple[UUID, int]

BUNDLE_FORMAT = "parley.audit.bundle.v1"


@dataclass(frozen=True)
class ChainEntry:
    """What the ledger recorded for one position (identity and tenant may be withheld)."""

    position: int
    leaf: bytes
    chain: bytes
    originator_id: UUID | None = None
    version: int | None = None
    tenant_id: UUID | None = None
    topic: str | None = None

    @property
    def identity(self) -> Identity | None:
        if self.originator_id is None or self.version is None:
            return None
        return (self.originator_id, self.version)


@dataclass(frozen=True)
class StoredEvent:
    """One event as the source holds it now: exactly the stored bytes."""

    position: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes
    tenant_id: UUID | None = None

    @property
    def identity(self) -> Identity:
        return (self.originator_id, self.version)

    @cached_property
    def leaf(self) -> bytes:
        """Hashed once (the Kafka check and the comparison with the chain both need it)."""
        return leaf_hash(self.position, self.originator_id, self.version, self.topic, self.state)


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


def verify_checkpoints(
    checkpoints: Sequence[Checkpoint],
    keys: dict[str, bytes],
    report: Report,
    *,
    complete: bool = True,
) -> None:
    """`complete`: the checkpoints must start at the first one (not a bundle's excerpt)."""
    unique: dict[int, Checkpoint] = {}
    for cp in checkpoints:  # a checkpoint published twice (at-least-once) is one checkpoint
        if cp.seq in unique and unique[cp.seq].body() != cp.body():
            report.findings.append(
                Finding("checkpoint", cp.to_position, f"two different checkpoints {cp.seq}")
            )
        unique.setdefault(cp.seq, cp)
    previous: Checkpoint | None = None
    for cp in sorted(unique.values(), key=lambda c: c.seq):
        report.checkpoints_checked += 1
        key = keys.get(cp.key_id)
        if key is None:
            report.findings.append(
                Finding(
                    "signature", cp.to_position, f"checkpoint {cp.seq}: unknown key {cp.key_id}"
                )
            )
        elif not signature_valid(cp, key):
            report.findings.append(
                Finding(
                    "signature",
                    cp.to_position,
                    f"checkpoint {cp.seq} (positions {cp.from_position + 1}..{cp.to_position}):"
                    " signature does not verify (forged or altered checkpoint)",
                )
            )
        else:
            report.key_ids.add(cp.key_id)
        if previous is None:
            if (complete or cp.seq == 1) and (
                cp.seq != 1 or cp.previous != GENESIS or cp.from_position != 0
            ):
                report.findings.append(
                    Finding(
                        "checkpoint", cp.from_position, f"checkpoints before {cp.seq} are missing"
                    )
                )
        elif cp.seq != previous.seq + 1:
            report.findings.append(
                Finding("checkpoint", cp.from_position, f"checkpoint {previous.seq + 1} is missing")
            )
        elif cp.previous != previous.digest() or cp.from_position != previous.to_position:
            report.findings.append(
                Finding(
                    "checkpoint",
                    cp.from_position,
                    f"checkpoint {cp.seq} does not follow checkpoint {cp.seq - 1}",
                )
            )
        previous = cp
        report.sealed_to = max(report.sealed_to, cp.to_position)


def verify_chain(
    entries: Sequence[ChainEntry],
    checkpoints: Sequence[Checkpoint],
    report: Report,
    *,
    previous_chain: bytes = GENESIS,
    start: int = 0,
    until: int | None = None,
) -> None:
    """`entries`: the chain after position `start` (whose chain hash is `previous_chain`), in
    position order. Every checkpoint overlapping (start, until] must match them; one whose
    range the entries do not reach means history was cut off there."""
    chain = previous_chain
    for entry in entries:
        if chain_hash(chain, entry.leaf) != entry.chain:
            report.findings.append(
                Finding("chain", entry.position, "the audit chain is broken here (chain altered)")
            )
        chain = entry.chain
    report.chained_to = entries[-1].position if entries else start
    positions = [e.position for e in entries]
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if cp.to_position <= start or (until is not None and cp.from_position >= until):
            continue  # outside the verified range
        if cp.to_position > report.chained_to:
            report.findings.append(
                Finding(
                    "deleted",
                    max(report.chained_to, cp.from_position) + 1,
                    f"checkpoint {cp.seq} signed positions {cp.from_position + 1}.."
                    f"{cp.to_position}, but the chain ends at {report.chained_to}: history was"
                    " cut off",
                )
            )
            continue
        covered = entries[
            bisect_right(positions, cp.from_position) : bisect_right(positions, cp.to_position)
        ]
        if (
            len(covered) != cp.count
            or not covered
            or merkle_root([e.leaf for e in covered]) != cp.merkle_root
            or covered[-1].chain != cp.chain_hash
        ):
            report.findings.append(
                Finding(
                    "checkpoint",
                    cp.to_position,
                    f"the audit chain for positions {cp.from_position + 1}..{cp.to_position} does"
                    f" not match signed checkpoint {cp.seq} (chain rewritten or rows removed)",
                )
            )
    sealed = max((cp.to_position for cp in checkpoints), default=0)
    report.unsealed = len(positions) - bisect_right(positions, sealed)


@dataclass(frozen=True)
class _Seen:
    """What verification keeps of an event: not its bytes (memory stays small)."""

    identity: Identity
    leaf: bytes
    topic: str
    tenant_id: UUID | None


def verify_events(
    entries: Sequence[ChainEntry],
    events: Iterable[StoredEvent],
    report: Report,
    *,
    start: int = 0,
    tenant: UUID | None = None,
    progress: Progress | None = None,
    total: int = 0,
) -> None:
    """Compare the events after `start` with the chain entries (which cover that range)."""
    by_position = {e.position: e for e in entries}
    chained_at = {e.identity: e.position for e in entries if e.identity is not None}
    head = max(by_position, default=start)
    seen: dict[Identity, int] = {}
    present: dict[int, _Seen] = {}
    for n, event in enumerate(events, 1):
        if event.position > head:
            report.unchained += 1
            continue
        if event.position <= start:
            continue
        present[event.position] = _Seen(event.identity, event.leaf, event.topic, event.tenant_id)
        seen[event.identity] = event.position
        if progress is not None and n % 1000 == 0:
            progress(n, total)

    def mine(entry: ChainEntry | None, event: _Seen | None) -> bool:
        if tenant is None:
            return True
        return (entry is not None and entry.tenant_id == tenant) or (
            event is not None and event.tenant_id == tenant
        )

    for position in sorted(set(by_position) | set(present)):
        entry, found = by_position.get(position), present.get(position)
        if not mine(entry, found):
            continue
        if found is not None:
            report.events_checked += 1
        if entry is None:
            assert found is not None
            report.findings.append(
                Finding(
                    "inserted",
                    position,
                    f"{found.topic} of {found.identity[0]} v{found.identity[1]} was never chained",
                )
            )
            continue
        if found is None:
            report.findings.append(
                Finding("deleted", position, f"{entry.topic or 'an event'} chained here is missing")
            )
            continue
        if found.leaf == entry.leaf:
            continue
        recorded = entry.identity
        if recorded == found.identity:
            kind = "modified"
        else:
            recorded_elsewhere = recorded is not None and recorded in seen
            mine_elsewhere = found.identity in chained_at
            if recorded_elsewhere and mine_elsewhere:
                kind = "reordered"
            elif mine_elsewhere:
                kind = "deleted"
            elif recorded_elsewhere:
                kind = "inserted"
            else:
                kind = "modified"
        report.findings.append(
            Finding(
                kind,
                position,
                f"{found.topic} of {found.identity[0]} v{found.identity[1]} differs from the chain",
            )
        )
    if progress is not None:
        progress(total, total)


def trusted_keys(pems: Iterable[str | bytes]) -> dict[str, bytes]:
    keys = {}
    for pem in pems:
        raw = load_public_key(pem)
        keys[key_id_of(raw)] = raw
    return keys


# -- bundles ---------------------------------------------------------------------------------


def write_bundle(
    path: Path,
    *,
    manifest: dict[str, Any],
    events: Sequence[StoredEvent],
    entries: Sequence[ChainEntry],
    previous_chain: bytes,
    checkpoints: Sequence[Checkpoint],
    keys: dict[str, bytes],
    readme: str,
) -> None:
    def jsonl(rows: Iterable[dict[str, Any]]) -> str:
        return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)

    body = {
        **manifest,
        "format": BUNDLE_FORMAT,
        "previous_chain": previous_chain.hex(),
        "events": len(events),
        "chain_entries": len(entries),
        "checkpoints": len(checkpoints),
        "key_ids": sorted(keys),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.md", readme)
        z.writestr("manifest.json", json.dumps(body, indent=2) + "\n")
        z.writestr(
            "events.jsonl",
            jsonl(
                {
                    "position": e.position,
                    "aggregate_id": str(e.originator_id),
                    "aggregate_version": e.version,
                    "type": e.topic,
                    "tenant_id": str(e.tenant_id) if e.tenant_id else None,
                    "state_base64": base64.b64encode(e.state).decode(),
                }
                for e in events
            ),
        )
        z.writestr(
            "chain.jsonl",
            jsonl(
                {
                    "position": c.position,
                    "leaf": c.leaf.hex(),
                    "chain": c.chain.hex(),
                    "aggregate_id": str(c.originator_id) if c.originator_id else None,
                    "aggregate_version": c.version,
                    "tenant_id": str(c.tenant_id) if c.tenant_id else None,
                    "type": c.topic,
                }
                for c in entries
            ),
        )
        z.writestr("checkpoints.jsonl", jsonl(cp.to_json() for cp in checkpoints))
        for key_id, raw in sorted(keys.items()):
            z.writestr(f"keys/{key_id}.pub.pem", public_key_pem(raw))


@dataclass
class Bundle:
    manifest: dict[str, Any]
    events: list[StoredEvent]
    entries: list[ChainEntry]
    checkpoints: list[Checkpoint]
    keys: dict[str, bytes]

    @property
    def previous_chain(self) -> bytes:
        return bytes.fromhex(self.manifest["previous_chain"])


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


def read_bundle(path: Path) -> Bundle:
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
        if manifest.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{path} is not a Parley audit bundle ({manifest.get('format')!r})")

        def rows(name: str) -> list[dict[str, Any]]:
            return [json.loads(line) for line in z.read(name).decode().splitlines() if line]

        events = [
            StoredEvent(
                position=int(r["position"]),
                originator_id=UUID(r["aggregate_id"]),
                version=int(r["aggregate_version"]),
                topic=r["type"],
                state=base64.b64decode(r["state_base64"]),
                tenant_id=_uuid(r.get("tenant_id")),
            )
            for r in rows("events.jsonl")
        ]
        entries = [
            ChainEntry(
                position=int(r["position"]),
                leaf=bytes.fromhex(r["leaf"]),
                chain=bytes.fromhex(r["chain"]),
                originator_id=_uuid(r.get("aggregate_id")),
                version=r.get("aggregate_version"),
                tenant_id=_uuid(r.get("tenant_id")),
                topic=r.get("type"),
            )
            for r in rows("chain.jsonl")
        ]
        checkpoints = [Checkpoint.from_json(r) for r in rows("checkpoints.jsonl")]
        keys = trusted_keys(z.read(name) for name in z.namelist() if name.startswith("keys/"))
    return Bundle(manifest, events, entries, checkpoints, keys)


def verify_bundle(
    bundle: Bundle, *, keys: dict[str, bytes] | None = None, progress: Progress | None = None
) -> Report:
    """Verify a bundle offline. `keys`: the public keys you trust (default: the bundle's own).

    Nothing in a bundle counts unless a signature covers it: every chain entry must lie in a
    signed checkpoint, and the chain hash the bundle starts from must be the one signed by the
    checkpoint that ends where the bundle begins."""
    report = Report()
    verify_checkpoints(
        bundle.checkpoints, keys if keys is not None else bundle.keys, report, complete=False
    )
    start = int(bundle.manifest.get("from_position", 1)) - 1
    if start > 0:
        anchor = [cp for cp in bundle.checkpoints if cp.to_position == start]
        if not anchor or anchor[0].chain_hash != bundle.previous_chain:
            report.findings.append(
                Finding(
                    "checkpoint",
                    start + 1,
                    "the chain hash the bundle starts from is not the one a signed checkpoint"
                    f" gives for position {start}",
                )
            )
    elif bundle.previous_chain != GENESIS:
        report.findings.append(Finding("checkpoint", 1, "the chain must start from zeros"))
    verify_chain(
        bundle.entries,
        bundle.checkpoints,
        report,
        previous_chain=bundle.previous_chain,
        start=start,
    )
    if report.unsealed:
        sealed = max((cp.to_position for cp in bundle.checkpoints), default=start)
        report.findings.append(
            Finding(
                "checkpoint",
                sealed + 1,
                f"{report.unsealed} chain entries after position {sealed} are covered by no"
                " signed checkpoint",
            )
        )
    tenant = _uuid(bundle.manifest.get("tenant_id"))
    verify_events(
        bundle.entries,
        bundle.events,
        report,
        start=start,
        tenant=tenant,
        progress=progress,
        total=len(bundle.events),
    )
    if report.unchained:
        report.findings.append(
            Finding(
                "inserted",
                report.chained_to + 1,
                f"{report.unchained} events after the bundle's chain were never chained",
            )
        )
    return report
