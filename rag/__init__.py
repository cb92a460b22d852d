"""Ask questions of news articles, offline: hybrid retrieval, an extractive reader, cited answers.

    from rag import Assistant, Retriever
    hits = Retriever.default().search("Who is Tohir Yuldosh?", k=3)
    response = Assistant.default().ask("Who is the governor of Balkh?")

The names below load on first use, so ``import rag`` (and ``rag --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

_EXPORTS = {
    "Assistant": "rag.answer.assistant",
    "PassageIndex": "rag.index.folder",
    "read_documents": "rag.ingest",
    "Reader": "rag.read.reader",
    "Retriever": "rag.search.retriever",
    **dict.fromkeys(("Answer", "Citation", "Document", "Hit", "NoAnswer", "Passage", "Reading", "Response"), "rag.types"),
    **dict.fromkeys(("DocumentNotFoundError", "EmptyCorpusError", "IndexLockedError", "IndexMismatchError",
                     "IndexNotFoundError", "IndexWriteError", "IngestError", "InvalidInputError", "ModelLoadError",
                     "NotAnIndexError", "RagError", "ReadOnlyError"), "rag.errors"),
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from rag.answer.assistant import Assistant
    from rag.errors import (
        DocumentNotFoundError,
        EmptyCorpusError,
        IndexLockedError,
        IndexMismatchError,
        IndexNotFoundError,
        IndexWriteError,
        IngestError,
        InvalidInputError,
        ModelLoadError,
        NotAnIndexError,
        RagError,
        ReadOnlyError,
    )
    from rag.index.folder import PassageIndex
    from rag.ingest import read_documents
    from rag.read.reader import Reader
    from rag.search.retriever import Retriever
    from rag.types import Answer, Citation, Document, Hit, NoAnswer, Passage, Reading, Response


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
