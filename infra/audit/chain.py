"""Tamper evidence: the hash chain, Merkle checkpoints and their Ed25519 signatures.

Everything here is pure computation over bytes, shared by the ledger that writes the chain, the
relay that copies chain hashes into Kafka headers, and every verifier (database, Kafka, offline
bundle), so all of them agree bit for bit.

- **Leaf** of an event: SHA-256 over a domain-separation tag, its log position, aggregate id,
  aggregate version, topic and its *stored* state bytes. Hashing the stored bytes (not decoded
  values) means crypto-shredding a data subject's key later changes nothing here.
- **Chain**: `chain[p] = SHA-256(chain[previous] || leaf[p])`, from 32 zero bytes.
- **Checkpoint** every N events or T seconds: the RFC 6962 Merkle root of the leaves in
  `(from_position, to_position]`, their count, the chain hash at `to_position` and the hash of
  the previous checkpoint, as canonical JSON signed with Ed25519.
"""

import base64
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.base import stable_id

LEAF_TAG = b"parley.audit.leaf.v1\x00"
GENESIS = bytes(32)
CHECKPOINT_FORMAT = "parley.audit.checkpoint.v1"

_log = logging.getLogger(__name__)


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def event_id(originator_id: UUID | str, version: int) -> UUID:
    """The event's stable id (same on every resend): what consumers deduplicate by."""
    return stable_id("event", _uuid(originator_id), version)


def leaf_hash(
    position: int, originator_id: UUID | str, version: int, topic: str, state: bytes
) -> bytes:
    h = hashlib.sha256(LEAF_TAG)
    h.update(position.to_bytes(8, "big"))
    h.update(_uuid(originator_id).bytes)
    h.update(version.to_bytes(8, "big"))
    h.update(topic.encode())
    h.update(b"\x00")
    h.update(state)
    return h.digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash (0x00 leaf prefix, 0x01 node prefix); of no leaves: SHA-256('')."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    # Bottom-up pairing with an odd last node promoted unchanged equals RFC 6962's split at the
    # largest power of two below n.
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    from_position: int
    """Exclusive: the previous checkpoint's to_position (0 for the first)."""
    to_position: int
    count: int
    merkle_root: bytes
    chain_hash: bytes
    previous: bytes
    """SHA-256 of the previous checkpoint's body (zeros for the first)."""
    created_at: datetime
    key_id: str
    signature: bytes = b""

    def body(self) -> bytes:
        """The canonical bytes that are signed (and hashed into the next checkpoint)."""
        return canonical_json(
            {
                "format": CHECKPOINT_FORMAT,
                "seq": self.seq,
                "from_position": self.from_position,
                "to_position": self.to_position,
                "count": self.count,
                "merkle_root": self.merkle_root.hex(),
                "chain_hash": self.chain_hash.hex(),
                "previous": self.previous.hex(),
                # In UTC whatever zone the database session hands the time back in: the signed
                # bytes must not depend on a reader's time zone.
                "created_at": self.created_at.astimezone(UTC).isoformat(),
                "key_id": self.key_id,
            }
        )

    def digest(self) -> bytes:
        return hashlib.sha256(self.body()).digest()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body())
        body["signature"] = base64.b64encode(self.signature).decode()
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Checkpoint":
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"unknown checkpoint format {data.get('format')!r}")
        return cls(
            seq=int(data["seq"]),
            from_position=int(data["from_position"]),
            to_position=int(data["to_position"]),
            count=int(data["count"]),
            merkle_root=bytes.fromhex(data["merkle_root"]),
            chain_hash=bytes.fromhex(data["chain_hash"]),
            previous=bytes.fromhex(data["previous"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            key_id=str(data["key_id"]),
            signature=base64.b64decode(data["signature"]),
        )


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# -- keys ------------------------------------------------------------------------------------


def key_id_of(public_key: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def public_bytes(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_bytes)

    def sign(self, checkpoint: Checkpoint) -> Checkpoint:
        if checkpoint.key_id != self.key_id:
            raise ValueError("checkpoint names another key")
        signature = self.private.sign(checkpoint.body())
        return Checkpoint(**{**checkpoint.__dict__, "signature": signature})


def generate_signing_key(path: Path, *, overwrite: bool = False) -> SigningKey:
    """Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) and its public key beside it."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --force to replace it (keep the old one!)")
    key = SigningKey(Ed25519PrivateKey.generate())
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            # Atomic and exclusive: of two processes generating at once, one wins and the other
            # gets FileExistsError (and loads the winner's key), so no private key is lost.
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    public_key_path(path).write_text(public_key_pem(key.public_bytes))
    return key


def load_signing_key(path: Path) -> SigningKey:
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return SigningKey(private)


def public_key_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name.removesuffix(".pem") + ".pub.pem")


def public_key_pem(public_key: bytes) -> str:
    return (
        Ed25519PublicKey.from_public_bytes(public_key)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_public_key(pem: str | bytes) -> bytes:
    """Raw 32-byte public key from a PEM (or from the raw key in base64)."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64decode(data)


def signature_valid(checkpoint: Checkpoint, public_key: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            checkpoint.signature, checkpoint.body()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The checkpoint signing key; generated on first start when there is none (logged)."""
    if path.exists():
        return load_signing_key(path)
    try:
        key = generate_signing_key(path)
    except FileExistsError:  # another process generated it a moment ago
        return load_signing_key(path)
    _log.warning(
        "generated audit signing key %s at %s: back it up, and publish %s",
        key.key_id,
        path,
        path.with_name(path.stem + ".pub.pem"),
    )
    return key
