"""Sign-in in GraphQL: login, refresh (rotating), logout, logout everywhere, password change.

How the tokens work is in docs/auth.md."""

import strawberry
from strawberry.types import Info

from api.context import ParleyContext, command, run
from api.services import Services
from commands import messages as cmd
from commands.login_throttle import account_key
from domain.actor import Actor
from domain.errors import NotAllowed, NotAuthenticated, WrongPassword
from domain.user import Role as DomainRole
from domain.user import User as UserAggregate
from infra.identity.refresh_tokens import RefreshGrant
from infra.identity.tokens import REFRESH, Claims, InvalidToken
from queries.types import Role, User


@strawberry.input
class LoginInput:
    tenant: str = strawberry.field(description="The tenant's slug.")
    email: str
    password: str


@strawberry.input
class RefreshTokenInput:
    refresh_token: str


@strawberry.input
class LogoutInput:
    refresh_token: str = strawberry.field(description="Any refresh token of the sign-in.")


@strawberry.type
class LogoutPayload:
    sessions_revoked: int = strawberry.field(
        description="Sign-ins whose refresh tokens stopped working (access tokens already out "
        "expire on their own, within accessTokenTtl)."
    )


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str = strawberry.field(description="12 to 1024 characters.")


def user_view(user: UserAggregate) -> User:
    return User(
        id=strawberry.ID(str(user.id)),
        tenant_id=strawberry.ID(str(user.tenant_id)),
        email=user.email,
        display_name=user.display_name,
        role=Role(user.role.value),
        active=user.active,
    )


@strawberry.type
class LoginPayload:
    access_token: str
    refresh_token: str = strawberry.field(
        description="Single use: refreshToken returns its successor. Presenting a used one "
        "again signs out the whole sign-in."
    )
    token_type: str
    expires_in: int
    user: User
    position: int


def token_pair(
    services: Services,
    user: UserAggregate,
    position: int,
    grant: RefreshGrant | None = None,
) -> LoginPayload:
    """An access and a refresh token for the user. Without `grant`, a new sign-in (refresh
    token family) is recorded here, blocking for one INSERT: async code should make the grant
    with `services.run_blocking(services.refresh_tokens.start, ...)` and pass it."""
    if grant is None:
        grant = services.refresh_tokens.start(tenant_id=user.tenant_id, user_id=user.id)
    access = services.tokens.issue(
        user_id=user.id, tenant_id=user.tenant_id, role=user.role.value, session_id=grant.session_id
    )
    refresh = services.tokens.issue(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=user.role.value,
        token_type=REFRESH,
        session_id=grant.session_id,
        token_id=grant.token_id,
        expires_at=grant.expires_at,
    )
    return LoginPayload(
        access_token=access,
        refresh_token=refresh,
        token_type="Bearer",
        expires_in=services.settings.access_token_ttl_seconds,
        user=user_view(user),
        position=position,
    )


async def new_sign_in(services: Services, user: UserAggregate, position: int) -> LoginPayload:
    """A new sign-in (refresh token family) for the user, and its first token pair."""
    grant = await services.run_blocking(
        lambda: services.refresh_tokens.start(tenant_id=user.tenant_id, user_id=user.id)
    )
    return token_pair(services, user, position, grant)


def client_address(context: ParleyContext) -> str | None:
    """The caller's IP address as the server sees it (behind a proxy: uvicorn's
    --forwarded-allow-ips / FORWARDED_ALLOW_IPS decides whether X-Forwarded-For counts)."""
    client = getattr(context.request, "client", None)
    return client.host if client is not None else None


def refresh_claims(services: Services, token: str) -> Claims:
    try:
        claims = services.tokens.verify(token, token_type=REFRESH)
    except InvalidToken as e:
        raise NotAuthenticated(str(e)) from None
    if claims.session_id is None:
        raise NotAuthenticated("refresh token invalid")
    return claims


# The sign-in operations themselves, for the GraphQL mutations below and the browser's cookie
# sessions (api/browser_session.py): one implementation of each, whichever transport asks.


async def password_sign_in(
    context: ParleyContext, tenant: str, email: str, password: str
) -> LoginPayload:
    """`login`: a new sign-in once the password checks out, throttled per account and address."""
    services = context.services
    account, address = account_key(tenant, email), client_address(context)
    # Before any argon2 work: a throttled guess costs us one Redis round trip.
    await services.run_blocking(services.login_throttle.check, account, address)
    try:
        auth = await services.run_password_work(
            services.authentication.authenticate, tenant, email, password
        )
    except NotAuthenticated:
        await services.run_blocking(services.login_throttle.failed, account, address)
        raise
    position = await services.run_blocking(services.aggregates.head)
    return await new_sign_in(services, auth.user, position)


