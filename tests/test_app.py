"""The Gradio app, served on a free localhost port: through its API and in headless Chromium."""

import html
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.index import PassageIndex
from rag.reader import Reader
from rag.retriever import Retriever
from rag.ui import build_app

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
SPOKESMAN = "Who is the spokesman for Dostum's party?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(corpus_docs, embedder):
    # An index of its own: the upload test adds to it.
    assistant = Assistant(Retriever(PassageIndex.build(corpus_docs, embedder)), Reader())
    demo = build_app(assistant)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def _text(message: dict) -> str:
    """A chat message's text; Gradio 6 sends content as a list of typed parts."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content if "text" in part)


def _ask(client, question: str, k: int = 5, mode: str = "hybrid") -> str:
    history, cleared = client.predict(question, [], k, mode, api_name="/ask")
    assert cleared == ""
    assert history[0]["role"] == "user" and history[-1]["role"] == "assistant"
    return _text(history[-1])


def test_api_answers_with_citations(client):
    reply = _ask(client, SPOKESMAN)
    assert "<b class='answer'>" in reply and "Fetrat" in reply.split("</b>")[0]
    assert "[1]</b> Dostum and Noor announce new alliance" in reply
    assert "<mark>" in reply


def test_api_says_no_answer_plainly(client):
    reply = _ask(client, "Who won the 2014 FIFA World Cup?", k=3)
    assert reply.startswith("<p><b>No answer found</b>")
    assert reply.count("<details>") == 3


def test_several_people_asking_at_once_all_get_answers(client):
    questions = [SPOKESMAN, "Who is the governor of Balkh?", "Which IMU leader was killed in a U.S. drone attack?"]
    jobs = [client.submit(q, [], 3, "hybrid", api_name="/ask") for q in questions]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda job: job.result(timeout=300), jobs))
    for question, (history, _) in zip(questions, results):
        assert history[-1]["role"] == "assistant" and "[1]</b>" in _text(history[-1])


def test_upload_adds_an_article_and_rejects_bad_files(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    article = tmp_path / "harbour.txt"
    article.write_text("Harbour bridge reopens\n\nThe Kestrel Harbour bridge reopened on Tuesday after repairs "
                       "that cost 4 million euros, the port authority said.\n")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4 binary")
    (tmp_path / "photo.txt").write_bytes(b"\x89PNG\x00\x00binary")
    (tmp_path / "huge.txt").write_text("word " * 500_000)
    status = html.unescape(client.predict(
        [handle_file(str(p)) for p in (article, tmp_path / "photo.txt", tmp_path / "huge.txt")], api_name="/upload"))
    assert "✓ harbour.txt" in status and "passages added" in status
    assert "✗ photo.txt: binary file" in status
    assert "✗ huge.txt: larger than 2 MB" in status
    with pytest.raises(AppError, match="Invalid file type"):
        client.predict([handle_file(str(tmp_path / "notes.pdf"))], api_name="/upload")
    again = client.predict([handle_file(str(article))], api_name="/upload")
    assert "already in the index" in again
    reply = _ask(client, "How much did the Kestrel Harbour bridge repairs cost?", k=3)
    assert "Harbour bridge reopens" in reply


@pytest.mark.browser
def test_chat_in_a_real_browser(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(app_url)
            page.locator("#question textarea").fill(SPOKESMAN)
            page.locator("#question textarea").press("Enter")
            chat = page.locator("#chat")
            chat.locator("b.answer").wait_for(timeout=180_000)
            assert "Fetrat" in chat.locator("b.answer").inner_text()
            assert "Dostum and Noor announce new alliance to fight Taliban in the north" in chat.inner_text()
            chat.locator("details summary").first.click()
            assert "Fetrat" in chat.locator("details mark").first.inner_text()
            page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "chat.png").stat().st_size > 10_000
