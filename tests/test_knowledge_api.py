"""Knowledge end to end through a real `parley serve` (the embedded default, and PostgreSQL with
Elasticsearch; the local embedding model): a PDF uploaded over HTTP is processed in the
background, searched, attached to a chat, and the echo model's reply cites the right passage;
another tenant sees none of it; deleting the document leaves the reply's citations as erased;
bad uploads get typed errors."""

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import Server, target_url
from tests.conftest import own_database
from tests.test_knowledge_extraction import print_to_pdf

DOCUMENT = """query($id: ID!, $p: Int) { document(id: $id, afterPosition: $p) { id title status
    revision chunks pages mediaType embeddingModel failureCode failureReason collection
    ownerId } }"""
SEARCH = """query($q: String!, $m: RetrievalMode) { searchKnowledge(query: $q, mode: $m) {
    documentId documentRevision chunkId chunkIndex title location text score } }"""
MESSAGES = """query($id: ID!) { chat(id: $id) { messages { nodes { role content
    citations { rank cited score documentId documentRevision chunkId erased title location
    text } } } } }"""
START = """mutation { startChat(input: {title: "Handbook", model: "echo"}) { chatId } }"""
ATTACH = """mutation($i: AttachKnowledgeInput!) { attachKnowledge(input: $i) { position } }"""
SEND = """mutation($i: SendMessageInput!) { sendMessage(input: $i) { position } }"""
DELETE = """mutation($id: ID!) { deleteDocument(input: {documentId: $id}) { position } }"""
UPLOAD = """mutation($i: UploadDocumentInput!) { uploadDocument(input: $i) {
    documentId position duplicate } }"""

PAGES = [
    (
        "Travel policy",
        "Employees book trains for journeys under four hours. Flights need a manager's "
        "approval before booking. Hotels are booked through the travel desk, which keeps a list "
        "of approved hotels in every city where the company has an office. Taxis are allowed "
        "after nine in the evening or when public transport is not running. First class is "
        "never reimbursed, whatever the length of the journey. Travel insurance is provided by "
        "the company for every business trip abroad; claims go to the travel desk directly.",
    ),
    (
        "Expenses",
        "Receipts for expenses must be submitted within thirty days through the finance "
        "portal. Late claims are refused unless a director approves them. Meals are reimbursed "
        "up to a daily allowance that depends on the country. Alcohol is never reimbursed. "
        "Each claim needs the original receipt or a clear photograph of it. Card statements "
        "alone are not accepted as proof of an expense. Reimbursements are paid with the next "
        "monthly salary once the claim has been approved by the employee's manager.",
    ),
    (
        "Security",
        "Laptops are encrypted with full-disk encryption and locked after five minutes. "
        "Passwords are at least sixteen characters long and never reused between services. "
        "Lost devices are reported to the service desk within one hour of noticing the loss. "
        "Visitors sign in at reception and are accompanied at all times inside the offices. "
        "Confidential papers go in the locked shredding bins on every floor, not in ordinary "
        "waste. Software is installed only from the company's own catalogue of approved tools.",
    ),
]


@pytest.fixture(scope="module")
def handbook_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    body = "".join(
        f'<section style="break-after: page"><h1>{title}</h1><p>{text}</p></section>'
        for title, text in PAGES
    )
    return print_to_pdf(
        f"<!doctype html><html><body>{body}</body></html>", tmp_path_factory.mktemp("pdf")
    )


@pytest.fixture(scope="module")
def es_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, elasticsearch_url: str
) -> Iterator[Server]:
    """`parley serve` on PostgreSQL with Elasticsearch: passages in an Elasticsearch index."""
    with own_database(postgres_url) as database:
        srv = Server(
            tmp_path_factory.mktemp("knowledge-es"),
            {
                "PARLEY_DATABASE_URL": target_url(database),
                "PARLEY_ELASTICSEARCH_URL": elasticsearch_url,
                "PARLEY_ELASTICSEARCH_INDEX": f"parley-kn-{uuid.uuid4().hex[:8]}",
            },
            args=("--workers", "1"),
        ).start()
        yield srv
        srv.stop()


