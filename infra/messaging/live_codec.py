"""Live items on the wire between processes (Redis pub/sub, PostgreSQL NOTIFY): JSON with the
item's kind and fields; UUIDs and times as strings. Encoded by orjson straight from the
dataclass (a reply's every coalesced delta crosses here)."""

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from infra.messaging.live_items import ChatRemoved, MessageRow, ReplyDelta, StopRequested

_KINDS: dict[str, type] = {
    "message": MessageRow,
    "delta": ReplyDelta,
    "removed": ChatRemoved,
    "stop": StopRequested,
}
_UUID_FIELDS = {"message_id", "tenant_id", "chat_id", "author_id", "reply_to"}


def encode(item: Any) -> str:
    kind = next(k for k, cls in _KINDS.items() if isinstance(item, cls))
    return orjson.dumps({"kind": kind, "item": item}).decode()


def decode(payload: str | bytes) -> Any:
    data = orjson.loads(payload)
    fields = data["item"]
    for key in _UUID_FIELDS & fields.keys():
        if fields[key] is not None:
            fields[key] = UUID(fields[key])
    if "created_at" in fields:
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    return _KINDS[data["kind"]](**fields)
