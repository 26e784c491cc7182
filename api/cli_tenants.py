"""`parley tenants create`, `parley platform-admins create` and `parley demo`: an operator's
commands on tenants and the people who administer them."""

import argparse
import json
import secrets
import sys
from typing import TYPE_CHECKING, Any

from api.cli_runtime import on_runtime

if TYPE_CHECKING:
    from api.runtime import Runtime

EXAMPLE_QUERY = """\
curl -s http://{host}:{port}/graphql -H 'Content-Type: application/json' \\
  -H 'Authorization: Bearer {token}' \\
  -d '{{"query": "mutation {{ startChat(input: {{title: \\"Hello\\"}}) {{ chatId }} }}"}}'"""


def cmd_tenants_create(args: argparse.Namespace, runtime: "Runtime") -> int:
    from commands.messages import CreateTenant

    result = runtime.bus.handle(
        CreateTenant(
            name=args.name,
            slug=args.slug,
            admin_email=args.admin_email,
            admin_password=args.admin_password,
            admin_display_name=args.admin_name,
        )
    )
    print(
        json.dumps(
            {
                "tenant_id": str(result.tenant_id),
                "admin_user_id": str(result.admin_user_id),
                "slug": args.slug,
                "position": result.position,
            }
        )
    )
    return 0


def cmd_platform_admin_create(args: argparse.Namespace, runtime: "Runtime") -> int:
    from commands.messages import CreatePlatformAdmin

    result = runtime.bus.handle(
        CreatePlatformAdmin(email=args.email, password=args.password, display_name=args.name)
    )
    print(
        json.dumps({"user_id": str(result.id), "tenant": "platform", "position": result.position})
    )
    return 0


DEMO_MODELS = (
    ("OPENAI_API_KEY", "openai/gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-haiku-4-5"),
    ("GEMINI_API_KEY", "google/gemini-2.5-flash"),
    ("GOOGLE_API_KEY", "google/gemini-2.5-flash"),
)


def demo_model() -> str:
    """A real model when a provider's key is in the environment; echo otherwise."""
    import os

    return next((model for key, model in DEMO_MODELS if os.environ.get(key)), "echo")


DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@parley.example"


def cmd_demo(args: argparse.Namespace, runtime: "Runtime") -> int:
    from commands.messages import ChangeTenantSettings, CreateTenant, ResetPassword
    from domain.actor import Actor
    from domain.tenant import Tenant, tenant_id_for_slug
    from domain.user import User, user_id_for

    settings = runtime.settings
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/"
    tenant_id = tenant_id_for_slug(DEMO_SLUG)
    if args.welcome and not settings.embedded:
        # `make run` against a database of its own: no demo tenant appears in it uninvited.
        print(f"Parley: {url} (GraphiQL: {url}graphql)")
        return 0
    password = None
    if runtime.store.get_or_none(tenant_id) is None:
        password = secrets.token_urlsafe(12)
        runtime.bus.handle(
            CreateTenant(
                name="Demo",
                slug=DEMO_SLUG,
                admin_email=DEMO_EMAIL,
                admin_password=password,
                admin_display_name="Demo Admin",
            )
        )
    user = runtime.store.get_or_none(user_id_for(tenant_id, DEMO_EMAIL))
    tenant = runtime.store.get_or_none(tenant_id)
    if not isinstance(user, User) or not isinstance(tenant, Tenant):
        print(f"tenant {DEMO_SLUG!r} exists without its user {DEMO_EMAIL}", file=sys.stderr)
        return 1
    if args.new_password and password is None:
        password = secrets.token_urlsafe(12)
        runtime.bus.handle(ResetPassword(user_id=user.id, new_password=password))
        # The old password's sign-ins end with it, as with changePassword.
        runtime.refresh_tokens.revoke_user(user.id, "password reset")
    model = args.model or demo_model()
    if tenant.default_model != model:
        runtime.bus.handle(
            ChangeTenantSettings(
                default_model=model,
                allowed_models=list(dict.fromkeys([model, "echo"])),
                fallback_models=[] if model == "echo" else ["echo"],
            ),
            Actor(user.id, tenant_id, user.role),
        )
    if args.welcome or args.new_password:
        print_sign_in(url, password, model)
        return 0
    token = runtime.tokens.issue(
        user_id=user.id, tenant_id=tenant_id, role=user.role.value, token_type="access"
    )
    print(f"Demo tenant: slug {DEMO_SLUG!r}, user {DEMO_EMAIL}, model {model}")
    if model == "echo":
        print(
            "(echo repeats your words, it is not AI: set OPENAI_API_KEY, ANTHROPIC_API_KEY or "
            "GEMINI_API_KEY and run `parley demo` again for a real model)"
        )
    if password:
        print("Password (shown once):", password)
    print(f"Access token (valid {settings.access_token_ttl_seconds} s):\n{token}\n")
    print(f"Start `parley serve`, open {url} (GraphiQL: {url}graphql), or try:")
    print(EXAMPLE_QUERY.format(host=host, port=settings.port, token=token))
    return 0


