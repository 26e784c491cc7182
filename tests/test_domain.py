"""The aggregates' invariants, as pure unit tests: no database, no event store."""

from copy import deepcopy
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from domain.chat import MAX_CONTENT, MAX_TITLE, ChatSession, ChatStatus, MessageRole, reply_id_for
from domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from domain.tenant import Tenant, tenant_id_for_slug, validate_slug
from domain.user import Role, User, normalize_email, user_id_for

# -- builders ------------------------------------------------------------------------------------


def new_tenant(slug: str = "acme") -> Tenant:
    return Tenant.create(name="Acme Corp", slug=slug)


def new_user(tenant_id: UUID, email: str = "bob@example.com", role: Role = Role.MEMBER) -> User:
    return User.register(
        tenant_id=tenant_id, email=email, display_name="Bob", role=role, password_hash="hash"
    )


def new_chat(tenant_id: UUID | None = None, title: str = "Planning") -> ChatSession:
    return ChatSession.start(
        chat_id=uuid4(),
        tenant_id=tenant_id or uuid4(),
        owner_id=uuid4(),
        title=title,
        model="echo",
    )


def post(chat: ChatSession, content: str = "hello", **kwargs: object) -> UUID:
    message_id = kwargs.pop("message_id", None) or uuid4()
    chat.post_message(
        message_id=message_id,  # type: ignore[arg-type]
        role=MessageRole.USER,
        content=content,
        author_id=chat.owner_id,
        **kwargs,  # type: ignore[arg-type]
    )
    return message_id  # type: ignore[return-value]


def topics(*aggregates: object) -> list[str]:
    return [get_topic(type(e)) for a in aggregates for e in a.collect_events()]  # type: ignore[attr-defined]


# -- tenant --------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["a", "acme", "acme-2", "0-9", "a" * 63])
def test_tenant_slug_accepts_lowercase_letters_digits_and_inner_hyphens(slug: str) -> None:
    assert validate_slug(slug) == slug
    assert Tenant.create(name="T", slug=slug).slug == slug


@pytest.mark.parametrize(
    "slug", ["", "Acme", "-acme", "acme-", "ac me", "ac_me", "acme.io", "a" * 64, " acme"]
)
def test_tenant_slug_rejects_anything_else_with_invalid_input(slug: str) -> None:
    with pytest.raises(InvalidInput) as e:
        Tenant.create(name="T", slug=slug)
    assert e.value.code == "BAD_USER_INPUT"


def test_tenant_id_is_derived_deterministically_from_the_slug() -> None:
    first, second = new_tenant("acme"), new_tenant("acme")
    assert first.id == second.id == tenant_id_for_slug("acme")
    assert first.tenant_id == first.id
    assert new_tenant("acme-two").id != first.id


def test_tenant_name_is_stripped_and_must_not_be_blank() -> None:
    assert Tenant.create(name="  Acme  ", slug="acme").name == "Acme"
    with pytest.raises(InvalidInput):
        Tenant.create(name="   ", slug="acme")


def test_new_tenant_starts_with_the_echo_model_allowed_and_as_default() -> None:
    tenant = new_tenant()
    assert tenant.default_model in tenant.allowed_models
    assert tenant.retention_days is None
    assert tenant.active


def test_tenant_settings_accept_a_default_that_is_allowed() -> None:
    tenant = new_tenant()
    tenant.collect_events()
    tenant.change_settings(default_model="gpt", allowed_models=["echo", "gpt"], retention_days=30)
    assert (tenant.default_model, tenant.allowed_models, tenant.retention_days) == (
        "gpt",
        ["echo", "gpt"],
        30,
    )
    assert topics(tenant) == ["parley.Tenant.SettingsChanged"]


def test_tenant_settings_reject_a_default_that_is_not_allowed() -> None:
    tenant = new_tenant()
    tenant.collect_events()
    with pytest.raises(InvalidInput):
        tenant.change_settings(default_model="gpt", allowed_models=["echo"], retention_days=None)
    assert tenant.default_model == "echo"
    assert tenant.collect_events() == []