@pytest.fixture(params=["embedded", "elasticsearch"])
def engine(request: pytest.FixtureRequest) -> Server:
    """The embedded default (PostgreSQL full-text and exact vectors) or Elasticsearch."""
    name = "server" if request.param == "embedded" else "es_server"
    server: Server = request.getfixturevalue(name)
    return server


def upload(server: Server, token: str, data: bytes, name: str, **fields: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/documents",
        files={"file": (name, data, "application/octet-stream")},
        data=fields,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def ready(user: ApiClient, document_id: str, position: int) -> dict:
    def check() -> dict | None:
        doc = user.run(DOCUMENT, {"id": document_id, "p": position})["document"]
        return doc if doc["status"] != "PROCESSING" else None

    return wait_for(check, f"document {document_id} to be processed")


def bearer(user: ApiClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}"}


def sign_in(api: ApiClient, tenant: dict) -> ApiClient:
    return api.login(tenant["slug"], tenant["email"], tenant["password"])


def test_a_pdf_is_processed_searched_and_cited_and_its_deletion_erases_the_citations(
    engine: Server, handbook_pdf: bytes
) -> None:
    server = engine
    user = sign_in(ApiClient(server.url), server.create_tenant())
    sent = upload(server, user.token or "", handbook_pdf, "handbook.pdf")
    assert sent.status_code == 201, sent.text
    document_id = sent.json()["documentId"]

    doc = ready(user, document_id, sent.json()["position"])
    assert doc["status"] == "READY", doc
    assert (doc["pages"], doc["mediaType"], doc["title"]) == (3, "application/pdf", "handbook.pdf")
    assert doc["embeddingModel"] == "local/all-minilm-l6-v2-q" and doc["chunks"] >= 1
    assert doc["collection"] == "PERSONAL" and doc["ownerId"] == user.login_payload["user"]["id"]

    question = "How long do I have to hand in my receipts?"
    for mode in ("HYBRID", "VECTOR", "BM25"):
        query = question if mode != "BM25" else "receipts submitted"
        best = user.run(SEARCH, {"q": query, "m": mode})["searchKnowledge"][0]
        assert "thirty days" in best["text"], (mode, best)
        assert best["location"] == "page 2" and best["documentId"] == document_id

    chat_id = user.run(START)["startChat"]["chatId"]
    user.run(ATTACH, {"i": {"chatId": chat_id, "documentIds": [document_id]}})
    user.run(SEND, {"i": {"chatId": chat_id, "content": question}})

    def reply() -> dict | None:
        nodes = user.run(MESSAGES, {"id": chat_id})["chat"]["messages"]["nodes"]
        return nodes[1] if len(nodes) == 2 else None

    answer = wait_for(reply, "the grounded reply")
    # The echo model shows the passages it was given, numbered as the prompt numbers them.
    assert "The passages I was given" in answer["content"] and "thirty days" in answer["content"]
    first = answer["citations"][0]
    assert (first["rank"], first["cited"], first["erased"]) == (1, True, False)
    assert (first["documentId"], first["documentRevision"]) == (document_id, 1)
    assert first["location"] == "page 2" and "thirty days" in first["text"]

    user.run(DELETE, {"id": document_id})

    def erased() -> dict | None:
        nodes = user.run(MESSAGES, {"id": chat_id})["chat"]["messages"]["nodes"]
        citation = nodes[1]["citations"][0]
        return citation if citation["erased"] else None

    gone = wait_for(erased, "the citation to show as erased", timeout=30)
    assert gone["text"] is None and gone["title"] is None and gone["chunkId"] == first["chunkId"]
    assert user.run(SEARCH, {"q": question, "m": "HYBRID"})["searchKnowledge"] == []
    with pytest.raises(GraphQLFailed) as missing:
        user.run(DOCUMENT, {"id": document_id})
    assert missing.value.codes == ["NOT_FOUND"]


def test_another_tenant_can_neither_find_nor_read_nor_attach_a_document(
    server: Server, api: ApiClient, handbook_pdf: bytes
) -> None:
    owner = sign_in(api, server.create_tenant())
    stranger = sign_in(api, server.create_tenant())
    sent = upload(server, owner.token or "", handbook_pdf, "handbook.pdf")
    document_id = sent.json()["documentId"]
    ready(owner, document_id, sent.json()["position"])

    assert (
        stranger.run(SEARCH, {"q": "receipts thirty days", "m": "HYBRID"})["searchKnowledge"] == []
    )
    with pytest.raises(GraphQLFailed) as read:
        stranger.run(DOCUMENT, {"id": document_id})
    chat_id = stranger.run(START)["startChat"]["chatId"]
    with pytest.raises(GraphQLFailed) as attach:
        stranger.run(ATTACH, {"i": {"chatId": chat_id, "documentIds": [document_id]}})
    with pytest.raises(GraphQLFailed) as delete:
        stranger.run(DELETE, {"id": document_id})
    assert read.value.codes == attach.value.codes == delete.value.codes == ["NOT_FOUND"]
    fetched = httpx.get(f"{server.url}/documents/{document_id}", headers=bearer(owner))
    assert fetched.status_code == 200 and fetched.content == handbook_pdf
    assert fetched.headers["content-type"] == "application/pdf"
    assert "handbook.pdf" in fetched.headers["content-disposition"]
    refused = httpx.get(f"{server.url}/documents/{document_id}", headers=bearer(stranger))
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "NOT_FOUND"
    assert handbook_pdf[:64] not in refused.content
    assert owner.run(DOCUMENT, {"id": document_id})["document"]["status"] == "READY"


def test_bad_uploads_get_typed_errors_and_record_nothing(
    server: Server, api: ApiClient, tenant: dict, tmp_path: Path
) -> None:
    user = sign_in(api, tenant)
    token = user.token or ""
    png = upload(server, token, b"\x89PNG\r\n\x1a\n" + bytes(64), "notes.pdf")
    assert png.status_code == 400 and png.json()["error"]["code"] == "BAD_USER_INPUT"
    assert "PNG image" in png.json()["error"]["message"]
    empty = upload(server, token, b"", "empty.txt")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "BAD_USER_INPUT"
    anonymous = httpx.post(f"{server.url}/documents", files={"file": ("a.txt", b"hello")})
    assert anonymous.status_code == 401
    tenant_wide = upload(server, token, b"hello", "a.txt", collection="tenant")
    assert tenant_wide.status_code == 201, tenant_wide.text  # the tenant's admin may
    nonsense = upload(server, token, b"hello", "a.txt", collection="everyone")
    assert nonsense.status_code == 400
    garbled = httpx.post(
        f"{server.url}/documents",
        content=b"--xx\r\nnot a part",
        headers={**bearer(user), "Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == "BAD_USER_INPUT"

    with pytest.raises(GraphQLFailed) as bad_base64:
        user.run(UPLOAD, {"i": {"filename": "a.txt", "contentBase64": "%%%"}})
    assert bad_base64.value.codes == ["BAD_USER_INPUT"]
    first = user.run(
        UPLOAD,
        {
            "i": {
                "filename": "notes.md",
                "contentBase64": base64.b64encode(b"# Notes\n\nParley keeps notes.").decode(),
                "contentType": "text/markdown",
                "clientMutationId": "notes-1",
            }
        },
    )["uploadDocument"]
    again = user.run(
        UPLOAD,
        {"i": {"filename": "other.md", "contentBase64": "aGk=", "clientMutationId": "notes-1"}},
    )["uploadDocument"]
    assert again["duplicate"] and again["documentId"] == first["documentId"]
    doc = ready(user, first["documentId"], first["position"])
    assert doc["status"] == "READY" and doc["mediaType"] == "text/markdown"
