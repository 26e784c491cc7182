"""The exported SDL at queries/schema.graphql is the public contract: it must not drift."""

from pathlib import Path

from api.schema import sdl

SDL_FILE = Path(__file__).resolve().parent.parent / "queries" / "schema.graphql"


def test_checked_in_sdl_matches_the_schema() -> None:
    assert SDL_FILE.read_text() == sdl(), "run `parley schema > queries/schema.graphql`"


def test_public_contract_names_exist() -> None:
    text = sdl()
    for name in (
        "login(input: LoginInput!): LoginPayload!",
        "registerUser(input: RegisterUserInput!)",
        "startChat(input: StartChatInput!)",
        "sendMessage(input: SendMessageInput!)",
        "renameChat(input: RenameChatInput!)",
        "deleteChat(input: ChatIdInput!)",
        "union ChatEvent = MessageAdded | ReplyDelta",
        "chatEvents(",
        "accessToken: String!",
        "refreshToken: String!",
        "clientMutationId: String",
    ):
        assert name in text, name
