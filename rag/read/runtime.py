"""Which runtime runs each model, and the ONNX exports that let a one-off question skip torch.

Measured on this project's 2-core CPU (``python -m eval.latency`` reports each figure):

- embedding a query: ONNX Runtime fp32 is 2x faster than PyTorch, with the same vectors
  (largest difference 2e-7);
- reading: PyTorch with bf16 autocast, on a CPU with native bf16, is 1.7x faster than fp32;
  ONNX Runtime fp32 is about as fast as PyTorch fp32; all 93 bundled gold answers are the
  same on ONNX Runtime as on PyTorch fp32, and with reader v2 all but one under bf16;
- importing torch and sentence-transformers takes about 5 s, onnxruntime and tokenizers 0.1 s;
- reading with an int8 copy of the reader's export (``--backend int8``: MatMul weights int8
  per output channel, see ``embeddings.onnx.quantize``) is 2.1x faster than ONNX Runtime fp32
  and 1.6x faster than bf16 on an AMD EPYC with VNNI; it changes 7 of the 102 bundled gold
  answers (EM 80.4 either way, F1 85.5 against 84.6) and costs 0.3-0.6 held-out EM. Because it
  changes answers it is a choice, never the default.

So queries are always embedded with ONNX Runtime once an export exists. A process that
answers a question or two (``rag ask``, ``rag search``) reads with ONNX Runtime too and
never imports torch; a long-lived one (``rag serve``, ``rag eval``) reads with PyTorch,
bf16 where native. Exports are made once, when an index is built (``rag index``, or the
bundled index's first build), never while answering. They are cached under the cache
folder, named by the weights they come from, each with the check of its export beside it;
the reader's int8 copy is quantized from its fp32 export, without torch.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from embeddings import Embedder
from rag.errors import InvalidInputError, ModelLoadError
from rag.read.reader import Reader, shipped_reader_dir
from rag.settings import BACKENDS, cache_dir

logger = logging.getLogger(__name__)

_EXPORT_FORMAT = 1
_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "config.json", "reader.json")


def _export_path(kind: str, folder: Path) -> Path | None:
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


def _reader_folder(model: str | Path | None) -> Path:
    return Path(model).expanduser() if model is not None else shipped_reader_dir()


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise InvalidInputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def embedder(model: str, backend: str = "auto") -> Embedder:
    """The embedder for ``model``: ONNX Runtime where its export exists ("auto"), or as asked.

    Queries are embedded in fp32 on every backend but "torch": "int8" quantizes only the reader.

    Raises:
        ModelLoadError: ``backend`` is "onnx" or "int8" and there is no export (build an index first).
    """
    path = _export_path("embedder", Embedder(model).folder) if _check_backend(backend) != "torch" else None
    if path is not None and path.is_file():
        return Embedder(model, onnx_file=path)
    if backend in ("onnx", "int8"):
        raise ModelLoadError(f"no ONNX export of the embedding model {model!r}; `rag index` makes one")
    return Embedder(model)


def reader(model: str | Path | None = None, backend: str = "auto") -> Reader:
    """The reader: ONNX Runtime where its export exists ("auto"), PyTorch ("torch"), its int8 copy ("int8"),
    or as asked.

    Raises:
        ModelLoadError: ``backend`` is "onnx" or "int8" and there is no such export (build an index first).
    """
    kind = "reader-int8" if _check_backend(backend) == "int8" else "reader"
    path = _export_path(kind, _reader_folder(model)) if backend != "torch" else None
    if path is not None and path.is_file():
        return Reader(model, onnx_file=path, isolate_questions=kind == "reader-int8")
    if backend in ("onnx", "int8"):
        what = "int8 export" if backend == "int8" else "ONNX export"
        raise ModelLoadError(f"no {what} of the reader {str(model or 'shipped')!r}; `rag index` makes one")
    return Reader(model)


def export_missing(embedder: Embedder, reader_model: str | Path | None = None) -> dict[str, float]:
    """Export the embedder and the reader to ONNX, and the reader's int8 copy, where none is cached yet.

    A failed export is logged and skipped: those models then run with PyTorch.

    Args:
        embedder: the embedder, as it was just used to build an index (its loaded model is exported).
        reader_model: the reader's folder or name; the shipped reader by default.

    Returns:
        For each export made, the largest output difference from what it was made from (PyTorch, or the
        fp32 export for the int8 copy).
    """
    made = {}
    fp32 = _export_path("reader", _reader_folder(reader_model))
    for kind, path, make in (
            ("embedder", _export_path("embedder", embedder.folder), embedder.export_onnx),
            ("reader", fp32, lambda p: Reader(reader_model).export_onnx(p)),
            ("reader-int8", _export_path("reader-int8", _reader_folder(reader_model)),
             lambda p: Reader(reader_model).quantize_onnx(fp32, p))):
        if path is None or path.is_file():
            continue
        try:
            made[kind] = make(path)
            logger.info("exported the %s to %s (largest difference from its source %.2g)", kind, path, made[kind])
        except Exception as e:  # an exporter failure must not fail the indexing it follows
            logger.warning("could not export the %s to ONNX (%s); it will run with PyTorch", kind, e)
    return made