def test_tenant_settings_reject_an_empty_list_of_allowed_models() -> None:
    tenant = new_tenant()
    with pytest.raises(InvalidInput):
        tenant.change_settings(default_model="echo", allowed_models=[], retention_days=None)


@pytest.mark.parametrize("days", [1, 36500, None])
def test_tenant_retention_accepts_one_to_36500_days_or_none(days: int | None) -> None:
    tenant = new_tenant()
    tenant.change_settings(default_model="echo", allowed_models=["echo"], retention_days=days)
    assert tenant.retention_days == days


@pytest.mark.parametrize("days", [0, -1, 36501])
def test_tenant_retention_outside_bounds_is_invalid_input(days: int) -> None:
    tenant = new_tenant()
    tenant.collect_events()
    with pytest.raises(InvalidInput):
        tenant.change_settings(default_model="echo", allowed_models=["echo"], retention_days=days)
    assert tenant.retention_days is None
    assert tenant.collect_events() == []


def test_deactivated_tenant_cannot_change_settings_or_be_renamed() -> None:
    tenant = new_tenant()
    tenant.deactivate()
    with pytest.raises(NotAllowed) as e:
        tenant.change_settings(default_model="echo", allowed_models=["echo"], retention_days=None)
    assert e.value.code == "FORBIDDEN"
    with pytest.raises(NotAllowed):
        tenant.rename("New name")


def test_tenant_resolves_a_requested_model_only_if_allowed() -> None:
    tenant = new_tenant()
    assert tenant.resolve_model(None) == "echo"
    assert tenant.resolve_model("echo") == "echo"
    with pytest.raises(InvalidInput):
        tenant.resolve_model("not-allowed")


# -- user ----------------------------------------------------------------------------------------


def test_user_email_is_trimmed_and_lowercased() -> None:
    assert normalize_email("  Bob.Smith@Example.COM \n") == "bob.smith@example.com"
    user = new_user(uuid4(), email=" Bob@Example.COM ")
    assert user.email == "bob@example.com"


@pytest.mark.parametrize(
    "email", ["", "bob", "bob@", "@example.com", "bob@example", "b ob@example.com", "a@b@c.com"]
)
def test_user_email_must_be_a_plausible_address(email: str) -> None:
    with pytest.raises(InvalidInput):
        new_user(uuid4(), email=email)


def test_user_id_is_deterministic_per_tenant_and_normalized_email() -> None:
    tenant_a, tenant_b = uuid4(), uuid4()
    user = new_user(tenant_a, email="Bob@Example.com")
    assert user.id == user_id_for(tenant_a, "bob@example.com")
    assert user.id == user_id_for(tenant_a, "  BOB@EXAMPLE.COM")
    assert new_user(tenant_a, email="bob@example.com").id == user.id
    assert new_user(tenant_b, email="bob@example.com").id != user.id
    assert new_user(tenant_a, email="alice@example.com").id != user.id


def test_user_role_change_records_one_event_and_ignores_a_no_op() -> None:
    user = new_user(uuid4(), role=Role.MEMBER)
    user.collect_events()
    user.change_role(Role.AUDITOR)
    assert user.role is Role.AUDITOR
    user.change_role(Role.AUDITOR)
    assert topics(user) == ["parley.User.RoleChanged"]


def test_deactivated_user_is_not_allowed_to_act() -> None:
    user = new_user(uuid4())
    user.ensure_active()  # an active user passes
    user.deactivate()
    assert not user.active
    with pytest.raises(NotAllowed) as e:
        user.ensure_active()
    assert e.value.code == "FORBIDDEN"
    with pytest.raises(NotAllowed):
        user.change_role(Role.TENANT_ADMIN)
    with pytest.raises(NotAllowed):
        user.change_password_hash("new-hash")


def test_deactivating_twice_records_one_event() -> None:
    user = new_user(uuid4())
    user.collect_events()
    user.deactivate()
    user.deactivate()
    assert topics(user) == ["parley.User.Deactivated"]


# -- chat: titles --------------------------------------------------------------------------------


def test_chat_title_is_stripped() -> None:
    assert new_chat(title="  Weekly sync \t").title == "Weekly sync"


