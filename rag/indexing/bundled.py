"""The sample corpus shipped inside the package, and its index, built on first use.

The index lives in a per-user cache folder (``RAG_CACHE_DIR`` overrides it) under a
key made from the corpus files, the code that reads and splits them (``rag.ingest``,
``rag.indexing.chunking``) and exports the models (``rag.exports``, ``rag.read.runtime``),
the embedding model, the chunk settings and the index format, so a change to any of them
builds a fresh index (and the exports it lacks) instead of reusing a stale one.
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
from rag import exports, ingest
from rag.index.folder import PassageIndex
from rag.index.generations import FORMAT_VERSION
from rag.indexing import chunking as chunking_code
from rag.indexing.workflow import index_articles
from rag.ingest import iter_article_files
from rag.protocols import Encoder
from rag.read import runtime
from rag.settings import ChunkSettings, cache_dir

logger = logging.getLogger(__name__)


def corpus_dir() -> Path:
    """The folder of bundled sample articles."""
    return Path(str(files("rag") / "data" / "corpus"))


def _key(model: str, chunking: ChunkSettings) -> str:
    digest = hashlib.sha256()
    for path in iter_article_files([corpus_dir()]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    code = [*sorted(Path(ingest.__file__).parent.glob("*.py")), Path(chunking_code.__file__),
            Path(exports.__file__), Path(runtime.__file__)]
    for path in code:  # the code that cleans and splits them, and exports the models
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(json.dumps({"model": model, "chunking": asdict(chunking), "format": FORMAT_VERSION},
                             sort_keys=True).encode())
    return digest.hexdigest()[:16]


def default_index(embedder: Encoder | None = None, chunking: ChunkSettings | None = None,
                  backend: str = "auto") -> PassageIndex:
    """The index of the bundled corpus: loaded from the cache, or built and cached on first use.

    The first build also exports the models to ONNX (see ``rag.exports``), so that later
    questions can skip torch. ``backend`` is how the default query embedder runs.
    """
    chunking = chunking if chunking is not None else ChunkSettings()
    model = embedder.model_name if embedder is not None else DEFAULT_MODEL
    root = cache_dir() / "indexes"
    path = root / f"bundled-{_key(model, chunking)}"
    if not PassageIndex.exists(path):
        logger.info("building the index of the bundled corpus into %s", path)
        index_articles(path, [corpus_dir()], embedder=embedder or Embedder(model), chunking=chunking,
                       export=embedder is None)
        for stale in root.glob("bundled-*"):  # indexes of an older corpus, model or setting
            if stale != path:
                shutil.rmtree(stale, ignore_errors=True)
    return PassageIndex.open(path, embedder, backend)
