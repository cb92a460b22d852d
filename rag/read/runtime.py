"""Which runtime reads, and the reader's ONNX exports (fp32, and an int8 copy).

A process that answers a question or two (``rag ask``) reads with ONNX Runtime where an
export exists and never imports torch; a long-lived one (``rag serve``, ``rag eval``)
reads with PyTorch, under bf16 autocast where the CPU has native bf16. ``--backend int8``
reads with an int8 copy of the export: faster, and a few answers differ, so it is a choice,
never the default (``docs/results.md`` has the figures). Exports are cached as
``rag.exports`` caches the embedder's, and made when an index is built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from rag.errors import ModelLoadError
from rag.exports import check_backend, export_path
from rag.read.reader import Reader, shipped_reader_dir

logger = logging.getLogger(__name__)


def _reader_folder(model: str | Path | None) -> Path:
    return Path(model).expanduser() if model is not None else shipped_reader_dir()


def reader(model: str | Path | None = None, backend: str = "auto") -> Reader:
    """The reader: ONNX Runtime where its export exists ("auto"), PyTorch ("torch"), its int8 copy ("int8"),
    or as asked.

    Raises:
        ModelLoadError: ``backend`` is "onnx" or "int8" and there is no such export (build an index first).
    """
    kind = "reader-int8" if check_backend(backend) == "int8" else "reader"
    path = export_path(kind, _reader_folder(model)) if backend != "torch" else None
    if path is not None and path.is_file():
        return Reader(model, onnx_file=path, isolate_questions=kind == "reader-int8")
    if backend in ("onnx", "int8"):
        what = "int8 export" if backend == "int8" else "ONNX export"
        raise ModelLoadError(f"no {what} of the reader {str(model or 'shipped')!r}; `rag index` makes one")
    return Reader(model)


def export_reader(model: str | Path | None = None) -> dict[str, float]:
    """Export the reader to ONNX, and quantize that export to int8, where none is cached yet.

    A failed export is logged and skipped: the reader then runs with PyTorch.

    Args:
        model: the reader's folder or name; the shipped reader by default.

    Returns:
        For each export made ("reader", "reader-int8"), the largest logit difference from what
        it was made from (PyTorch, or the fp32 export).
    """
    made: dict[str, float] = {}
    folder = _reader_folder(model)
    fp32 = export_path("reader", folder)
    int8 = export_path("reader-int8", folder)
    if fp32 is None or int8 is None:  # a hub name, not a folder: nothing to name the export by
        return made
    steps: list[tuple[str, Path, Callable[[Path], float]]] = [
        ("reader", fp32, lambda p: Reader(model).export_onnx(p)),
        ("reader-int8", int8, lambda p: Reader(model).quantize_onnx(fp32, p))]
    for kind, path, make in steps:
        if path.is_file():
            continue
        try:
            made[kind] = make(path)
        except Exception as e:  # an exporter failure must not fail the indexing it follows
            logger.warning("could not export the %s to ONNX (%s); it will run with PyTorch", kind, e)
            continue
        logger.info("exported the %s to %s (largest difference from its source %.2g)", kind, path, made[kind])
    return made
