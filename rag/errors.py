"""The project's exceptions: one base class, so callers can catch everything we raise.

Errors about a value the caller passed also derive from ``ValueError``, so code written
against plain ``except ValueError`` keeps working. An entry point (the ``rag`` command, a
benchmark script) runs its body through :func:`run_guarded`, which prints a user's error
as one line.
"""

import sys
from collections.abc import Callable
from importlib import import_module
from types import ModuleType


class RagError(Exception):
    """Base class for every error this package raises on purpose."""


class InvalidInputError(RagError, ValueError):
    """An argument is out of range or of the wrong kind; the message quotes it."""


class DocumentNotFoundError(InvalidInputError):
    """No document with the given id in the index."""


class ReadOnlyError(RagError):
    """A change was asked of a library served read-only."""


class TooLargeError(InvalidInputError):
    """A request or an upload is over a size limit; the message names the limit."""


class MissingDependencyError(RagError):
    """An optional dependency is not installed; the message names the extra that brings it."""


class IngestError(RagError):
    """An article, file or folder could not be read."""


class EmptyCorpusError(IngestError):
    """Nothing readable was found where articles were expected."""


class IndexNotFoundError(RagError):
    """No index folder, or a file missing from one."""


class NotAnIndexError(RagError):
    """A folder asked to hold an index holds something else; it was left untouched."""


class IndexLockedError(RagError):
    """Another process is writing the index, and the caller chose not to wait."""


class IndexWriteError(RagError):
    """An index could not be written (read-only folder, full disk); the previous one is unchanged."""


class IndexMismatchError(RagError):
    """An index does not agree with its manifest, or with the embedder asked to query it."""


class ModelLoadError(RagError):
    """A model folder or name could not be loaded."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or say in one line which extra installs it.

    Args:
        module: the module to import ("sklearn").
        extra: the package extra that brings it ("train").
        purpose: what needs it ("calibrating the reader").

    Raises:
        MissingDependencyError: the module is not installed.
    """
    try:
        return import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{purpose} needs {module.split('.')[0]}: "
                                     f"pip install \"rag-news-qa[{extra}]\"") from None


def run_guarded(command: Callable[..., object], *args: object) -> int:
    """Run an entry point's body: 0 on success, 2 with a one-line message on a user's error, 130 on Ctrl-C.

    Args:
        command: the body to run.
        *args: its arguments.
    """
    try:
        command(*args)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader of our output went away (``rag search --json | head``): not an error
        sys.stderr.close()
        return 0
    return 0
