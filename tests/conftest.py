"""Session-wide real components: the bundled embedder, the bundled corpus and its index."""

from __future__ import annotations

import pytest

from embeddings import Embedder
from rag.bundled import corpus_dir
from rag.index import PassageIndex
from rag.ingest import read_documents
from rag.retriever import Retriever


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep the default index of the tests out of the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def corpus_docs():
    return read_documents([corpus_dir()])


@pytest.fixture(scope="session")
def corpus_index(embedder, corpus_docs) -> PassageIndex:
    return PassageIndex.build(corpus_docs, embedder)


@pytest.fixture(scope="session")
def retriever(corpus_index) -> Retriever:
    return Retriever(corpus_index)


def doc_by_title(docs, word: str):
    return next(d for d in docs if word in d.title)
