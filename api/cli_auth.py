"""`parley auth`: the keys that sign access and refresh tokens (docs/auth.md)."""

import argparse
import json
from typing import TYPE_CHECKING, Any

from api.cli_runtime import on_runtime

if TYPE_CHECKING:
    from api.runtime import Runtime


def cmd_auth_keys(args: argparse.Namespace, runtime: "Runtime") -> int:
    states = runtime.signing_keys.states()
    if args.json:
        print(json.dumps([_row(s) | {"state": s.state} for s in states], indent=2))
        return 0
    print(f"{'KID':<44} {'STATE':<10} {'CREATED':<26} RETIRES")
    for s in states:
        retires = s.retired_at or s.retire_after
        print(f"{s.kid:<44} {s.state:<10} {s.created_at.isoformat():<26} {retires or '-'}")
    return 0


def cmd_auth_rotate_keys(args: argparse.Namespace, runtime: "Runtime") -> int:
    settings = runtime.settings
    kid, retired = runtime.signing_keys.rotate(retire_previous=args.retire_previous)
    delay = runtime.signing_keys.retire_delay
    print(f"new signing key: {kid}")
    if args.retire_previous:
        print(f"retired at once: {', '.join(retired) or 'none'} (their tokens no longer work)")
    else:
        print(f"previous keys keep verifying for {delay:.0f} s, then retire")
    print(
        f"every API process signs with it within {settings.signing_key_cache_seconds:.0f} s"
        " (PARLEY_SIGNING_KEY_CACHE_SECONDS)"
    )
    return 0


def _row(state: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in vars(state).items()}


def add_auth_commands(sub: Any) -> None:
    auth = sub.add_parser(
        "auth",
        help="token signing keys: list and rotate",
        description="Access and refresh tokens are signed with Ed25519 keys kept in the "
        "database (private halves sealed under the master key). The JWKS at "
        "/.well-known/jwks.json lists every key that may still have valid tokens out.",
    )
    actions = auth.add_subparsers(dest="action", required=True, metavar="ACTION")
    keys = actions.add_parser("keys", help="list the signing keys and their state")
    keys.add_argument("--json", action="store_true", help="machine-readable output")
    on_runtime(keys, cmd_auth_keys)
    rotate = actions.add_parser(
        "rotate-keys",
        help="make a new key the signer; the previous ones keep verifying until the longest "
        "token they signed has expired, then retire",
        description="Make a new Ed25519 key the signer of new tokens. The previous keys stay in "
        "the JWKS and keep verifying until every token they can have signed has expired (the "
        "longer of the access and refresh token lifetimes, plus "
        "PARLEY_SIGNING_KEY_CACHE_SECONDS), then are retired and their private halves erased. "
        "Running API processes pick the new key up within PARLEY_SIGNING_KEY_CACHE_SECONDS.",
    )
    rotate.add_argument(
        "--retire-previous",
        action="store_true",
        help="retire the previous keys now (a suspected key compromise): every token they "
        "signed stops working and every user signs in again",
    )
    on_runtime(rotate, cmd_auth_rotate_keys)
