"""User commands: register, change role, deactivate, erase (GDPR), the caller's own password,
and an operator's password reset."""

import logging
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands.messages import (
    ChangePassword,
    ChangeUserRole,
    DeactivateUser,
    EraseUser,
    RegisterUser,
    ResetPassword,
)
from commands.results import Written
from commands.unit_of_work import UnitOfWork
from domain.errors import Conflict, InvalidInput, NotAllowed, NotFound, WrongPassword
from domain.policy import ADMINISTER, own_user, require_role, target_tenant
from domain.user import Role, User
from infra.identity.passwords import hash_password, verify_password
from infra.metrics import USERS_ERASED

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
MAX_PASSWORD = 1024


def register_user(cmd: RegisterUser, uow: UnitOfWork) -> Written:
    me = uow.acting()
    require_role(me, ADMINISTER, "register users")
    tenant_id = target_tenant(me, cmd.tenant_id)
    if cmd.role is Role.PLATFORM_ADMIN and not me.is_platform_admin:
        raise NotAllowed("only platform admins may grant platform_admin")
    if not uow.tenant(tenant_id).active:
        raise NotAllowed("tenant is deactivated")
    user = new_user(tenant_id, cmd.email, cmd.display_name, cmd.role, cmd.password)
    try:
        position = uow.save(user)
    except IntegrityError:
        raise Conflict("a user with this email already exists in the tenant") from None
    return Written(id=user.id, position=position)


def change_user_role(cmd: ChangeUserRole, uow: UnitOfWork) -> Written:
    me = uow.acting()
    require_role(me, ADMINISTER, "change roles")
    user = uow.user_in_tenant(cmd.user_id, me)
    if cmd.role is Role.PLATFORM_ADMIN and not me.is_platform_admin:
        raise NotAllowed("only platform admins may grant platform_admin")
    user.change_role(cmd.role)
    return Written(id=user.id, position=uow.save(user))


def deactivate_user(cmd: DeactivateUser, uow: UnitOfWork) -> Written:
    me = uow.acting()
    require_role(me, ADMINISTER, "deactivate users")
    user = uow.user_in_tenant(cmd.user_id, me)
    if user.id == me.user_id:
        raise InvalidInput("you cannot deactivate yourself")
    user.deactivate()
    return Written(id=user.id, position=uow.save(user))


def erase_user(cmd: EraseUser, uow: UnitOfWork) -> Written:
    """GDPR erasure: destroy the user's data keys (theirs and their chats'), then record
    `User.Erased`. Their personal data in the log, on Kafka and in backups of the log is
    ciphertext nobody can decrypt any more; projections remove it from the read side. No
    caller: an operator at the command line."""
    if uow.caller is None:
        user = uow.get(cmd.user_id)
        if not isinstance(user, User):
            raise NotFound("user not found")
    else:
        me = uow.acting()
        require_role(me, ADMINISTER, "erase users")
        user = uow.user_in_tenant(cmd.user_id, me)
        if user.id == me.user_id:
            raise InvalidInput("you cannot erase yourself: ask another admin")
    keys = uow.data_keys
    with keys.connection() as conn:
        key_ids = keys.keys_of_user(conn, user.tenant_id, user.id)
        keys.destroy([user.id, *key_ids], f"user {user.id} erased", conn)
    user.erase(keys_destroyed=len(set([user.id, *key_ids])))
    position = uow.save(user)
    USERS_ERASED.inc()
    log.info("erased user %s of tenant %s", user.id, user.tenant_id)
    return Written(id=user.id, position=position)


def change_password(cmd: ChangePassword, uow: UnitOfWork) -> Written:
    """The caller's own password, once they proved they know the current one. Runs argon2
    twice: the API calls it on the password pool."""
    new_password = check_password(cmd.new_password)
    me = uow.acting()
    user = own_user(me, uow.get(me.user_id))
    if not verify_password(user.password_hash, cmd.current_password):
        raise WrongPassword("currentPassword is not your current password")
    user.change_password_hash(hash_password(new_password))
    return Written(id=user.id, position=uow.save(user))


def reset_password(cmd: ResetPassword, uow: UnitOfWork) -> Written:
    """An operator at the command line (no caller) sets a user's password, e.g. the demo
    admin's, forgotten (`parley demo --new-password`). Nobody may through the API: users change
    their own (`change_password`). The same `PasswordChanged` event; the caller ends the
    user's sign-ins."""
    if uow.caller is not None:
        raise NotAllowed("only an operator at the command line resets passwords")
    new_password = check_password(cmd.new_password)
    user = uow.get(cmd.user_id)
    if not isinstance(user, User):
        raise NotFound("user not found")
    user.ensure_active()
    user.change_password_hash(hash_password(new_password))
    return Written(id=user.id, position=uow.save(user))


def new_user(tenant_id: UUID, email: str, display_name: str, role: Role, password: str) -> User:
    """A user registering with a password (checked, then hashed: argon2, on this thread)."""
    return User.register(
        tenant_id=tenant_id,
        email=email,
        display_name=display_name,
        role=role,
        password_hash=hash_password(check_password(password)),
    )


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"password must be {MIN_PASSWORD}..{MAX_PASSWORD} characters")
    return password
