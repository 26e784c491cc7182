"""The `parley` command line: help, tenant creation, the demo."""

import re
import subprocess
import sys

from testbed.client import ApiClient
from testbed.processes import ROOT, Server


def test_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0
    for command in ("serve", "migrate", "schema", "tenants", "demo"):
        assert command in done.stdout


def test_creating_a_tenant_twice_is_a_clear_conflict(server: Server) -> None:
    tenant = server.create_tenant()
    again = server.cli(
        "tenants",
        "create",
        "--name",
        "Again",
        "--slug",
        tenant["slug"],
        "--admin-email",
        "other@example.com",
        "--admin-password",
        "another-password-1",
    )
    assert again.returncode == 2
    assert "error (CONFLICT)" in again.stderr and tenant["slug"] in again.stderr


def test_bad_slug_is_rejected_before_anything_is_written(server: Server) -> None:
    done = server.cli(
        "tenants",
        "create",
        "--name",
        "Bad",
        "--slug",
        "Not A Slug!",
        "--admin-email",
        "a@example.com",
        "--admin-password",
        "a-long-password-1",
    )
    assert done.returncode == 2 and "BAD_USER_INPUT" in done.stderr


def test_demo_prints_a_token_that_works_against_the_running_server(server: Server) -> None:
    done = server.cli("demo")
    assert done.returncode == 0, done.stderr
    token = re.search(r"^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$", done.stdout, re.M)
    assert token, done.stdout
    me = ApiClient(server.url, token.group(1)).run("{ me { email role } }")
    assert me["me"] == {"email": "demo@parley.example", "role": "TENANT_ADMIN"}
    assert "curl" in done.stdout
    # A second run reuses the tenant and still prints a working token.
    again = server.cli("demo")
    assert again.returncode == 0 and "Password (shown once)" not in again.stdout
