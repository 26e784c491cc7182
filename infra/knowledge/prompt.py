"""How retrieved passages are put before a model, and how its citations are read back.

The passages go in the system turn, numbered from 1 in rank order, each with its document's
title and location, after instructions to answer from them and to cite them as [n]. A passage
the reply names as [n] is recorded as cited (`domain.chat.Citation.cited`); every passage given
is recorded, cited or not, because what the model was shown matters to an auditor as much as
what it chose to name.
"""

import re
from collections.abc import Sequence

from infra.knowledge.index import Passage
from infra.llm.context import estimate_tokens

INSTRUCTIONS = (
    "Passages from the documents this conversation is grounded in follow, numbered. Answer "
    "from them. Cite every passage you use by its number in square brackets, like [1] or "
    "[2][3], right after the statement it supports. If the passages do not answer the "
    "question, say so, and do not make up an answer."
)
PASSAGES_MARK = "=== Passages ==="
"""Starts the passages in the system turn (the echo model finds them by it)."""
_CITED = re.compile(r"\[(\d{1,3})\]")


def passage_heading(n: int, passage: Passage) -> str:
    where = f" — {passage.location}" if passage.location else ""
    return f"[{n}] {passage.title}{where}"


def grounding_prompt(passages: Sequence[Passage], budget_tokens: int) -> tuple[str, int]:
    """The system turn's knowledge part and how many passages (best first) fit the budget; at
    least one passage is always given, cut to the budget if it must be."""
    parts = [INSTRUCTIONS, PASSAGES_MARK]
    used = estimate_tokens(INSTRUCTIONS) + estimate_tokens(PASSAGES_MARK)
    given = 0
    for n, passage in enumerate(passages, start=1):
        block = f"{passage_heading(n, passage)}\n{passage.text}"
        cost = estimate_tokens(block)
        if used + cost > budget_tokens:
            if given:
                break
            room = max(200, int((budget_tokens - used) * 3.5))
            block = block[:room]
        parts.append(block)
        used += cost
        given += 1
    return "\n\n".join(parts), given


def cited_numbers(reply: str, given: int) -> set[int]:
    """The passage numbers (1..given) the reply cites as [n]."""
    return {n for n in (int(m) for m in _CITED.findall(reply)) if 1 <= n <= given}
