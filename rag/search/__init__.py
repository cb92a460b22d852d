"""Search: the retriever over an index, dense, BM25 or both fused, within filters."""
