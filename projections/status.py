"""What `parley projections status` reports: position, head, lag, state, failures."""

import time
from dataclasses import dataclass

from psycopg import Connection

from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import FollowerRecord, all_followers


@dataclass(frozen=True)
class FollowerStatus:
    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    state: str
    updated_seconds_ago: float
    failure: str | None


def follower_statuses(store: EventStore, conn: Connection) -> list[FollowerStatus]:
    head = store.head()
    return [_status(store, record, head) for record in all_followers(conn)]


def _status(store: EventStore, record: FollowerRecord, head: int) -> FollowerStatus:
    lag = max(0, head - record.position)
    lag_seconds = 0.0
    if lag:
        try:
            pending = store.read(record.position, 1)
            occurred = store.decode(pending[0]).timestamp if pending else None
        except Exception:  # undecodable: the follower reports it as its failure
            occurred = None
        if occurred is not None:
            lag_seconds = max(0.0, time.time() - occurred.timestamp())
    failure = None
    if record.error is not None:
        failure = (
            f"event {record.error_position} ({record.error_topic}) failed "
            f"{record.error_attempts}x since {record.error_since:%Y-%m-%d %H:%M:%S}: {record.error}"
        )
    if failure:
        state = "failing"
    elif record.name.endswith("@rebuild"):
        state = "rebuilding"
    elif lag:
        state = "behind"
    else:
        state = "caught up"
    return FollowerStatus(
        name=record.name,
        position=record.position,
        head=head,
        lag_events=lag,
        lag_seconds=round(lag_seconds, 3),
        state=state,
        updated_seconds_ago=round(time.time() - record.updated_at.timestamp(), 1),
        failure=failure,
    )
