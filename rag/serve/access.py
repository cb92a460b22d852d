"""Who may use a shared server, and how much: tokens for reading and writing, limits, a rate per client.

Reading (ask, search, the list of articles, the chat) is open unless a read token is set;
writing (uploads, removals) needs the write token whenever one is set. A server bound to an
address other than loopback must have a write token, or serve read-only
(``rag.serve.server`` refuses to start otherwise). Tokens are compared in constant time and
never logged or echoed. The API takes them as ``Authorization: Bearer TOKEN``; the browser
takes the read token once on a login page and keeps it in an HttpOnly cookie, and the write
token in the Library panel.

Every costly request is bounded (:class:`Limits`): the question's length, ``k``, the size of
a request's body, and the number and size of files an upload sends; and each client (by
address, behind a trusted local proxy its ``X-Forwarded-For``) may make at most
``requests_per_minute`` requests to the API and the chat's queue, answered with 429 and
``Retry-After`` beyond it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InvalidInputError, RagError

READ_TOKEN_VARIABLE = "RAG_READ_TOKEN"
WRITE_TOKEN_VARIABLE = "RAG_WRITE_TOKEN"
COOKIE = "rag_session"


@dataclass(frozen=True)
class Limits:
    """How much one request may ask of the server; each has a ``rag serve`` flag.

    Args:
        question_chars: the longest question (a longer one gets 413).
        k: the most passages one question may ask to read (more gets 400).
        body_bytes: the largest JSON body (a larger one gets 413).
        upload_files: the most files one upload may send.
        upload_bytes: the largest file an upload may send.
        requests_per_minute: per client, to the API and the chat's queue; 0 for no limit.
    """

    question_chars: int = 2_000
    k: int = 100
    body_bytes: int = 64_000
    upload_files: int = 20
    upload_bytes: int = 5_000_000
    requests_per_minute: int = 120

    def __post_init__(self) -> None:
        for name in ("question_chars", "k", "body_bytes", "upload_files", "upload_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"the limit {name} must be a positive integer, got {value!r}")
        if not isinstance(self.requests_per_minute, int) or self.requests_per_minute < 0:
            raise InvalidInputError("requests_per_minute must be 0 (no limit) or more, "
                                    f"got {self.requests_per_minute!r}")

    @property
    def upload_request_bytes(self) -> int:
        """The largest upload request: every file at its largest, and room for the multipart framing."""
        return self.upload_files * (self.upload_bytes + 4_096)


def _digest(token: str) -> bytes:
    return hashlib.sha256(b"rag-news-qa token\0" + token.encode("utf-8")).digest()


class Tokens:
    """The read and write tokens of a server; either may be absent.

    Args:
        read: needed to read, when set (the write token reads too).
        write: needed to write, when set.
    """

    def __init__(self, read: str | None = None, write: str | None = None) -> None:
        for name, token in (("read", read), ("write", write)):
            if token is not None and len(token) < 16:
                raise InvalidInputError(f"the {name} token is too short: use 16 characters or more "
                                        "(`python -c 'import secrets; print(secrets.token_urlsafe())'` makes one)")
        self._read = _digest(read) if read is not None else None
        self._write = _digest(write) if write is not None else None

    @classmethod
    def load(cls, read_file: Path | None = None, write_file: Path | None = None) -> Tokens:
        """The tokens from files (their first line), else from ``RAG_READ_TOKEN`` and ``RAG_WRITE_TOKEN``.

        Raises:
            RagError: a token file cannot be read or is empty.
        """
        return cls(_token(read_file, READ_TOKEN_VARIABLE), _token(write_file, WRITE_TOKEN_VARIABLE))

    @property
    def reading_needs_token(self) -> bool:
        return self._read is not None

    @property
    def writing_needs_token(self) -> bool:
        return self._write is not None

    def can_read(self, presented: str | None) -> bool:
        """Whether a request that presents this token (or none) may read."""
        return self._read is None or self.can_write_with(presented) or _same(self._read, presented)

    def can_write_with(self, presented: str | None) -> bool:
        """Whether this token is the write token (False when none is set)."""
        return self._write is not None and _same(self._write, presented)

    def can_write(self, presented: str | None) -> bool:
        """Whether a request that presents this token (or none) may write."""
        return self._write is None or _same(self._write, presented)

    def session(self, presented: str) -> str | None:
        """The cookie value a browser keeps after logging in with ``presented``; None if it may not read."""
        if not self.can_read(presented):
            return None
        return _digest(presented).hex()

    def can_read_session(self, cookie: str | None) -> bool:
        """Whether a browser's session cookie lets it read."""
        if self._read is None:
            return True
        if not cookie:
            return False
        try:
            value = bytes.fromhex(cookie)
        except ValueError:
            return False
        return any(hmac.compare_digest(value, d) for d in (self._read, self._write) if d is not None)


def _same(expected: bytes, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected, _digest(presented))


def _token(path: Path | None, variable: str) -> str | None:
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise RagError(f"cannot read the token file {path}: {getattr(e, 'strerror', None) or e}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise RagError(f"the token file {path} is empty")
        return token
    return os.environ.get(variable) or None


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests a minute on average, bursts of up to half that.

    Args:
        per_minute: the rate; 0 lets everything through.
    """

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, per_minute / 2)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Take one request for ``client``: 0 if it may go on, else the seconds until it may."""
        if not self.rate:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > 10_000:  # forget the clients that are full again
                    self._forget(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _forget(self, now: float) -> None:
        full = [c for c, (tokens, then) in self._buckets.items() if tokens + (now - then) * self.rate >= self.burst]
        for client in full:
            del self._buckets[client]


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` header's value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


class Access:
    """A server's tokens and limits, and the rate limiter that enforces its rate.

    Args:
        tokens: who may read and write; nobody needs a token by default.
        limits: how much a request may ask; :class:`Limits`' defaults otherwise.
    """

    def __init__(self, tokens: Tokens | None = None, limits: Limits | None = None) -> None:
        self.tokens = tokens if tokens is not None else Tokens()
        self.limits = limits if limits is not None else Limits()
        self.limiter = RateLimiter(self.limits.requests_per_minute)
