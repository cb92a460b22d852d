"""The JSON HTTP API and the chat on one server: FastAPI, with the Gradio app mounted at ``/``.

    POST   /api/ask              {"question": "...", "k": 5, "mode": "hybrid"}  -> the answer, confidence, citations
                                 (optional limits: "since"/"until" YYYY-MM-DD, "sources", "authors", "doc_ids")
    POST   /api/search           the same body                                   -> the ranked passages
    GET    /api/documents                                                        -> the indexed articles
    POST   /api/documents        multipart files                                 -> what was added and skipped
    DELETE /api/documents/{id}                                                   -> the passages removed

Errors are the CLI's messages as ``{"error": "..."}`` with a 4xx status. The OpenAPI
page is at ``/docs``. Concurrent questions are answered together in batches.
"""

from __future__ import annotations

import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from rag.errors import (
    DocumentNotFoundError,
    IndexWriteError,
    IngestError,
    RagError,
    ReadOnlyError,
    TooLargeError,
)
from rag.serve.batching import MicroBatcher
from rag.serve.library import UPLOAD_MAX_BYTES, Library
from rag.settings import (
    DEFAULT_K,
    DEFAULT_MODE,
    SUPPORTED_SUFFIXES,
    Mode,
    check_mode,
    check_positive_int,
    check_questions,
)
from rag.types import Filters, Response, parse_date

_STATUS = {DocumentNotFoundError: 404, ReadOnlyError: 403, TooLargeError: 413, IndexWriteError: 507}


class Query(BaseModel):
    """A question, with how many passages to read, how to retrieve them, and which documents may answer."""

    question: str
    k: int = DEFAULT_K
    mode: str = DEFAULT_MODE
    since: str | None = None
    until: str | None = None
    sources: list[str] = []
    authors: list[str] = []
    doc_ids: list[str] = []


def _checked(query: Query) -> tuple[str, int, Mode, Filters]:
    check_questions([query.question])
    filters = Filters(parse_date(query.since, "since"), parse_date(query.until, "until"), tuple(query.sources),
                      tuple(query.authors), tuple(query.doc_ids))
    return query.question, check_positive_int("k", query.k), check_mode(query.mode), filters


def create_app(library: Library) -> FastAPI:
    """The API over ``library``; mount the chat on it with :func:`rag.serve.ui.mount`."""
    try:
        release = version("rag-news-qa")
    except PackageNotFoundError:
        release = "0"
    app = FastAPI(title="rag-news-qa", version=release,
                  description="Ask questions of news articles: cited extractive answers, offline.")
    batcher: MicroBatcher[tuple[str, int, Mode, Filters], Response] = MicroBatcher(
        lambda items: library.ask(*zip(*items)))

    @app.exception_handler(RagError)
    async def rag_error(_: Request, e: RagError) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(e, kind)), 400)
        return JSONResponse({"error": str(e)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg")},
                            status_code=400)

    @app.post("/api/ask", summary="Answer a question, with its confidence and numbered sources")
    def ask(query: Query) -> dict:
        return batcher.submit(_checked(query)).to_dict()

    @app.post("/api/search", summary="The passages retrieved for a question, best first")
    def search(query: Query) -> dict:
        question, k, mode, filters = _checked(query)
        with library.compute:
            hits = library.assistant.retriever.search(question, k, mode, filters)
        return {"question": question, "hits": [hit.to_dict() for hit in hits]}

    @app.get("/api/documents", summary="The indexed articles")
    def documents() -> list[dict]:
        return library.documents()

    @app.post("/api/documents", summary=f"Add articles ({' '.join(SUPPORTED_SUFFIXES)} files) to the index on disk")
    def upload(files: Annotated[list[UploadFile], File()]) -> dict:
        library.check_writable()  # before the upload is written anywhere
        folder = Path(tempfile.mkdtemp(prefix="rag-upload-"))
        try:
            paths, names = [], []
            for n, upload in enumerate(files):
                name = Path(upload.filename or f"upload-{n}.txt").name
                path = folder / f"{n}-{name}"
                with path.open("wb") as out:
                    copied = 0
                    while chunk := upload.file.read(1 << 20):
                        copied += len(chunk)
                        if copied > UPLOAD_MAX_BYTES:
                            raise TooLargeError(f"{name}: over the upload limit of {UPLOAD_MAX_BYTES / 1e6:g} MB")
                        out.write(chunk)
                paths.append(path)
                names.append(name)
            report = library.add_files(paths, names)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # nothing of an upload stays but the index
        if not report.added and not report.already:
            raise IngestError("; ".join(report.skipped) or "no article in the upload")
        return {"added": [{"id": d.id, "title": d.title} for d in report.added],
                "already_indexed": [{"id": d.id, "title": d.title} for d in report.already],
                "skipped": list(report.skipped), "passages": report.passages}

    @app.delete("/api/documents/{doc_id}", summary="Remove an article from the index on disk")
    def remove(doc_id: str) -> dict:
        return {"removed": doc_id, "passages": library.remove(doc_id)}

    return app
