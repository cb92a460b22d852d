"""The JSON HTTP API and the chat on one server: FastAPI, with the Gradio app mounted at ``/``.

    POST   /api/ask              {"question": "...", "k": 5, "mode": "hybrid"}  -> the answer, confidence, citations
                                 (+ "history": [{"question", "answer"}, ...]: a follow-up read from it)
                                 (optional limits: "since"/"until" YYYY-MM-DD, "sources", "authors", "doc_ids")
    POST   /api/search           the same body                                   -> the ranked passages
    GET    /api/documents                                                        -> the indexed articles
    POST   /api/documents        multipart files                                 -> what was added and skipped
    DELETE /api/documents/{id}                                                   -> the passages removed

Errors are the CLI's messages as ``{"error": "..."}`` with a 4xx status. The OpenAPI
page is at ``/docs``. Concurrent questions are answered together in batches. Who may read
and write, and how much a request may ask, is ``rag.serve.access``: writes take
``Authorization: Bearer WRITE_TOKEN`` when the server has a write token.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import replace
from html import escape
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from rag.answer.conversation import read_question
from rag.errors import (
    DocumentNotFoundError,
    IndexWriteError,
    IngestError,
    InvalidInputError,
    RagError,
    ReadOnlyError,
    TooLargeError,
)
from rag.serve import schemas
from rag.serve.access import COOKIE, Access, bearer
from rag.serve.guard import Guard
from rag.serve.library import Library
from rag.settings import (
    DEFAULT_K,
    DEFAULT_MODE,
    SUPPORTED_SUFFIXES,
    Mode,
    check_mode,
    check_question,
)
from rag.types import Filters, Turn, parse_date


class Unauthorized(RagError):
    """A request that needs a token sent none."""


_STATUS = {Unauthorized: 401, DocumentNotFoundError: 404, ReadOnlyError: 403, TooLargeError: 413,
           IndexWriteError: 507}
_SAFE_NAME = re.compile(r"[^\w .()-]+")


def _file_name(given: str | None, n: int) -> str:
    """An uploaded file's name as a plain file name: no folders, no control or odd characters."""
    name = _SAFE_NAME.sub("_", Path((given or "").replace("\\", "/")).name).strip(" .")[:120]
    return name or f"upload-{n}.txt"


def _local(target: str) -> str:
    """A redirect target on this server only (a path), never another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"



class PastTurn(BaseModel):
    """An earlier turn of the conversation: the question as asked, and the answer given (null for none)."""

    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    answer: StrictStr | None = None


MAX_HISTORY = 20  # earlier turns one request may send; only the last ones matter to a follow-up


class Query(BaseModel):
    """A question, with how many passages to read, how to retrieve them, and which documents may answer.

    Types are strict: ``k`` must be a JSON integer (not "5", not true), and unknown fields are refused.
    ``history`` is the conversation so far, oldest turn first: a follow-up ("Who leads it?") is read
    from it as a question that stands alone, returned as ``question_as_read``.
    """

    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    k: StrictInt = DEFAULT_K
    mode: StrictStr = DEFAULT_MODE
    since: StrictStr | None = None
    until: StrictStr | None = None
    sources: list[StrictStr] = []
    authors: list[StrictStr] = []
    doc_ids: list[StrictStr] = []
    history: list[PastTurn] = []


def _checked(query: Query, access: Access) -> tuple[str, int, Mode, Filters]:
    """The question as read from its history, and its k, mode and filters, each checked against the limits."""
    limits = access.limits
    if len(query.question) > limits.question_chars:
        raise TooLargeError(f"the question is {len(query.question):,} characters; this server takes at most "
                            f"{limits.question_chars:,}")
    check_question(query.question)
    if len(query.history) > MAX_HISTORY:
        raise InvalidInputError(f"history holds {len(query.history)} turns; send the last {MAX_HISTORY} at most")
    for turn in query.history:
        if max(len(turn.question), len(turn.answer or "")) > limits.question_chars:
            raise TooLargeError(f"a turn of the history is over {limits.question_chars:,} characters")
    if not 1 <= query.k <= limits.k:
        raise InvalidInputError(f"k must be an integer from 1 to {limits.k}, got {query.k}")
    filters = Filters(parse_date(query.since, "since"), parse_date(query.until, "until"), tuple(query.sources),
                      tuple(query.authors), tuple(query.doc_ids))
    read = read_question(query.question, [Turn(t.question, t.answer) for t in query.history])
    return read, query.k, check_mode(query.mode), filters


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in: ask the articles</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 28em; margin: 4em auto; padding: 0 1em">
<h1 style="font-size: 1.4em">Ask the articles</h1><p>This server needs its read token.</p>{message}
<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<label for="token">Token</label><br><input id="token" name="token" type="password" autocomplete="current-password"
 required style="width: 100%; padding: .4em; margin: .3em 0 .8em"><br><button type="submit">Sign in</button></form>
</body></html>"""


