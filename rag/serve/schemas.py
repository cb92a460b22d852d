"""The JSON API's response shapes, for the OpenAPI spec at ``/openapi.json`` (and ``/docs``, ``/redoc``).

One name per meaning: a document is described the same way in a search hit, a citation, the
list of documents and an upload's report (``file_name`` is the file's name, never a path on
the server; ``outlet`` the publication, null where unknown); a passage the same way in a hit
and a citation. ``answer_confidence`` and ``no_answer_confidence`` are never both given.
Errors are ``{"error": "one line"}`` with the status the route lists.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Copy(BaseModel):
    """Another place the same story was found."""

    file_name: str
    outlet: str | None
    url: str | None


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    outlet: str | None
    publisher: str | None
    author: str | None
    date: str | None
    url: str | None
    file_name: str
    copies: list[Copy]


class ListedDocument(DocumentOut):
    passage_count: int


class PassageOut(BaseModel):
    """A passage read or retrieved: offsets into its text of the answer, where it holds it, and into the
    original file (``source_start``, ``source_end``, ``page`` of a PDF)."""

    passage_id: str
    rank: int
    score: float
    text: str
    start: int
    end: int
    answer_start: int | None
    answer_end: int | None
    source_start: int | None
    source_end: int | None
    page: int | None


class Hit(BaseModel):
    document: DocumentOut
    passage: PassageOut


class Searched(BaseModel):
    question: str
    question_as_read: str
    hits: list[Hit]


class Citation(BaseModel):
    number: int
    document: DocumentOut
    passages: list[PassageOut]


class Alternative(BaseModel):
    answer: str
    answer_confidence: float
    citation: int


class Answered(BaseModel):
    question: str
    question_as_read: str
    answer: str | None
    answer_confidence: float | None
    no_answer_confidence: float | None
    level: Literal["high", "medium", "low"]
    ruled_out: str | None
    alternatives: list[Alternative]
    citations: list[Citation]
    timings: dict[str, float]


class Uploaded(BaseModel):
    added: list[DocumentOut]
    already_indexed: list[DocumentOut]
    skipped: list[str]
    passage_count: int


class Removed(BaseModel):
    removed: str
    passage_count: int


class Error(BaseModel):
    error: str


def errors(*statuses: int) -> dict[int | str, dict]:
    """The ``responses`` of a route: each status it may answer with besides 200, as an Error."""
    meaning = {400: "Bad input: a question, k, mode, date, field or type", 401: "A token is needed",
               403: "The token may not do this, or the library is read-only", 404: "No such document",
               413: "Too large: a question, body, file or upload", 429: "Too many requests: see Retry-After"}
    return {status: {"model": Error, "description": meaning[status]} for status in statuses}
