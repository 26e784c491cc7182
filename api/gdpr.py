"""Data protection in GraphQL: erasing a user (tenant admins)."""

import strawberry
from strawberry.types import Info

import commands.messages as cmd
from api.context import ParleyContext, run
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


@strawberry.type
class GdprMutations:
    @strawberry.mutation(
        description="Tenant admins: erase a user for good (GDPR art. 17). Destroys the keys "
        "of their personal data (profile, their chats' titles and messages, both sides of "
        "every conversation), deactivates them and records User.Erased. Cannot be undone; "
        "the audit chain stays valid. See docs/gdpr.md."
    )
    async def erase_user(
        self, info: Info[ParleyContext, None], input: EraseUserInput
    ) -> EraseUserPayload:
        r = await info.context.execute(
            lambda: cmd.EraseUser(user_id=parse_id(input.user_id, "userId"))
        )
        await run(info, info.context.services.refresh_tokens.revoke_user, r.id, "erased")
        return EraseUserPayload(user_id=strawberry.ID(str(r.id)), position=r.position)