def create_app(library: Library, access: Access | None = None) -> FastAPI:
    """The API over ``library``, behind ``access`` (no tokens and the default limits by default); mount the
    chat on it with :func:`rag.serve.ui.mount`."""
    access = access if access is not None else Access()
    try:
        release = version("rag-news-qa")
    except PackageNotFoundError:
        release = "0"
    app = FastAPIOffline(title="rag-news-qa", version=release,  # /docs and /redoc from the package, no CDN
                         description="Ask questions of news articles: cited extractive answers, offline.")
    app.add_middleware(Guard, access=access)

    def openapi() -> dict:
        """The spec, with the 400 that bad input gets here in place of FastAPI's 422."""
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for operation in (op for path in spec["paths"].values() for op in path.values()):
                operation["responses"].pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                spec.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def may_write(authorization: Annotated[str | None, Header()] = None) -> None:
        """Writes take the write token, when the server has one: 401 without it, 403 with another."""
        tokens = access.tokens
        if tokens.writing_needs_token:
            presented = bearer(authorization)
            if presented is None:
                raise Unauthorized("writing needs the write token: send Authorization: Bearer TOKEN")
            if not tokens.can_write(presented):
                raise ReadOnlyError("the write token is wrong")

    @app.exception_handler(RagError)
    async def rag_error(_: Request, e: RagError) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(e, kind)), 400)
        headers = {"www-authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": str(e)}, status_code=status, headers=headers)

    @app.get("/login", include_in_schema=False)
    def login_page(next: str = "/") -> HTMLResponse:
        return HTMLResponse(LOGIN_PAGE.format(message="", next=escape(_local(next))))

    @app.post("/login", include_in_schema=False)
    def login(token: Annotated[str, Form()], next: Annotated[str, Form()] = "/") -> Response:
        session = access.tokens.session(token)
        if session is None:
            return HTMLResponse(LOGIN_PAGE.format(message="<p role='alert'>That token is wrong.</p>",
                                                  next=escape(_local(next))), status_code=401)
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict")
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg")},
                            status_code=400)

    @app.post("/api/ask", summary="Answer a question, with its confidence and numbered sources",
              response_model=schemas.Answered, responses=schemas.errors(400, 401, 413, 429))
    def ask(query: Query) -> dict:
        checked = _checked(query, access)
        return replace(library.ask_one(*checked), question=query.question, question_as_read=checked[0]).to_dict()

    @app.post("/api/search", summary="The passages retrieved for a question, best first",
              response_model=schemas.Searched, responses=schemas.errors(400, 401, 413, 429))
    def search(query: Query) -> dict:
        question, k, mode, filters = _checked(query, access)
        with library.compute:
            hits = library.assistant.retriever.search(question, k, mode, filters)
        return {"question": query.question, "question_as_read": question, "hits": [hit.to_dict() for hit in hits]}

    @app.get("/api/documents", summary="The indexed articles", response_model=list[schemas.ListedDocument],
             responses=schemas.errors(401, 429))
    def documents() -> list[dict]:
        return library.documents()

    @app.post("/api/documents", summary=f"Add articles ({' '.join(SUPPORTED_SUFFIXES)} files) to the index on disk",
              dependencies=[Depends(may_write)], response_model=schemas.Uploaded,
              responses=schemas.errors(400, 401, 403, 413, 429))
    def upload(files: Annotated[list[UploadFile], File()]) -> dict:
        library.check_writable()  # before the upload is written anywhere
        limits = access.limits
        if len(files) > limits.upload_files:
            raise TooLargeError(f"{len(files)} files in one upload; this server takes at most {limits.upload_files}")
        folder = Path(tempfile.mkdtemp(prefix="rag-upload-"))
        try:
            paths, names = [], []
            for n, upload in enumerate(files):
                name = _file_name(upload.filename, n)
                path = folder / f"{n}-{name}"
                with path.open("wb") as out:
                    copied = 0
                    while chunk := upload.file.read(1 << 20):
                        copied += len(chunk)
                        if copied > limits.upload_bytes:
                            raise TooLargeError(f"{name}: over the upload limit of {limits.upload_bytes / 1e6:g} MB")
                        out.write(chunk)
                paths.append(path)
                names.append(name)
            report = library.add_files(paths, names, limits.upload_bytes)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # nothing of an upload stays but the index
        if not report.added and not report.already:
            raise IngestError("; ".join(report.skipped) or "no article in the upload")
        return {"added": [d.describe() for d in report.added],
                "already_indexed": [d.describe() for d in report.already],
                "skipped": list(report.skipped), "passage_count": report.passages}

    @app.delete("/api/documents/{doc_id}", summary="Remove an article from the index on disk",
                dependencies=[Depends(may_write)], response_model=schemas.Removed,
                responses=schemas.errors(401, 403, 404, 429))
    def remove(doc_id: str) -> dict:
        return {"removed": doc_id, "passage_count": library.remove(doc_id)}

    return app
