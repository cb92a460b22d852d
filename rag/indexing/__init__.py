"""Indexing: articles in, an index out. Chunk, embed, find copies, add; the same steps locally and on Ray."""
