"""The index folder on disk: crash-safe generations, one writer at a time, checked reads.

Layout::

    DIR/
      CURRENT            one line: the name of the live generation, e.g. "gen-000007"
      gen-000007/        the live index: manifest.json and its segments (see rag.index.folder)
      gen-000006/        the one before, kept so a reader that opened it a moment ago can finish
      .writer.lock       held by the one process that may write (filelock)

Why it cannot destroy anything, by construction rather than by timing:

- A save never touches a file that a reader may be reading. It writes a whole new
  generation into a temporary folder, fsyncs every file and the folder, renames it to
  ``gen-NNNNNN`` and fsyncs ``DIR``. Only then does it switch ``CURRENT``: it writes
  ``CURRENT.tmp``, fsyncs it, and ``os.replace``-s it over ``CURRENT``, which POSIX makes
  atomic. A reader, or a process after a crash at any instant, sees either the old
  pointer to the complete old generation or the new pointer to the complete new one.
- The manifest records the size and SHA-256 of every file of its generation, and loading
  checks them, so a torn or flipped file is one clear error that names it.
- Writers hold an inter-process lock (``filelock``) across load, change and save, so two
  updates run one after the other and the second sees the first's documents. Readers
  take no lock and never wait.
- Whatever an interrupted save left (a temporary folder, a generation that was never
  switched to, generations older than the previous one) is removed by the next save,
  under the lock, with a one-line note.

A folder is only ever written when it is missing, empty, or already an index of this
project (its manifest carries :data:`MARKER`), so ``--out`` pointed at a folder of
articles is refused before anything is touched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from rag.errors import (
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexWriteError,
    NotAnIndexError,
)

logger = logging.getLogger(__name__)

MARKER = "rag-news-qa index"
FORMAT_VERSION = 4  # 4: segments (rag.index.segment); 3: passages and documents in SQLite (rag.index.passage_store)
POINTER = "CURRENT"
LOCK = ".writer.lock"
MANIFEST = "manifest.json"
_GENERATION = re.compile(r"^gen-(\d{6,})$")
_OURS = re.compile(r"^(CURRENT(\.tmp)?|\.writer\.lock|gen-\d{6,}|\.gen-\d{6,}\.tmp-[0-9a-f]+)$")
# Files of the format-1 layout (everything directly in DIR); a save over such an index replaces them.
_LEGACY_FILES = ("manifest.json", "index.faiss", "passages.jsonl", "documents.jsonl", "bm25")


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it, so it is on disk before anything points at it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


class IndexFolder:
    """One index folder: find its live generation, check it, and write new ones safely.

    Args:
        path: the folder (``rag index --out DIR``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- reading ---------------------------------------------------------------------------

    def current(self) -> Path | None:
        """The live generation folder, or None when the folder holds no committed index."""
        try:
            name = (self.path / POINTER).read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise IndexNotFoundError(f"cannot read {self.path / POINTER}: {e.strerror or e}") from e
        if not _GENERATION.match(name) or not (self.path / name).is_dir():
            raise IndexMismatchError(f"{self.path / POINTER} names {name!r}, which is not a generation of this index")
        return self.path / name

    def is_legacy(self) -> bool:
        """Whether the folder holds an index in the format-1 layout (files directly in it)."""
        try:
            manifest = json.loads((self.path / MANIFEST).read_text())
        except (OSError, ValueError):
            return False
        return isinstance(manifest, dict) and manifest.get("format_version") == 1 and "embedding_model" in manifest

    def is_index(self) -> bool:
        """Whether the folder holds a committed index of this project."""
        return (self.path / POINTER).is_file()

    def open(self) -> tuple[Path, dict]:
        """The live generation and its manifest, every file checked against the manifest's checksums.

        Raises:
            IndexNotFoundError: no index here.
            IndexMismatchError: the manifest is unreadable, of another format, or a file is
                missing, of the wrong size, or corrupt (the message names the file).
        """
        if not self.path.is_dir():
            raise IndexNotFoundError(f"no index folder at {self.path}")
        generation = self.current()
        if generation is None and self.is_legacy():
            raise IndexMismatchError(f"the index at {self.path} uses format 1 of this project, which this version "
                                     f"does not read; rebuild it with `rag index ARTICLES --out {self.path}`")
        if generation is None:
            raise IndexNotFoundError(f"no index at {self.path} (no {POINTER} file; build one with `rag index`)")
        try:
            manifest = json.loads((generation / MANIFEST).read_text())
            files = manifest["files"]
        except FileNotFoundError as e:
            raise IndexMismatchError(f"{generation} has no {MANIFEST}") from e
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise IndexMismatchError(f"corrupt {MANIFEST} in {generation}: {e}") from e
        if manifest.get("kind") != MARKER:
            raise IndexMismatchError(f"{generation / MANIFEST} is not an index of this project")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(f"the index at {self.path} uses format {manifest.get('format_version')!r} of this "
                                     f"project, and this version reads format {FORMAT_VERSION} only; rebuild it with "
                                     f"`rag index ARTICLES --out NEW_FOLDER`")
        for name, expected in files.items():
            path = generation / name
            if not path.is_file():
                raise IndexMismatchError(f"{name} is missing from the index at {self.path}")
            if path.stat().st_size != expected["bytes"]:
                raise IndexMismatchError(f"{name} in the index at {self.path} is corrupt (its size does not match "
                                         f"the manifest); rebuild the index with `rag index`")
        # Checksums on every core (hashlib lets go of the GIL): a million passages are gigabytes.
        largest_first = sorted(files, key=lambda name: -files[name]["bytes"])
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            digests = dict(zip(largest_first, pool.map(lambda name: _sha256(generation / name), largest_first)))
        for name, expected in files.items():
            if digests[name] != expected["sha256"]:
                raise IndexMismatchError(f"{name} in the index at {self.path} is corrupt (its checksum does not match "
                                         f"the manifest); rebuild the index with `rag index`")
        return generation, manifest

    # -- writing ---------------------------------------------------------------------------

    def check_target(self) -> None:
        """Raise unless this folder may be written: missing, empty, or an index of this project.

        Raises:
            NotAnIndexError: the folder exists and holds something else (nothing is touched).
        """
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise NotAnIndexError(f"{self.path} is a file, not an index folder")
        if self.is_legacy():
            return
        foreign = sorted(p.name for p in self.path.iterdir() if not _OURS.match(p.name))
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise NotAnIndexError(f"{self.path} is not an index folder and is not empty (it holds {shown}); "
                                  "nothing was changed. Pass --out a new or empty folder, or an existing index")

    def check_writable(self) -> None:
        """Before any long work: the folder can be created and written.

        Raises:
            NotAnIndexError: the folder holds something other than an index.
            IndexWriteError: it cannot be written.
        """
        self.check_target()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".gen-000000.tmp-{uuid.uuid4().hex[:8]}"
            probe.mkdir()
            probe.rmdir()
        except OSError as e:
            raise IndexWriteError(f"cannot write to {self.path}: {e.strerror or e}") from e

    def check_space(self, needed_bytes: int) -> None:
        """Before embedding: the folder's disk has room for a new generation of ``needed_bytes``.

        Raises:
            IndexWriteError: the disk is too full.
        """
        free = shutil.disk_usage(self.path).free
        if free < needed_bytes:
            raise IndexWriteError(f"not enough disk space for the index at {self.path}: about "
                                  f"{needed_bytes / 1e6:.0f} MB needed, {free / 1e6:.0f} MB free")

    @contextmanager
    def writer(self, wait: bool = True) -> Iterator[None]:
        """Hold the writer lock of this folder (re-entrant within a thread).

        Args:
            wait: wait for another writer to finish (saying so once); if False, fail at once.

        Raises:
            IndexLockedError: another process is writing and ``wait`` is False.
            NotAnIndexError: the folder holds something other than an index.
        """
        from filelock import FileLock, Timeout

        self.check_target()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise IndexWriteError(f"cannot create {self.path}: {e.strerror or e}") from e
        lock = FileLock(self.path / LOCK, is_singleton=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise IndexLockedError(f"another process is writing the index at {self.path}; "
                                       "try again when it is done (or leave out --no-wait to wait)") from None
            logger.warning("waiting for another process to finish writing the index at %s", self.path)
            lock.acquire()
        except OSError as e:
            raise IndexWriteError(f"cannot lock {self.path / LOCK}: {e.strerror or e}") from e
        try:
            yield
        finally:
            lock.release()

    def commit(self, write: Callable[[Path], dict]) -> Path:
        """Write a new generation and make it the live one; crash-safe at every instant.

        Args:
            write: fills the given empty folder with the index files and returns the manifest
                body (without ``kind`` and ``format_version``, which are added here). Its
                ``files`` may give the checksums of files it linked from a checked generation;
                every other file is checksummed here.

        Returns:
            The new generation folder.

        Raises:
            IndexWriteError: the disk is full or read-only, or the folder cannot be written;
                the live index is then unchanged.
        """
        with self.writer():
            self._clean_leftovers(note=True)
            previous = self.current()
            number = 1 + max((int(m.group(1)) for m in map(_GENERATION.match, os.listdir(self.path)) if m),
                             default=0)
            name = f"gen-{number:06d}"
            tmp = self.path / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
            try:
                tmp.mkdir()
                manifest = write(tmp)
                known = manifest.pop("files", {})
                files = {}
                for path in _files_of(tmp):
                    relative = path.relative_to(tmp).as_posix()
                    if relative in known and known[relative]["bytes"] == path.stat().st_size:
                        files[relative] = known[relative]  # linked from a generation whose checksums were checked
                        continue
                    _fsync_path(path)
                    files[relative] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
                for folder in sorted({p.parent for p in _files_of(tmp)}, reverse=True):
                    _fsync_path(folder)
                manifest = {"kind": MARKER, "format_version": FORMAT_VERSION, **manifest, "files": files}
                write_file(tmp / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
                _fsync_path(tmp)
                os.rename(tmp, self.path / name)
                _fsync_path(self.path)
                # The commit point: an atomic switch of a one-line pointer.
                pointer = self.path / f"{POINTER}.tmp"
                pointer.unlink(missing_ok=True)
                write_file(pointer, f"{name}\n".encode())
                os.replace(pointer, self.path / POINTER)
                _fsync_path(self.path)
            except OSError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                if (self.path / name).exists() and self._pointer_name() != name:
                    shutil.rmtree(self.path / name, ignore_errors=True)
                why = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
                raise IndexWriteError(f"cannot write the index at {self.path}: {why}; "
                                      "the index there is unchanged") from e
            self._clean_leftovers(keep_previous=previous, note=False)
            return self.path / name

    def _pointer_name(self) -> str | None:
        try:
            return (self.path / POINTER).read_text().strip()
        except OSError:
            return None

    def _clean_leftovers(self, note: bool, keep_previous: Path | None = None) -> None:
        """Remove what no reader can need: temporary folders, unswitched or old generations.

        The live generation stays, and so does the one before it (``keep_previous``, or the
        newest older one), for a reader that opened it just before the switch.
        """
        live = self._pointer_name()
        generations = sorted(p.name for p in self.path.iterdir() if _GENERATION.match(p.name))
        older = [g for g in generations if live is not None and g < live]
        keep = {live, keep_previous.name if keep_previous is not None else (older[-1] if older else None)}
        doomed = [p for p in self.path.iterdir()
                  if (p.name.startswith(".gen-") and ".tmp-" in p.name) or p.name == f"{POINTER}.tmp"
                  or (_GENERATION.match(p.name) and p.name not in keep)]
        if live is not None and self.is_legacy():
            doomed += [self.path / f for f in _LEGACY_FILES if (self.path / f).exists()]
        for path in doomed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if doomed and note:
            logger.warning("removed %d leftover(s) of an interrupted save in %s: %s", len(doomed), self.path,
                           ", ".join(sorted(p.name for p in doomed)))
