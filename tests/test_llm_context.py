from infra.llm.base import ChatTurn
from infra.llm.context import build_context, estimate_tokens


def test_the_newest_messages_that_fit_are_sent_with_the_system_prompt_first() -> None:
    history = [
        ChatTurn("user" if n % 2 == 0 else "assistant", f"message {n} " * 50) for n in range(40)
    ]
    one = estimate_tokens(history[0].content)
    context = build_context(
        history, system_prompt="Be brief.", context_window=10 * one + 500, reserve_for_reply=500
    )
    assert context.turns[0] == ChatTurn("system", "Be brief.")
    assert context.turns[1:] == history[-9:]  # nine fit beside the system prompt
    assert context.dropped == 31
    assert context.input_tokens <= 10 * one


def test_the_message_being_answered_is_always_sent() -> None:
    huge = [ChatTurn("user", "x" * 100_000)]
    context = build_context(huge, system_prompt=None, context_window=1000, reserve_for_reply=100)
    assert context.turns == huge and context.dropped == 0
