"""BM25 over segments: the same scores as bm25s over one index, whatever the segmentation."""

from itertools import pairwise

import bm25s
import numpy as np
import pytest
import Stemmer

from rag.index.bm25 import SETTINGS, BM25Index, Postings
from rag.indexing.chunking import Chunker

QUESTIONS = ["Which IMU leader was killed in a U.S. drone attack?", "Who is the governor of Balkh?",
             "Dostum militia Jowzjan", "the the the"]


@pytest.fixture(scope="module")
def texts(corpus_docs):
    return [p.text for p in Chunker().chunk_all(corpus_docs)]


def test_scores_equal_bm25s_lucene(texts):
    reference = bm25s.BM25(method="lucene", k1=SETTINGS["k1"], b=SETTINGS["b"])
    stemmer = Stemmer.Stemmer("english")
    reference.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    ours = BM25Index.build(texts)
    for question in QUESTIONS[:3]:
        tokens = bm25s.tokenize([question], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]
        expected = reference.get_scores([t for t in tokens if t in reference.vocab_dict])
        np.testing.assert_allclose(ours.scores(tokens), expected, rtol=1e-5, atol=1e-6)


def test_segments_score_as_one_index(texts):
    whole = BM25Index.build(texts)
    cuts = [0, 3, 4, len(texts) // 2, len(texts)]
    parts = BM25Index([Postings.build(texts[a:b]) for a, b in pairwise(cuts)])
    assert parts.size == whole.size == len(texts)
    for question in QUESTIONS:
        (rows, scores), = whole.search_batch([question], 5)
        (part_rows, part_scores), = parts.search_batch([question], 5)
        assert rows.tolist() == part_rows.tolist()
        np.testing.assert_allclose(scores, part_scores, rtol=1e-5)


def test_filters_and_edge_cases(tmp_path, texts):
    index = BM25Index.build(texts)
    allowed = np.zeros(len(texts), dtype=bool)
    allowed[::2] = True
    (rows, scores), = index.search_batch([QUESTIONS[0]], 3, allowed)
    assert len(rows) == 3 and allowed[rows].all() and (np.diff(scores) <= 0).all()
    assert index.search_batch(["the the the"], 3)[0][0].size == 0  # stopwords only: no match
    assert BM25Index([]).search_batch([QUESTIONS[0]], 3)[0][0].size == 0
    Postings.build(texts).save(tmp_path / "bm25")
    loaded = BM25Index([Postings.load(tmp_path / "bm25")])
    np.testing.assert_array_equal(loaded.scores(["balkh"]), index.scores(["balkh"]))
