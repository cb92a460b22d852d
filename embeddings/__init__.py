"""Sentence-transformers encoders that turn text into normalised float32 vectors."""

from embeddings.encoder import DEFAULT_MODEL, Embedder, default_model_path

__all__ = ["DEFAULT_MODEL", "Embedder", "default_model_path"]
