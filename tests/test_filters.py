"""Filters: the fast mask equals the plain definition, and filtered retrieval still gets k hits."""

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.errors import InvalidInputError
from rag.index.filters import DocumentColumns
from rag.index.folder import PassageIndex
from rag.indexing.workflow import build_index
from rag.search.retriever import Retriever
from rag.types import Document, Filters

OUTLETS = ["Reuters", "RFE/RL", "Afghanistan Today", None]
AUTHORS = ["Waheed Orya", "Abubakar Siddique", "Waheed Orya and Ann Lee", None]
DATES = ["2015-07-21", "2015-03-02", "2016-01-01T10:00:00Z", "not a date", None]


def matches(f: Filters, d: Document) -> bool:
    """The definition the mask must agree with, written the slow and obvious way."""
    if f.since or f.until:
        try:
            day = date.fromisoformat(d.date[:10]) if d.date else None
        except ValueError:
            day = None
        if day is None or (f.since and day < f.since) or (f.until and day > f.until):
            return False
    if f.sources and (d.outlet or "").lower() not in {s.lower() for s in f.sources}:
        return False
    if f.authors and not {a.lower() for a in d.authors()} & {a.lower() for a in f.authors}:
        return False
    return not f.doc_ids or d.id in f.doc_ids


documents = st.lists(st.builds(lambda i, o, a, t: Document(f"d{i}", "t", "x", "s", author=a, date=t, outlet=o),
                               st.integers(0, 10**6), st.sampled_from(OUTLETS), st.sampled_from(AUTHORS),
                               st.sampled_from(DATES)),
                     min_size=1, max_size=12, unique_by=lambda d: d.id)
filters = st.builds(Filters, since=st.sampled_from([None, "2015-05-01", "2015-07-21"]),
                    until=st.sampled_from([None, "2015-07-21", "2016-01-01"]),
                    sources=st.lists(st.sampled_from(["reuters", "RFE/RL", "Nobody"]), max_size=2).map(tuple),
                    authors=st.lists(st.sampled_from(["waheed orya", "Ann Lee"]), max_size=2).map(tuple))


@settings(max_examples=300, deadline=None)
@given(documents, filters, st.data())
def test_the_mask_is_the_definition(docs, f, data):
    f = replace(f, doc_ids=tuple(data.draw(st.lists(st.sampled_from([d.id for d in docs]), max_size=2))))
    owners = data.draw(st.lists(st.sampled_from(docs), min_size=1, max_size=30))
    mask = DocumentColumns(docs, [d.id for d in owners]).allowed(f)
    if not f:
        assert mask is None
    else:
        assert mask.tolist() == [matches(f, d) for d in owners]


def test_bad_limits_get_one_clear_error():
    with pytest.raises(InvalidInputError, match="since must be a date written YYYY-MM-DD, got 'March'"):
        Filters(since="March")
    with pytest.raises(InvalidInputError, match="is after until"):
        Filters(since="2016-01-01", until="2015-01-01")
    with pytest.raises(InvalidInputError, match="non-empty names"):
        Filters(sources=("",))
    assert not Filters() and Filters(sources="Reuters").sources == ("Reuters",)


def _dated(docs):
    """The bundled articles, given outlets and dates (the second has no date of its own)."""
    first, second = docs
    return [replace(first, outlet="Afghanistan Today"), replace(second, outlet="RFE/RL", date="2015-05-01")]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_a_filtered_search_gets_k_hits_from_the_allowed_documents_only(fake_embedder, corpus_docs, kind, mode):
    from rag.settings import DenseSettings

    docs = _dated(corpus_docs)
    index = build_index(docs, fake_embedder, dense=DenseSettings(kind=kind))
    retriever = Retriever(index, mode=mode)
    allowed = {p.id for p in index.passages if p.doc_id == docs[1].id}
    # The question is about the first article; with a filter, all k hits come from the second,
    # where 8 of the 11 passages name the Taliban.
    question = "Dostum and Noor alliance against the Taliban"
    unfiltered = retriever.search(question, k=5)
    assert unfiltered[0].document.id == docs[0].id
    for limit in (Filters(sources=("rfe/rl",)), Filters(since="2015-04-01", until="2015-06-01"),
                  Filters(doc_ids=(docs[1].id,)), Filters(authors=(docs[1].author,))):
        hits = retriever.search(question, k=5, filters=limit)
        assert len(hits) == 5 and {h.passage.id for h in hits} <= allowed, limit
    assert retriever.search(question, k=5, filters=Filters(sources=("Nobody",))) == []
    assert retriever.search(question, k=5, filters=Filters(until="2015-01-01")) == []


def test_a_loaded_index_filters_from_its_store_alike(fake_embedder, corpus_docs, tmp_path):
    index = build_index(_dated(corpus_docs), fake_embedder)
    loaded = PassageIndex.open(index.save(tmp_path / "idx"), fake_embedder)
    for limit in (Filters(sources=("RFE/RL",)), Filters(until="2015-06-01"), Filters(authors=("Waheed Orya",))):
        assert loaded.allowed(limit).tolist() == index.allowed(limit).tolist()
        assert 0 < loaded.allowed(limit).sum() < len(index.passages)
