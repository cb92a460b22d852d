"""Ask questions of news articles, offline: hybrid retrieval, an extractive reader, cited answers.

    from rag import Retriever
    hits = Retriever.default().search("Who is Tohir Yuldosh?", k=3)
    response = Assistant.default().ask("Who is the governor of Balkh?")
"""

from rag.assistant import Assistant
from rag.errors import (
    EmptyCorpusError,
    IndexMismatchError,
    IndexNotFoundError,
    IngestError,
    ModelLoadError,
    RagError,
)
from rag.index import PassageIndex
from rag.ingest import read_documents
from rag.reader import Reader
from rag.retriever import Retriever
from rag.types import Answer, Citation, Document, Hit, NoAnswer, Passage, Response

__all__ = [
    "Answer",
    "Assistant",
    "Citation",
    "Document",
    "EmptyCorpusError",
    "Hit",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IngestError",
    "ModelLoadError",
    "NoAnswer",
    "Passage",
    "PassageIndex",
    "RagError",
    "Reader",
    "Response",
    "Retriever",
    "read_documents",
]
