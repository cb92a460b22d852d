"""The Qdrant backend, in Qdrant's embedded local mode (the client API a cluster speaks).

Its searches must give the hits an index folder gives for the same documents and vectors:
the same passages in the same order, BM25 scores equal, dense scores equal to float
rounding, filters applied inside the engine.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from rag.cli import main
from rag.errors import (
    DocumentNotFoundError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidInputError,
)
from rag.index.folder import PassageIndex
from rag.index.open import backend_of, is_uri, open_index
from rag.index.qdrant import QdrantIndex
from rag.indexing.bundled import corpus_dir
from rag.indexing.workflow import add_documents, build_index
from rag.search.retriever import Retriever
from rag.types import Document, Filters
from tests.conftest import doc_by_title
from tests.fakes import TieFreeHashEmbedder

pytest.importorskip("qdrant_client")

QUESTIONS = ["Who is the spokesman for Dostum's party?", "Who is the governor of Balkh?",
             "Which IMU leader was killed in a U.S. drone attack?", "Jamiat-e Islami Junbish alliance"]


@pytest.fixture(scope="module")
def tie_free_embedder() -> TieFreeHashEmbedder:
    return TieFreeHashEmbedder()


@pytest.fixture(scope="module")
def folder_index(tie_free_embedder, corpus_docs) -> PassageIndex:
    return build_index(corpus_docs, tie_free_embedder)


@pytest.fixture
def qdrant(tmp_path, tie_free_embedder, corpus_docs):
    with QdrantIndex.create(f"qdrant:{tmp_path}/q/news", tie_free_embedder) as index:
        add_documents(index, corpus_docs)
        yield index


def _same_hits(a, b, rel=0.0):
    assert [h.passage for h in a] == [h.passage for h in b]
    assert [h.document for h in a] == [h.document for h in b]
    assert [h.rank for h in a] == [h.rank for h in b]
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5, rel=rel)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("fusion", ["convex", "rrf"])
def test_searches_give_the_hits_of_the_folder_index(qdrant, folder_index, mode, fusion):
    ours = Retriever(qdrant, mode=mode, fusion=fusion).search_batch(QUESTIONS, 8)
    folder = Retriever(folder_index, mode=mode, fusion=fusion).search_batch(QUESTIONS, 8)
    for a, b in zip(ours, folder):
        assert a
        _same_hits(a, b)


@pytest.mark.parametrize("filters", [
    Filters(since=date(2015, 1, 1), until=date(2015, 12, 31)),
    Filters(until=date(2014, 12, 31)),
    Filters(authors=("waheed orya",)),
    Filters(sources=("No Such Outlet",)),
])
def test_filters_run_in_the_engine_as_they_do_on_a_folder(qdrant, folder_index, filters):
    for mode in ("dense", "bm25", "hybrid"):
        _same_hits(Retriever(qdrant, mode=mode).search("Balkh governor alliance", 5, filters=filters),
                   Retriever(folder_index, mode=mode).search("Balkh governor alliance", 5, filters=filters))


def test_a_document_filter_still_gets_k_hits(qdrant, corpus_docs):
    doc = doc_by_title(corpus_docs, "IMU")
    hits = Retriever(qdrant, mode="hybrid").search("Balkh governor", 5, filters=Filters(doc_ids=(doc.id,)))
    assert len(hits) == 5 and {h.document.id for h in hits} == {doc.id}


def test_the_collection_persists_and_reopens_with_its_settings(tmp_path, tie_free_embedder, corpus_docs, folder_index):
    location = f"qdrant:{tmp_path}/q/news"
    with QdrantIndex.create(location, tie_free_embedder, folder_index.chunking) as index:
        assert add_documents(index, corpus_docs).passages == len(folder_index.passages)
        assert add_documents(index, corpus_docs).passages == 0  # every document is there already
    with open_index(location, tie_free_embedder) as index:
        assert len(index.documents) == len(corpus_docs) and len(index.passages) == len(folder_index.passages)
        assert sorted(p.id for p in index.passages) == sorted(p.id for p in folder_index.passages)
        assert index.chunking == folder_index.chunking
        assert index.documents[corpus_docs[0].id] == corpus_docs[0]


def test_removing_a_document_drops_its_passages_and_keeps_the_ranking(qdrant, tie_free_embedder, corpus_docs):
    gone = doc_by_title(corpus_docs, "IMU")
    removed = qdrant.remove([gone.id])
    kept = [d for d in corpus_docs if d.id != gone.id]
    assert removed > 0 and len(qdrant.documents) == len(kept)
    assert all(p.doc_id != gone.id for p in qdrant.passages)
    fresh = build_index(kept, tie_free_embedder)
    _same_hits(Retriever(qdrant, mode="dense").search("Balkh governor", 5),
               Retriever(fresh, mode="dense").search("Balkh governor", 5))
    # idf follows the removal in the engine; the length norm keeps the mean length of the passages' own add
    _same_hits(Retriever(qdrant, mode="bm25").search("Balkh governor", 5),
               Retriever(fresh, mode="bm25").search("Balkh governor", 5), rel=0.01)
    with pytest.raises(DocumentNotFoundError):
        qdrant.remove([gone.id])
    with pytest.raises(InvalidInputError):
        qdrant.remove(gone.id)


def test_bad_locations_and_mismatches_get_one_clear_error(tmp_path, tie_free_embedder, folder_index, qdrant):
    assert is_uri("qdrant://localhost:6333/news") and is_uri("qdrant:x/news") and not is_uri("qdrant-x/news")
    assert backend_of("qdrant:x/news") is QdrantIndex and backend_of(tmp_path / "qdrant:x") is PassageIndex
    with pytest.raises(IndexNotFoundError, match="rag index ARTICLES --store"):
        QdrantIndex.open(f"qdrant:{tmp_path}/empty/news", tie_free_embedder)
    with pytest.raises(InvalidInputError, match="qdrant://HOST:PORT/COLLECTION"):
        QdrantIndex.open("qdrant://localhost:6333", tie_free_embedder)
    with pytest.raises(IndexNotFoundError, match="cannot reach the Qdrant server at 127.0.0.1:9"):
        QdrantIndex.open("qdrant://127.0.0.1:9/news", tie_free_embedder)
    with pytest.raises(IndexLockedError, match="open in another client"):
        QdrantIndex.open(f"qdrant:{tmp_path}/q/news", tie_free_embedder)

    class OtherModel(TieFreeHashEmbedder):
        model_name = "another-model"

    qdrant.close()  # the local mode lets one client at a time open its folder
    with pytest.raises(InvalidInputError, match="exists"):
        QdrantIndex.create(f"qdrant:{tmp_path}/q/news", tie_free_embedder, folder_index.chunking)
    with pytest.raises(IndexMismatchError, match="fake-tie-free-hash-embedder"):
        QdrantIndex.open(f"qdrant:{tmp_path}/q/news", OtherModel())


@pytest.mark.slow
def test_rag_eval_gives_the_same_figures_from_qdrant_as_from_a_folder(tmp_path, capsys):
    store = f"qdrant:{tmp_path}/q/news"
    assert main(["index", str(corpus_dir()), "--out", str(tmp_path / "idx")]) == 0
    assert main(["index", str(corpus_dir()), "--store", store]) == 0
    assert "indexed 2 documents" in capsys.readouterr().out
    assert main(["index", str(corpus_dir()), "--store", store]) == 2  # exists: --update adds to it
    assert "--update" in capsys.readouterr().err

    reports = []
    for where in (str(tmp_path / "idx"), store):
        out = tmp_path / f"report-{len(reports)}.json"
        assert main(["eval", "--index", where, "--out", str(out)]) == 0
        report = json.loads(out.read_text())
        del report["end_to_end"]["latency_seconds"]
        reports.append({k: v for k, v in report.items() if k not in ("records", "corpus")})
    assert reports[0]["end_to_end"]["citation_accuracy"] > 0.9  # the gold's articles are found by name
    assert reports[0] == reports[1]

    capsys.readouterr()
    assert main(["ask", "Who is the spokesman for Dostum's party?", "--index", store, "--json"]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["answer"] == "Dr Zabih Fetrat" and response["citations"]


def test_a_copy_of_a_stored_story_is_written_as_one_more_copy(qdrant, corpus_docs):
    original = doc_by_title(corpus_docs, "IMU")
    body = original.text.rsplit("\n\n", 1)[0]
    copy = Document("copy", "Republished", f"Republished by the Northern Times\n\n{body}", "https://times.test/copy",
                    outlet="Northern Times", url="https://times.test/copy")
    before = len(qdrant.passages)
    assert add_documents(qdrant, [copy]).copies == (copy,)
    assert qdrant.documents[original.id].copies == (("https://times.test/copy", "Northern Times",
                                                     "https://times.test/copy"),)
    assert len(qdrant.passages) == before
