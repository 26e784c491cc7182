"""The offline `echo` model: streams the user's last message back word by word. Not AI.

In a chat grounded in documents it first lists the passages it was given, numbered as the
prompt numbers them, so that a person can see what a real model would have answered from (and
the replies cite every passage they were given: [1], [2], …)."""

import re
from collections.abc import AsyncGenerator

from infra.knowledge.prompt import PASSAGES_MARK
from infra.llm.base import CancelToken, ChatTurn, Completion, Delta, GenerationParams

LABEL = "[echo model, not AI] "
_WORDS = re.compile(r"\S+\s*")


class EchoProvider:
    """Deterministic and free: for demos and tests, and clearly labelled as not a language model."""

    name = "echo"

    def __init__(self, delay_seconds: float = 0.025) -> None:
        self._delay = delay_seconds

    def supports(self, model: str) -> bool:
        return model == "echo"

    async def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> AsyncGenerator[Delta | Completion, None]:
        prompt = next((t.content for t in reversed(turns) if t.role == "user"), "")
        pieces = [LABEL, *_WORDS.findall(prompt)]
        system = next((t.content for t in turns if t.role == "system"), "")
        if PASSAGES_MARK in system:
            passages = system.split(PASSAGES_MARK, 1)[1].strip()
            pieces = [
                LABEL,
                "The passages I was given:\n\n",
                *_WORDS.findall(passages),
                "\n\nYour message: ",
                *_WORDS.findall(prompt),
            ]
        produced = 0
        for piece in pieces:
            if await cancel.sleep(self._delay) if self._delay else cancel.cancelled:
                break
            produced += 1
            yield Delta(piece)
        yield Completion(
            finish_reason="cancelled" if cancel.cancelled else "stop",
            input_tokens=sum(len(t.content.split()) for t in turns),
            output_tokens=produced,
            provider=self.name,
            model=params.model,
        )
