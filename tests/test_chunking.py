import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.indexing.chunking import Chunker, ChunkSettings
from rag.types import Document

texts = st.text(alphabet=st.sampled_from(list("abc XYZ.!?\n\n\t,;'\"é—0123")), max_size=600)


@settings(max_examples=150, deadline=None)
@given(text=texts, max_tokens=st.integers(8, 40), overlap=st.integers(0, 2))
def test_offsets_are_exact_and_every_word_is_covered(text, max_tokens, overlap):
    doc = Document(id="d", title="t", text=text, source="s")
    passages = Chunker(ChunkSettings(max_tokens, overlap)).chunk(doc)
    covered = [False] * len(text)
    for p in passages:
        assert doc.text[p.start:p.end] == p.text
        assert p.text == p.text.strip() and p.text
        for i in range(p.start, p.end):
            covered[i] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    starts = [p.start for p in passages]
    assert starts == sorted(set(starts))  # in order, and no passage repeated


@pytest.mark.slow
def test_real_articles_fit_the_embedder(embedder, corpus_docs):
    chunker = Chunker(ChunkSettings(max_tokens=120, overlap_sentences=1), embedder.count_tokens)
    for doc in corpus_docs:
        passages = chunker.chunk(doc)
        assert all(doc.text[p.start:p.end] == p.text for p in passages)
        sizes = embedder.count_tokens([p.text for p in passages])
        assert max(sizes) <= 120
        # One sentence of overlap at most: passages do not multiply.
        sentences = len(chunker.sentence_spans(doc.text))
        assert len(passages) < sentences


def test_a_sentence_longer_than_the_limit_is_split_not_lost():
    long = " ".join(f"w{i}" for i in range(100)) + "."
    passages = Chunker(ChunkSettings(max_tokens=30, overlap_sentences=1)).chunk(
        Document(id="d", title="t", text=long, source="s"))
    assert len(passages) >= 4
    assert " ".join(p.text for p in passages).split() == long.split()


def test_bad_settings_quote_the_value():
    with pytest.raises(ValueError, match="-1"):
        ChunkSettings(overlap_sentences=-1)
    with pytest.raises(ValueError, match="'x'"):
        ChunkSettings(max_tokens="x")
