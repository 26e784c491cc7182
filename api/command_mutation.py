"""A mutation that is one command, declared once: the input becomes the command (`build`), the
bus runs it for the caller (`ParleyContext.execute`: authentication, validation, one thread
hop), optional follow-up work runs (`then`), and `answer` shapes the result as the payload.

The GraphQL field is the same as a hand-written resolver's (`input: <Input>!` → `<Payload>!`):
its types come from the annotations of `build` and `answer`."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, get_type_hints

import strawberry
from strawberry.types import Info

from api.context import ParleyContext
from api.services import Services
from commands.messages import Command

I = TypeVar("I")  # noqa: E741  (the input type)
R = TypeVar("R")


def command_mutation(
    build: Callable[[I], Command],
    answer: Callable[[R, I], Any],
    *,
    description: str,
    then: Callable[[Services, R], Awaitable[object]] | None = None,
) -> Any:
    input_type = get_type_hints(build)["input"]
    payload_type = get_type_hints(answer)["return"]

    async def resolve(info: Info[ParleyContext, None], input: Any) -> Any:
        result = await info.context.execute(lambda: build(input))
        if then is not None:
            await then(info.context.services, result)
        return answer(result, input)

    resolve.__annotations__ = {
        "info": Info[ParleyContext, None],
        "input": input_type,
        "return": payload_type,
    }
    return strawberry.mutation(resolver=resolve, description=description)
