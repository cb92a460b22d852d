"""Reading, chunking and embedding in this process: the pipeline ``rag index`` runs without ``--ray``.

``rag.indexing.ray`` runs the same two steps on a Ray cluster, with the same methods and results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.indexing.chunking import Chunker
from rag.ingest import read_documents
from rag.protocols import Encoder
from rag.settings import DEFAULT_MAX_FILE_BYTES, ChunkSettings
from rag.types import Document, Passage


class LocalPipeline:
    """Reads and embeds here, in this process (see ``rag.protocols.Pipeline``).

    Args:
        progress: show progress bars while reading, chunking and embedding (by default only while
            embedding many passages).
    """

    def __init__(self, progress: bool | None = None) -> None:
        self.progress = progress

    def read(self, paths: Sequence[str | Path], on_skip: Callable[[str], None],
             max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
        """``rag.ingest.read_documents``: every article under ``paths``, each story once."""
        return read_documents(paths, on_skip, progress=bool(self.progress), max_file_bytes=max_file_bytes)

    def chunk_and_embed(self, documents: Sequence[Document], embedder: Encoder,
                        chunking: ChunkSettings) -> tuple[list[Passage], np.ndarray]:
        """The documents' passages, in document order, and their vectors (row r of passage r)."""
        passages = Chunker(chunking, embedder.count_tokens).chunk_all(documents, progress=bool(self.progress))
        if not passages:
            return [], np.zeros((0, embedder.dimension), dtype=np.float32)
        return passages, embedder.encode([p.text for p in passages], progress=self.progress, passages=True)
