"""The index folder's logic, on the fake embedder: layout, round trip, add/remove, segments, every load check."""

import hashlib
import json
import shutil
import sqlite3

import faiss
import pytest

from embeddings import Embedder
from rag.errors import IndexMismatchError, IndexNotFoundError, InvalidInputError
from rag.index import folder as index_module
from rag.index.folder import PassageIndex
from rag.indexing.workflow import add_documents, build_index
from rag.ingest import document_id
from rag.search.retriever import Retriever
from rag.types import Document
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


def _segments(folder):
    return json.loads((_live(folder) / "manifest.json").read_text())["segments"]


def _segment_file(folder, name):
    """A file of the live generation's only segment, as the manifest names it."""
    (segment,) = _segments(folder)
    return f"{segment['name']}/{name}"


def _resign(folder, name, data: bytes):
    """Replace a file of the live generation and its checksum: a consistent index with wrong content."""
    live = _live(folder)
    (live / name).unlink()  # a new file: the segment's files are hard links, shared with other generations
    (live / name).write_bytes(data)
    manifest = json.loads((live / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (live / "manifest.json").write_text(json.dumps(manifest))


def test_folder_layout_and_manifest(saved, corpus_index):
    assert sorted(p.name for p in saved.iterdir()) == [".writer.lock", "CURRENT", "gen-000001"]
    live = _live(saved)
    (segment,) = _segments(saved)
    assert sorted(p.name for p in live.iterdir()) == ["manifest.json", segment["name"]]
    assert sorted(p.name for p in (live / segment["name"]).iterdir()) == ["bm25", "index.faiss", "passages.sqlite"]
    manifest = json.loads((live / "manifest.json").read_text())
    assert manifest["kind"] == "rag-news-qa index" and manifest["format_version"] == 4
    assert segment == {"name": segment["name"], "passages": len(corpus_index.passages), "deleted": []}
    assert manifest["embedding_model"] == "fake-hash-embedder"
    assert manifest["dimension"] == 64 and manifest["metric"] == "inner_product" and manifest["normalized"]
    assert manifest["passages"] == len(corpus_index.passages)
    assert manifest["chunking"] == {"max_tokens": 160, "overlap_sentences": 1}
    assert {"faiss-cpu", "sentence-transformers", "bm25s"} <= set(manifest["versions"])
    files = {p.relative_to(live).as_posix() for p in live.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((live / name).read_bytes()).hexdigest() == entry["sha256"]
    with sqlite3.connect(live / segment["name"] / "passages.sqlite") as db:
        rows = db.execute("SELECT row, id FROM passages ORDER BY row").fetchall()
    assert rows == [(row, p.id) for row, p in enumerate(corpus_index.passages)]


def test_each_save_is_a_new_generation_and_the_previous_one_is_kept(saved, corpus_index):
    corpus_index.save(saved)
    corpus_index.save(saved)
    assert sorted(p.name for p in saved.iterdir()) == [".writer.lock", "CURRENT", "gen-000002", "gen-000003"]
    assert (saved / "CURRENT").read_text() == "gen-000003\n"


def test_round_trip_gives_identical_results(saved, corpus_index, embedder):
    loaded = PassageIndex.open(saved, embedder)
    assert list(loaded.passages) == list(corpus_index.passages)  # read back from the store
    assert [loaded.passage(row) for row in range(loaded.rows)] == list(corpus_index.passages)
    assert dict(loaded.documents) == dict(corpus_index.documents)
    assert loaded.passage_counts() == corpus_index.passage_counts() and sum(loaded.passage_counts().values()) == len(
        corpus_index.passages)
    for mode in ("dense", "bm25", "hybrid"):
        before = Retriever(corpus_index).search(QUESTION, 5, mode)
        after = Retriever(loaded).search(QUESTION, 5, mode)
        assert [(h.passage.id, round(h.score, 5)) for h in before] == [(h.passage.id, round(h.score, 5)) for h in after]


def test_add_and_remove_by_document_id(saved, corpus_docs, embedder):
    rfe = doc_by_title(corpus_docs, "IMU-Taliban")
    index = PassageIndex.open(saved, embedder)
    total = len(index.passages)
    removed = index.remove([rfe.id])
    assert removed > 0 and len(index.passages) == total - removed
    assert index.rows == index.dense.size == index.sparse.size == total  # marked deleted, not rebuilt
    assert all(p.doc_id != rfe.id for p in index.passages)
    assert rfe.id not in index.documents and rfe.id not in index.passage_counts()
    hits = Retriever(index).search("Tohir Yuldosh", 3, "bm25")
    assert all("Yuldosh" not in h.passage.text for h in hits)

    assert add_documents(index, [rfe]).passages == removed
    assert add_documents(index, [rfe]).passages == 0  # same content, same id: nothing duplicated
    index.save(saved)
    reloaded = PassageIndex.open(saved, embedder)
    assert len(reloaded.passages) == total
    assert Retriever(reloaded).search(QUESTION, 1)[0].passage.text.count("Tohir Yuldosh") == 1
    with pytest.raises(InvalidInputError, match="no-such-id"):
        reloaded.remove(["no-such-id"])


def test_missing_folder_and_missing_file(tmp_path, saved, embedder):
    with pytest.raises(IndexNotFoundError, match="no index folder"):
        PassageIndex.open(tmp_path / "nowhere", embedder)
    (tmp_path / "plain").mkdir()
    with pytest.raises(IndexNotFoundError, match="no CURRENT file"):
        PassageIndex.open(tmp_path / "plain", embedder)
    (_live(saved) / _segment_file(saved, "index.faiss")).unlink()
    with pytest.raises(IndexMismatchError, match="index.faiss is missing"):
        PassageIndex.open(saved, embedder)


@pytest.mark.parametrize("name", ["index.faiss", "passages.sqlite", "manifest-listed bm25 file"])
def test_a_flipped_byte_in_any_file_is_named(saved, embedder, name):
    live = _live(saved)
    if name.startswith("manifest-listed"):
        name = next(n for n in json.loads((live / "manifest.json").read_text())["files"] if "/bm25/" in n)
    else:
        name = _segment_file(saved, name)
    data = bytearray((live / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (live / name).unlink()  # a new file: the segment's files are hard links, shared with other generations
    (live / name).write_bytes(bytes(data))
    with pytest.raises(IndexMismatchError, match=f"{name} in the index at .* is corrupt"):
        PassageIndex.open(saved, embedder)


def test_count_mismatch_and_corrupt_files(saved, embedder, tmp_path):
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(_live(saved) / _segment_file(saved, "passages.sqlite"), copy)
    with sqlite3.connect(copy) as db:
        db.execute("DELETE FROM passages WHERE row = (SELECT max(row) FROM passages)")
    db.close()
    _resign(saved, _segment_file(saved, "passages.sqlite"), copy.read_bytes())
    with pytest.raises(IndexMismatchError, match="passages, but the manifest says"):
        PassageIndex.open(saved, embedder)
    _resign(saved, _segment_file(saved, "index.faiss"), b"not a faiss index")
    with pytest.raises(IndexMismatchError, match="corrupt index file"):
        PassageIndex.open(saved, embedder)
    (_live(saved) / "manifest.json").write_text("{ broken")
    with pytest.raises(IndexMismatchError, match="corrupt manifest"):
        PassageIndex.open(saved, embedder)


def test_model_and_dimension_mismatch(saved, embedder):
    with pytest.raises(IndexMismatchError, match="built with 'fake-hash-embedder'"):
        PassageIndex.open(saved, Embedder("some/other-model"))
    manifest = json.loads((_live(saved) / "manifest.json").read_text())
    manifest["dimension"] = 768
    (_live(saved) / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="holds 64-d vectors, the index 768-d"):
        PassageIndex.open(saved, embedder)


def test_empty_index_saves_and_loads(tmp_path, embedder):
    index = build_index([], embedder)
    loaded = PassageIndex.open(index.save(tmp_path / "empty"), embedder)
    assert len(loaded.passages) == 0 and Retriever(loaded).search("anything") == []


@pytest.mark.parametrize("version", [2, 3, 5])
def test_an_index_of_another_format_is_refused_with_what_to_do(saved, embedder, version):
    manifest_path = _live(saved) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format_version": version}))
    with pytest.raises(IndexMismatchError, match=f"format {version} .*rag index ARTICLES --out"):
        PassageIndex.open(saved, embedder)


def _hits(index, mode="hybrid"):
    return [[(h.passage.id, round(h.score, 4)) for h in Retriever(index).search(q, 5, mode)]
            for q in (QUESTION, "Who is the governor of Balkh?", "Dostum militia")]


def test_adding_saves_only_the_new_segment_and_links_the_rest(saved, corpus_docs, embedder):
    rfe = doc_by_title(corpus_docs, "IMU-Taliban")
    others = [d for d in corpus_docs if d.id != rfe.id]
    build_index(others, embedder).save(saved)
    (first,) = _segments(saved)
    before = (_live(saved) / first["name"] / "index.faiss").stat()
    index = PassageIndex.open(saved, embedder)
    add_documents(index, [rfe])
    index.save(saved)
    segments = _segments(saved)
    assert len(segments) == 2 and segments[0]["name"] == first["name"]
    after = (_live(saved) / first["name"] / "index.faiss").stat()
    assert after.st_ino == before.st_ino and after.st_nlink == 2  # the same file, in two generations
    # Two segments answer as one built at once: BM25 uses the whole index's statistics.
    reloaded = PassageIndex.open(saved, embedder)
    whole = build_index(others + [rfe], embedder)
    for mode in ("dense", "bm25", "hybrid"):
        assert _hits(reloaded, mode) == _hits(whole, mode)


def test_removing_marks_deleted_and_rebuilds_no_vectors(saved, corpus_docs, corpus_index, embedder):
    counts = corpus_index.passage_counts()
    smaller = min(corpus_docs, key=lambda d: counts[d.id])  # less than half the segment: it stays, marked
    (segment,) = _segments(saved)
    index = PassageIndex.open(saved, embedder)
    index.remove([smaller.id])
    index.save(saved)
    assert _segments(saved) == [{**segment, "deleted": [smaller.id]}]
    assert (_live(saved) / segment["name"] / "index.faiss").stat().st_nlink == 2
    reloaded = PassageIndex.open(saved, embedder)
    assert smaller.id not in reloaded.documents and len(reloaded.passages) == len(index.passages)
    for mode in ("dense", "bm25", "hybrid"):
        for question in ("Who is the governor of Balkh?", QUESTION, "Dostum militia"):
            assert all(h.document.id != smaller.id for h in Retriever(reloaded).search(question, 20, mode))
    add_documents(reloaded, [smaller])  # removed, then added again: it lives in the new segment
    assert reloaded.documents[smaller.id] == smaller and len(reloaded.passages) == len(corpus_index.passages)
    assert _hits(reloaded, "dense") == _hits(corpus_index, "dense")


def test_small_segments_are_merged_at_save_without_re_encoding(tmp_path, corpus_docs, embedder, monkeypatch):
    monkeypatch.setattr(index_module, "MOST_SEGMENTS", 2)
    index = build_index([], embedder)
    for doc in corpus_docs:
        add_documents(index, [doc])
    index.remove([corpus_docs[0].id])
    encoded = []
    monkeypatch.setattr(embedder, "encode", lambda texts, **kw: encoded.append(texts) or faiss.rand((0, 64)))
    index.save(tmp_path / "idx")
    assert encoded == [] and len(_segments(tmp_path / "idx")) <= 2
    assert all(s["deleted"] == [] for s in _segments(tmp_path / "idx"))  # merged away with their segment
    monkeypatch.undo()
    reloaded = PassageIndex.open(tmp_path / "idx", embedder)
    whole = build_index(corpus_docs[1:], embedder)
    assert dict(reloaded.documents) == dict(whole.documents)
    assert _hits(reloaded, "bm25") == _hits(whole, "bm25") and _hits(reloaded, "dense") == _hits(whole, "dense")


def _wire_copy(doc):
    """Another outlet's copy of ``doc``: its own headline line on top, the last paragraph cut."""
    body = doc.text.rsplit("\n\n", 1)[0]
    return Document(document_id(body), "Republished", f"Republished by the Northern Times\n\n{body}",
                    "https://times.test/copy", outlet="Northern Times", url="https://times.test/copy")


def test_a_copy_of_an_indexed_story_is_recorded_as_a_copy_and_kept_through_save_load_and_merge(tmp_path, corpus_docs,
                                                                                            fake_embedder):
    original = doc_by_title(corpus_docs, "IMU")
    index = build_index(corpus_docs, fake_embedder)
    other = Document(document_id("x"), "Harvest", "Farmers in Balkh expect a good harvest this year after rain.",
                     "h.txt")
    rows = index.rows
    added = add_documents(index, [_wire_copy(original), other])
    assert added.new == (other,) and added.copies == (_wire_copy(original),)
    assert index.documents[original.id].copies == (("https://times.test/copy", "Northern Times", "https://times.test/copy"),)
    assert added.passages == 1 and index.rows == rows + 1  # the copy is not indexed twice
    index.save(tmp_path / "idx")
    loaded = PassageIndex.open(tmp_path / "idx", fake_embedder)
    assert loaded.documents[original.id].copies == index.documents[original.id].copies
    hits = Retriever(loaded, mode="bm25").search("IMU Taliban alliance", 5)
    hit = next(h for h in hits if h.document.id == original.id)
    assert hit.document.copies  # the source card shows it
    for i in range(12):  # enough segments to merge: the copies are carried into the merged one
        note = f"Short note number {i} about the weather."
        add_documents(loaded, [Document(document_id(f"n{i}"), f"Note {i}", note, f"{i}.txt")])
    loaded.save(tmp_path / "idx")
    merged = PassageIndex.open(tmp_path / "idx", fake_embedder)
    assert len(merged.segments) < 13 and merged.documents[original.id].copies == index.documents[original.id].copies


def test_a_snapshot_keeps_answering_after_newer_saves_delete_its_generation(saved, embedder):
    import threading

    index = PassageIndex.open(saved, embedder)  # a server's snapshot, as an upload lands
    shutil.rmtree(_live(saved))  # what two newer saves do to it: its folder is pruned
    found = []
    reader = threading.Thread(target=lambda: found.append(Retriever(index).search(QUESTION, 3)))
    reader.start()  # a thread that has never read this snapshot before
    reader.join()
    assert [h.passage.text for h in found[0]] and "Tohir Yuldosh" in found[0][0].passage.text
