"""The index folder's logic, on the fake embedder: layout, round trip, add/remove, every load check."""

import json

import pytest

from embeddings import Embedder
from rag.errors import IndexMismatchError, IndexNotFoundError, InvalidInputError
from rag.index import PassageIndex
from rag.retriever import Retriever
from tests.conftest import doc_by_title

QUESTION = "Which IMU leader was killed in a U.S. drone attack?"


@pytest.fixture()
def saved(tmp_path, fake_index):
    return fake_index.save(tmp_path / "idx")


@pytest.fixture()
def corpus_index(fake_index):
    return fake_index


@pytest.fixture()
def embedder(fake_embedder):
    return fake_embedder


def test_folder_layout_and_manifest(saved, corpus_index):
    assert sorted(p.name for p in saved.iterdir()) == [
        "bm25", "documents.jsonl", "index.faiss", "manifest.json", "passages.jsonl"]
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["embedding_model"] == "fake-hash-embedder"
    assert manifest["dimension"] == 64 and manifest["metric"] == "inner_product" and manifest["normalized"]
    assert manifest["passages"] == len(corpus_index.passages)
    assert manifest["chunking"] == {"max_tokens": 160, "overlap_sentences": 1}
    assert {"faiss-cpu", "sentence-transformers", "bm25s"} <= set(manifest["versions"])
    lines = (saved / "passages.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [p.id for p in corpus_index.passages]
    assert not list(saved.parent.glob(".idx*"))  # no temporary folders left behind


def test_round_trip_gives_identical_results(saved, corpus_index, embedder):
    loaded = PassageIndex.load(saved, embedder)
    assert loaded.passages == corpus_index.passages
    assert loaded.documents == corpus_index.documents
    for mode in ("dense", "bm25", "hybrid"):
        before = Retriever(corpus_index).search(QUESTION, 5, mode)
        after = Retriever(loaded).search(QUESTION, 5, mode)
        assert [(h.passage.id, round(h.score, 5)) for h in before] == [(h.passage.id, round(h.score, 5)) for h in after]


def test_add_and_remove_by_document_id(saved, corpus_docs, embedder):
    rfe = doc_by_title(corpus_docs, "IMU-Taliban")
    index = PassageIndex.load(saved, embedder)
    total = len(index.passages)
    removed = index.remove([rfe.id])
    assert removed > 0 and len(index.passages) == total - removed == index.vectors.ntotal == index.bm25.size
    assert all(p.doc_id != rfe.id for p in index.passages)
    hits = Retriever(index).search("Tohir Yuldosh", 3, "bm25")
    assert all("Yuldosh" not in h.passage.text for h in hits)

    assert index.add([rfe]) == removed
    assert index.add([rfe]) == 0  # same content, same id: nothing duplicated
    index.save(saved)
    reloaded = PassageIndex.load(saved, embedder)
    assert len(reloaded.passages) == total
    assert Retriever(reloaded).search(QUESTION, 1)[0].passage.text.count("Tohir Yuldosh") == 1
    with pytest.raises(InvalidInputError, match="no-such-id"):
        reloaded.remove(["no-such-id"])


def test_missing_folder_and_missing_file(tmp_path, saved, embedder):
    with pytest.raises(IndexNotFoundError, match="no index folder"):
        PassageIndex.load(tmp_path / "nowhere", embedder)
    (saved / "index.faiss").unlink()
    with pytest.raises(IndexNotFoundError, match="index.faiss is missing"):
        PassageIndex.load(saved, embedder)


def test_count_mismatch_and_corrupt_files(saved, embedder):
    lines = (saved / "passages.jsonl").read_text().splitlines()
    (saved / "passages.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(IndexMismatchError, match="passages.jsonl lines"):
        PassageIndex.load(saved, embedder)
    (saved / "index.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexMismatchError, match="corrupt index file"):
        PassageIndex.load(saved, embedder)
    (saved / "manifest.json").write_text("{ broken")
    with pytest.raises(IndexMismatchError, match="corrupt manifest"):
        PassageIndex.load(saved, embedder)


def test_model_and_dimension_mismatch(saved, embedder):
    with pytest.raises(IndexMismatchError, match="built with 'fake-hash-embedder'"):
        PassageIndex.load(saved, Embedder("some/other-model"))
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["dimension"] = 768
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="dimension 64, manifest says 768"):
        PassageIndex.load(saved, embedder)


def test_empty_index_saves_and_loads(tmp_path, embedder):
    index = PassageIndex.build([], embedder)
    loaded = PassageIndex.load(index.save(tmp_path / "empty"), embedder)
    assert loaded.passages == [] and Retriever(loaded).search("anything") == []
