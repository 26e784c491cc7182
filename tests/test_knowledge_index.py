"""The knowledge index's contract (infra/knowledge/index.py), run against both adapters on real
servers: `PostgresKnowledge` (full-text search, exact vectors in numpy, row-level security) and
`ElasticsearchKnowledge` (BM25 and kNN in one index per model).

Every test writes into tenants of its own. Passages whose meaning matters are embedded once by
the local model; where only geometry matters, vectors are made by hand."""

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import UUID

import numpy as np
import numpy.typing as npt
import psycopg
import pytest
from elasticsearch import Elasticsearch

from infra.knowledge.embeddings import LOCAL_MODEL, LocalMiniLM
from infra.knowledge.index import (
    CANDIDATES,
    MODES,
    RRF_K,
    ChunkRecord,
    KnowledgeIndex,
    Mode,
    Passage,
    Scope,
    fuse,
)
from infra.knowledge.index_elasticsearch import ElasticsearchKnowledge
from infra.knowledge.index_postgres import PostgresKnowledge
from infra.postgres import PostgresTarget, open_pool
from infra.read_model_schema import READER_ROLE, TENANT_SETTING

DIMENSIONS = 384
OTHER_MODEL = "test/another-model"

PASSAGES = {
    "password": "To change your password, open Settings, choose Security and click Reset password.",
    "refund": "Refunds are paid back to the original card within five business days.",
    "vpn": "Connect to the office network through the VPN client before opening the intranet.",
    "vacation": "Employees get twenty-five days of paid vacation per calendar year.",
    "printer": "The third-floor printer jams on glossy paper: use the tray on the left instead.",
    "parking": "Visitors park in the underground garage; reception hands out the tickets.",
    "expenses": "Submit travel expenses with their receipts through the finance portal.",
    "laptop": "New hires receive their laptop and their badge from IT on the first morning.",
}
QUESTIONS = {
    "forgot": "I forgot my login credentials",  # no word of the password passage
    "holidays": "How many vacation days do I get?",
    "glossy": "glossy paper",
}

_positions = itertools.count(1)


@pytest.fixture(scope="session")
def embedded(minilm: LocalMiniLM) -> dict[str, npt.NDArray[np.float32]]:
    texts = {**PASSAGES, **QUESTIONS}
    return dict(zip(texts, minilm.embed(list(texts.values())), strict=True))


def unit(*weights: float) -> npt.NDArray[np.float32]:
    """A unit vector whose first coordinates are `weights` (the rest zero)."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@dataclass
class Engine:
    index: KnowledgeIndex
    other_model: KnowledgeIndex
    """The same store's index of another embedding model."""
    settle: Callable[[], None]
    """Makes acknowledged writes searchable (Elasticsearch refreshes within a second)."""

    def write(
        self,
        tenant: UUID,
        texts: list[str],
        vectors: list[npt.NDArray[np.float32]],
        *,
        document: UUID | None = None,
        owner: UUID | None = None,
        revision: int = 1,
        title: str = "handbook.md",
        index: KnowledgeIndex | None = None,
        chunk_ids: list[UUID] | None = None,
        position: int | None = None,
    ) -> list[ChunkRecord]:
        """Index one revision of a document (a new one by default) and make it searchable."""
        document = document or uuid.uuid4()
        position = position or next(_positions)
        ids = chunk_ids or [uuid.uuid4() for _ in texts]
        chunks = [
            ChunkRecord(
                chunk_id=chunk_id,
                document_id=document,
                tenant_id=tenant,
                owner_id=owner,
                revision=revision,
                index=i,
                text=text,
                title=title,
                location=f"page {i + 1}",
                start=i * 1000,
                end=i * 1000 + len(text),
                vector=vector,
                position=position,
            )
            for i, (chunk_id, text, vector) in enumerate(zip(ids, texts, vectors, strict=True))
        ]
        (index or self.index).replace_document(tenant, document, revision, chunks)
        self.settle()
        return chunks


