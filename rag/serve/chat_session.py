"""One page's conversation in the chat: its questions in the order sent, each waiting, being answered,
answered or stopped; the chat's messages and the copy kept in the browser are drawn from it.

Questions may be sent at any moment, several while one is answered: each is an :class:`Entry`
that one worker per page answers in turn (:meth:`Session.answering`), so answers never
overwrite each other and come in the order asked. The browser keeps the conversation
(:meth:`Session.to_json`), so a reload restores it; the answer cards it keeps are signed with
this server process's key and shown again only if the signature holds, so nothing written
into the browser's storage is ever shown as HTML.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Literal

from rag.answer.conversation import read_question
from rag.serve.render import escape
from rag.types import Turn

Status = Literal["waiting", "answering", "answered", "stopped", "failed"]
MAX_KEPT = 50  # questions a page keeps, oldest dropped first
_KEY = secrets.token_bytes(32)  # signs the cards kept in browsers; a restarted server shows them as questions


def _signature(html: str) -> str:
    return hmac.new(_KEY, html.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


@dataclass
class Entry:
    """A question as asked and as read, with the settings it was asked under, and what came of it."""

    asked: str
    read: str
    k: int
    mode: str
    since: str = ""
    until: str = ""
    sources: list[str] = field(default_factory=list)
    sent: float = 0.0  # when the page sent it (ms since the epoch, the browser's clock)
    status: Status = "waiting"
    answer: str | None = None
    html: str = ""


@dataclass
class Session:
    """The conversation of one page."""

    entries: list[Entry] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    worker: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def history(self) -> list[Turn]:
        """The answered turns, for reading a follow-up."""
        return [Turn(e.asked, e.answer) for e in self.entries if e.status == "answered"]

    def add(self, asked: str, k: int, mode: str, since: str = "", until: str = "",
            sources: list[str] | None = None, sent: float = 0.0, as_typed: bool = False) -> Entry:
        """Queue a question, read from the conversation answered so far (unless ``as_typed``). Requests sent a
        few ms apart may arrive out of order: a question goes before the waiting ones the page sent after it."""
        with self.lock:
            read = asked if as_typed else read_question(asked, self.history())
            entry = Entry(asked, read, k, mode, since, until, list(sources or ()), sent)
            position = len(self.entries)
            while position and (before := self.entries[position - 1]).status == "waiting" and before.sent > sent:
                position -= 1
            self.entries = [*self.entries[:position], entry, *self.entries[position:]][-MAX_KEPT:]
            return entry

    def next_waiting(self) -> Entry | None:
        with self.lock:
            return next((e for e in self.entries if e.status == "waiting"), None)

    @contextmanager
    def answering(self) -> Iterator[bool]:
        """Whether this caller is the page's one worker (another is at work when False)."""
        mine = self.worker.acquire(blocking=False)
        try:
            yield mine
        finally:
            if mine:
                self.worker.release()

    def stop(self) -> int:
        """Stop every question not answered yet; returns how many."""
        with self.lock:
            stopping = [e for e in self.entries if e.status in ("waiting", "answering")]
            for e in stopping:
                e.status = "stopped"
            return len(stopping)

    def drop_last(self) -> Entry | None:
        """Take the last question back, unless it is being answered."""
        with self.lock:
            if not self.entries or self.entries[-1].status == "answering":
                return None
            last, self.entries = self.entries[-1], self.entries[:-1]
            return last

    def messages(self) -> list[dict]:
        """The chat's messages: each question, then its answer or where it stands."""
        shown = []
        for e in self.entries:
            shown.append({"role": "user", "content": escape(e.asked)})
            shown.append({"role": "assistant", "content": e.html or _status_line(e)})
        return shown

    def to_json(self) -> list[dict]:
        """What the browser keeps: the questions and what was shown for each (one being answered as stopped)."""
        kept = []
        for e in self.entries:
            entry = asdict(e)
            if e.status in ("waiting", "answering"):
                entry.update(status="stopped", html="")
            entry["signature"] = _signature(entry["html"])
            kept.append(entry)
        return kept

    @classmethod
    def from_json(cls, kept: object) -> Session:
        """A session from what the browser kept: malformed entries dropped, a card whose signature fails
        shown as its question alone."""
        session = cls()
        if not isinstance(kept, list):
            return session
        for item in kept[-MAX_KEPT:]:
            try:
                entry = Entry(str(item["asked"]), str(item["read"]), int(item["k"]), str(item["mode"]),
                              str(item.get("since", "")), str(item.get("until", "")),
                              [str(s) for s in item.get("sources", [])], float(item.get("sent", 0.0)),
                              item["status"] if item.get("status") in ("answered", "stopped", "failed") else "stopped",
                              item.get("answer") if isinstance(item.get("answer"), str) else None,
                              str(item.get("html", "")))
            except (KeyError, TypeError, ValueError):
                continue
            if not hmac.compare_digest(str(item.get("signature", "")), _signature(entry.html)):
                entry.html, entry.status = "", "stopped"
            session.entries.append(entry)
        return session


def _status_line(entry: Entry) -> str:
    words = {"waiting": "Waiting for the question before it…", "answering": "Searching and reading the articles…",
             "stopped": "Stopped.", "failed": "This question could not be answered.", "answered": ""}[entry.status]
    return f"<p class='rag-step rag-{entry.status}'>{words}</p>"
