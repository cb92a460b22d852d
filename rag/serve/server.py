"""``rag serve``: load the models once, then serve the chat at ``/`` and the JSON API at ``/api`` on one server."""

from __future__ import annotations

import socket

from rag.errors import RagError
from rag.protocols import Location
from rag.serve.access import WRITE_TOKEN_VARIABLE, Access, is_loopback
from rag.serve.library import Library
from rag.serve.memory import IdleTrim, cap_malloc_arenas


def serve(host: str = "127.0.0.1", port: int = 7860, index: Location | None = None, read_only: bool = False,
          backend: str = "auto", access: Access | None = None) -> None:
    """Load the models once, then serve the chat and the JSON API until interrupted.

    Args:
        host: the address to listen on.
        port: the port.
        index: the index to serve and add to (a folder or a collection's URI); the user's own library by default.
        read_only: turn uploads and removal off.
        backend: how the models run (see :class:`rag.serve.library.Library`).
        access: tokens and limits (``rag.serve.access``); none and the defaults otherwise.

    Raises:
        RagError: writes would be open to anyone who can reach ``host`` (not loopback, no write
            token, not read-only), or the port is taken; both are checked before the models load.
    """
    access = access if access is not None else Access()
    cap_malloc_arenas()
    if not read_only and not access.tokens.writing_needs_token and not is_loopback(host):
        raise RagError(f"serving on {host} lets anyone who reaches it add and remove articles: give a write token "
                       f"(--write-token-file FILE, or {WRITE_TOKEN_VARIABLE}), or serve --read-only")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:  # before any heavy import
            probe.bind((host, port))
        except OSError as e:
            raise RagError(f"cannot serve on {host}:{port}: {e.strerror or e} (pass another --port)") from e
    import uvicorn

    from rag.serve.api import create_app
    from rag.serve.ui import EXAMPLES, mount

    library = Library.open(index, read_only=read_only, backend=backend)
    # Load the models and let the kernels meet the common window shapes before the first user does.
    library.ask(EXAMPLES, [library.assistant.k] * len(EXAMPLES), [library.assistant.retriever.mode] * len(EXAMPLES))
    tokens = access.tokens
    needs = ", ".join(what for what, needed in (("reading", tokens.reading_needs_token),
                                                ("writing", tokens.writing_needs_token)) if needed)
    where = library.index.location or library.location  # a server's index is named without its password
    print(f"serving {len(library.index.documents)} articles from {where} on http://{host}:{port} "
          f"(chat at /, API at /api, its docs at /docs){' read-only' if read_only else ''}"
          + (f"; {needs} needs a token" if needs else ""), flush=True)
    # Behind a reverse proxy on this machine, the client is the one its X-Forwarded-For names (uvicorn's
    # proxy_headers, trusted from 127.0.0.1 only): each client gets its own rate.
    uvicorn.run(IdleTrim(mount(create_app(library, access), library, access)), host=host, port=port,
                log_level="warning", proxy_headers=True, forwarded_allow_ips="127.0.0.1")

