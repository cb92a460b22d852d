"""The server's heap: fewer glibc arenas, and freed pages given back to the system when the server is idle.

Under load glibc's malloc keeps the pages a burst of requests freed, so the resident memory
grows by what the largest bursts left scattered through the heap (what the reader's kernels
need stays bounded apart from this: ``rag.read.reader`` reads batches of a few shapes only).
Two things bound that:

- at most two arenas (``cap_malloc_arenas``): by default each thread that allocates may get a
  heap of its own, up to eight per core, and a server's dozens of request threads keep what
  they once needed;
- :class:`IdleTrim`: once no request has been in flight for ``idle_seconds`` (10 s), one
  ``malloc_trim(0)`` hands the free pages back: through a 16-client soak, 840-940 MB read
  after a quiet moment against 1,150-1,300 at once. It never runs while a request is served;
  the first question after it faults its pages in again, which made it 11.5 % slower (93
  against 83 ms, the same server asked 1.5 and 0.5 s after its last question, alternating,
  with a trim after 1 s). Hence the 10 s: a trim after a real pause, not between a reader's
  questions.

Neither does anything where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def _glibc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc has it; musl and macOS do not)
        return libc
    except (OSError, AttributeError):
        return None


def cap_malloc_arenas(arenas: int = 2) -> None:
    """Let glibc's malloc keep at most ``arenas`` heaps, unless ``MALLOC_ARENA_MAX`` says otherwise.

    Under 16 clients the resident memory grew 30 % from 1,652 MB with glibc's default, and 15 %
    from 1,294 MB with two arenas, at the same latency (``python -m eval.soak``; docs/results.md).
    """
    libc = _glibc()
    if libc is not None and "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(M_ARENA_MAX, arenas)


class IdleTrim:
    """ASGI middleware: counts the requests in flight, and trims the heap once they have all been done
    for ``idle_seconds``, once per quiet spell.

    Args:
        app: the ASGI application.
        idle_seconds: how long the server must have been idle.
        trim: what trimming does; glibc's ``malloc_trim(0)`` by default, and nothing without glibc.
    """

    def __init__(self, app: Any, idle_seconds: float = 10.0, trim: Callable[[], object] | None = None) -> None:
        self.app = app
        self.idle_seconds = idle_seconds
        libc = _glibc()
        self._trim = trim if trim is not None else (lambda: libc.malloc_trim(0)) if libc is not None else None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last = time.monotonic()
        self._trimmed = True  # nothing to give back before the first request
        self.trims = 0
        if self._trim is not None:
            threading.Thread(target=self._watch, name="idle-trim", daemon=True).start()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        with self._lock:
            self._in_flight += 1
            self._trimmed = False
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last = time.monotonic()

    def _watch(self) -> None:
        while True:
            time.sleep(self.idle_seconds / 4)
            with self._lock:
                due = (not self._trimmed and self._in_flight == 0
                       and time.monotonic() - self._last >= self.idle_seconds)
                if due:
                    self._trimmed = True
            if due:
                self._trim()  # type: ignore[misc]
                self.trims += 1
