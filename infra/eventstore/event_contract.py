"""The event contract for consumers of the Kafka topic, as the files under docs/events/: a JSON
Schema for every event type and version (`event_schemas`), the envelope's schema
(`record_schemas`) and the AsyncAPI document (`asyncapi`).

Versions: the current `class_version` of each event class is generated; the schema file of an
older version stays in docs/events/schemas unchanged, since the topic keeps its records forever.
Within a version only new optional fields are allowed; `write_contract` refuses anything else.
"""

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.eventstore.asyncapi import asyncapi_document
from infra.eventstore.event_schemas import (
    KNOWN_VALUES,
    ContractError,
    breaking_changes,
    event_schema,
    event_types,
)
from infra.eventstore.record_schemas import ENVELOPE_FILE, SCHEMA_DIR, envelope_schema

ASYNCAPI_FILE = "asyncapi.yaml"
SCHEMA_FILE = re.compile(r"^(?P<type>.+)\.v(?P<version>[1-9][0-9]*)\.json$")


def contract(out_dir: Path) -> dict[Path, str]:
    """Every generated file of the contract under out_dir (docs/events) and its text.

    Schema files of older versions found in out_dir/schemas are kept as they are and listed in
    the AsyncAPI document; a changed schema of an existing version must only add optional fields.
    """
    schema_dir = out_dir / SCHEMA_DIR
    current = event_types()
    fields = {(e.name, f.name) for e in current for f in dataclasses.fields(e.cls)}
    for unknown in sorted(set(KNOWN_VALUES) - fields):
        raise ContractError(f"KNOWN_VALUES names {'.'.join(unknown)}, which no event has")
    files: dict[Path, str] = {schema_dir / ENVELOPE_FILE: _json(envelope_schema())}
    for event in current:
        schema = event_schema(event)
        path = schema_dir / event.file_name
        if path.exists():
            problems = breaking_changes(json.loads(path.read_text()), schema)
            if problems:
                raise ContractError(
                    f"{event.name} v{event.version} would change incompatibly ("
                    + "; ".join(problems)
                    + f"): raise class_version of {event.cls.__qualname__} to "
                    f"{event.version + 1} and add upcast_v{event.version}_v{event.version + 1} "
                    "(docs/events/README.md, Versions)"
                )
        files[path] = _json(schema)
    versions = {(e.name, e.version) for e in current} | set(older_versions(out_dir))
    files[out_dir / ASYNCAPI_FILE] = _yaml(asyncapi_document(sorted(versions)))
    return files


def older_versions(out_dir: Path) -> list[tuple[str, int]]:
    """(type, version) of the schema files kept from earlier versions of current event types."""
    latest = {e.name: e.version for e in event_types()}
    kept = []
    for path in sorted((out_dir / SCHEMA_DIR).glob("*.json")):
        match = SCHEMA_FILE.match(path.name)
        if match and int(match["version"]) < latest.get(match["type"], 0):
            kept.append((match["type"], int(match["version"])))
    return kept


def stale_files(out_dir: Path) -> list[Path]:
    """Files in out_dir/schemas that describe nothing Parley records (neither current nor kept)."""
    expected = set(contract(out_dir)) | {
        out_dir / SCHEMA_DIR / f"{name}.v{version}.json"
        for name, version in older_versions(out_dir)
    }
    return sorted(p for p in (out_dir / SCHEMA_DIR).glob("*") if p not in expected)


def write_contract(out_dir: Path) -> list[Path]:
    """Write the schemas of every event type's current version, the envelope schema and the
    AsyncAPI document under out_dir (docs/events); return the paths written."""
    files = contract(out_dir)
    (out_dir / SCHEMA_DIR).mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block style for long and multi-line text, so the AsyncAPI document reads like prose."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # repeat shared values instead of writing &anchors


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else ">" if len(value) > 80 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _yaml(value: dict[str, Any]) -> str:
    header = (
        "# Generated from the domain's event classes by infra/eventstore/event_contract.py: "
        "do not edit.\n"
    )
    return header + yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


__all__ = ["ContractError", "contract", "stale_files", "write_contract"]

if __name__ == "__main__":
    for written in write_contract(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events")):
        print(written)
