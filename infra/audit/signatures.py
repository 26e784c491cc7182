"""Step 1 of verification: the signed checkpoints. Each signature must verify under a trusted
public key, and each checkpoint must link to the one before (previous-hash, contiguous ranges)."""

from collections.abc import Iterable, Sequence

from infra.audit.chain import GENESIS, Checkpoint, key_id_of, load_public_key, signature_valid
from infra.audit.report import Finding, Report


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


def trusted_keys(pems: Iterable[str | bytes]) -> dict[str, bytes]:
    keys = {}
    for pem in pems:
        raw = load_public_key(pem)
        keys[key_id_of(raw)] = raw
    return keys
