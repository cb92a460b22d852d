"""Session-wide components: the real bundled models for `slow` tests, fakes for the rest.

A test not marked `slow` must not load a model: the guard below makes it fail if it does.
"""

from __future__ import annotations

import pytest

from embeddings import Embedder
from rag.index.folder import PassageIndex
from rag.indexing.bundled import corpus_dir
from rag.indexing.workflow import build_index
from rag.ingest import read_documents
from rag.read.reader import Reader
from rag.search.retriever import Retriever
from tests.fakes import HashEmbedder


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep the default index and library of the tests out of the user's folders."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("RAG_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _no_model_in_fast_tests(request, monkeypatch):
    """Fail a fast test that loads the real embedder or reader."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*_):
        pytest.fail("a test not marked slow loaded a real model; use tests.fakes or mark it slow")

    monkeypatch.setattr(Embedder, "model", property(refuse))
    real_load = Reader.load
    monkeypatch.setattr(Reader, "load", lambda self: real_load(self) if self._model is not None else refuse())


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def fake_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def corpus_docs():
    return read_documents([corpus_dir()])


@pytest.fixture(scope="session")
def corpus_index(embedder, corpus_docs) -> PassageIndex:
    return build_index(corpus_docs, embedder)


@pytest.fixture(scope="session")
def fake_index(fake_embedder, corpus_docs) -> PassageIndex:
    return build_index(corpus_docs, fake_embedder)


@pytest.fixture(scope="session")
def retriever(corpus_index) -> Retriever:
    return Retriever(corpus_index)


@pytest.fixture(scope="session")
def fake_retriever(fake_index) -> Retriever:
    return Retriever(fake_index)


def doc_by_title(docs, word: str):
    return next(d for d in docs if word in d.title)
