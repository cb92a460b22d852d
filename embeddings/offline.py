"""The offline rule every model load follows: local files only, unless the user opts in.

``RAG_ALLOW_DOWNLOADS=1`` lets a model name be fetched from the Hugging Face hub; without
it a name that is neither a folder nor in the local Hugging Face cache fails at once, in
one line, instead of retrying the network.
"""

from __future__ import annotations

import os

ALLOW_DOWNLOADS = "RAG_ALLOW_DOWNLOADS"


def downloads_allowed() -> bool:
    """Whether the user opted in to fetching models from the hub."""
    return os.environ.get(ALLOW_DOWNLOADS, "") == "1"


def load_failure(what: str, name: str, option: str, local: bool, error: Exception) -> str:
    """The one-line message for a model that failed to load.

    Args:
        what: "embedding model" or "reader model".
        name: the name or folder asked for.
        option: the command-line option that names it, for the hint.
        local: whether ``name`` is a folder on this machine.
        error: what the loading library raised (its first line is kept).
    """
    if not local and not downloads_allowed():
        return (f"{what} {name!r} is not installed here (no such folder, and not in the Hugging Face cache); "
                f"this tool works offline: pass a model folder with {option}, "
                f"or set {ALLOW_DOWNLOADS}=1 to download it")
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"cannot load {what} {name!r}: {detail}"