@pytest.mark.parametrize("title", ["x", "x" * MAX_TITLE, "  " + "x" * MAX_TITLE + "  "])
def test_chat_title_of_1_to_200_characters_is_accepted(title: str) -> None:
    assert new_chat(title=title).title == title.strip()


@pytest.mark.parametrize("title", ["", "   ", "\n\t", "x" * (MAX_TITLE + 1)])
def test_chat_title_empty_blank_or_over_200_characters_is_invalid_input(title: str) -> None:
    with pytest.raises(InvalidInput):
        new_chat(title=title)


def test_chat_rename_applies_the_same_title_rules() -> None:
    chat = new_chat(title="Old")
    chat.collect_events()
    chat.rename("  New  ")
    assert chat.title == "New"
    chat.rename("New")  # unchanged: no event
    with pytest.raises(InvalidInput):
        chat.rename("  ")
    with pytest.raises(InvalidInput):
        chat.rename("x" * (MAX_TITLE + 1))
    assert topics(chat) == ["parley.ChatSession.Renamed"]


# -- chat: messages ------------------------------------------------------------------------------


def test_message_content_of_exactly_32000_characters_is_accepted() -> None:
    chat = new_chat()
    message_id = post(chat, "x" * MAX_CONTENT)
    assert MAX_CONTENT == 32_000
    assert chat.messages[-1].id == message_id
    assert len(chat.messages[-1].content) == 32_000


def test_message_content_of_one_character_is_accepted() -> None:
    chat = new_chat()
    post(chat, "x")
    assert [m.content for m in chat.messages] == ["x"]


@pytest.mark.parametrize("content", ["", " ", "\n\t  \n", "x" * (MAX_CONTENT + 1)])
def test_message_content_empty_blank_or_over_32000_characters_is_invalid_input(
    content: str,
) -> None:
    chat = new_chat()
    chat.collect_events()
    with pytest.raises(InvalidInput) as e:
        post(chat, content)
    assert e.value.code == "BAD_USER_INPUT"
    assert chat.messages == []
    assert chat.collect_events() == []


def test_messages_are_remembered_in_order_with_their_roles() -> None:
    chat = new_chat()
    first = post(chat, "question")
    reply = reply_id_for(first)
    chat.post_message(
        message_id=reply,
        role=MessageRole.ASSISTANT,
        content="answer",
        author_id=None,
        reply_to=first,
    )
    assert [(m.id, m.role, m.content) for m in chat.messages] == [
        (first, MessageRole.USER, "question"),
        (reply, MessageRole.ASSISTANT, "answer"),
    ]


def test_reply_id_is_deterministic_per_user_message() -> None:
    message_id = uuid4()
    assert reply_id_for(message_id) == reply_id_for(message_id)
    assert reply_id_for(message_id) != reply_id_for(uuid4())
    assert reply_id_for(message_id) != message_id


def test_posting_a_duplicate_message_id_is_a_conflict() -> None:
    chat = new_chat()
    message_id = post(chat, "once")
    with pytest.raises(Conflict) as e:
        post(chat, "twice", message_id=message_id)
    assert e.value.code == "CONFLICT"
    assert len(chat.messages) == 1


def test_reusing_a_client_mutation_id_in_a_chat_is_a_conflict() -> None:
    chat = new_chat()
    first = post(chat, "once", client_mutation_id="key-1")
    assert chat.message_for_client_mutation("key-1") == first
    with pytest.raises(Conflict):
        post(chat, "again", client_mutation_id="key-1")
    assert [m.id for m in chat.messages] == [first]
    post(chat, "another key", client_mutation_id="key-2")
    assert len(chat.messages) == 2
    assert chat.message_for_client_mutation(None) is None
    assert chat.message_for_client_mutation("unknown") is None


# -- chat: life cycle ----------------------------------------------------------------------------


def test_posting_to_a_deleted_chat_is_not_found() -> None:
    chat = new_chat()
    post(chat, "before")
    chat.delete()
    assert chat.is_deleted
    with pytest.raises(NotFound) as e:
        post(chat, "after")
    assert e.value.code == "NOT_FOUND"
    assert [m.content for m in chat.messages] == ["before"]


