"""Defaults and checks that the whole package shares, each written once.

This module imports nothing heavy, so the CLI can build its parser (and answer
``rag --help``) without loading torch, FAISS or transformers.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

from embeddings.offline import downloads_allowed
from rag.errors import InvalidInputError

# The article files ``rag.ingest`` reads, by kind; every list of supported types is derived from this one.
FORMATS: dict[str, tuple[str, ...]] = {
    "text": (".txt",), "markdown": (".md", ".markdown"), "html": (".html", ".htm"), "jsonl": (".jsonl",),
    "pdf": (".pdf",), "feed": (".rss", ".atom", ".xml"), "warc": (".warc", ".warc.gz")}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(suffix for suffixes in FORMATS.values() for suffix in suffixes)
DEFAULT_MAX_FILE_BYTES = 20_000_000  # a news article is kilobytes; a larger file is a dump, not an article
# Retrieval modes, the default first: dense and BM25 fused, or either alone.
Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = get_args(Mode)
DEFAULT_MODE = MODES[0]
DEFAULT_K = 5  # passages retrieved and read per question
# How the models run (see rag.read.runtime): ONNX Runtime where exported, PyTorch, ONNX Runtime,
# or ONNX Runtime with the reader quantized to int8.
Backend = Literal["auto", "torch", "onnx", "int8"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
EXPLICIT_BACKENDS: tuple[Backend, ...] = BACKENDS[1:]  # the runtimes "auto" chooses among
# How hybrid retrieval fuses the dense and BM25 rankings (see rag.search.fusion), the default first:
# an even convex sum of min-max-normalised scores found the answer's passage first more often
# than reciprocal rank fusion, on the bundled gold and on SQuADShifts New Wiki (docs/results.md, "Fusion").
Fusion = Literal["convex", "rrf"]
FUSIONS: tuple[Fusion, ...] = get_args(Fusion)
DEFAULT_FUSION = FUSIONS[0]
# Words for a calibrated confidence (the probability that the answer is right): at least
# 0.75 is "high", at least 0.5 "medium", below that "low", shown as a possible answer.
CONFIDENCE_LEVELS: tuple[tuple[float, str], ...] = ((0.75, "high"), (0.5, "medium"), (0.0, "low"))
# The FAISS index of rag.index.dense: exact (flat), approximate (HNSW), or chosen by size.
DENSE_KINDS: tuple[str, ...] = ("auto", "flat", "hnsw")
# From this many passages HNSW: there exact search is several times slower than HNSW at a small
# loss of recall (docs/results.md, "Where HNSW starts to pay").
HNSW_FROM = 200_000


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut into passages (``rag.indexing.chunking``); recorded with every index."""

    max_tokens: int = 160
    overlap_sentences: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 8:
            raise InvalidInputError(f"max_tokens must be an integer >= 8, got {self.max_tokens!r}")
        if not isinstance(self.overlap_sentences, int) or self.overlap_sentences < 0:
            raise InvalidInputError(f"overlap_sentences must be an integer >= 0, got {self.overlap_sentences!r}")


@dataclass(frozen=True)
class DenseSettings:
    """The FAISS index of a passage index, recorded in its manifest.

    Args:
        kind: "flat" (exact), "hnsw" (approximate), or "auto": flat below ``HNSW_FROM`` passages.
        hnsw_m: graph neighbours per node.
        ef_construction: candidate list size while building the graph.
        ef_search: candidate list size while searching; larger is slower and more exact.
    """

    kind: str = "auto"
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 1024

    def __post_init__(self) -> None:
        if self.kind not in DENSE_KINDS:
            raise InvalidInputError(f"dense index kind must be one of {', '.join(DENSE_KINDS)}, got {self.kind!r}")
        for name in ("hnsw_m", "ef_construction", "ef_search"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def confidence_level(confidence: float) -> str:
    """The word for a calibrated confidence on :data:`CONFIDENCE_LEVELS`."""
    return next(word for floor, word in CONFIDENCE_LEVELS if confidence >= floor)


def cache_dir() -> Path:
    """Where built indexes and model exports are kept: ``$RAG_CACHE_DIR``, else the user's cache folder."""
    if os.environ.get("RAG_CACHE_DIR"):
        return Path(os.environ["RAG_CACHE_DIR"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rag-news-qa"))


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive integer (not a bool), else raise quoting it.

    Raises:
        InvalidInputError: ``value`` is not a positive integer.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_mode(mode: str) -> Mode:
    """Return ``mode`` if it is one of :data:`MODES`, else raise quoting it."""
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def check_question(question: object) -> str:
    """Return ``question`` if it is text that asks something: a string of valid Unicode, with a letter
    or a digit, and no control character but tabs and line breaks.

    Raises:
        InvalidInputError: it is not such a string; the message quotes its start.
    """
    shown = repr(question)[:60]
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError(f"a question must be a non-empty string, got {shown}")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInputError(f"the question is not valid text: it holds a lone surrogate "
                                f"(U+{ord(question[e.start]):04X})") from None
    control = next((c for c in question if unicodedata.category(c) == "Cc" and c not in "\t\n\r"), None)
    if control is not None:
        raise InvalidInputError(f"the question holds a control character (U+{ord(control):04X})")
    if not any(c.isalnum() for c in question):
        raise InvalidInputError(f"the question is empty: it has no letter or digit, got {shown}")
    return question


def check_questions(questions: Sequence[str]) -> None:
    """Raise unless ``questions`` is a list of questions (:func:`check_question`); a lone string is a
    mistake, not a list."""
    if isinstance(questions, str):
        raise InvalidInputError("expected a list of questions, got one string; use search() or ask() for one")
    for q in questions:
        check_question(q)


def configure_entry_point(verbose: bool = False) -> None:
    """Logging, network and threads for a command-line entry point: our messages on stderr, the libraries quiet.

    transformers and huggingface_hub read these variables when they are first imported,
    so calling this before any model is loaded silences their weight-loading bars and
    load reports without importing them here. A variable the user set is left alone.
    """
    # OpenMP threads (PyTorch's) spin only briefly before they sleep: as fast as the default on a
    # quiet machine, and far steadier beside a competing load (docs/results.md, "Thread settings").
    os.environ.setdefault("GOMP_SPINCOUNT", "20000")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not downloads_allowed():  # offline unless the user opted in: no network retries, ever
        os.environ["HF_HUB_OFFLINE"] = "1"
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
