"""Sentence-transformers encoders that turn text into normalised float32 vectors.

This package depends on nothing in ``rag``: it can be used, and tested, on its own.
"""

from embeddings.encoder import DEFAULT_MODEL, Embedder, EmbeddingModelError, default_model_path

__all__ = ["DEFAULT_MODEL", "Embedder", "EmbeddingModelError", "default_model_path"]