@pytest.fixture(scope="module")
def postgres_engine(pg_target: PostgresTarget) -> Iterator[Engine]:
    """Both pools log in as the owner, as a deployment with one login does: reads take the
    reader role per transaction."""
    with (
        open_pool(pg_target.conninfo(), size=2, name="knowledge-writer") as writer,
        open_pool(pg_target.conninfo(), size=4, name="knowledge-reader") as reader,
    ):
        yield Engine(
            PostgresKnowledge(writer, reader, LOCAL_MODEL, DIMENSIONS),
            PostgresKnowledge(writer, reader, OTHER_MODEL, DIMENSIONS),
            lambda: None,
        )


@pytest.fixture(scope="module")
def elasticsearch_engine(elasticsearch_url: str) -> Iterator[Engine]:
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    base = f"parley-knowledge-test-{uuid.uuid4().hex[:8]}"
    index = ElasticsearchKnowledge(
        client, f"{base}-minilm", LOCAL_MODEL, DIMENSIONS, deletes_across=f"{base}-*"
    )
    other = ElasticsearchKnowledge(client, f"{base}-other", OTHER_MODEL, DIMENSIONS)
    try:
        assert index.ensure() == f"{base}-minilm-v1"
        other.ensure()

        def settle() -> None:
            index.refresh()
            other.refresh()

        yield Engine(index, other, settle)
    finally:
        # By name: this server refuses wildcards in deletions (destructive_requires_name).
        client.options(ignore_status=404).indices.delete(
            index=[f"{base}-minilm-v1", f"{base}-other-v1"]
        )
        client.close()


