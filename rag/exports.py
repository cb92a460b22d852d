"""ONNX exports of the models, cached by the weights they come from, and the query embedder that runs on one.

Queries are embedded with ONNX Runtime wherever the embedding model has an export: 2x faster
than PyTorch with the same vectors, and a process that only searches never imports torch
(``docs/results.md`` has the figures). Exports are made once, when an index is built
(``rag.indexing``), never while answering. They live under the cache folder, named by the
weights they come from, so new weights get a new export. The reader's runtime is chosen in
``rag.read.runtime``, with the same cache.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from embeddings import Embedder
from rag.errors import InvalidInputError, ModelLoadError
from rag.settings import BACKENDS, Backend, cache_dir

logger = logging.getLogger(__name__)

_EXPORT_FORMAT = 1
_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "config.json", "reader.json")


def export_path(kind: str, folder: Path) -> Path | None:
    """Where the export of the model in ``folder`` is cached; None for a model that is no local folder.

    The name comes from the weight files' names, sizes and times, so new weights get a new export.
    """
    files = [folder / name for name in _WEIGHTS if (folder / name).is_file()]
    if not files:
        return None
    digest = hashlib.sha256(f"{_EXPORT_FORMAT}:{folder.resolve()}".encode())
    for f in files:
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_dir() / "onnx" / f"{kind}-{digest.hexdigest()[:16]}.onnx"


def check_backend(backend: str) -> Backend:
    """Return ``backend`` if it is one of :data:`rag.settings.BACKENDS`, else raise quoting it."""
    for known in BACKENDS:
        if backend == known:
            return known
    raise InvalidInputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def embedder(model: str, backend: str = "auto") -> Embedder:
    """The embedder for ``model``: ONNX Runtime where its export exists ("auto"), or as asked.

    Queries are embedded in fp32 on every backend but "torch": "int8" quantizes only the reader.

    Raises:
        ModelLoadError: ``backend`` is "onnx" or "int8" and there is no export (build an index first).
    """
    path = export_path("embedder", Embedder(model).folder) if check_backend(backend) != "torch" else None
    if path is not None and path.is_file():
        return Embedder(model, onnx_file=path)
    if backend in ("onnx", "int8"):
        raise ModelLoadError(f"no ONNX export of the embedding model {model!r}; `rag index` makes one")
    return Embedder(model)


def export_embedder(embedder: Embedder) -> float | None:
    """Export the embedder's model to ONNX where none is cached yet; the largest difference from PyTorch, or None.

    A failed export is logged and skipped: queries are then embedded with PyTorch.
    """
    path = export_path("embedder", embedder.folder)
    if path is None or path.is_file():
        return None
    try:
        difference = embedder.export_onnx(path)
    except Exception as e:  # an exporter failure must not fail the indexing it follows
        logger.warning("could not export the embedder to ONNX (%s); it will run with PyTorch", e)
        return None
    logger.info("exported the embedder to %s (largest difference from PyTorch %.2g)", path, difference)
    return difference
