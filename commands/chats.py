"""Chat commands: start, write (the user's messages and the responder's replies), stop a reply,
rename, archive, delete, and expire (retention). Each is `handler(cmd, uow)`, run by the bus."""

from uuid import UUID, uuid4

from commands.admission import Admission
from commands.messages import (
    ArchiveChat,
    DeleteChat,
    ExpireChat,
    RecordReply,
    RenameChat,
    SendMessage,
    StartChat,
    StopGeneration,
)
from commands.results import MessageSent, Written
from commands.unit_of_work import UnitOfWork
from domain.base import stable_id
from domain.chat import ChatSession, MessageRole, reply_id_for
from domain.errors import InvalidInput, NotFound
from domain.policy import CHAT, require_role, writable_chat

MAX_CLIENT_MUTATION_ID = 200


def start_chat(cmd: StartChat, uow: UnitOfWork) -> Written:
    me = uow.acting()
    require_role(me, CHAT, "start chats")
    key = check_client_mutation_id(cmd.client_mutation_id)
    chat_id = stable_id("chat", me.user_id, key) if key else uuid4()
    if key and uow.store.get_or_none(chat_id, readonly=True) is not None:
        return Written(id=chat_id, position=uow.head(), duplicate=True)
    model = uow.tenant(me.tenant_id).resolve_model(cmd.model)
    chat = ChatSession.start(
        chat_id=chat_id, tenant_id=me.tenant_id, owner_id=me.user_id, title=cmd.title, model=model
    )
    return Written(id=chat.id, position=uow.save(chat))


def send_message(cmd: SendMessage, uow: UnitOfWork, admission: Admission | None) -> MessageSent:
    """The hot path: one batched load (caller, tenant, chat), one authorisation, admission over
    the tenant already loaded (its rates debited on the first attempt only), one save."""
    me, tenant, chat = uow.acting_on(cmd.chat_id)
    key = check_client_mutation_id(cmd.client_mutation_id)
    chat = writable_chat(me, chat)
    if admission is not None and uow.attempt == 1:
        admission.admit(me, tenant, cmd.content)
    first = chat.message_for_client_mutation(key)
    if first is not None:
        original = next(m for m in chat.messages if m.id == first)
        return MessageSent(
            chat_id=chat.id,
            message_id=first,
            content=original.content,
            model=chat.model,
            created_at=None,
            position=uow.head(),
            duplicate=True,
        )
    message_id = stable_id("message", chat.id, key) if key else uuid4()
    chat.post_message(
        message_id=message_id,
        role=MessageRole.USER,
        content=cmd.content,
        author_id=me.user_id,
        model=chat.model,
        client_mutation_id=key,
    )
    position = uow.save(chat)
    return MessageSent(
        chat_id=chat.id,
        message_id=message_id,
        content=cmd.content,
        model=chat.model,
        created_at=chat.modified_on,
        position=position,
        duplicate=False,
    )


def stop_generation(cmd: StopGeneration, uow: UnitOfWork) -> UUID:
    """Only decides whether the caller may stop the chat's reply (the stop is not an event, the
    caller sends it on the live feed); the chat's id."""
    me, _, chat = uow.acting_on(cmd.chat_id)
    return writable_chat(me, chat).id


def rename_chat(cmd: RenameChat, uow: UnitOfWork) -> Written:
    chat = _writable(uow, cmd.chat_id)
    chat.rename(cmd.title)
    return Written(id=chat.id, position=uow.save(chat))


def archive_chat(cmd: ArchiveChat, uow: UnitOfWork) -> Written:
    chat = _writable(uow, cmd.chat_id)
    chat.archive()
    return Written(id=chat.id, position=uow.save(chat))


def delete_chat(cmd: DeleteChat, uow: UnitOfWork) -> Written:
    chat = _writable(uow, cmd.chat_id)
    chat.delete()
    return Written(id=chat.id, position=uow.save(chat))


def record_reply(cmd: RecordReply, uow: UnitOfWork) -> Written | None:
    """The responder's write: idempotent (the reply id derives from the user message id)."""
    chat = uow.get(cmd.chat_id)
    reply_id = reply_id_for(cmd.reply_to)
    if not isinstance(chat, ChatSession) or chat.is_deleted:
        return None  # the chat went away while we were answering
    if chat.has_message(reply_id):
        return Written(id=reply_id, position=uow.head(), duplicate=True)
    reply = {name: value for name, value in cmd if name != "chat_id"}  # post_message's names
    chat.post_message(message_id=reply_id, role=MessageRole.ASSISTANT, author_id=None, **reply)
    return Written(id=reply_id, position=uow.save(chat))


def expire_chat(cmd: ExpireChat, uow: UnitOfWork) -> Written:
    """Retention (Parley itself acting): destroy the chat's data key, record Expired."""
    chat = uow.get(cmd.chat_id)
    if not isinstance(chat, ChatSession):
        raise NotFound("chat not found")
    if chat.is_deleted:
        return Written(id=chat.id, position=uow.head())
    uow.data_keys.destroy([chat.id], f"retention: {cmd.retention_days} days")
    chat.expire(cmd.retention_days, cmd.last_activity)
    return Written(id=chat.id, position=uow.save(chat))


def check_client_mutation_id(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if len(key) > MAX_CLIENT_MUTATION_ID:
        raise InvalidInput(f"clientMutationId must be at most {MAX_CLIENT_MUTATION_ID} characters")
    return key


def _writable(uow: UnitOfWork, chat_id: UUID) -> ChatSession:
    me, _, chat = uow.acting_on(chat_id)
    return writable_chat(me, chat)
