"""Bulk writes to Elasticsearch that are idempotent by external version, for every projection
that writes there (the chat search index, the knowledge index)."""

from typing import Any

from elasticsearch import Elasticsearch, helpers


def failed_actions(
    client: Elasticsearch, actions: list[dict[str, Any]], *, require_alias: bool = True
) -> list[dict[str, Any]]:
    """Bulk-write `actions` in order; the items that neither applied nor were already superseded
    (empty: all done). `require_alias`: a missing alias fails instead of auto-creating an index
    (off only for deletions aimed at concrete indexes a search found)."""
    if not actions:
        return []
    results = helpers.streaming_bulk(
        client, actions, raise_on_error=False, yield_ok=False, require_alias=require_alias
    )
    return [item for _, item in results if not superseded(item)]


def superseded(item: dict[str, Any]) -> bool:
    """A version conflict (a newer or equal version is there already) or deleting a document
    that is already gone: the action's effect is in the index, or was overtaken."""
    ((op, result),) = item.items()
    status = result.get("status")
    if status == 409:
        return bool(result.get("error", {}).get("type") == "version_conflict_engine_exception")
    return op == "delete" and status == 404 and result.get("result") == "not_found"


def describe(item: dict[str, Any]) -> str:
    """A failed item without its document (its text may be personal data: keep it out of logs)."""
    ((op, result),) = item.items()
    error = result.get("error")
    reason = f"{error.get('type')}: {error.get('reason')}" if isinstance(error, dict) else error
    return f"{op} {result.get('_id')} status {result.get('status')} {reason}"
