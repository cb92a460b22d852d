"""A server a newsroom can share: tokens for reading and writing, limits on costly requests, no 5xx.

The fast tests check the parts alone (tokens, the rate limiter, question checks, the refusal to
serve writes openly); the slow ones run a real server over the bundled corpus with the real models.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.cli import main
from rag.errors import InvalidInputError, RagError
from rag.serve.access import Access, Limits, RateLimiter, Tokens, bearer, is_loopback
from rag.settings import check_question

READ = "read-token-0123456789"
WRITE = "write-token-0123456789"
STORY = (b"Harbour council approves new ferry\n\nThe harbour council approved a new ferry service on Monday, "
         b"the council said. The ferry will carry 200 passengers between the two piers.\n")


# -- the parts alone ---------------------------------------------------------------------------

def test_tokens_are_checked_and_never_kept_as_given(tmp_path, monkeypatch):
    tokens = Tokens(READ, WRITE)
    assert tokens.can_read(READ) and tokens.can_read(WRITE) and not tokens.can_read(None)
    assert not tokens.can_read("read-token-012345678X")
    assert tokens.can_write(WRITE) and not tokens.can_write(READ) and not tokens.can_write(None)
    assert READ not in repr(vars(tokens)) and WRITE not in repr(vars(tokens))  # only digests are kept
    assert tokens.can_read_session(tokens.session(READ)) and not tokens.can_read_session("ab" * 32)
    assert tokens.session("wrong-token-0123456789") is None and not tokens.can_read_session("not hex")
    assert Tokens().can_read(None) and Tokens().can_write(None)  # nothing needs a token by default
    with pytest.raises(InvalidInputError, match="too short"):
        Tokens(write="short")
    (tmp_path / "write").write_text(WRITE + "\n")
    monkeypatch.setenv("RAG_READ_TOKEN", READ)
    loaded = Tokens.load(write_file=tmp_path / "write")
    assert loaded.can_write(WRITE) and loaded.reading_needs_token and not loaded.can_read("x" * 20)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(RagError, match="is empty"):
        Tokens.load(write_file=tmp_path / "empty")
    with pytest.raises(RagError, match="cannot read the token file"):
        Tokens.load(write_file=tmp_path / "missing")
    assert bearer("Bearer abc") == "abc" and bearer("Basic abc") is None and bearer(None) is None


def test_the_rate_limiter_lets_a_burst_through_then_says_when_to_come_back():
    limiter = RateLimiter(per_minute=6)  # bursts of 3, then one every 10 s
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("a")
    assert 9.0 < wait <= 10.0
    assert limiter.take("b") == 0.0  # each client has its own
    assert all(RateLimiter(0).take("a") == 0.0 for _ in range(1000))


@pytest.mark.parametrize("question, message", [
    ("\ud800 who?", "lone surrogate"), ("who\x00?", "control character"), ("?!...", "no letter or digit"),
    ("\x00\x00", "control character"), ("   ", "non-empty string"), (5, "non-empty string"),
])
def test_a_question_that_asks_nothing_is_refused_in_one_line(question, message):
    with pytest.raises(InvalidInputError, match=message):
        check_question(question)
    assert check_question("Who leads the IMU?\n") == "Who leads the IMU?\n"


def test_limits_are_positive_and_the_loopback_is_known():
    with pytest.raises(InvalidInputError, match="k must be a positive integer"):
        Limits(k=0)
    assert Limits(requests_per_minute=0).requests_per_minute == 0
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("newsroom.example")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serving_writes_beyond_loopback_without_a_token_is_refused_before_anything_loads(capsys, monkeypatch):
    monkeypatch.delenv("RAG_WRITE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--write-token-file FILE" in err and "--read-only" in err


# -- a real server -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def library_folder(tmp_path_factory, corpus_index):
    return corpus_index.save(tmp_path_factory.mktemp("shared") / "library")


@pytest.fixture(scope="module")
def guarded(library_folder):
    from tests.served import Served

    server = Served(library_folder, access=Access(Tokens(READ, WRITE), Limits(requests_per_minute=0)))
    yield server
    server.stop()


def _ids(server) -> list[str]:
    return sorted(d["doc_id"] for d in server.call("GET", "/api/documents", token=READ)[1])


@pytest.mark.slow
def test_writes_need_the_write_token_and_change_nothing_without_it(guarded):
    before = _ids(guarded)
    assert guarded.upload({"ferry.txt": STORY})[0] == 401  # no token at all: the read token is needed first
    assert guarded.upload({"ferry.txt": STORY}, token=READ) == (403, {"error": "the write token is wrong"})
    status, body = guarded.call("DELETE", f"/api/documents/{before[0]}", token=READ)
    assert status == 403 and _ids(guarded) == before
    status, added = guarded.upload({"ferry.txt": STORY}, token=WRITE)
    assert status == 200 and [d["title"] for d in added["added"]] == ["Harbour council approves new ferry"]
    doc_id = added["added"][0]["doc_id"]
    assert doc_id in _ids(guarded)
    assert guarded.call("DELETE", f"/api/documents/{doc_id}", token=WRITE)[0] == 200
    assert _ids(guarded) == before


@pytest.mark.slow
def test_reading_needs_the_read_token_and_a_browser_signs_in_once(guarded):
    assert guarded.call("POST", "/api/ask", {"question": "Who is the governor of Balkh?"})[0] == 401
    status, answer = guarded.call("POST", "/api/ask", {"question": "Who is the governor of Balkh?"}, token=READ)
    assert status == 200 and answer["answer"] == "Mohammad Atta Noor"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    page = urllib.request.Request(guarded.url + "/", headers={"accept": "text/html"})
    with pytest.raises(urllib.error.HTTPError) as sent:
        opener.open(page, timeout=30)
    assert sent.value.code == 303 and sent.value.headers["location"].startswith("/login")
    wrong = urllib.request.Request(guarded.url + "/login", data=b"token=wrong-token-0123456789&next=/",
                                   method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(wrong, timeout=30)
    assert refused.value.code == 401
    right = urllib.request.Request(guarded.url + "/login", data=f"token={READ}&next=/".encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as signed_in:
        opener.open(right, timeout=30)
    cookie = signed_in.value.headers["set-cookie"]
    assert signed_in.value.code == 303 and "HttpOnly" in cookie and READ not in cookie
    page = urllib.request.Request(guarded.url + "/", headers={"accept": "text/html", "cookie": cookie.split(";")[0]})
    with opener.open(page, timeout=30) as response:
        assert response.status == 200


@pytest.mark.slow
@pytest.mark.parametrize("body, status, message", [
    ({"question": "Who? " * 500}, 413, "the question is 2,500 characters; this server takes at most 2,000"),
    ({"question": "Who leads the IMU?", "k": 101}, 400, "k must be an integer from 1 to 100, got 101"),
    ({"question": "Who leads the IMU?", "k": 10**30}, 400, "k must be an integer from 1 to 100"),
    ({"question": "Who leads the IMU?", "k": "5"}, 400, "k: Input should be a valid integer"),
    ({"question": "Who leads the IMU?", "k": True}, 400, "k: Input should be a valid integer"),
    ({"question": "Who leads the IMU?", "k": 5.0}, 400, "k: Input should be a valid integer"),
    ({"question": "\ud800"}, 400, "lone surrogate"),
    ({"question": "\x00\x00"}, 400, "control character"),
    ({"question": "?!"}, 400, "no letter or digit"),
    ({"question": "Who?", "colour": "red"}, 400, "colour: Extra inputs are not permitted"),
])
def test_costly_and_malformed_requests_get_one_clear_4xx(guarded, body, status, message):
    for path in ("/api/ask", "/api/search"):
        got, error = guarded.call("POST", path, body, token=READ)
        assert got == status and message in error["error"], (path, error)


@pytest.mark.slow
def test_a_body_or_an_upload_over_the_limits_is_refused(guarded):
    status, error = guarded.call("POST", "/api/ask", raw=b"{" + b" " * 70_000 + b"}", token=READ)
    assert status == 413 and "over this server's limit of 64,000 bytes" in error["error"]
    files = {f"f{i}.txt": STORY for i in range(21)}
    assert guarded.upload(files, token=WRITE) == (413, {"error": "21 files in one upload; this server takes at "
                                                                 "most 20"})


@pytest.mark.slow
def test_a_client_over_its_rate_gets_429_and_when_to_come_back(library_folder):
    from tests.served import Served

    server = Served(library_folder, read_only=True, access=Access(limits=Limits(requests_per_minute=6)))
    try:
        statuses = [server.call("GET", "/api/documents")[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        request = urllib.request.Request(server.url + "/api/documents")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 429 and 1 <= int(refused.value.headers["retry-after"]) <= 10
        assert "too many requests" in json.loads(refused.value.read())["error"]
    finally:
        server.stop()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
FIELDS = st.fixed_dictionaries({}, optional={
    "question": st.text(max_size=40) | JSON, "k": st.integers(-5, 10**40) | JSON, "mode": st.text(max_size=8) | JSON,
    "since": st.text(max_size=12) | JSON, "until": st.text(max_size=12) | JSON,
    "sources": st.lists(st.text(max_size=8), max_size=2) | JSON, "doc_ids": JSON})


URL_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)  # a URL or header cannot carry a surrogate


class Errors(logging.Handler):
    """Collects the server's error records (uvicorn's loggers do not reach pytest's capture)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def server_errors():
    errors = Errors()
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "fastapi")]
    for logger in loggers:
        logger.addHandler(errors)
    yield errors
    for logger in loggers:
        logger.removeHandler(errors)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=FIELDS | JSON, doc_id=URL_TEXT.filter(bool), name=URL_TEXT, data=st.binary(max_size=200))
def test_any_request_gets_a_4xx_or_an_answer_never_a_5xx_or_a_traceback(guarded, server_errors, body, doc_id, name,
                                                                         data):
    for path in ("/api/ask", "/api/search"):
        assert guarded.call("POST", path, body, token=READ)[0] < 500
    assert guarded.call("POST", "/api/ask", raw=json.dumps(body).encode()[:-1] or b"{", token=READ)[0] < 500
    quoted = urllib.request.quote(doc_id, safe="")
    assert guarded.call("DELETE", f"/api/documents/{quoted}", token=WRITE)[0] < 500
    assert guarded.upload({name or "x": data}, token=WRITE)[0] < 500
    assert not [r.getMessage() for r in server_errors.records]
