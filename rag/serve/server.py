"""``rag serve``: load the models once, then serve the chat at ``/`` and the JSON API at ``/api`` on one server."""

from __future__ import annotations

import socket
from pathlib import Path

from rag.errors import RagError
from rag.serve.library import Library


def serve(host: str = "127.0.0.1", port: int = 7860, index: Path | None = None, read_only: bool = False,
          backend: str = "auto") -> None:
    """Load the models once, then serve the chat and the JSON API until interrupted.

    Args:
        host: the address to listen on.
        port: the port.
        index: the index folder to serve and add to; the user's own library by default.
        read_only: turn uploads and removal off.
        backend: how the models run (see :class:`rag.serve.library.Library`).

    Raises:
        RagError: the port is taken (checked before the models load).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # before any heavy import
        try:
            probe.bind((host, port))
        except OSError as e:
            raise RagError(f"cannot serve on {host}:{port}: {e.strerror or e} (pass another --port)") from e
    import uvicorn

    from rag.serve.api import create_app
    from rag.serve.ui import EXAMPLES, mount
    library = Library.open(index, read_only=read_only, backend=backend)
    # Load the models and let the kernels meet the common window shapes before the first user does.
    library.ask(EXAMPLES, [library.assistant.k] * len(EXAMPLES), [library.assistant.retriever.mode] * len(EXAMPLES))
    print(f"serving {len(library.index.documents)} articles from {library.folder} on http://{host}:{port} "
          f"(chat at /, API at /api, its docs at /docs){' read-only' if read_only else ''}", flush=True)
    uvicorn.run(mount(create_app(library), library), host=host, port=port, log_level="warning")
