"""GraphQL mutations on chats: start, send a message, rename, archive, stop a reply, delete."""

import strawberry
from strawberry.types import Info

from api.command_mutation import command_mutation
from api.context import ParleyContext
from commands import messages as cmd
from commands.results import Written
from domain.base import parse_id
from domain.errors import NotFound
from infra.messaging.live_items import StopRequested
from queries.types import Message, MessageRole


@strawberry.input
class StartChatInput:
    title: str
    model: str | None = None
    client_mutation_id: str | None = None


@strawberry.type
class StartChatPayload:
    chat_id: strawberry.ID
    position: int
    client_mutation_id: str | None


@strawberry.input
class SendMessageInput:
    chat_id: strawberry.ID
    content: str
    client_mutation_id: str | None = None


@strawberry.type
class SendMessagePayload:
    message_id: strawberry.ID
    chat_id: strawberry.ID
    position: int
    client_mutation_id: str | None
    duplicate: bool = strawberry.field(
        description="True when this clientMutationId was seen before: nothing new was recorded."
    )
    message: Message


@strawberry.input
class ChatIdInput:
    chat_id: strawberry.ID


@strawberry.input
class RenameChatInput:
    chat_id: strawberry.ID
    title: str


@strawberry.type
class ChatPayload:
    chat_id: strawberry.ID
    position: int


@strawberry.type
class StopGenerationPayload:
    chat_id: strawberry.ID
    requested: bool = strawberry.field(
        description="The stop was sent to every process that may be generating the reply."
    )


def _start_chat(input: StartChatInput) -> cmd.StartChat:
    return cmd.StartChat(**vars(input))  # the same fields (the command forbids others)


def _chat_started(r: Written, input: StartChatInput) -> StartChatPayload:
    return StartChatPayload(
        chat_id=strawberry.ID(str(r.id)),
        position=r.position,
        client_mutation_id=input.client_mutation_id,
    )


def _rename_chat(input: RenameChatInput) -> cmd.RenameChat:
    return cmd.RenameChat(chat_id=parse_id(input.chat_id, "chat id"), title=input.title)


def _archive_chat(input: ChatIdInput) -> cmd.ArchiveChat:
    return cmd.ArchiveChat(chat_id=parse_id(input.chat_id, "chat id"))


def _delete_chat(input: ChatIdInput) -> cmd.DeleteChat:
    return cmd.DeleteChat(chat_id=parse_id(input.chat_id, "chat id"))


def _chat_written(r: Written, input: object) -> ChatPayload:
    return ChatPayload(chat_id=strawberry.ID(str(r.id)), position=r.position)


@strawberry.type
class ChatMutations:
    start_chat = command_mutation(
        _start_chat,
        _chat_started,
        description="Start a chat. A repeated clientMutationId returns the first.",
    )

    @strawberry.mutation(
        description="Post a user message; the assistant's reply follows on chatEvents. "
        "A repeated clientMutationId returns the first result and records nothing new."
    )
    async def send_message(
        self, info: Info[ParleyContext, None], input: SendMessageInput
    ) -> SendMessagePayload:
        # One thread hop: the handler authorises the caller, admits the message (budget, rate
        # limits) over the tenant it loaded with the chat, and records it.
        r = await info.context.execute(
            lambda: cmd.SendMessage(
                chat_id=parse_id(input.chat_id, "chat id"),
                content=input.content,
                client_mutation_id=input.client_mutation_id,
            )
        )
        if r.duplicate:
            # The first result is durable; read it back as recorded.
            read_models = info.context.read_models
            await read_models.wait_for(r.position)
            row = await read_models.message(info.context.actor().tenant_id, r.message_id)
            if row is None:  # deleted since
                raise NotFound("message not found")
            message = Message.from_row(row)
        else:
            assert r.created_at is not None
            message = Message(
                id=strawberry.ID(str(r.message_id)),
                chat_id=strawberry.ID(str(r.chat_id)),
                role=MessageRole.USER,
                content=r.content,
                model=r.model,
                created_at=r.created_at,
                position=r.position,
            )
        return SendMessagePayload(
            message_id=message.id,
            chat_id=message.chat_id,
            position=r.position,
            client_mutation_id=input.client_mutation_id,
            duplicate=r.duplicate,
            message=message,
        )

    rename_chat = command_mutation(
        _rename_chat, _chat_written, description="Rename one of your chats."
    )
    archive_chat = command_mutation(
        _archive_chat,
        _chat_written,
        description="Archive one of your chats (still readable, still writable).",
    )

    @strawberry.mutation(
        description="Stop the reply being generated in one of your chats: the provider's "
        "connection is closed and the text so far is recorded with finishReason `cancelled` "
        "(it arrives as a MessageAdded). Harmless when nothing is being generated."
    )
    async def stop_generation(
        self, info: Info[ParleyContext, None], input: ChatIdInput
    ) -> StopGenerationPayload:
        chat_id = await info.context.execute(
            lambda: cmd.StopGeneration(chat_id=parse_id(input.chat_id, "chat id"))
        )
        info.context.services.publish_live(chat_id, StopRequested(chat_id))
        return StopGenerationPayload(chat_id=input.chat_id, requested=True)

    delete_chat = command_mutation(
        _delete_chat,
        _chat_written,
        description="Delete one of your chats: it leaves every read model.",
    )