@pytest.fixture(params=["postgres", "elasticsearch"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


def tenant_scope(tenant: UUID, documents: frozenset[UUID] | None = None) -> Scope:
    """A member's scope (someone who owns none of the test's personal documents)."""
    return Scope(tenant_id=tenant, owner_id=uuid.uuid4(), document_ids=documents)


def ids(passages: list[Passage]) -> list[UUID]:
    return [p.chunk_id for p in passages]


def write_handbook(
    engine: Engine, tenant: UUID, embedded: dict[str, npt.NDArray[np.float32]]
) -> dict[str, ChunkRecord]:
    """The tenant's collection: one document, a passage per topic."""
    names = list(PASSAGES)
    chunks = engine.write(
        tenant, [PASSAGES[n] for n in names], [embedded[n] for n in names], title="handbook.md"
    )
    return dict(zip(names, chunks, strict=True))


# -- finding passages --------------------------------------------------------------------------


def test_hybrid_search_puts_the_answering_passage_first(
    engine: Engine, embedded: dict[str, npt.NDArray[np.float32]]
) -> None:
    tenant = uuid.uuid4()
    handbook = write_handbook(engine, tenant, embedded)

    found = engine.index.search(
        tenant_scope(tenant), QUESTIONS["holidays"], embedded["holidays"], first=3
    )

    assert found[0].chunk_id == handbook["vacation"].chunk_id
    best = found[0]
    assert (best.text, best.title, best.location, best.revision, best.index) == (
        PASSAGES["vacation"],
        "handbook.md",
        "page 4",
        1,
        3,
    )
    assert (best.start, best.end) == (3000, 3000 + len(PASSAGES["vacation"]))
    assert best.document_id == handbook["vacation"].document_id
    # Fused: found by both rankings, first in at least one.
    assert 1 / (RRF_K + 1) < best.score <= 2 / (RRF_K + 1)
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)


def test_bm25_finds_the_passage_holding_the_words(
    engine: Engine, embedded: dict[str, npt.NDArray[np.float32]]
) -> None:
    tenant = uuid.uuid4()
    handbook = write_handbook(engine, tenant, embedded)

    found = engine.index.search(tenant_scope(tenant), QUESTIONS["glossy"], None, mode="bm25")

    assert ids(found) == [handbook["printer"].chunk_id]
    assert found[0].score > 0


def test_a_rare_word_of_the_question_outweighs_a_common_one(engine: Engine) -> None:
    """BM25's IDF: every passage holds "office", one holds "glossy"; asked about both, the
    one with the word that tells them apart comes first."""
    tenant = uuid.uuid4()
    common = [f"The office {topic} is on the second floor." for topic in ("kitchen", "library")]
    common += [f"Office hours for {team} are posted at reception." for team in ("IT", "finance")]
    written = engine.write(
        tenant,
        [*common, "Glossy paper for the office goes in the left tray."],
        [unit(1.0)] * (len(common) + 1),
    )

    found = engine.index.search(tenant_scope(tenant), "office glossy", None, mode="bm25")

    assert found[0].chunk_id == written[-1].chunk_id
    assert set(ids(found)) == set(ids_of(written))


def test_a_word_with_an_apostrophe_inside_is_found(engine: Engine) -> None:
    """PostgreSQL keeps the quote in a URL's lexeme (`'x.org/o''neil'`) and doubles it in the
    tsvector's text."""
    tenant = uuid.uuid4()
    url = "https://files.example.org/o'neil/guide.pdf"
    written = engine.write(
        tenant, [f"Download the guide from {url} today.", "Guides are printed."], [unit(1.0)] * 2
    )

    found = engine.index.search(tenant_scope(tenant), url, None, mode="bm25")

    assert found[0].chunk_id == written[0].chunk_id


def test_vector_search_finds_a_paraphrase_that_shares_no_word(
    engine: Engine, embedded: dict[str, npt.NDArray[np.float32]]
) -> None:
    tenant = uuid.uuid4()
    handbook = write_handbook(engine, tenant, embedded)
    scope = tenant_scope(tenant)

    by_words = engine.index.search(scope, QUESTIONS["forgot"], None, mode="bm25")
    by_meaning = engine.index.search(
        scope, QUESTIONS["forgot"], embedded["forgot"], first=2, mode="vector"
    )

    assert handbook["password"].chunk_id not in ids(by_words)
    assert by_meaning[0].chunk_id == handbook["password"].chunk_id
    assert by_meaning[0].score > by_meaning[1].score


# -- scope ---------------------------------------------------------------------------------------


def test_another_tenants_passages_never_come_back(
    engine: Engine, embedded: dict[str, npt.NDArray[np.float32]]
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    write_handbook(engine, mine, embedded)
    their_handbook = write_handbook(engine, theirs, embedded)
    their_documents = frozenset(c.document_id for c in their_handbook.values())

    for mode in MODES:
        for documents in (None, their_documents):
            scope = tenant_scope(mine, documents)
            found = engine.index.search(
                scope, "glossy paper printer", embedded["glossy"], mode=mode
            )
            assert not {p.document_id for p in found} & their_documents, (mode, documents)
    assert engine.index.passages(mine, [c.chunk_id for c in their_handbook.values()]) == {}


def test_row_level_security_shows_the_reader_role_one_tenant(
    postgres_engine: Engine, pg_target: PostgresTarget
) -> None:
    """As the adapter's reads run: the reader role with a tenant set, and no WHERE at all."""
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    postgres_engine.write(mine, ["mine"], [unit(1.0)])
    postgres_engine.write(theirs, ["theirs"], [unit(1.0)])

    def as_reader(tenant: UUID | None, query: str) -> set[UUID]:
        with psycopg.connect(pg_target.conninfo()) as conn, conn.transaction():
            conn.execute(f"SET LOCAL ROLE {READER_ROLE}")
            if tenant is not None:
                conn.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(tenant)))
            return {row[0] for row in conn.execute(query).fetchall()}

    for table in ("knowledge.chunks", "knowledge.tenant_changes"):
        assert as_reader(mine, f"SELECT tenant_id FROM {table}") == {mine}
        assert as_reader(theirs, f"SELECT tenant_id FROM {table}") == {theirs}
        assert as_reader(None, f"SELECT tenant_id FROM {table}") == set()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_reader(mine, "UPDATE knowledge.chunks SET current = true RETURNING tenant_id")


