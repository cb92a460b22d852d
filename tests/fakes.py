"""Stand-ins for the real models, so the fast suite checks logic without loading any weights."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Deterministic unit vectors from hashed words: the Embedder interface, no model.

    Each word adds a signed one-hot in a dimension chosen by its hash, so texts that
    share words are similar. That keeps dense search meaningful enough to test the
    plumbing around it, and the same text always gets the same vector.
    """

    model_name = "fake-hash-embedder"
    dimension = 64
    precision = "fp32"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]

    def encode(self, texts: Sequence[str], progress: bool | None = None, passages: bool = False) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                vectors[row, digest[0] % self.dimension] += 1.0 if digest[1] % 2 else -1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)


class TieFreeHashEmbedder(HashEmbedder):
    """A HashEmbedder whose vectors also lean a little (1e-3) in a direction drawn from the whole text.

    Two engines may order exactly tied scores differently (FAISS by row, Qdrant by point id),
    and a plain HashEmbedder ties every passage that shares no word with the question at 0.
    With this one no two passages tie, so engines that score alike must also rank alike.
    """

    model_name = "fake-tie-free-hash-embedder"

    def encode(self, texts: Sequence[str], progress: bool | None = None, passages: bool = False) -> np.ndarray:
        vectors = super().encode(texts, progress, passages)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            vectors[row] += 1e-3 * np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class HashEmbedderClass(HashEmbedder):
    """A HashEmbedder made as ``Embedder(model, ...)`` is: whatever model is named, the fake one."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass


def use_fake_models(setattr) -> None:
    """Make the indexing workflow and every index opened load the HashEmbedder, and export no model.

    Args:
        setattr: ``monkeypatch.setattr`` in a test, the builtin in a subprocess.
    """
    from rag import exports
    from rag.indexing import workflow

    setattr(workflow, "Embedder", HashEmbedderClass)
    setattr(workflow, "export_models", lambda *args, **kwargs: None)
    setattr(exports, "embedder", lambda *args, **kwargs: HashEmbedder())
