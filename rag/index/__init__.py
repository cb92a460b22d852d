"""The index: a folder of crash-safe generations of segments (dense FAISS, BM25, passages in SQLite),
or a Qdrant collection; both keep the contract of ``rag.protocols.Index``."""
