"""Read articles (files or folders of the kinds ``rag.ingest.formats`` reads) into ``Document`` records.

``read_documents`` is the entry point: it expands folders, reads each file with the reader
of its kind, reports what it skips and why, and stores each story once: a copy or a
near-duplicate (one agency story under several outlets) is folded into the first one read,
which keeps where each came from (``rag.ingest.near_duplicates``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from rag.errors import EmptyCorpusError, IngestError
from rag.ingest import formats, near_duplicates
from rag.ingest.formats import document_id
from rag.settings import DEFAULT_MAX_FILE_BYTES, FORMATS, SUPPORTED_SUFFIXES
from rag.types import Document

__all__ = ["DEFAULT_MAX_FILE_BYTES", "SUPPORTED_SUFFIXES", "document_id", "iter_article_files", "read_documents",
           "read_file", "read_or_skip"]

logger = logging.getLogger(__name__)



def _kind(path: Path) -> str | None:
    name = path.name.lower()
    return next((kind for kind, suffixes in FORMATS.items() if name.endswith(suffixes)), None)


def read_file(path: Path, on_skip: Callable[[str], None] | None = None,
              max_bytes: int | None = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
    """Read one file's articles: one for most kinds, one per line, item or response for .jsonl, feeds and WARC.

    Args:
        path: the file.
        on_skip: called with a one-line message for each part of a file that is skipped
            (a malformed .jsonl line, a WARC response that cannot be decoded) while the rest is
            read; by default a logged warning.
        max_bytes: refuse a larger file before reading it; None for no limit.

    Raises:
        IngestError: the file is too large, binary, undecodable or of an unsupported type.
    """
    kind = _kind(path)
    if kind is None:
        raise IngestError(f"{path}: unsupported file type {path.suffix.lower() or '(none)'!r} "
                          f"(supported: {', '.join(SUPPORTED_SUFFIXES)})")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise IngestError(f"{path}: {size / 1e6:.1f} MB, over the size limit of {max_bytes / 1e6:g} MB")
        data = path.read_bytes()
    except OSError as e:
        raise IngestError(f"{path}: cannot read it: {e.strerror or e}") from e
    source, skip = str(path), on_skip or _log_skip
    if kind == "pdf":
        return formats.read_pdf(data, source)
    if kind == "feed":
        return formats.read_feed(data, source)
    if kind == "warc":
        return formats.read_warc(data, source, skip)
    raw = formats.decode(data, path)
    if kind == "html":
        return formats.read_html(raw, source)
    if kind == "jsonl":
        return formats.read_jsonl(raw, source, skip)
    if kind == "markdown":
        return formats.read_markdown(raw, source)
    return formats.read_text(raw, source)


def _log_skip(message: str) -> None:
    logger.warning("skipped %s", message)


def read_or_skip(path: Path, on_skip: Callable[[str], None],
                 max_bytes: int | None = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
    """:func:`read_file`, with a file that cannot be read, or holds no text, reported to ``on_skip`` instead."""
    try:
        found = read_file(path, on_skip, max_bytes)
    except IngestError as e:
        on_skip(str(e))
        return []
    if not found:
        on_skip(f"{path}: no text in it")
    return found


def iter_article_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into the article files to read, each once, in a stable order.

    Raises:
        IngestError: a path does not exist.
    """
    files: dict[Path, Path] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise IngestError(f"no such file or folder: {path}")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and _kind(p) is not None
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            found = [path]
        for file in found:
            files.setdefault(file.resolve(), file)
    return list(files.values())


def read_documents(paths: Iterable[str | Path], on_skip: Callable[[str], None] | None = None,
                   progress: bool = False, max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES) -> list[Document]:
    """Read every article under ``paths``; what cannot be read is skipped and reported, not fatal.

    Args:
        paths: files and folders; folders are searched recursively for supported files.
        on_skip: called once with a one-line message ("where: why") for each file, or
            .jsonl line, that is skipped; by default a logged warning.
        progress: show a progress bar over the files.
        max_file_bytes: refuse larger files before reading them; None for no limit.

    Returns:
        The documents, each story once: a copy or near-duplicate of one read before is
        folded into it, its source, outlet and URL added to the first one's ``copies``
        (``rag.ingest.near_duplicates``).

    Raises:
        IngestError: a path does not exist.
        EmptyCorpusError: no readable article was found.
    """
    from tqdm.auto import tqdm

    skip = on_skip or _log_skip
    paths = list(paths)
    files = iter_article_files(paths)
    docs: list[Document] = []
    for file in tqdm(files, desc="reading", unit="file", disable=not progress or len(files) < 2):
        docs += read_or_skip(file, skip, max_file_bytes)
    if not docs:
        raise EmptyCorpusError(f"no readable articles in {', '.join(map(str, paths)) or '(nothing given)'}")
    return near_duplicates.merge(docs)
