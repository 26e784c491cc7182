"""The message bus: every command goes to its handler here, and every handler runs the same way.

A handler is a plain function `handler(cmd, uow, **dependencies)` (commands/chats.py, users.py,
tenants.py, credentials.py, authentication.py); `ROUTES` says which handles which command,
whether it retries on write conflicts and which aggregate its writers take turns on. The bus
gives each attempt a unit of work of its own (with the caller, explicit), retries optimistic-
concurrency conflicts with jittered back-off, lets writers to one aggregate take turns in this
process, and counts and times every command (`parley_commands_total`,
`parley_command_duration_seconds`). Dependencies a handler names after `uow` (the master key,
admission) are given by the composition root when it builds the bus."""

import functools
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands import authentication, chats, credentials, documents, tenants, users
from commands import messages as m
from commands.unit_of_work import UnitOfWork
from domain.actor import Actor
from domain.errors import Conflict, NotFound, ParleyError
from infra.eventstore.data_keys import SubjectErased
from infra.eventstore.event_store import EventStore
from infra.metrics import COMMAND_CONFLICTS, COMMAND_DURATION, COMMANDS

log = logging.getLogger(__name__)

T = TypeVar("T")
Key = Callable[[Any, Actor | None], UUID | None]


def by_chat(cmd: Any, caller: Actor | None) -> UUID:
    return cmd.chat_id  # type: ignore[no-any-return]


def by_caller(cmd: Any, caller: Actor | None) -> UUID | None:
    return caller.user_id if caller is not None else None


@dataclass(frozen=True)
class Route:
    handler: Callable[..., Any]
    retry: bool = True
    """Retry on write conflicts. Off where a conflict is the answer (a taken slug or e-mail)."""
    key: Key | None = None
    """The aggregate whose writers take turns (a chat's messages arrive in bursts)."""


ROUTES: dict[type[m.Command], Route] = {
    m.CreateTenant: Route(tenants.create_tenant, retry=False),
    m.CreatePlatformAdmin: Route(tenants.create_platform_admin),
    m.RenameTenant: Route(tenants.rename_tenant),
    m.DeactivateTenant: Route(tenants.deactivate_tenant),
    m.ChangeTenantSettings: Route(tenants.change_tenant_settings),
    m.RegisterUser: Route(users.register_user, retry=False),
    m.ChangeUserRole: Route(users.change_user_role),
    m.DeactivateUser: Route(users.deactivate_user),
    m.EraseUser: Route(users.erase_user),
    m.ChangePassword: Route(users.change_password, key=by_caller),
    m.ResetPassword: Route(users.reset_password),
    m.SetProviderKey: Route(credentials.set_provider_key),
    m.RemoveProviderKey: Route(credentials.remove_provider_key),
    m.ResealProviderKeys: Route(credentials.reseal_provider_keys),
    m.ConfigureOidc: Route(credentials.configure_oidc),
    m.RemoveOidc: Route(credentials.remove_oidc),
    m.ResealOidcSecret: Route(credentials.reseal_oidc_secret),
    m.CreateApiKey: Route(credentials.create_api_key),
    m.RevokeApiKey: Route(credentials.revoke_api_key),
    m.SignInWithOidc: Route(authentication.sign_in_with_oidc),
    m.StartChat: Route(chats.start_chat),
    m.SendMessage: Route(chats.send_message, key=by_chat),
    m.StopGeneration: Route(chats.stop_generation, retry=False),
    m.RenameChat: Route(chats.rename_chat, key=by_chat),
    m.ArchiveChat: Route(chats.archive_chat, key=by_chat),
    m.DeleteChat: Route(chats.delete_chat, key=by_chat),
    m.RecordReply: Route(chats.record_reply, key=by_chat),
    m.ExpireChat: Route(chats.expire_chat, key=by_chat),
    m.AttachKnowledge: Route(documents.attach_knowledge, key=by_chat),
    m.UploadDocument: Route(documents.upload_document),
    m.ReprocessDocument: Route(documents.reprocess_document),
    m.DeleteDocument: Route(documents.delete_document),
    m.RecordDocumentProcessed: Route(documents.record_document_processed),
    m.RecordDocumentFailed: Route(documents.record_document_failed),
    m.ExpireDocument: Route(documents.expire_document),
}


class MessageBus:
    """One per process, over one event store."""

    def __init__(self, store: EventStore, *, max_attempts: int = 20, **dependencies: Any) -> None:
        self.store = store
        self.max_attempts = max_attempts
        wanted = {kind: _dependencies(route.handler) for kind, route in ROUTES.items()}
        unknown = set(dependencies) - {name for names in wanted.values() for name in names}
        if unknown:
            raise TypeError(f"no handler takes {', '.join(sorted(unknown))}")
        # What a handler names after (cmd, uow) is bound here; None for any the composition root
        # did not give (a bus in a test or a benchmark has no admission).
        self._handlers = {
            kind: functools.partial(
                route.handler, **{name: dependencies.get(name) for name in wanted[kind]}
            )
            for kind, route in ROUTES.items()
        }
        # Striped per-aggregate turns (see run); enough stripes that unrelated aggregates rarely
        # share one (with 256, a quarter of 64 concurrent commands waited on a stranger).
        self._locks = [threading.Lock() for _ in range(4096)]

    def handle(self, command: m.Command, caller: Actor | None = None) -> Any:
        """Run `command`'s handler for `caller` (None: Parley itself, or an operator)."""
        route = ROUTES[type(command)]
        handler = self._handlers[type(command)]
        return self.run(
            route.handler.__name__,
            functools.partial(handler, command),
            retry=route.retry,
            key=route.key(command, caller) if route.key else None,
            caller=caller,
        )

    def run(
        self,
        name: str,
        attempt: Callable[[UnitOfWork], T],
        *,
        retry: bool = False,
        key: UUID | None = None,
        caller: Actor | None = None,
    ) -> T:
        """Run `attempt`, retrying on optimistic-concurrency conflicts with jittered back-off.

        Writers to the same aggregate (`key`) in this process take turns, so they do not burn
        attempts on conflicts with each other; conflicts with other processes are still retried.
        Every attempt gets a new unit of work, so a retry starts with nobody named as its actor
        until the handler establishes the caller again.
        """
        started = time.perf_counter()
        outcome = "error"
        lock = self._locks[hash(key) % len(self._locks)] if key is not None else nullcontext()
        try:
            for n in range(1, self.max_attempts + 1):
                try:
                    with lock:
                        result = attempt(UnitOfWork(self.store, caller=caller, attempt=n))
                    outcome = "ok"
                    return result
                except IntegrityError:
                    if not retry or n == self.max_attempts:
                        outcome = "conflict"
                        raise Conflict("too much contention on this item; try again") from None
                    COMMAND_CONFLICTS.labels(name).inc()
                    time.sleep(random.uniform(0, min(0.5, 0.002 * 2**n)))
            raise AssertionError("unreachable")
        except ParleyError as e:
            outcome = e.code.lower()
            raise
        except SubjectErased:
            outcome = "not_found"
            raise NotFound("not found: its data was erased") from None
        except Exception:
            log.exception("command %s failed", name)
            raise
        finally:
            COMMANDS.labels(name, outcome).inc()
            COMMAND_DURATION.labels(name).observe(time.perf_counter() - started)


def _dependencies(handler: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(handler).parameters)[2:]