async def rotated_sign_in(services: Services, refresh_token: str) -> LoginPayload:
    """`refreshToken`: the refresh token used up, its successor and a new access token; a used
    one presented again revokes its whole sign-in."""
    claims = refresh_claims(services, refresh_token)
    actor = Actor(claims.user_id, claims.tenant_id, DomainRole(claims.role))
    try:
        user = await services.run_blocking(services.authentication.signed_in_user, actor)
    except NotAllowed:  # deactivated since the sign-in
        await services.run_blocking(
            services.refresh_tokens.revoke_user, actor.user_id, "deactivated"
        )
        raise NotAuthenticated("this sign-in is no longer valid") from None
    try:
        grant = await services.run_blocking(
            lambda: services.refresh_tokens.rotate(
                token_id=claims.token_id, session_id=claims.session_id, user_id=user.id
            )
        )
    except InvalidToken as e:
        raise NotAuthenticated(str(e)) from None
    position = await services.run_blocking(services.aggregates.head)
    return token_pair(services, user, position, grant)


async def end_sign_in(services: Services, refresh_token: str) -> int:
    """`logout`: the sign-in of this refresh token ends; how many sign-ins stopped."""
    claims = refresh_claims(services, refresh_token)
    assert claims.session_id is not None
    revoked: int = await services.run_blocking(
        services.refresh_tokens.revoke_session, claims.session_id, claims.user_id, "logout"
    )
    return revoked


async def password_changed_sign_in(
    context: ParleyContext, current_password: str, new_password: str
) -> LoginPayload:
    """`changePassword`: every sign-in of the caller ends; a new one starts."""
    services = context.services
    actor = context.actor()
    account, address = str(actor.user_id), client_address(context)
    await services.run_blocking(services.login_throttle.check, account, address)
    c = command(
        lambda: cmd.ChangePassword(current_password=current_password, new_password=new_password)
    )
    try:
        written = await services.run_password_work(services.bus.handle, c, actor)
    except WrongPassword:
        await services.run_blocking(services.login_throttle.failed, account, address)
        raise
    await services.run_blocking(
        services.refresh_tokens.revoke_user, actor.user_id, "password changed"
    )
    user = await services.run_blocking(services.authentication.active_user, actor)
    return await new_sign_in(services, user, written.position)


@strawberry.type
class AuthMutations:
    @strawberry.mutation(
        description="Sign in with a password; returns an access and refresh token. Repeated "
        "failures for an account or from an address answer RATE_LIMITED (extensions."
        "retryAfterSeconds) for a while."
    )
    async def login(self, info: Info[ParleyContext, None], input: LoginInput) -> LoginPayload:
        return await password_sign_in(info.context, input.tenant, input.email, input.password)

    @strawberry.mutation(
        description="Exchange a refresh token for a fresh pair. Each refresh token works once; "
        "a used one presented again signs out its whole sign-in (UNAUTHENTICATED)."
    )
    async def refresh_token(
        self, info: Info[ParleyContext, None], input: RefreshTokenInput
    ) -> LoginPayload:
        return await rotated_sign_in(info.context.services, input.refresh_token)

    @strawberry.mutation(description="Sign out: the sign-in's refresh tokens stop working.")
    async def logout(self, info: Info[ParleyContext, None], input: LogoutInput) -> LogoutPayload:
        return LogoutPayload(
            sessions_revoked=await end_sign_in(info.context.services, input.refresh_token)
        )

    @strawberry.mutation(description="Sign out every sign-in of yours, on every device.")
    async def logout_everywhere(self, info: Info[ParleyContext, None]) -> LogoutPayload:
        actor = info.context.actor()
        await run(info, info.context.services.authentication.check_can_act, actor)
        revoked = await run(
            info, info.context.services.refresh_tokens.revoke_user, actor.user_id, "logout all"
        )
        return LogoutPayload(sessions_revoked=revoked)

    @strawberry.mutation(
        description="Change your password (the current one confirms it is you). Every sign-in "
        "of yours is signed out; the returned tokens start a new one."
    )
    async def change_password(
        self, info: Info[ParleyContext, None], input: ChangePasswordInput
    ) -> LoginPayload:
        return await password_changed_sign_in(
            info.context, input.current_password, input.new_password
        )
