"""Verifying history: the events as they are now against the audit chain and signed checkpoints.

One algorithm, three sources (Postgres and the Kafka topic in `sources`, an exported bundle
here, `verify_bundle`):

1. **Checkpoints** (`signatures`). Every checkpoint's Ed25519 signature must verify under a
   trusted public key, and each must link to the one before (previous-hash, contiguous ranges).
2. **Chain** (`verify_chain`). The chain entries (leaf and chain hash per position) must be a
   valid hash chain, and each checkpoint's range must have its count, Merkle root and final chain
   hash. So the chain cannot be rewritten without forging a signature.
3. **Events** (`verify_events`). Each event's leaf, recomputed from its stored bytes, must equal
   the chain's leaf at its position. A mismatch is classified by comparing event identities
   (aggregate id and version) on both sides:
   - `modified`: same identity, different bytes;
   - `deleted`: the chain has an event here that the source no longer has;
   - `inserted`: the source has an event the chain never recorded;
   - `reordered`: both events exist, at other positions.

What is compared is in `records`, what is found in `report`, the bundle's format in `bundle`.
"""

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from infra.audit.bundle import Bundle
from infra.audit.chain import GENESIS, Checkpoint, chain_hash, merkle_root
from infra.audit.records import ChainEntry, Identity, StoredEvent
from infra.audit.report import Finding, Progress, Report
from infra.audit.signatures import verify_checkpoints


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
    verify_events(
        bundle.entries,
        bundle.events,
        report,
        start=start,
        tenant=bundle.tenant_id,
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


# `parley audit verify` (api/cli_audit.py) and bench/relay.py take the offline check, the keys it
# trusts and its report from here.