def test_members_see_their_own_documents_and_the_tenants_not_other_members(
    engine: Engine,
) -> None:
    """Another member's personal passages, each closer to the question than any visible one
    and more than a ranking's candidates, are masked before ranking, not filtered after it."""
    tenant, me, colleague = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    text = "quarterly figures"
    (mine,) = engine.write(tenant, [text], [unit(0.2, 1.0)], owner=me)
    (shared,) = engine.write(tenant, [text], [unit(0.2, 0.0, 1.0)])
    theirs = engine.write(
        tenant,
        [f"{text} {text} {text}"] * (CANDIDATES + 10),
        [unit(1.0)] * (CANDIDATES + 10),
        owner=colleague,
    )

    for mode in MODES:
        found = engine.index.search(Scope(tenant, me), text, unit(1.0), first=5, mode=mode)
        assert set(ids(found)) == {mine.chunk_id, shared.chunk_id}, mode

    auditor = engine.index.search(Scope(tenant, None), text, unit(1.0), first=100, mode="vector")
    assert set(ids(auditor)) == {mine.chunk_id, shared.chunk_id, *(c.chunk_id for c in theirs)}


def test_a_scope_of_chosen_documents_ranks_only_their_passages(engine: Engine) -> None:
    """A chat's attachment still answers though the tenant's other documents have many
    stronger passages."""
    tenant = uuid.uuid4()
    text = "deployment checklist"
    stronger = [f"{text} {text} {text}"] * (CANDIDATES + 10)
    engine.write(tenant, stronger, [unit(1.0)] * len(stronger))
    attachment = engine.write(tenant, [text, "unrelated words"], [unit(0.3, 1.0), unit(0.0, 1.0)])
    scope = tenant_scope(tenant, frozenset({attachment[0].document_id}))

    for mode in MODES:
        found = engine.index.search(scope, text, unit(1.0), first=1, mode=mode)
        assert ids(found) == [attachment[0].chunk_id], mode
    nothing = tenant_scope(tenant, frozenset())
    assert engine.index.search(nothing, text, unit(1.0)) == []


# -- revisions and deletion ----------------------------------------------------------------------


def test_a_new_revision_is_searched_instead_of_the_old_one_which_citations_still_read(
    engine: Engine,
) -> None:
    tenant, document = uuid.uuid4(), uuid.uuid4()
    scope = tenant_scope(tenant)
    old = engine.write(tenant, ["old pricing table"], [unit(1.0)], document=document)
    assert ids(engine.index.search(scope, "pricing", unit(1.0), mode="vector")) == ids_of(old)

    new = engine.write(
        tenant,
        ["new pricing table", "pricing footnotes"],
        [unit(1.0, 0.1), unit(1.0, 0.2)],
        document=document,
        revision=2,
    )

    for mode in MODES:
        found = engine.index.search(scope, "pricing table", unit(1.0), first=5, mode=mode)
        assert set(ids(found)) <= set(ids_of(new)) and found, mode
        assert {p.revision for p in found} == {2}
    cited = engine.index.passages(tenant, [old[0].chunk_id, new[0].chunk_id, uuid.uuid4()])
    assert cited[old[0].chunk_id].text == "old pricing table"
    assert cited[old[0].chunk_id].revision == 1 and cited[old[0].chunk_id].score == 0
    assert cited[new[0].chunk_id].revision == 2 and len(cited) == 2


def test_replaying_an_older_revision_does_not_make_it_current_again(engine: Engine) -> None:
    tenant, document = uuid.uuid4(), uuid.uuid4()
    scope = tenant_scope(tenant)
    first = engine.write(tenant, ["first draft"], [unit(1.0)], document=document)
    second = engine.write(tenant, ["second draft"], [unit(1.0)], document=document, revision=2)

    # Replays: the old revision's write again (its position), then the new one's.
    engine.write(
        tenant,
        ["first draft"],
        [unit(1.0)],
        document=document,
        chunk_ids=ids_of(first),
        position=first[0].position,
    )
    engine.write(
        tenant,
        ["second draft"],
        [unit(1.0)],
        document=document,
        revision=2,
        chunk_ids=ids_of(second),
        position=second[0].position,
    )
    # And the old revision processed again later (its chunks replaced, never current).
    engine.write(tenant, ["first draft"], [unit(1.0)], document=document, chunk_ids=ids_of(first))

    for mode in MODES:
        found = engine.index.search(scope, "draft", unit(1.0), first=5, mode=mode)
        assert ids(found) == ids_of(second), mode
    assert set(engine.index.passages(tenant, ids_of(first) + ids_of(second))) == set(
        ids_of(first) + ids_of(second)
    )


