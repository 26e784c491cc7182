"""The write side (the message bus and its handlers) against the real event store, followers
running."""

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from api.runtime import Runtime
from commands.messages import (
    CreateTenant,
    DeactivateUser,
    DeleteChat,
    RegisterUser,
    RenameChat,
    SendMessage,
    StartChat,
)
from commands.responder import FOLLOWER_NAME as RESPONDER
from commands.unit_of_work import UnitOfWork
from domain.actor import Actor
from domain.chat import ChatSession, Message, MessageRole, reply_id_for
from domain.errors import Conflict, NotAllowed, NotAuthenticated, NotFound
from domain.tenant import Tenant
from domain.user import Role, User
from infra.eventstore.follower_positions import read_position

T = TypeVar("T")

PASSWORD = "correct horse battery"
QUIET_TIMEOUT = 30.0


@dataclass(frozen=True)
class TenantFixture:
    slug: str
    admin: Actor
    admin_email: str


def unique_slug() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def create_tenant(runtime: Runtime, slug: str | None = None) -> TenantFixture:
    slug = slug or unique_slug()
    email = f"admin@{slug}.example"
    created = runtime.bus.handle(
        CreateTenant(name=slug.upper(), slug=slug, admin_email=email, admin_password=PASSWORD)
    )
    admin = Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)
    return TenantFixture(slug=slug, admin=admin, admin_email=email)


def register(
    runtime: Runtime, tenant: TenantFixture, name: str = "member", role: Role = Role.MEMBER
) -> Actor:
    written = runtime.bus.handle(
        RegisterUser(
            email=f"{name}@{tenant.slug}.example", password=PASSWORD, display_name=name, role=role
        ),
        tenant.admin,
    )
    return Actor(written.id, tenant.admin.tenant_id, role)


def chat_of(runtime: Runtime, chat_id: UUID) -> ChatSession:
    chat: object = runtime.store.repository.get(chat_id)
    assert isinstance(chat, ChatSession)
    return chat


def events_of(runtime: Runtime, aggregate_id: UUID) -> list[object]:
    return list(runtime.store.events.get(aggregate_id))


def topic_of(event: object) -> str:
    return get_topic(type(event))


