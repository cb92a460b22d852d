"""The sample corpus shipped inside the package, and its index, built on first use.

The index lives in a per-user cache folder (``RAG_CACHE_DIR`` overrides it) under a
key made from the corpus files, the code that reads and splits them (``rag.ingest``,
``rag.indexing.chunking``) and exports the models (``rag.read.runtime``), the embedding model, the
chunk settings and the index format, so a change to any of them builds a fresh index (and
the exports it lacks) instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from importlib.resources import files
from pathlib import Path

from embeddings import DEFAULT_MODEL, Embedder
from rag import ingest
from rag.read import runtime as fast_models
from rag.indexing import chunking as chunking_module
from rag.indexing.chunking import ChunkSettings
from rag.index.folder import PassageIndex
from rag.ingest import iter_article_files, read_documents
from rag.settings import cache_dir
from rag.index.generations import FORMAT_VERSION, IndexFolder

logger = logging.getLogger(__name__)


def corpus_dir() -> Path:
    """The folder of bundled sample articles."""
    return Path(str(files("rag") / "data" / "corpus"))


def _key(model: str, chunking: ChunkSettings) -> str:
    digest = hashlib.sha256()
    for path in iter_article_files([corpus_dir()]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    code = [*sorted(Path(ingest.__file__).parent.glob("*.py")), Path(chunking_module.__file__),
            Path(fast_models.__file__)]
    for path in code:  # the code that cleans and splits them, and exports the models
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(json.dumps({"model": model, "chunking": asdict(chunking), "format": FORMAT_VERSION},
                             sort_keys=True).encode())
    return digest.hexdigest()[:16]


def default_index(embedder: Embedder | None = None, chunking: ChunkSettings | None = None,
                  backend: str = "auto") -> PassageIndex:
    """The index of the bundled corpus: loaded from the cache, or built and cached on first use.

    The first build also exports the models to ONNX (see ``rag.read.runtime``), so that later
    questions can skip torch. ``backend`` is how the default query embedder runs.
    """
    chunking = chunking if chunking is not None else ChunkSettings()
    model = embedder.model_name if embedder is not None else DEFAULT_MODEL
    root = cache_dir() / "indexes"
    path = root / f"bundled-{_key(model, chunking)}"
    if IndexFolder(path).is_index():
        return PassageIndex.load(path, embedder, backend)
    logger.info("building the index of the bundled corpus into %s", path)
    builder = embedder or Embedder(model)
    index = PassageIndex.build(read_documents([corpus_dir()]), builder, chunking)
    index.save(path)
    if embedder is None:
        fast_models.export_missing(builder)
    for stale in root.glob("bundled-*"):  # indexes of an older corpus, model or setting
        if stale != path:
            shutil.rmtree(stale, ignore_errors=True)
    return index