def test_replaying_an_older_write_of_the_same_revision_changes_nothing(engine: Engine) -> None:
    tenant, document = uuid.uuid4(), uuid.uuid4()
    scope = tenant_scope(tenant)
    before = engine.write(tenant, ["draft one", "draft two"], [unit(1.0)] * 2, document=document)
    # Processed again later, into fewer passages (the first one's id kept).
    after = engine.write(
        tenant,
        ["draft one, amended"],
        [unit(1.0)],
        document=document,
        chunk_ids=[before[0].chunk_id],
    )

    engine.write(
        tenant,
        ["draft one", "draft two"],
        [unit(1.0)] * 2,
        document=document,
        chunk_ids=ids_of(before),
        position=before[0].position,
    )

    for mode in MODES:
        found = engine.index.search(scope, "draft", unit(1.0), first=5, mode=mode)
        assert [(p.chunk_id, p.text) for p in found] == [(after[0].chunk_id, after[0].text)], mode


def ids_of(chunks: list[ChunkRecord]) -> list[UUID]:
    return [c.chunk_id for c in chunks]


def test_deleting_documents_removes_every_revision_and_can_be_repeated(engine: Engine) -> None:
    tenant, document, kept = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    scope = tenant_scope(tenant)
    first = engine.write(tenant, ["contract terms"], [unit(1.0)], document=document)
    second = engine.write(tenant, ["contract terms v2"], [unit(1.0)], document=document, revision=2)
    other = engine.write(tenant, ["contract template"], [unit(0.5, 1.0)], document=kept)

    for _ in range(2):
        engine.index.delete_documents(tenant, [document, uuid.uuid4()])
        engine.settle()
        for mode in MODES:
            found = engine.index.search(scope, "contract", unit(1.0), first=10, mode=mode)
            assert ids(found) == ids_of(other), mode
        assert engine.index.passages(tenant, ids_of(first) + ids_of(second)) == {}
    engine.index.delete_documents(tenant, [])


def test_erasing_an_owner_removes_their_documents_only_and_can_be_repeated(
    engine: Engine,
) -> None:
    tenant, erased, colleague = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    auditor = Scope(tenant, None)
    gone = engine.write(tenant, ["salary notes"], [unit(1.0)], owner=erased)
    gone += engine.write(
        tenant,
        ["salary notes v2"],
        [unit(1.0)],
        document=gone[0].document_id,
        owner=erased,
        revision=2,
    )
    gone += engine.write(tenant, ["salary review"], [unit(1.0)], owner=erased)
    kept = engine.write(tenant, ["salary bands"], [unit(1.0)], owner=colleague)
    kept += engine.write(tenant, ["salary policy"], [unit(1.0)])

    for _ in range(2):
        engine.index.delete_owner(tenant, erased)
        engine.settle()
        for mode in MODES:
            found = engine.index.search(auditor, "salary", unit(1.0), first=10, mode=mode)
            assert set(ids(found)) == set(ids_of(kept)), mode
        assert engine.index.passages(tenant, ids_of(gone)) == {}


def test_deletions_and_erasures_reach_every_models_passages(engine: Engine) -> None:
    """The serving model's projection deletes; another model's index (built for a switch, or
    served before one) must not keep a deleted document's text either."""
    tenant, owner = uuid.uuid4(), uuid.uuid4()
    memo = engine.write(tenant, ["audit memo"], [unit(1.0)], owner=owner)
    minutes = engine.write(tenant, ["board minutes"], [unit(1.0)])
    for chunks in (memo, minutes):
        engine.write(
            tenant,
            [c.text for c in chunks],
            [unit(0.0, 1.0)],
            document=chunks[0].document_id,
            owner=chunks[0].owner_id,
            chunk_ids=ids_of(chunks),
            index=engine.other_model,
        )

    engine.index.delete_documents(tenant, [minutes[0].document_id])
    engine.index.delete_owner(tenant, owner)
    engine.settle()

    for index in (engine.index, engine.other_model):
        assert index.passages(tenant, ids_of(memo) + ids_of(minutes)) == {}


