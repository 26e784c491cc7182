"""Data protection in GraphQL: erasing a user (tenant admins)."""

import strawberry

import commands.messages as cmd
from api.command_mutation import command_mutation
from api.services import Services
from commands.results import Written
from domain.base import parse_id


@strawberry.input
class EraseUserInput:
    user_id: strawberry.ID


@strawberry.type
class EraseUserPayload:
    user_id: strawberry.ID
    position: int = strawberry.field(
        description="Log position of the User.Erased event: pass it as afterPosition to read "
        "the read side once it has forgotten the user."
    )


def _erase_user(input: EraseUserInput) -> cmd.EraseUser:
    return cmd.EraseUser(user_id=parse_id(input.user_id, "userId"))


async def _end_sign_ins(services: Services, r: Written) -> None:
    await services.run_blocking(services.refresh_tokens.revoke_user, r.id, "erased")


def _erased(r: Written, input: EraseUserInput) -> EraseUserPayload:
    return EraseUserPayload(user_id=strawberry.ID(str(r.id)), position=r.position)


@strawberry.type
class GdprMutations:
    erase_user = command_mutation(
        _erase_user,
        _erased,
        then=_end_sign_ins,
        description="Tenant admins: erase a user for good (GDPR art. 17). Destroys the keys "
        "of their personal data (profile, their chats' titles and messages, both sides of "
        "every conversation), deactivates them and records User.Erased. Cannot be undone; "
        "the audit chain stays valid. See docs/gdpr.md.",
    )
