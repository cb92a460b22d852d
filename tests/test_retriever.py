import pytest

from rag.retriever import Retriever


def _first(retriever, question, mode="hybrid"):
    return retriever.search(question, k=5, mode=mode)[0]


def test_spokesman_question_finds_fetrat_first(retriever):
    hit = _first(retriever, "Who is the spokesman for Dostum's party?")
    assert "Zabih Fetrat" in hit.passage.text
    assert hit.rank == 1 and hit.document.title.startswith("Dostum and Noor")


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_name_questions_find_their_passage(retriever, mode):
    assert "Tohir Yuldosh" in _first(retriever, "Who is Tohir Yuldosh?", mode).passage.text
    assert "Tohir Yuldosh" in _first(retriever, "Which IMU leader was killed in a U.S. drone attack?", mode).passage.text


def test_dense_finds_a_paraphrase(retriever):
    hit = _first(retriever, "Which ethnic minority has the militant group been recruiting from?", "dense")
    assert "ethnic Uzbek" in hit.passage.text


def test_hits_are_ranked_and_carry_their_document(retriever):
    hits = retriever.search("alliance between Noor and Dostum", k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    for h in hits:
        assert h.document.text[h.passage.start:h.passage.end] == h.passage.text
        assert h.document.id == h.passage.doc_id


def test_batch_is_the_primitive(retriever):
    questions = ["Who is Tohir Yuldosh?", "Who is the governor of Balkh?"]
    batch = retriever.search_batch(questions, k=3)
    assert batch == [retriever.search(q, k=3) for q in questions]


def test_k_larger_than_the_index(retriever):
    n = len(retriever.index.passages)
    assert len(retriever.search("Taliban", k=n + 10, mode="dense")) == n


def test_bad_input_is_rejected_with_the_value(retriever):
    with pytest.raises(ValueError, match="''"):
        retriever.search("", k=3)
    with pytest.raises(ValueError, match="0"):
        retriever.search("Taliban", k=0)
    with pytest.raises(ValueError, match="'sparse'"):
        retriever.search("Taliban", mode="sparse")
    with pytest.raises(ValueError, match="'fusion'"):
        Retriever(retriever.index, mode="fusion")


def test_question_with_no_known_word(retriever):
    assert retriever.search("zzxq qqwv", k=3, mode="bm25") == []
    assert len(retriever.search("zzxq qqwv", k=3, mode="hybrid")) == 3  # dense still ranks everything


def test_default_retriever_builds_then_reuses_the_bundled_index(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    first = Retriever.default()
    built = list((tmp_path / "indexes").iterdir())
    assert len(built) == 1 and (built[0] / "manifest.json").exists()
    stamp = (built[0] / "manifest.json").stat().st_mtime_ns
    second = Retriever.default()
    assert (built[0] / "manifest.json").stat().st_mtime_ns == stamp
    assert second.search("Who is Tohir Yuldosh?", 1)[0].passage.id == first.search("Who is Tohir Yuldosh?", 1)[0].passage.id


def test_default_index_is_rebuilt_when_settings_change(tmp_path, monkeypatch, embedder):
    from rag.bundled import default_index
    from rag.chunking import ChunkSettings

    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    default_index(embedder)
    [first] = (tmp_path / "indexes").iterdir()
    smaller = default_index(embedder, ChunkSettings(max_tokens=80))
    [second] = (tmp_path / "indexes").iterdir()  # the stale one is gone
    assert second != first
    assert smaller.chunking.max_tokens == 80
    assert max(embedder.count_tokens([p.text for p in smaller.passages])) <= 80
