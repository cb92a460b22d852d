"""The index folder's logic, on the fake embedder: layout, round trip, add/remove, every load check."""

import hashlib
import json
import sqlite3

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


def _live(folder):
    return folder / (folder / "CURRENT").read_text().strip()


def _resign(folder, name, data: bytes):
    """Replace a file of the live generation and its checksum: a consistent index with wrong content."""
    live = _live(folder)
    (live / name).write_bytes(data)
    manifest = json.loads((live / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (live / "manifest.json").write_text(json.dumps(manifest))


def test_folder_layout_and_manifest(saved, corpus_index):
    assert sorted(p.name for p in saved.iterdir()) == [".writer.lock", "CURRENT", "gen-000001"]
    live = _live(saved)
    assert sorted(p.name for p in live.iterdir()) == [
        "bm25", "index.faiss", "manifest.json", "passages.sqlite"]
    manifest = json.loads((live / "manifest.json").read_text())
    assert manifest["kind"] == "rag-news-qa index" and manifest["format_version"] == 3
    assert manifest["embedding_model"] == "fake-hash-embedder"
    assert manifest["dimension"] == 64 and manifest["metric"] == "inner_product" and manifest["normalized"]
    assert manifest["passages"] == len(corpus_index.passages)
    assert manifest["chunking"] == {"max_tokens": 160, "overlap_sentences": 1}
    assert {"faiss-cpu", "sentence-transformers", "bm25s"} <= set(manifest["versions"])
    files = {p.relative_to(live).as_posix() for p in live.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((live / name).read_bytes()).hexdigest() == entry["sha256"]
    with sqlite3.connect(live / "passages.sqlite") as db:
        rows = db.execute("SELECT row, id FROM passages ORDER BY row").fetchall()
    assert rows == [(row, p.id) for row, p in enumerate(corpus_index.passages)]


def test_each_save_is_a_new_generation_and_the_previous_one_is_kept(saved, corpus_index):
    corpus_index.save(saved)
    corpus_index.save(saved)
    assert sorted(p.name for p in saved.iterdir()) == [".writer.lock", "CURRENT", "gen-000002", "gen-000003"]
    assert (saved / "CURRENT").read_text() == "gen-000003\n"


def test_round_trip_gives_identical_results(saved, corpus_index, embedder):
    loaded = PassageIndex.load(saved, embedder)
    assert list(loaded.passages) == corpus_index.passages  # read back from the store
    assert [loaded.passages[row] for row in range(len(loaded.passages))] == corpus_index.passages
    assert dict(loaded.documents) == corpus_index.documents
    assert loaded.passage_counts() == corpus_index.passage_counts() and sum(loaded.passage_counts().values()) == len(
        corpus_index.passages)
    for mode in ("dense", "bm25", "hybrid"):
        before = Retriever(corpus_index).search(QUESTION, 5, mode)
        after = Retriever(loaded).search(QUESTION, 5, mode)
        assert [(h.passage.id, round(h.score, 5)) for h in before] == [(h.passage.id, round(h.score, 5)) for h in after]


def test_add_and_remove_by_document_id(saved, corpus_docs, embedder):
    rfe = doc_by_title(corpus_docs, "IMU-Taliban")
    index = PassageIndex.load(saved, embedder)
    total = len(index.passages)
    removed = index.remove([rfe.id])
    assert removed > 0 and len(index.passages) == total - removed == index.dense.size == index.sparse.size
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
    (tmp_path / "plain").mkdir()
    with pytest.raises(IndexNotFoundError, match="no CURRENT file"):
        PassageIndex.load(tmp_path / "plain", embedder)
    (_live(saved) / "index.faiss").unlink()
    with pytest.raises(IndexMismatchError, match="index.faiss is missing"):
        PassageIndex.load(saved, embedder)


@pytest.mark.parametrize("name", ["index.faiss", "passages.sqlite", "manifest-listed bm25 file"])
def test_a_flipped_byte_in_any_file_is_named(saved, embedder, name):
    live = _live(saved)
    if name.startswith("manifest-listed"):
        name = next(n for n in json.loads((live / "manifest.json").read_text())["files"] if n.startswith("bm25/"))
    data = bytearray((live / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (live / name).write_bytes(bytes(data))
    with pytest.raises(IndexMismatchError, match=f"{name} in the index at .* is corrupt"):
        PassageIndex.load(saved, embedder)


def test_count_mismatch_and_corrupt_files(saved, embedder):
    store = _live(saved) / "passages.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("DELETE FROM passages WHERE row = (SELECT max(row) FROM passages)")
    db.close()
    _resign(saved, "passages.sqlite", store.read_bytes())
    with pytest.raises(IndexMismatchError, match="stored passages, but the manifest says"):
        PassageIndex.load(saved, embedder)
    _resign(saved, "index.faiss", b"not a faiss index")
    with pytest.raises(IndexMismatchError, match="corrupt index file"):
        PassageIndex.load(saved, embedder)
    (_live(saved) / "manifest.json").write_text("{ broken")
    with pytest.raises(IndexMismatchError, match="corrupt manifest"):
        PassageIndex.load(saved, embedder)


def test_model_and_dimension_mismatch(saved, embedder):
    with pytest.raises(IndexMismatchError, match="built with 'fake-hash-embedder'"):
        PassageIndex.load(saved, Embedder("some/other-model"))
    manifest = json.loads((_live(saved) / "manifest.json").read_text())
    manifest["dimension"] = 768
    (_live(saved) / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="dimension 64, manifest says 768"):
        PassageIndex.load(saved, embedder)


def test_empty_index_saves_and_loads(tmp_path, embedder):
    index = PassageIndex.build([], embedder)
    loaded = PassageIndex.load(index.save(tmp_path / "empty"), embedder)
    assert len(loaded.passages) == 0 and Retriever(loaded).search("anything") == []


def test_a_format_2_index_is_read_and_the_next_save_writes_format_3(saved, corpus_index, embedder):
    live = _live(saved)
    (live / "passages.jsonl").write_text("".join(json.dumps(p.to_dict()) + "\n" for p in corpus_index.passages))
    (live / "documents.jsonl").write_text("".join(json.dumps(d.to_dict()) + "\n"
                                                  for d in corpus_index.documents.values()))
    (live / "passages.sqlite").unlink()
    manifest = json.loads((live / "manifest.json").read_text())
    del manifest["files"]["passages.sqlite"]
    manifest["format_version"] = 2
    for name in ("passages.jsonl", "documents.jsonl"):
        data = (live / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (live / "manifest.json").write_text(json.dumps(manifest))
    old = PassageIndex.load(saved, embedder)
    assert old.passages == corpus_index.passages and old.documents == corpus_index.documents
    old.save(saved)
    assert json.loads((_live(saved) / "manifest.json").read_text())["format_version"] == 3
    assert list(PassageIndex.load(saved, embedder).passages) == corpus_index.passages