def wait_until(condition: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Bounded poll for the asynchronous followers; fails with `what` when time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def wait_for_quiet_log(runtime: Runtime) -> int:
    """Wait until the responder has answered everything in the log; return the stable head.

    Earlier tests leave replies in flight; a test that asserts "nothing was written" must not
    mistake one of those for a write of its own.
    """

    def quiet() -> int | None:
        head = runtime.store.head()
        with psycopg.connect(runtime.target.conninfo(), autocommit=True) as conn:
            responder = read_position(conn, RESPONDER)
        return head if responder >= head and runtime.store.head() == head else None

    return wait_until(quiet, timeout=QUIET_TIMEOUT, what="the responder to answer everything")


@pytest.fixture
def tenant(runtime: Runtime) -> TenantFixture:
    return create_tenant(runtime)


# -- tenants and users ---------------------------------------------------------------------------


def test_member_cannot_register_users_and_nothing_is_written(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    member = register(runtime, tenant, "member")
    head = wait_for_quiet_log(runtime)

    with pytest.raises(NotAllowed) as e:
        runtime.bus.handle(
            RegisterUser(
                email=f"intruder@{tenant.slug}.example", password=PASSWORD, display_name="Intruder"
            ),
            member,
        )

    assert e.value.code == "FORBIDDEN"
    assert runtime.store.head() == head
    assert (
        runtime.store.get_or_none(
            User.create_id(tenant.admin.tenant_id, f"intruder@{tenant.slug}.example")
        )
        is None
    )


def test_tenant_admin_registers_a_member_who_can_sign_in(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    member = register(runtime, tenant, "newcomer")

    signed_in = runtime.authentication.authenticate(
        tenant.slug, f"NEWCOMER@{tenant.slug}.example", PASSWORD
    )

    assert signed_in.user.id == member.user_id
    assert signed_in.user.role is Role.MEMBER
    assert signed_in.tenant.id == tenant.admin.tenant_id


def test_duplicate_email_in_the_same_tenant_is_a_conflict(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    register(runtime, tenant, "bob")

    with pytest.raises(Conflict) as e:
        runtime.bus.handle(
            RegisterUser(
                email=f"  BOB@{tenant.slug.upper()}.EXAMPLE ",
                password=PASSWORD,
                display_name="Bob again",
            ),
            tenant.admin,
        )

    assert e.value.code == "CONFLICT"
    user: User = runtime.store.repository.get(
        User.create_id(tenant.admin.tenant_id, f"bob@{tenant.slug}.example")
    )
    assert user.display_name == "bob"


def test_the_same_email_may_register_in_another_tenant(runtime: Runtime) -> None:
    first, second = create_tenant(runtime), create_tenant(runtime)
    email = "shared.person@example.com"

    in_first = runtime.bus.handle(
        RegisterUser(email=email, password=PASSWORD, display_name="In first"), first.admin
    )
    in_second = runtime.bus.handle(
        RegisterUser(email=email, password=PASSWORD, display_name="In second"), second.admin
    )

    assert in_first.id != in_second.id
    assert runtime.store.repository.get(in_first.id).tenant_id == first.admin.tenant_id
    assert runtime.store.repository.get(in_second.id).tenant_id == second.admin.tenant_id


def test_duplicate_tenant_slug_is_a_conflict(runtime: Runtime, tenant: TenantFixture) -> None:
    with pytest.raises(Conflict) as e:
        runtime.bus.handle(
            CreateTenant(
                name="Impostor",
                slug=tenant.slug,
                admin_email=f"other@{tenant.slug}.example",
                admin_password=PASSWORD,
            )
        )

    assert e.value.code == "CONFLICT"
    original: Tenant = runtime.store.repository.get(tenant.admin.tenant_id)
    assert original.name == tenant.slug.upper()
    assert (
        runtime.store.get_or_none(
            User.create_id(tenant.admin.tenant_id, f"other@{tenant.slug}.example")
        )
        is None
    )


def test_deactivated_user_cannot_act(runtime: Runtime, tenant: TenantFixture) -> None:
    member = register(runtime, tenant, "leaver")
    own_chat = runtime.bus.handle(StartChat(title="Mine"), member)
    runtime.bus.handle(DeactivateUser(user_id=member.user_id), tenant.admin)
    head = wait_for_quiet_log(runtime)

    with pytest.raises(NotAllowed) as e:
        runtime.bus.handle(StartChat(title="After leaving"), member)
    assert e.value.code == "FORBIDDEN"
    with pytest.raises(NotAllowed):
        runtime.bus.handle(SendMessage(chat_id=own_chat.id, content="hi"), member)
    with pytest.raises(NotAllowed):
        runtime.bus.handle(RenameChat(chat_id=own_chat.id, title="New"), member)
    with pytest.raises(NotAllowed):
        runtime.bus.handle(DeleteChat(chat_id=own_chat.id), member)

    assert runtime.store.head() == head
    assert chat_of(runtime, own_chat.id).messages == []


def test_deactivated_user_cannot_sign_in(runtime: Runtime, tenant: TenantFixture) -> None:
    member = register(runtime, tenant, "gone")
    runtime.bus.handle(DeactivateUser(user_id=member.user_id), tenant.admin)

    with pytest.raises(NotAuthenticated):
        runtime.authentication.authenticate(tenant.slug, f"gone@{tenant.slug}.example", PASSWORD)


# -- authentication ------------------------------------------------------------------------------


def test_every_failed_sign_in_raises_not_authenticated_with_the_same_message(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    ok = runtime.authentication.authenticate(tenant.slug, tenant.admin_email, PASSWORD)
    assert ok.user.id == tenant.admin.user_id

    failures = {
        "wrong password": (tenant.slug, tenant.admin_email, PASSWORD + "!"),
        "unknown email": (tenant.slug, f"nobody@{tenant.slug}.example", PASSWORD),
        "unknown tenant": (unique_slug(), tenant.admin_email, PASSWORD),
        "malformed tenant": ("Not A Slug", tenant.admin_email, PASSWORD),
        "malformed email": (tenant.slug, "not-an-email", PASSWORD),
    }
    messages = {}
    for case, (slug, email, password) in failures.items():
        with pytest.raises(NotAuthenticated) as e:
            runtime.authentication.authenticate(slug, email, password)
        assert e.value.code == "UNAUTHENTICATED", case
        messages[case] = str(e.value)

    assert len(set(messages.values())) == 1, messages


# -- chats: idempotency --------------------------------------------------------------------------


def test_start_chat_with_the_same_client_mutation_id_returns_the_same_chat(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    command = StartChat(title="Idempotent", client_mutation_id=f"start-{uuid.uuid4()}")

    first = runtime.bus.handle(command, tenant.admin)
    second = runtime.bus.handle(command, tenant.admin)

    assert first.duplicate is False
    assert second.duplicate is True
    assert second.id == first.id
    started = [e for e in events_of(runtime, first.id) if topic_of(e).endswith(".Started")]
    assert len(started) == 1


def test_start_chat_without_client_mutation_id_starts_a_new_chat_each_time(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    first = runtime.bus.handle(StartChat(title="One"), tenant.admin)
    second = runtime.bus.handle(StartChat(title="One"), tenant.admin)

    assert first.id != second.id
    assert not first.duplicate and not second.duplicate


def test_send_message_with_a_repeated_client_mutation_id_stores_one_message(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    chat = runtime.bus.handle(StartChat(title="Retries"), tenant.admin)
    command = SendMessage(chat_id=chat.id, content="only once", client_mutation_id="send-1")

    first = runtime.bus.handle(command, tenant.admin)
    second = runtime.bus.handle(command, tenant.admin)

    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.message_id == first.message_id
    assert second.content == "only once"
    user_messages = [m for m in chat_of(runtime, chat.id).messages if m.role is MessageRole.USER]
    assert [m.id for m in user_messages] == [first.message_id]
    posted_by_user = [
        e
        for e in events_of(runtime, chat.id)
        if topic_of(e) == "parley.ChatSession.MessagePosted" and e.role == "user"  # type: ignore[attr-defined]
    ]
    assert len(posted_by_user) == 1


# -- chats: concurrency --------------------------------------------------------------------------


def test_twenty_concurrent_messages_to_one_chat_all_succeed_and_all_get_replies(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    chat = runtime.bus.handle(StartChat(title="Busy"), tenant.admin)
    contents = [f"message {n}" for n in range(20)]

    def send(content: str) -> UUID:
        sent = runtime.bus.handle(SendMessage(chat_id=chat.id, content=content), tenant.admin)
        return sent.message_id

    with ThreadPoolExecutor(max_workers=20) as pool:
        sent_ids = list(pool.map(send, contents))  # re-raises the first failure, if any

    assert len(set(sent_ids)) == 20
    user_messages = [m for m in chat_of(runtime, chat.id).messages if m.role is MessageRole.USER]
    assert len(user_messages) == 20
    assert {m.id for m in user_messages} == set(sent_ids)
    assert sorted(m.content for m in user_messages) == sorted(contents)

    def replies() -> list[Message] | None:
        found = [m for m in chat_of(runtime, chat.id).messages if m.role is MessageRole.ASSISTANT]
        return found if len(found) >= 20 else None

    assistant = wait_until(replies, timeout=60, what="20 assistant replies")
    assert len(assistant) == 20
    assert {m.id for m in assistant} == {reply_id_for(i) for i in sent_ids}


# -- chats: isolation and life cycle -------------------------------------------------------------


def test_second_tenant_cannot_write_to_first_tenants_chat(runtime: Runtime) -> None:
    first, second = create_tenant(runtime), create_tenant(runtime)
    foreign = runtime.bus.handle(StartChat(title="Private"), first.admin)
    outsiders = [second.admin, register(runtime, second, "outsider")]
    head = wait_for_quiet_log(runtime)

    for outsider in outsiders:
        with pytest.raises(NotFound) as e:
            runtime.bus.handle(SendMessage(chat_id=foreign.id, content="hi"), outsider)
        assert e.value.code == "NOT_FOUND"
        with pytest.raises(NotFound):
            runtime.bus.handle(RenameChat(chat_id=foreign.id, title="Mine"), outsider)
        with pytest.raises(NotFound):
            runtime.bus.handle(DeleteChat(chat_id=foreign.id), outsider)

    assert runtime.store.head() == head
    chat = chat_of(runtime, foreign.id)
    assert (chat.title, chat.messages, chat.is_deleted) == ("Private", [], False)


def test_member_cannot_write_to_another_members_chat_in_the_same_tenant(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    owner, other = register(runtime, tenant, "owner"), register(runtime, tenant, "other")
    chat = runtime.bus.handle(StartChat(title="Owner's"), owner)
    head = wait_for_quiet_log(runtime)

    with pytest.raises(NotFound):
        runtime.bus.handle(SendMessage(chat_id=chat.id, content="hi"), other)
    with pytest.raises(NotFound):
        runtime.bus.handle(RenameChat(chat_id=chat.id, title="Taken"), other)
    with pytest.raises(NotFound):
        runtime.bus.handle(DeleteChat(chat_id=chat.id), other)

    assert runtime.store.head() == head


def test_posting_to_a_deleted_chat_is_not_found(runtime: Runtime, tenant: TenantFixture) -> None:
    chat = runtime.bus.handle(StartChat(title="Short-lived"), tenant.admin)
    runtime.bus.handle(DeleteChat(chat_id=chat.id), tenant.admin)
    head = wait_for_quiet_log(runtime)

    with pytest.raises(NotFound) as e:
        runtime.bus.handle(SendMessage(chat_id=chat.id, content="anyone?"), tenant.admin)
    assert e.value.code == "NOT_FOUND"
    with pytest.raises(NotFound):
        runtime.bus.handle(RenameChat(chat_id=chat.id, title="Back"), tenant.admin)
    with pytest.raises(NotFound):
        runtime.bus.handle(DeleteChat(chat_id=chat.id), tenant.admin)

    assert runtime.store.head() == head
    assert chat_of(runtime, chat.id).messages == []


def test_message_to_an_unknown_chat_is_not_found(runtime: Runtime, tenant: TenantFixture) -> None:
    with pytest.raises(NotFound):
        runtime.bus.handle(SendMessage(chat_id=uuid.uuid4(), content="hello?"), tenant.admin)


def test_chat_id_naming_a_user_or_tenant_is_not_found(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    member = register(runtime, tenant)
    for other_id in (member.user_id, tenant.admin.tenant_id, tenant.admin.user_id):
        for command, call in (
            (SendMessage(chat_id=other_id, content="hi"), runtime.bus.handle),
            (RenameChat(chat_id=other_id, title="x"), runtime.bus.handle),
            (DeleteChat(chat_id=other_id), runtime.bus.handle),
        ):
            with pytest.raises(NotFound):
                call(command, tenant.admin)  # type: ignore[operator]


def test_fifty_concurrent_messages_to_one_chat_all_succeed(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    chat = runtime.bus.handle(StartChat(title="Busy"), tenant.admin)

    def send(n: int) -> UUID:
        sent = runtime.bus.handle(SendMessage(chat_id=chat.id, content=f"burst {n}"), tenant.admin)
        return sent.message_id

    with ThreadPoolExecutor(50) as pool:
        ids = list(pool.map(send, range(50)))
    assert len(set(ids)) == 50
    users = [m for m in chat_of(runtime, chat.id).messages if m.role is MessageRole.USER]
    assert sorted(m.content for m in users) == sorted(f"burst {n}" for n in range(50))
    wait_for_quiet_log(runtime)


def test_writers_in_two_processes_conflict_retry_and_lose_nothing(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    """Two handler stacks on separate stores (as two API processes): real version conflicts."""
    from commands.bus import MessageBus
    from infra.eventstore.event_store import open_event_store
    from infra.metrics import COMMAND_CONFLICTS

    other_store = open_event_store(
        runtime.target, create_tables=False, pool_size=10, keys=runtime.data_keys
    )
    other = MessageBus(other_store, max_attempts=50)
    chat = runtime.bus.handle(StartChat(title="Two writers"), tenant.admin)
    conflicts_before = COMMAND_CONFLICTS.labels("send_message")._value.get()
    try:

        def send(n: int) -> UUID:
            bus = runtime.bus if n % 2 else other
            sent = bus.handle(
                SendMessage(chat_id=chat.id, content=f"from {n % 2}: {n}"), tenant.admin
            )
            return sent.message_id

        with ThreadPoolExecutor(20) as pool:
            ids = list(pool.map(send, range(20)))
    finally:
        other_store.close()
    assert len(set(ids)) == 20
    users = [m for m in chat_of(runtime, chat.id).messages if m.role is MessageRole.USER]
    assert len(users) == 20
    assert COMMAND_CONFLICTS.labels("send_message")._value.get() > conflicts_before
    wait_for_quiet_log(runtime)


def test_concurrent_retries_with_one_client_mutation_id_store_one_message(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    from commands.bus import MessageBus
    from infra.eventstore.event_store import open_event_store

    other_store = open_event_store(
        runtime.target, create_tables=False, pool_size=10, keys=runtime.data_keys
    )
    other = MessageBus(other_store, max_attempts=50)
    chat = runtime.bus.handle(StartChat(title="Retries"), tenant.admin)
    key = str(uuid.uuid4())
    try:

        def send(n: int):  # type: ignore[no-untyped-def]
            bus = runtime.bus if n % 2 else other
            return bus.handle(
                SendMessage(chat_id=chat.id, content="once", client_mutation_id=key), tenant.admin
            )

        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(send, range(10)))
    finally:
        other_store.close()
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    users = [m for m in chat_of(runtime, chat.id).messages if m.role is MessageRole.USER]
    assert [m.content for m in users] == ["once"]
    wait_for_quiet_log(runtime)


def test_each_attempt_of_a_command_names_its_actor_afresh(runtime: Runtime) -> None:
    seen: list[UUID | None] = []
    caller = uuid.uuid4()

    def attempt(uow: UnitOfWork) -> str:
        seen.append(uow.actor_id)
        uow.actor_id = caller  # what `acting` does once the caller may act
        if len(seen) == 1:
            raise IntegrityError("another writer got there first")
        return "done"

    assert runtime.bus.run("probe", attempt, retry=True) == "done"
    assert seen == [None, None]  # a retry does not inherit the failed attempt's actor


def test_the_events_a_command_saves_name_the_caller_and_the_systems_name_nobody(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    chat = ChatSession.start(
        chat_id=uuid.uuid4(),
        tenant_id=tenant.admin.tenant_id,
        owner_id=tenant.admin.user_id,
        title="by whom",
        model="echo",
    )
    UnitOfWork(runtime.store, actor_id=tenant.admin.user_id).save(chat)
    chat.rename("by the system")
    UnitOfWork(runtime.store).save(chat)
    events = runtime.store.events.get(chat.id)
    assert [getattr(e, "actor_id", "missing") for e in events] == [tenant.admin.user_id, None]