def test_an_index_of_another_model_keeps_its_own_vectors(engine: Engine) -> None:
    tenant = uuid.uuid4()
    scope = tenant_scope(tenant)
    (chunk,) = engine.write(tenant, ["release notes"], [unit(1.0)])

    for mode in MODES:
        assert engine.other_model.search(scope, "release notes", unit(1.0), mode=mode) == []
    # The same passage embedded by the other model, as its projection would write it.
    engine.write(
        tenant,
        ["release notes"],
        [unit(0.0, 1.0)],
        document=chunk.document_id,
        chunk_ids=[chunk.chunk_id],
        index=engine.other_model,
    )
    (mine,) = engine.index.search(scope, "release", unit(1.0), mode="vector")
    (theirs,) = engine.other_model.search(scope, "release", unit(0.0, 1.0), mode="vector")
    assert mine.chunk_id == theirs.chunk_id == chunk.chunk_id
    assert mine.score > 0.99 and theirs.score > 0.99


# -- any question -------------------------------------------------------------------------------

ODD_QUESTIONS = [
    "",
    "   ",
    '"',
    '"unclosed phrase',
    "-",
    "--- -- -",
    "-printer",
    "or OR or",
    "printer AND OR NOT (",
    "a & b | !c <-> d:* 'e'",
    "title:printer text:*",
    "\\ \\\\ ' '' {}[]()~^*?/",
    "<script>alert(1)</script>",
    "üñíçødé 打印机 プリンター",
    "the of and",
    " ".join(f"word{i}" for i in range(1400))[:10_000],
    "printer " * 1250,
]


def test_any_question_text_is_answered_without_an_error(
    engine: Engine, embedded: dict[str, npt.NDArray[np.float32]]
) -> None:
    """The API refuses NUL characters before a question gets here; anything else is asked."""
    tenant = uuid.uuid4()
    write_handbook(engine, tenant, embedded)

    for question in ODD_QUESTIONS:
        for mode in MODES:
            found = engine.index.search(
                tenant_scope(tenant), question, embedded["glossy"], mode=mode
            )
            assert all(isinstance(p, Passage) for p in found), (question[:40], mode)
            if mode == "bm25" and question in ("", "   ", "the of and"):
                assert found == [], question


def test_a_vector_search_needs_a_vector(engine: Engine) -> None:
    mode: Mode
    for mode in ("hybrid", "vector"):
        with pytest.raises(ValueError):
            engine.index.search(tenant_scope(uuid.uuid4()), "question", None, mode=mode)


# -- threads -------------------------------------------------------------------------------------


def test_searches_from_several_threads_see_writes_as_they_land(postgres_engine: Engine) -> None:
    """The vector and word caches are shared: threads searching while revisions are written
    each get a whole revision, never a mix or an error."""
    tenant, document = uuid.uuid4(), uuid.uuid4()
    scope = tenant_scope(tenant)
    postgres_engine.write(tenant, ["policy r1"] * 3, [unit(1.0)] * 3, document=document)
    seen: list[set[int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def search() -> None:
        try:
            while True:
                for mode in ("vector", "bm25"):
                    found = postgres_engine.index.search(scope, "policy", unit(1.0), mode=mode)
                    seen.append({p.revision for p in found})
                if done.is_set():
                    return
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    for revision in range(2, 8):
        postgres_engine.write(
            tenant,
            [f"policy r{revision}"] * 3,
            [unit(1.0)] * 3,
            document=document,
            revision=revision,
        )
    done.set()
    for thread in threads:
        thread.join()

    assert errors == []
    assert all(len(revisions) == 1 for revisions in seen) and seen
    found = postgres_engine.index.search(scope, "policy", unit(1.0), mode="vector")
    assert {p.revision for p in found} == {7}


# -- fusion --------------------------------------------------------------------------------------


def test_fusion_adds_reciprocal_ranks_and_keeps_first_appearance_on_ties() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))

    fused = fuse([[a, b, c], [c, a, d]])

    assert [item for item, _ in fused] == [a, c, b, d]
    assert dict(fused)[a] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert dict(fused)[d] == pytest.approx(1 / (RRF_K + 3))
    assert [item for item, _ in fuse([[b], [a]])] == [b, a]
    assert fuse([[], []]) == []
