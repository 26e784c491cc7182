"""Driving a provider adapter through a whole reply, for the adapters' tests."""

from infra.llm.base import CancelToken, ChatProvider, ChatTurn, Completion, Delta, GenerationParams

TURNS = [
    ChatTurn("system", "You are terse."),
    ChatTurn("user", "Hi"),
    ChatTurn("assistant", "Hello."),
    ChatTurn("user", "Name a colour."),
]


async def drain(
    provider: ChatProvider,
    turns: list[ChatTurn] = TURNS,
    *,
    params: GenerationParams,
    cancel: CancelToken | None = None,
) -> tuple[list[str], Completion]:
    """The reply's texts and its completion; checks the completion comes once, last."""
    items = [item async for item in provider.stream(turns, params, cancel or CancelToken())]
    *deltas, completion = items
    assert isinstance(completion, Completion)
    assert all(isinstance(d, Delta) for d in deltas)
    return [d.text for d in deltas if isinstance(d, Delta)], completion
