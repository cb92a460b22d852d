"""Which backend keeps an index, read from its location, and opening it.

A location is a folder (``rag.index.folder``), or a URI whose scheme names a server:
``postgresql://USER@HOST:PORT/DB?table=NAME`` (``rag.index.postgres``),
``qdrant://HOST:PORT/COLLECTION`` (``qdrants://`` for TLS) or ``qdrant:FOLDER/COLLECTION``
for Qdrant's embedded local mode (``rag.index.qdrant``). Each backend keeps the contract of
``rag.protocols.Index``; its module is imported only when a location names it.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import cast

from rag.protocols import Encoder, Index, Location

# URI scheme -> the module and class of its backend; anything else is a folder.
SCHEMES = {"qdrant:": ("rag.index.qdrant", "QdrantIndex"), "qdrants:": ("rag.index.qdrant", "QdrantIndex"),
           "postgresql:": ("rag.index.postgres", "PostgresIndex"), "postgres:": ("rag.index.postgres", "PostgresIndex")}
FOLDER = ("rag.index.folder", "PassageIndex")


def is_uri(location: object) -> bool:
    """Whether ``location`` names a collection on a server (or an engine's local mode) rather than a folder."""
    return isinstance(location, str) and location.startswith(tuple(SCHEMES))


def as_location(text: str) -> Location:
    """A location as a user typed it: a URI kept as text (a Path would fold its ``//``), else a folder."""
    return text if is_uri(text) else Path(text)


def backend_of(location: Location) -> type[Index]:
    """The index class that keeps ``location``."""
    module, name = next((found for scheme, found in SCHEMES.items() if str(location).startswith(scheme)), FOLDER) \
        if is_uri(location) else FOLDER
    return cast("type[Index]", getattr(import_module(module), name))


def open_index(location: Location, embedder: Encoder | None = None, backend: str = "auto") -> Index:
    """The index at ``location`` (see the module's notes).

    Args:
        location: a folder written by ``rag index --out``, or a collection's URI.
        embedder: the query encoder; by default the model the index names.
        backend: how that default runs (see ``rag.exports``): "auto", "torch" or "onnx".

    Raises:
        IndexNotFoundError: nothing there.
        IndexMismatchError: it is no index of this project, or of another embedding model.
    """
    return backend_of(location).open(location, embedder, backend)