def test_a_deleted_chat_cannot_be_renamed_archived_or_deleted_again() -> None:
    chat = new_chat()
    chat.delete()
    chat.collect_events()
    with pytest.raises(NotFound):
        chat.rename("New title")
    with pytest.raises(NotFound):
        chat.archive()
    with pytest.raises(NotFound):
        chat.delete()
    assert chat.collect_events() == []


def test_archived_chat_still_accepts_messages_and_archiving_twice_is_one_event() -> None:
    chat = new_chat()
    chat.collect_events()
    chat.archive()
    chat.archive()
    assert chat.status is ChatStatus.ARCHIVED
    post(chat, "still here")
    assert topics(chat) == ["parley.ChatSession.Archived", "parley.ChatSession.MessagePosted"]


# -- events --------------------------------------------------------------------------------------


def test_every_event_of_every_aggregate_carries_its_tenant_id() -> None:
    tenant = new_tenant()
    tenant.rename("Acme Inc")
    tenant.change_settings(default_model="echo", allowed_models=["echo"], retention_days=7)
    tenant.deactivate()

    user = new_user(tenant.id)
    user.change_role(Role.AUDITOR)
    user.change_password_hash("other-hash")
    user.deactivate()

    chat = new_chat(tenant_id=tenant.id)
    first = post(chat, "hello", client_mutation_id="k")
    chat.post_message(
        message_id=reply_id_for(first),
        role=MessageRole.ASSISTANT,
        content="hi",
        author_id=None,
        reply_to=first,
    )
    chat.rename("Renamed")
    chat.archive()
    chat.delete()

    events = [e for a in (tenant, user, chat) for e in a.collect_events()]
    assert len(events) == 4 + 4 + 6
    assert all(getattr(e, "tenant_id", None) == tenant.id for e in events), [
        (type(e).__name__, getattr(e, "tenant_id", None)) for e in events
    ]


def test_event_topics_are_stable_parley_prefixed_strings() -> None:
    tenant = new_tenant()
    tenant.rename("Acme Inc")
    tenant.change_settings(default_model="echo", allowed_models=["echo"], retention_days=None)
    tenant.deactivate()
    user = new_user(tenant.id)
    user.change_role(Role.AUDITOR)
    user.change_password_hash("other-hash")
    user.deactivate()
    chat = new_chat(tenant_id=tenant.id)
    post(chat, "hello")
    chat.rename("Renamed")
    chat.archive()
    chat.delete()

    assert topics(tenant, user, chat) == [
        "parley.Tenant.Created",
        "parley.Tenant.Renamed",
        "parley.Tenant.SettingsChanged",
        "parley.Tenant.Deactivated",
        "parley.User.Registered",
        "parley.User.RoleChanged",
        "parley.User.PasswordChanged",
        "parley.User.Deactivated",
        "parley.ChatSession.Started",
        "parley.ChatSession.MessagePosted",
        "parley.ChatSession.Renamed",
        "parley.ChatSession.Archived",
        "parley.ChatSession.Deleted",
    ]


def test_aggregate_topics_are_stable_parley_prefixed_strings() -> None:
    assert get_topic(Tenant) == "parley.Tenant"
    assert get_topic(User) == "parley.User"
    assert get_topic(ChatSession) == "parley.ChatSession"


def test_a_copied_chat_shares_no_mutable_state_with_the_cached_one() -> None:
    """Commands change a copy of the cached chat (ChatSession.__deepcopy__ copies one level)."""
    cached = new_chat()
    post(cached, "first", client_mutation_id="k1")
    cached.collect_events()
    copy = deepcopy(cached)
    for name, value in vars(copy).items():
        if isinstance(value, list | dict | set):
            assert value is not vars(cached)[name], name
        assert value == vars(cached)[name], name

    post(copy, "second", client_mutation_id="k2")
    copy.rename("Renamed")

    assert [m.content for m in cached.messages] == ["first"]
    assert set(cached.client_mutation_ids) == {"k1"}
    assert cached.title == "Planning" and cached.version == 2
    assert cached.pending_events == []
    assert [m.content for m in copy.messages] == ["first", "second"] and copy.version == 4