def print_sign_in(url: str, password: str | None, model: str) -> None:
    """How a person gets in: the address and, once, the demo admin's password."""
    print(f"\nParley: open {url} (GraphiQL: {url}graphql)")
    if password is None:
        print(f"  Sign in to tenant {DEMO_SLUG!r} as {DEMO_EMAIL}; forgot the password?")
        print("  `.venv/bin/parley demo --new-password` sets a new one.\n")
        return
    print(f"  tenant    {DEMO_SLUG}")
    print(f"  e-mail    {DEMO_EMAIL}")
    print(f"  password  {password}   (shown once: `parley demo --new-password` sets a new one)")
    if model == "echo":
        print("  The model is echo (repeats your words, not AI): export OPENAI_API_KEY,")
        print("  ANTHROPIC_API_KEY or GEMINI_API_KEY before `make run` for a real one.")
    print()


def add_tenant_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register `parley tenants …`, `parley platform-admins …` and `parley demo`."""
    tenants = subparsers.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="tenants_command", required=True, metavar="ACTION"
    )
    create = tenants.add_parser("create", help="create a tenant and its first admin (prints JSON)")
    create.add_argument("--name", required=True)
    create.add_argument("--slug", required=True, help="unique sign-in handle, e.g. acme")
    create.add_argument("--admin-email", required=True)
    create.add_argument("--admin-password", required=True, help="at least 12 characters")
    create.add_argument("--admin-name", default="Administrator", help="admin display name")
    on_runtime(create, cmd_tenants_create)

    admins = subparsers.add_parser(
        "platform-admins", help="manage platform admins (cross-tenant administration)"
    ).add_subparsers(dest="admins_command", required=True, metavar="ACTION")
    padmin = admins.add_parser(
        "create", help="create a platform admin in the reserved 'platform' tenant (prints JSON)"
    )
    padmin.add_argument("--email", required=True)
    padmin.add_argument("--password", required=True, help="at least 12 characters")
    padmin.add_argument("--name", default="Platform Admin", help="display name")
    on_runtime(padmin, cmd_platform_admin_create)

    demo = subparsers.add_parser(
        "demo",
        help="create a demo tenant and user; print the sign-in, a ready token and an example query",
    )
    demo.add_argument(
        "--new-password",
        action="store_true",
        help="give the demo admin a new password (printed once) and end their sign-ins",
    )
    demo.add_argument(
        "--welcome",
        action="store_true",
        help="what `make run` prints before serving: the address and, the first time, the demo "
        "admin's password (embedded database only; with PARLEY_DATABASE_URL, the address)",
    )
    demo.add_argument(
        "--model",
        help="the demo tenant's model, e.g. openai/gpt-4o (default: a real model when "
        "OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY is set, else echo)",
    )
    on_runtime(demo, cmd_demo)
