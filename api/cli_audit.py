"""`parley audit …`: signing keys, verification, export and status of the audit trail."""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from api.cli_runtime import cli_runtime, on_runtime
from infra.settings import Settings

if TYPE_CHECKING:
    from api.runtime import Runtime

log = logging.getLogger("parley.audit")


def _tenant(value: str | None) -> UUID | None:
    """A tenant given as UUID or slug."""
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        from domain.tenant import tenant_id_for_slug, validate_slug

        return tenant_id_for_slug(validate_slug(value))


def _trusted_keys(args: argparse.Namespace, conn: Any) -> dict[str, bytes]:
    from infra.audit.signatures import trusted_keys
    from infra.audit.store import public_keys

    if args.public_key:
        return trusted_keys(Path(p).read_bytes() for p in args.public_key)
    print(
        "note: trusting the public keys stored in the database; pass --public-key with the "
        "published key for an independent check",
        file=sys.stderr,
    )
    return public_keys(conn)


def _print_report(report: Any, *, as_json: bool, what: str) -> int:
    if as_json:
        print(json.dumps(report.to_json(), indent=2, default=str))
        return 0 if report.ok else 1
    print(
        f"{what}: {report.events_checked:,} events, {report.checkpoints_checked:,} checkpoints "
        f"(signed to position {report.sealed_to:,}; {report.unsealed:,} chained events not "
        f"sealed yet; {report.unchained:,} events not chained yet); keys "
        f"{', '.join(sorted(report.key_ids)) or '-'}"
    )
    if report.ok:
        print("OK: history verifies")
        return 0
    first = report.first
    print(f"FAILED: first problem at position {first.position}: {first.kind}: {first.detail}")
    shown = sorted(report.findings, key=lambda f: f.position)
    for finding in shown[:20]:
        print(f"  {finding}")
    if len(shown) > 20:
        print(f"  … and {len(shown) - 20} more (--json lists all)")
    return 1


def cmd_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from infra.audit.chain import generate_signing_key, public_key_path, public_key_pem

    path = Path(args.out) if args.out else settings.signing_key_path
    try:
        key = generate_signing_key(path, overwrite=args.force)
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"key id {key.key_id}", file=sys.stderr)
    print(f"private key: {path} (mode 0600: back it up, never publish it)", file=sys.stderr)
    print(f"public key:  {public_key_path(path)} (publish it for auditors)", file=sys.stderr)
    print(public_key_pem(key.public_bytes), end="")
    return 0


def cmd_public_key(args: argparse.Namespace, runtime: "Runtime") -> int:
    from infra.audit.chain import public_key_pem
    from infra.audit.store import public_keys

    with runtime.writer_pool.connection() as conn:
        keys = public_keys(conn)
    for key_id, raw in sorted(keys.items()):
        print(f"# key id {key_id} (Ed25519)")
        print(public_key_pem(raw), end="")
    return 0


def _signing_key(settings: Settings) -> Any:
    """The configured key, never a new one: a key made here would sign with a key nobody
    published (the ledger generates the first one when the deployment starts)."""
    from infra.audit.chain import load_signing_key

    path = settings.signing_key_path
    if not path.exists():
        raise SystemExit(
            f"error: no audit signing key at {path}; point PARLEY_AUDIT_SIGNING_KEY_FILE at the "
            "deployment's key (or create one with `parley audit keygen`)"
        )
    return load_signing_key(path)


