"""`parley knowledge ingest` (a directory of files, as a user, then following their processing)
and `parley knowledge rebuild` (another embedding model's index built beside the serving one,
here an OpenAI-compatible server's: a local one speaking `/v1/embeddings`), against the session's
`parley serve`."""

import json
import subprocess
from pathlib import Path

from testbed.client import ApiClient
from testbed.llm_fakes import openai as wire
from testbed.llm_fakes.server import FakeProviderServer
from testbed.processes import PARLEY, ROOT, Server

DOCUMENTS = """query($p: Int) { documents(first: 20, afterPosition: $p) { nodes { title status
    failureCode } } }"""


def test_ingest_uploads_a_directory_as_a_user_and_follows_the_processing(
    server: Server, api: ApiClient, tenant: dict, tmp_path: Path
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "llamas.md").write_text("# Llamas\n\nLlamas hum when they are calm.\n")
    (tmp_path / "notes" / "alpacas.txt").write_text("Alpacas are shorn once a year.\n")
    (tmp_path / "notes" / "blank.txt").write_text("   \n")
    (tmp_path / "notes" / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    (tmp_path / "notes" / ".hidden.md").write_text("not a document")
    args = ["knowledge", "ingest", str(tmp_path / "notes"), "--tenant", tenant["slug"]]
    args += ["--as", tenant["email"], "--once", "--wait"]

    done = server.cli(*args)

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1, done.stderr  # the image and the blank file did not make it
    by_file = {Path(line["file"]).name: line for line in lines}
    assert set(by_file) == {"llamas.md", "alpacas.txt", "blank.txt", "photo.png"}
    assert "PNG image" in by_file["photo.png"]["error"]
    assert "processing failed" in done.stderr and "ingest" in done.stderr  # the progress bars
    user = api.login(tenant["slug"], tenant["email"], tenant["password"])
    head = server.settled_head()
    documents = user.run(DOCUMENTS, {"p": head})["documents"]["nodes"]
    assert sorted((d["title"], d["status"], d["failureCode"]) for d in documents) == [
        ("alpacas.txt", "READY", None),
        ("blank.txt", "FAILED", "UNREADABLE_DOCUMENT"),
        ("llamas.md", "READY", None),
    ]

    again = server.cli(*args[:-1])  # --once: the same paths are not uploaded twice
    assert all(json.loads(line).get("duplicate") for line in again.stdout.splitlines()[:3])


def test_rebuild_builds_another_models_index_beside_the_serving_one(server: Server) -> None:
    with FakeProviderServer(default=wire.embeddings_answer) as provider:
        env = {
            **server.env,
            "PARLEY_LLM_COMPATIBLE": json.dumps({"vllm": {"base_url": f"{provider.url}/v1"}}),
            "PARLEY_EMBEDDING_DIMENSIONS": str(wire.EMBEDDING_DIMENSIONS),
        }
        done = subprocess.run(
            [*PARLEY, "knowledge", "rebuild", "--model", "vllm/bge-small-en-v1.5"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "PARLEY_EMBEDDING_MODEL=vllm/bge-small-en-v1.5" in done.stdout
        embedded = [r for r in provider.requests if r.path.endswith("/embeddings")]
    assert embedded, "no passage was embedded by the new model"
    status = server.cli("projections", "status", "--json")
    followers = {f["name"]: f for f in json.loads(status.stdout)}
    rebuilt = followers["knowledge:vllm/bge-small-en-v1.5"]
    serving = followers["knowledge:local/all-minilm-l6-v2-q"]
    assert rebuilt["position"] > 0 and serving["position"] > 0
