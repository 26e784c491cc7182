"""The message bus: every command has a handler, and the hot path reads what it needs once."""

import inspect
import threading
from typing import Any

import pytest

import commands.messages as messages
from api.runtime import Runtime
from commands.bus import ROUTES, MessageBus
from commands.messages import ChangeTenantSettings, SendMessage, StartChat
from domain.errors import RateLimited
from tests.test_commands import TenantFixture, create_tenant


@pytest.fixture
def tenant(runtime: Runtime) -> TenantFixture:
    return create_tenant(runtime)


def test_every_command_has_a_route_and_every_route_a_command() -> None:
    commands = {
        c
        for _, c in inspect.getmembers(messages, inspect.isclass)
        if issubclass(c, messages.Command) and c is not messages.Command
    }
    assert commands == set(ROUTES)


def test_a_bus_refuses_a_dependency_no_handler_takes(runtime: Runtime) -> None:
    with pytest.raises(TypeError, match="no handler takes mater_key"):
        MessageBus(runtime.store, mater_key=None)


class Counting:
    """Counts the command's reads of the event store (the real store does the work). Only this
    thread's (the followers read on their own) and only the outermost (`load` itself reads an
    aggregate missing from the cache with `get_or_none`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, runtime: Runtime) -> None:
        self.calls: list[str] = []
        me = threading.get_ident()
        depth = [0]
        for name in ("load", "get_or_none"):
            real = getattr(runtime.store, name)

            def counted(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
                if threading.get_ident() != me:
                    return _real(*args, **kw)
                if depth[0] == 0:
                    self.calls.append(_name)
                depth[0] += 1
                try:
                    return _real(*args, **kw)
                finally:
                    depth[0] -= 1

            monkeypatch.setattr(runtime.store, name, counted)


def test_send_message_reads_caller_tenant_and_chat_once(
    runtime: Runtime, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = runtime.bus.handle(StartChat(title="hot path"), tenant.admin)
    reads = Counting(monkeypatch, runtime)
    sent = runtime.bus.handle(SendMessage(chat_id=chat.id, content="hello"), tenant.admin)
    assert not sent.duplicate
    # One batched load of the caller's user, tenant and the chat: one authorisation, one
    # tenant load (admission uses the tenant already loaded).
    assert reads.calls == ["load"]


def test_admission_runs_inside_the_command_before_anything_is_written(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    runtime.bus.handle(
        ChangeTenantSettings(
            default_model="echo", allowed_models=["echo"], user_requests_per_minute=1
        ),
        tenant.admin,
    )
    chat = runtime.bus.handle(StartChat(title="limited"), tenant.admin)
    runtime.bus.handle(SendMessage(chat_id=chat.id, content="first"), tenant.admin)
    head = runtime.store.head()
    with pytest.raises(RateLimited):
        runtime.bus.handle(SendMessage(chat_id=chat.id, content="second"), tenant.admin)
    stored = runtime.store.get_or_none(chat.id, readonly=True)
    assert [m.content for m in stored.messages if m.role.value == "user"] == ["first"]
    assert runtime.store.head() >= head  # the responder may have replied; no second message
