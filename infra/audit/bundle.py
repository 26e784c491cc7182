"""The audit bundle: a zip of a range of history with everything needed to check it offline
(events, chain entries, checkpoints, public keys and a README saying how), written by
`parley audit export` and read back by `parley audit verify --bundle`."""

import base64
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from infra.audit.chain import Checkpoint, public_key_pem
from infra.audit.records import ChainEntry, StoredEvent
from infra.audit.signatures import trusted_keys

BUNDLE_FORMAT = "parley.audit.bundle.v1"

BUNDLE_README = """# Parley audit bundle

This archive holds a range of Parley's event history and everything needed to check it
offline, without access to Parley's database:

- `events.jsonl`: the events, each with its log position, aggregate id and version, type and its
  stored bytes (`state_base64`) exactly as the event store holds them;
- `chain.jsonl`: the audit chain for the whole checkpoint-aligned range (for events of other
  tenants only their position, leaf hash and chain hash);
- `checkpoints.jsonl`: the signed checkpoints covering the range;
- `keys/*.pub.pem`: the Ed25519 public keys that signed them;
- `manifest.json`: what was exported, by whom, when.

## Check it

    parley audit verify --bundle THIS_FILE --public-key PUBLISHED_KEY.pem

Pass the public key you obtained independently (Parley's `docs/audit-public-keys/`, or
`GET /audit/public-key` of the deployment); without `--public-key` the bundle's own keys are
used and the verifier says so. The exit code is 0 when everything verifies, 1 otherwise, and the
first altered position is named.

## What is checked (so you can reimplement it)

1. Every checkpoint's signature (Ed25519 over its canonical JSON body: keys sorted, no spaces,
   without `signature`), and that checkpoint n names checkpoint n-1's SHA-256 as `previous`.
2. The chain: `leaf = SHA-256("parley.audit.leaf.v1\\0" || position as 8 bytes big-endian ||
   aggregate id (16 bytes) || aggregate version as 8 bytes big-endian || type || "\\0" ||
   stored bytes)`, `chain[p] = SHA-256(chain[previous position] || leaf[p])`, starting from
   `manifest.previous_chain`; each checkpoint's `count`, `merkle_root` (RFC 6962 over the
   leaves of its range) and `chain_hash` must match.
3. Each event's leaf, recomputed from its stored bytes, must equal the chain's leaf at its
   position.

A tenant-scoped bundle proves that every event it contains is exactly what was recorded, at that
position, in that order, under signed checkpoints. It does not by itself prove that no event of
the tenant was left out of the bundle (other tenants' entries are opaque hashes); a
platform-wide bundle (no tenant) or `parley audit verify` against the database does.
"""


def write_bundle(
    path: Path,
    *,
    manifest: dict[str, Any],
    events: Sequence[StoredEvent],
    entries: Sequence[ChainEntry],
    previous_chain: bytes,
    checkpoints: Sequence[Checkpoint],
    keys: dict[str, bytes],
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
        z.writestr("README.md", BUNDLE_README)
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

    @property
    def tenant_id(self) -> UUID | None:
        """The tenant the bundle was exported for (None: platform-wide)."""
        return _uuid(self.manifest.get("tenant_id"))


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
