"""Retrieval: quality on the real embedder (slow), the logic around it on the fake one."""

import pytest

from rag.errors import InvalidInputError
from rag.indexing.bundled import default_index
from rag.search.retriever import Retriever
from rag.settings import ChunkSettings


def _first(retriever, question, mode="hybrid"):
    return retriever.search(question, k=5, mode=mode)[0]


@pytest.mark.slow
def test_spokesman_question_finds_fetrat_first(retriever):
    hit = _first(retriever, "Who is the spokesman for Dostum's party?")
    assert "Zabih Fetrat" in hit.passage.text
    assert hit.rank == 1 and hit.document.title.startswith("Dostum and Noor")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_name_questions_find_their_passage(retriever, mode):
    assert "Tohir Yuldosh" in _first(retriever, "Who is Tohir Yuldosh?", mode).passage.text
    first = _first(retriever, "Which IMU leader was killed in a U.S. drone attack?", mode)
    assert "Tohir Yuldosh" in first.passage.text


@pytest.mark.slow
def test_dense_finds_a_paraphrase(retriever):
    hit = _first(retriever, "Which ethnic minority has the militant group been recruiting from?", "dense")
    assert "ethnic Uzbek" in hit.passage.text


def test_hits_are_ranked_and_carry_their_document(fake_retriever):
    hits = fake_retriever.search("alliance between Noor and Dostum", k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    for h in hits:
        assert h.document.text[h.passage.start:h.passage.end] == h.passage.text
        assert h.document.id == h.passage.doc_id


def test_hits_carry_each_search_s_own_score(fake_retriever):
    dense = fake_retriever.search("alliance between Noor and Dostum", k=3, mode="dense")
    assert all(h.dense_score == h.score and h.bm25_score is None for h in dense)
    bm25 = fake_retriever.search("alliance between Noor and Dostum", k=3, mode="bm25")
    assert all(h.bm25_score == h.score and h.dense_score is None for h in bm25)
    hybrid = fake_retriever.search("alliance between Noor and Dostum", k=3, mode="hybrid")
    by_id = {h.passage.id: h for h in dense + bm25}
    for h in hybrid:  # the scores each search gave the passage, where it ranked it
        if h.passage.id in by_id and by_id[h.passage.id].dense_score is not None:
            assert h.dense_score == by_id[h.passage.id].dense_score
        assert h.dense_score is not None or h.bm25_score is not None


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_batch_is_the_primitive(fake_retriever, mode):
    questions = ["Who is Tohir Yuldosh?", "Who is the governor of Balkh?"]
    batch = fake_retriever.search_batch(questions, k=3, mode=mode)
    assert batch == [fake_retriever.search(q, k=3, mode=mode) for q in questions]
    assert all(len(hits) == 3 for hits in batch)


def test_k_larger_than_the_index(fake_retriever):
    n = len(fake_retriever.index.passages)
    assert len(fake_retriever.search("Taliban", k=n + 10, mode="dense")) == n


def test_bad_input_is_rejected_with_the_value(fake_retriever):
    retriever = fake_retriever
    with pytest.raises(InvalidInputError, match="''"):
        retriever.search("", k=3)
    with pytest.raises(InvalidInputError, match="0"):
        retriever.search("Taliban", k=0)
    with pytest.raises(InvalidInputError, match="'sparse'"):
        retriever.search("Taliban", mode="sparse")
    with pytest.raises(InvalidInputError, match="'fusion'"):
        Retriever(retriever.index, mode="fusion")
    with pytest.raises(InvalidInputError, match="one string"):
        retriever.search_batch("Taliban")


def test_question_with_no_known_word(fake_retriever):
    assert fake_retriever.search("zzxq qqwv", k=3, mode="bm25") == []
    assert len(fake_retriever.search("zzxq qqwv", k=3, mode="hybrid")) == 3  # dense still ranks everything


def test_default_index_is_built_once_then_reused(tmp_path, monkeypatch, fake_embedder):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    first = default_index(fake_embedder)
    built = list((tmp_path / "indexes").iterdir())
    assert len(built) == 1 and (built[0] / "CURRENT").exists()
    stamp = (built[0] / "CURRENT").stat().st_mtime_ns
    second = default_index(fake_embedder)
    assert (built[0] / "CURRENT").stat().st_mtime_ns == stamp
    assert list(second.passages) == list(first.passages)


def test_default_index_is_rebuilt_when_settings_change(tmp_path, monkeypatch, fake_embedder):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    default_index(fake_embedder)
    [first] = (tmp_path / "indexes").iterdir()
    smaller = default_index(fake_embedder, ChunkSettings(max_tokens=80))
    [second] = (tmp_path / "indexes").iterdir()  # the stale one is gone
    assert second != first
    assert smaller.chunking.max_tokens == 80
    assert max(fake_embedder.count_tokens([p.text for p in smaller.passages])) <= 80


@pytest.mark.slow
def test_default_retriever_uses_the_bundled_models(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    assert "Tohir Yuldosh" in Retriever.default().search("Who is Tohir Yuldosh?", 1)[0].passage.text
