"""Ask questions of news articles, offline: hybrid retrieval, an extractive reader, cited answers.

    from rag import Assistant, Retriever, index_articles
    index_articles("my-index", ["articles/"])
    hits = Retriever.load("my-index").search("Who is Tohir Yuldosh?", k=3)
    response = Assistant.default().ask("Who is the governor of Balkh?")

The names below load on first use, so ``import rag`` (and ``rag --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

_EXPORTS = {
    "Assistant": "rag.answer.assistant",
    "Filters": "rag.types",
    "PassageIndex": "rag.index.folder",
    "open_index": "rag.index.open",
    "index_articles": "rag.indexing.workflow",
    "build_index": "rag.indexing.workflow",
    "remove_documents": "rag.indexing.workflow",
    "read_documents": "rag.ingest",
    "Reader": "rag.read.reader",
    "Retriever": "rag.search.retriever",
    **dict.fromkeys(("Answer", "Citation", "Document", "Hit", "NoAnswer", "Passage", "Reading", "Response", "Turn"),
                    "rag.types"),
    **dict.fromkeys(("DocumentNotFoundError", "EmptyCorpusError", "IndexLockedError", "IndexMismatchError",
                     "IndexNotFoundError", "IndexWriteError", "IngestError", "InvalidInputError", "ModelLoadError",
                     "NotAnIndexError", "RagError", "ReadOnlyError"), "rag.errors"),
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and editors (``X as X`` marks a re-export)
    from rag.answer.assistant import Assistant as Assistant
    from rag.errors import DocumentNotFoundError as DocumentNotFoundError
    from rag.errors import EmptyCorpusError as EmptyCorpusError
    from rag.errors import IndexLockedError as IndexLockedError
    from rag.errors import IndexMismatchError as IndexMismatchError
    from rag.errors import IndexNotFoundError as IndexNotFoundError
    from rag.errors import IndexWriteError as IndexWriteError
    from rag.errors import IngestError as IngestError
    from rag.errors import InvalidInputError as InvalidInputError
    from rag.errors import ModelLoadError as ModelLoadError
    from rag.errors import NotAnIndexError as NotAnIndexError
    from rag.errors import RagError as RagError
    from rag.errors import ReadOnlyError as ReadOnlyError
    from rag.index.folder import PassageIndex as PassageIndex
    from rag.index.open import open_index as open_index
    from rag.indexing.workflow import build_index as build_index
    from rag.indexing.workflow import index_articles as index_articles
    from rag.indexing.workflow import remove_documents as remove_documents
    from rag.ingest import read_documents as read_documents
    from rag.read.reader import Reader as Reader
    from rag.search.retriever import Retriever as Retriever
    from rag.types import Answer as Answer
    from rag.types import Citation as Citation
    from rag.types import Document as Document
    from rag.types import Filters as Filters
    from rag.types import Hit as Hit
    from rag.types import NoAnswer as NoAnswer
    from rag.types import Passage as Passage
    from rag.types import Reading as Reading
    from rag.types import Response as Response
    from rag.types import Turn as Turn


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
