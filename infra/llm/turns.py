"""Shaping a conversation for APIs that take the system prompt apart and want roles to alternate
(Anthropic's Messages API, Google's Gemini API)."""

from dataclasses import dataclass

from infra.llm.base import ChatTurn


@dataclass(frozen=True)
class Shaped:
    system: str | None
    """The system turns joined by blank lines, or None when there are none."""
    turns: list[ChatTurn]
    """`user` and `assistant` turns (any other role counts as `user`): runs of one role merged
    into one turn, empty turns dropped."""


def split_system(turns: list[ChatTurn]) -> Shaped:
    """Take the system turns out and merge runs of one role into a single turn."""
    system = [t.content for t in turns if t.role == "system" and t.content.strip()]
    merged: list[ChatTurn] = []
    for turn in turns:
        # An empty turn (a reply stopped before its first token) is rejected by both APIs.
        if turn.role == "system" or not turn.content.strip():
            continue
        role = "assistant" if turn.role == "assistant" else "user"
        if merged and merged[-1].role == role:
            merged[-1] = ChatTurn(role, f"{merged[-1].content}\n\n{turn.content}")
        else:
            merged.append(ChatTurn(role, turn.content))
    return Shaped("\n\n".join(system) if system else None, merged)
