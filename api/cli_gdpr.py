"""`parley gdpr erase|export|retention` and `parley keys status|rotate-master`: data protection
and the key hierarchy, for operators and data protection officers (docs/gdpr.md,
docs/security.md)."""

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from api.cli_replay import iso_time
from api.cli_runtime import cli_runtime, on_runtime
from infra.settings import Settings

if TYPE_CHECKING:
    from api.runtime import Runtime


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    from commands.messages import EraseUser

    if not args.yes:
        print(
            f"Erasing user {args.user} destroys their personal data for good (profile, chats, "
            "messages). Pass --yes to go ahead.",
            file=sys.stderr,
        )
        return 2
    with cli_runtime(settings) as runtime:
        written = runtime.bus.handle(EraseUser(user_id=args.user))
        runtime.refresh_tokens.revoke_user(written.id, "erased")
    print(json.dumps({"user_id": str(written.id), "position": written.position}))
    return 0


def cmd_export(args: argparse.Namespace, runtime: "Runtime") -> int:
    from api.progress import ProgressBar
    from queries.subject_export import export_user

    bar = ProgressBar(f"export {args.user}")
    data = export_user(
        runtime.store, args.user, progress=bar.update, document_bytes=runtime.blobs.get
    )
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n")
        print(f"wrote {args.out} ({len(data['chats'])} chats)", file=sys.stderr)
    return 0


def cmd_retention(args: argparse.Namespace, runtime: "Runtime") -> int:
    from api.progress import ProgressBar
    from commands.retention import DueChat, sweep

    bar = ProgressBar("retention")
    due = sweep(
        runtime.bus,
        runtime.writer_pool,
        now=args.as_of or datetime.now(UTC),
        dry_run=args.dry_run,
        progress=bar.update,
    )
    for item in due:
        which = (
            {"chat_id": str(item.chat_id)}
            if isinstance(item, DueChat)
            else {"document_id": str(item.document_id)}
        )
        print(
            json.dumps(
                {
                    **which,
                    "tenant_id": str(item.tenant_id),
                    "retention_days": item.retention_days,
                    "last_activity": item.last_activity.isoformat(),
                    "erased": not args.dry_run,
                }
            )
        )
    return 0


def cmd_keys_status(args: argparse.Namespace, runtime: "Runtime") -> int:
    counts = runtime.data_keys.count()
    print(json.dumps({"master_key_id": runtime.master_key.key_id, "data_keys": counts}))
    return 0


def cmd_rotate_master(args: argparse.Namespace, runtime: "Runtime") -> int:
    from api.progress import ProgressBar
    from commands.messages import ResealOidcSecret, ResealProviderKeys
    from infra.identity.signing_keys import reseal_private_keys

    keys = runtime.data_keys
    total = keys.count()["stale"]
    bar = ProgressBar("re-wrap data keys")
    done = 0
    for batch in keys.stale():
        done += keys.rewrap(batch)
        bar.update(done, total)
    with runtime.writer_pool.connection() as conn:
        tenants = [r[0] for r in conn.execute("SELECT tenant_id FROM readmodels.rm_tenants")]
    resealed = sum(runtime.bus.handle(ResealProviderKeys(tenant_id=t)) for t in tenants)
    oidc = sum(runtime.bus.handle(ResealOidcSecret(tenant_id=t)) for t in tenants)
    with runtime.keys_pool.connection() as conn:
        signing = reseal_private_keys(conn, runtime.master_key)
    report: dict[str, Any] = {
        "master_key_id": runtime.master_key.key_id,
        "data_keys_rewrapped": done,
        "provider_keys_resealed": resealed,
        "oidc_client_secrets_resealed": oidc,
        "token_signing_keys_resealed": signing,
        "stale_left": keys.count()["stale"],
    }
    print(json.dumps(report))
    return 0


def add_gdpr_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register `parley gdpr …` and `parley keys …`."""
    gdpr = subparsers.add_parser(
        "gdpr", help="data protection: erase a user, export their data, run retention"
    )
    actions = gdpr.add_subparsers(dest="gdpr_action", required=True, metavar="ACTION")
    erase = actions.add_parser(
        "erase",
        help="erase a user for good (right to erasure): destroys their data keys",
        description="Destroy the data keys of a user and of their chats, then record "
        "User.Erased. Their personal data in the event log, its backups and on Kafka stays "
        "ciphertext nobody can read; the read side and the search index drop it. The audit "
        "chain still verifies. Cannot be undone.",
    )
    erase.add_argument("--user", type=UUID, required=True, metavar="USER_ID")
    erase.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    erase.set_defaults(func=cmd_erase)

    export = actions.add_parser(
        "export",
        help="a user's data as JSON (right of access), read from the event log",
        description="Everything Parley holds about a user, decrypted from the event log (the "
        "source of truth): profile, every chat they started (deleted ones included) with its "
        "messages, and the history of their account.",
    )
    export.add_argument("--user", type=UUID, required=True, metavar="USER_ID")
    export.add_argument("--out", type=Path, help="write to this file instead of stdout")
    on_runtime(export, cmd_export)

    retention = actions.add_parser(
        "retention",
        help="erase chats idle beyond their tenant's retention period now",
        description="What the retention worker does every PARLEY_RETENTION_INTERVAL_SECONDS: "
        "erase every chat whose last activity is older than its tenant's retentionDays. "
        "Prints one JSON line per chat.",
    )
    retention.add_argument("--dry-run", action="store_true", help="list, erase nothing")
    retention.add_argument(
        "--as-of",
        type=iso_time,
        metavar="ISO_TIME",
        help="judge ages as of this time instead of now (e.g. to preview a future sweep)",
    )
    on_runtime(retention, cmd_retention)

    keys = subparsers.add_parser("keys", help="the master key and the data keys under it")
    key_actions = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    on_runtime(
        key_actions.add_parser(
            "status", help="live, destroyed and not-yet-rotated data keys (JSON)"
        ),
        cmd_keys_status,
    )
    on_runtime(
        key_actions.add_parser(
            "rotate-master",
            help="re-wrap every data key (and re-seal tenants' provider keys) under the current "
            "master key",
            description="Start every process with the new key in PARLEY_MASTER_KEY and the old one "
            "in PARLEY_MASTER_KEY_PREVIOUS, run this, then drop the old key. Data keys are "
            "re-wrapped, never changed: no event is re-encrypted. See docs/security.md.",
        ),
        cmd_rotate_master,
    )
