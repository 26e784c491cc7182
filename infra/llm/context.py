"""What the model is sent: the tenant's system prompt and the chat's history, trimmed to fit.

Token counts are estimated (about four characters per token for English text, counted
conservatively at 3.5, plus a few tokens of framing per message): exact tokenizers are
per-provider and need downloads, and an estimate that errs on the long side only ever trims a
little early. The window leaves room for the reply (`max_tokens`).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from infra.llm.base import ChatTurn

FRAMING_TOKENS = 4
"""Per message: role and separators, as chat formats add them."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 3.5) + FRAMING_TOKENS


@dataclass(frozen=True)
class Context:
    turns: list[ChatTurn]
    input_tokens: int
    """Estimated tokens of what is sent."""
    dropped: int
    """Oldest messages left out to fit the window."""


def build_context(
    history: Sequence[ChatTurn],
    *,
    system_prompt: str | None,
    context_window: int,
    reserve_for_reply: int,
) -> Context:
    """The newest messages that fit, oldest dropped first; the system prompt and the message
    being answered (the last one) are always kept."""
    budget = context_window - reserve_for_reply
    system = [ChatTurn("system", system_prompt)] if system_prompt else []
    used = sum(estimate_tokens(t.content) for t in system)
    kept: list[ChatTurn] = []
    for n, turn in enumerate(reversed(history)):
        cost = estimate_tokens(turn.content)
        if n > 0 and used + cost > budget:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    return Context(system + kept, used, len(history) - len(kept))