def cmd_seal(args: argparse.Namespace, settings: Settings) -> int:
    from projections.audit_ledger import AuditLedger

    key = _signing_key(settings)
    with cli_runtime(settings) as runtime:
        checkpoint = AuditLedger(runtime.store, runtime.writer_pool, key).seal_now()
    if checkpoint is None:
        print("nothing to seal: every chained event is in a signed checkpoint")
    else:
        print(
            f"sealed checkpoint {checkpoint.seq}: positions {checkpoint.from_position + 1}.."
            f"{checkpoint.to_position} ({checkpoint.count} events), key {checkpoint.key_id}"
        )
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from api.progress import ProgressBar
    from infra.audit.bundle import read_bundle
    from infra.audit.signatures import trusted_keys
    from infra.audit.verify import verify_bundle

    bar = ProgressBar("verify")
    if args.bundle:
        bundle = read_bundle(Path(args.bundle))
        keys = (
            trusted_keys(Path(p).read_bytes() for p in args.public_key) if args.public_key else None
        )
        if keys is None:
            print(
                "note: trusting the keys inside the bundle; pass --public-key with the published "
                "key for an independent check",
                file=sys.stderr,
            )
        report = verify_bundle(bundle, keys=keys, progress=bar.update)
        return _print_report(report, as_json=args.json, what=f"bundle {args.bundle}")
    from infra.audit.sources import verify_database, verify_kafka

    with cli_runtime(settings) as runtime, runtime.writer_pool.connection() as conn:
        keys = _trusted_keys(args, conn)
        tenant = _tenant(args.tenant)
        if args.source == "kafka":
            if not settings.kafka_bootstrap_servers:
                print(
                    "error: --source kafka needs PARLEY_KAFKA_BOOTSTRAP_SERVERS",
                    file=sys.stderr,
                )
                return 2
            report = verify_kafka(
                conn,
                keys,
                bootstrap=settings.kafka_bootstrap_servers,
                topic=args.topic or settings.kafka_topic,
                checkpoint_topic=settings.kafka_checkpoint_topic,
                tenant=tenant,
                progress=bar.update,
            )
        else:
            report = verify_database(
                conn, keys, tenant=tenant, lo=args.from_, hi=args.to, progress=bar.update
            )
    return _print_report(report, as_json=args.json, what=f"{args.source} history")


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from api.progress import ProgressBar
    from infra.audit.sources import export_bundle
    from projections.audit_ledger import AuditLedger

    key = None if args.no_seal else _signing_key(settings)
    with cli_runtime(settings) as runtime:
        if key is not None:  # sign what is chained so far, so the whole range is covered
            AuditLedger(runtime.store, runtime.writer_pool, key).seal_now()
        with runtime.writer_pool.connection() as conn:
            summary = export_bundle(
                conn,
                Path(args.out),
                tenant=_tenant(args.tenant),
                lo=args.from_,
                hi=args.to,
                progress=ProgressBar("export").update,
            )
    log.info("exported audit bundle %s", args.out)
    print(json.dumps({"bundle": args.out, **summary}, indent=2))
    return 0


def cmd_status(args: argparse.Namespace, runtime: "Runtime") -> int:
    from infra.audit.store import LEDGER_NAME, last_checkpoint
    from infra.eventstore.follower_positions import read_position
    from infra.messaging.kafka_relay import CHECKPOINTS_POSITION, RELAY_NAME

    head = runtime.store.head()
    with runtime.writer_pool.connection() as conn:
        last = last_checkpoint(conn)
        status = {
            "log_head": head,
            "chained_to": read_position(conn, LEDGER_NAME),
            "sealed_to": last.to_position if last else 0,
            "checkpoints": last.seq if last else 0,
            "last_checkpoint_at": last.created_at.isoformat() if last else None,
            "relayed_to": read_position(conn, RELAY_NAME),
            "checkpoints_relayed": read_position(conn, CHECKPOINTS_POSITION),
        }
    print(json.dumps(status, indent=2))
    return 0


def add_audit_commands(sub: Any) -> None:
    audit = sub.add_parser(
        "audit", help="the tamper-evident audit trail: keys, verify, export, status"
    )
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")

    keygen = actions.add_parser("keygen", help="generate the Ed25519 checkpoint signing key")
    keygen.add_argument("--out", help="private key file (default: PARLEY_AUDIT_SIGNING_KEY_FILE)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key")
    keygen.set_defaults(func=cmd_keygen)

    on_runtime(
        actions.add_parser(
            "public-key", help="print every public key that signed checkpoints (PEM)"
        ),
        cmd_public_key,
    )
    actions.add_parser(
        "seal", help="sign a checkpoint over every chained event not sealed yet"
    ).set_defaults(func=cmd_seal)
    on_runtime(
        actions.add_parser("status", help="how far the chain, the checkpoints and the relay are"),
        cmd_status,
    )

    verify = actions.add_parser(
        "verify",
        help="recompute the chain and checkpoints, check signatures, name the first position "
        "where history was modified, deleted, inserted or reordered (exit 1)",
    )
    verify.add_argument("--source", choices=["db", "kafka"], default="db")
    verify.add_argument("--bundle", help="verify an exported bundle offline instead")
    verify.add_argument("--tenant", help="only this tenant's events (slug or id)")
    verify.add_argument("--from", dest="from_", metavar="FROM", help="first position or ISO time")
    verify.add_argument("--to", help="last position or ISO time")
    verify.add_argument("--topic", help="event topic for --source kafka (default: settings)")
    verify.add_argument(
        "--public-key",
        action="append",
        help="trusted public key PEM (repeatable); default: the keys the source names",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable report")
    verify.set_defaults(func=cmd_verify)

    export = actions.add_parser(
        "export", help="write a self-contained bundle that verifies offline"
    )
    export.add_argument("--tenant", help="only this tenant's events (slug or id)")
    export.add_argument("--from", dest="from_", metavar="FROM", help="first position or ISO time")
    export.add_argument("--to", help="last position or ISO time")
    export.add_argument("--out", required=True, help="bundle file to write (.zip)")
    export.add_argument(
        "--no-seal", action="store_true", help="do not sign a checkpoint over the newest events"
    )
    export.set_defaults(func=cmd_export)
