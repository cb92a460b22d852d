"""The server: the JSON API over HTTP, and the chat in headless Chromium (desktop and a 390 px phone).

Each server is the real one (uvicorn, FastAPI, the Gradio app mounted at /) over a library
folder of its own, on a free localhost port, with the real bundled models.
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.served import Served

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
SPOKESMAN = "Who is the spokesman for Dostum's party?"
HARBOUR = ("Harbour bridge reopens\n\nBy Nadia Osei\n\nThe harbour bridge in Dover reopened on Monday after repairs "
           "costing 4 million pounds, the council said. Mayor Ana Vasquez-Tran cut the ribbon.\n")


@pytest.fixture(scope="module")
def library_folder(tmp_path_factory, corpus_index):
    return corpus_index.save(tmp_path_factory.mktemp("served") / "library")


@pytest.fixture(scope="module")
def served(library_folder):
    server = Served(library_folder)
    yield server
    server.stop()


# -- the JSON API ---------------------------------------------------------------------------


def test_api_answers_in_plain_text_with_articles_as_sources(served):
    status, answer = served.call("POST", "/api/ask", {"question": SPOKESMAN})
    assert status == 200 and answer["question"] == SPOKESMAN
    assert answer["answer"] in ("Dr Zabih Fetrat", "Zabih Fetrat") and answer["level"] in ("high", "medium")
    first = answer["citations"][0]
    assert first["number"] == 1 and first["document"]["title"].startswith("Dostum and Noor")
    cited = first["passages"][0]
    assert cited["text"][cited["answer_start"]:cited["answer_end"]] == answer["answer"]
    assert "&#" not in json.dumps(answer) and "<mark>" not in json.dumps(answer)  # text, never HTML


def test_api_search_documents_and_openapi(served):
    status, found = served.call("POST", "/api/search", {"question": "Who is Tohir Yuldosh?", "k": 2, "mode": "bm25"})
    assert status == 200 and [h["passage"]["rank"] for h in found["hits"]] == [1, 2]
    assert "Tohir Yuldosh" in found["hits"][0]["passage"]["text"]
    # Limited to the dated article, all 3 hits come from it (the other has no date).
    status, limited = served.call("POST", "/api/search", {"question": "Who is Tohir Yuldosh?", "k": 3,
                                                          "since": "2015-01-01", "until": "2015-12-31"})
    assert status == 200 and len(limited["hits"]) == 3
    assert {h["document"]["date"] for h in limited["hits"]} == {"2015-07-21"}
    status, documents = served.call("GET", "/api/documents")
    assert status == 200 and {d["title"][:10] for d in documents} >= {"Dostum and", "In Afghani"}
    assert all(d["passage_count"] > 0 for d in documents)
    assert {d["outlet"] for d in documents} == {"Afghanistan Today", "RFE/RL"}  # the outlet, never a file name
    status, spec = served.call("GET", "/openapi.json")
    assert {"/api/ask", "/api/search", "/api/documents", "/api/documents/{doc_id}"} <= set(spec["paths"])


@pytest.mark.browser
def test_docs_work_offline_and_the_spec_is_typed_with_the_statuses_sent(served, browser):
    import urllib.request

    html = urllib.request.urlopen(f"{served.url}/docs").read().decode()
    assert "cdn" not in html.lower() and "/static-offline-docs/swagger-ui-bundle.js" in html
    assert "/static-offline-docs/redoc.standalone.js" in urllib.request.urlopen(f"{served.url}/redoc").read().decode()
    status, spec = served.call("GET", "/openapi.json")
    assert "422" not in json.dumps(spec["paths"]) and "HTTPValidationError" not in json.dumps(spec)
    ask = spec["paths"]["/api/ask"]["post"]["responses"]
    assert ask["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Answered"}
    assert set(ask) == {"200", "400", "401", "413", "429"}
    answered = spec["components"]["schemas"]["Answered"]["properties"]
    assert {"answer_confidence", "no_answer_confidence", "question_as_read"} <= set(answered)
    page = browser.new_page(viewport=DESKTOP)  # nothing but this server can be reached
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(served.url) else route.abort())
    page.goto(f"{served.url}/docs")
    page.get_by_text("/api/ask").first.wait_for(timeout=30_000)  # Swagger UI drew the operations
    page.goto(f"{served.url}/redoc")
    page.get_by_text("Answer a question, with its confidence and numbered sources").first.wait_for(timeout=30_000)


def test_the_readme_curl_examples_work(served, tmp_path):
    import re
    import subprocess

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(curl .*?)(?:\s+#.*)?$(?:\n(  .*))?", readme, flags=re.M)
    assert len(commands) == 3
    (tmp_path / "story.txt").write_text(HARBOUR)
    outputs = []
    for first, rest in commands:
        command = (first + " " + rest.strip()).replace("localhost:7860", served.url.removeprefix("http://"))
        run = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs.append(json.loads(run.stdout))
    assert outputs[0]["answer"] and outputs[1]["question_as_read"] == "When was Tohir Yuldosh killed?"
    assert [d["title"] for d in outputs[2]["added"]] == ["Harbour bridge reopens"]
    served.call("DELETE", f"/api/documents/{outputs[2]['added'][0]['doc_id']}")


def test_api_reads_a_follow_up_from_the_history(served):
    history = [{"question": "Which IMU leader was killed in a U.S. drone attack?", "answer": "Tohir Yuldosh"}]
    status, answer = served.call("POST", "/api/ask", {"question": "When was he killed?", "history": history})
    assert status == 200 and answer["question"] == "When was he killed?"
    assert answer["question_as_read"] == "When was Tohir Yuldosh killed?" and answer["answer"] == "2009"
    status, alone = served.call("POST", "/api/ask", {"question": "When was he killed?"})
    assert alone["question_as_read"] == "When was he killed?" and alone["answer"] != "2009"
    status, found = served.call("POST", "/api/search", {"question": "And where?", "k": 1, "history": [
        *history, {"question": "When was he killed?", "answer": "2009"}]})
    assert found["question_as_read"] == "Where was Tohir Yuldosh killed?"
    assert "western Pakistan" in found["hits"][0]["passage"]["text"]


@pytest.mark.parametrize("body, message", [
    ({"question": "Why?", "history": [{"question": "Who?", "answer": 5}]}, "history.0.answer: Input should be a "
                                                                           "valid string"),
    ({"question": "Why?", "history": [{"question": "Who?"}] * 21}, "history holds 21 turns; send the last 20 at "
                                                                   "most"),
    ({"question": "  "}, "a question must be a non-empty string, got '  '"),
    ({"question": "Who?", "k": 0}, "k must be an integer from 1 to 100, got 0"),
    ({"question": "Who?", "mode": "sparse"}, "mode must be one of hybrid, dense, bm25, got 'sparse'"),
    ({"k": 3}, "question: Field required"),
    ({"question": "Who?", "since": "last week"}, "since must be a date written YYYY-MM-DD, got 'last week'"),
])
def test_api_errors_are_one_line_json_with_a_4xx(served, body, message):
    assert served.call("POST", "/api/ask", body) == (400, {"error": message})


def test_api_upload_ask_and_remove(served):
    status, report = served.upload({"harbour.txt": HARBOUR.encode(), "photo.txt": b"\x89PNG\x00\x00binary"})
    assert status == 200 and [d["title"] for d in report["added"]] == ["Harbour bridge reopens"]
    assert report["skipped"] == ["photo.txt: binary file, not text"]  # the file's own name, not a server path
    status, answer = served.call("POST", "/api/ask", {"question": "Who cut the ribbon?"})
    cited = answer["citations"][0]["document"]
    assert answer["answer"] == "Mayor Ana Vasquez-Tran" and cited["file_name"] == "harbour.txt"
    doc_id = report["added"][0]["doc_id"]
    assert served.call("DELETE", f"/api/documents/{doc_id}") == (200, {"removed": doc_id, "passage_count": 1})
    assert served.call("DELETE", f"/api/documents/{doc_id}") == (404, {"error": f"no document with id {doc_id!r} "
                                                                                 "in the index"})
    status, too_big = served.upload({"big.txt": b"word " * 1_100_000})
    assert status == 413 and too_big["error"] == "big.txt: over the upload limit of 5 MB"


def test_concurrent_questions_get_the_answers_a_lone_client_gets(served):
    questions = [SPOKESMAN, "Who is the governor of Balkh?", "Which IMU leader was killed in a U.S. drone attack?",
                 "Who won the 2014 FIFA World Cup?"]
    alone = [served.call("POST", "/api/ask", {"question": q})[1]["answer"] for q in questions]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda q: served.call("POST", "/api/ask", {"question": q})[1]["answer"],
                                 questions * 4))
    assert together == alone * 4


def test_a_batch_split_across_threads_answers_as_each_question_alone(served):
    import torch

    library = served.library
    assert library.assistant.reader.runs_on_torch  # the path that splits a batch in two
    questions = [SPOKESMAN, "Who is the governor of Balkh?", "Which IMU leader was killed in a U.S. drone attack?",
                 "Who won the 2014 FIFA World Cup?", "What did Dostum and Noor form?"]
    threads = torch.get_num_threads()
    together = library.ask(questions, [5] * 5, ["hybrid"] * 5)
    assert torch.get_num_threads() == threads  # restored after the batch
    alone = [library.ask([q], [5], ["hybrid"])[0] for q in questions]
    assert [r.answer for r in together] == [r.answer for r in alone]
    assert [r.confidence for r in together] == [r.confidence for r in alone]


def test_an_int8_library_answers_a_batch_as_each_question_alone(library_folder):
    from embeddings import DEFAULT_MODEL, Embedder
    from rag.indexing.workflow import export_models

    export_models(Embedder(DEFAULT_MODEL))  # cached after the first build
    from rag.serve.library import Library

    library = Library(library_folder, backend="int8")  # as `rag serve --backend int8` opens it
    reader = library.assistant.reader
    assert reader.onnx_file.name.startswith("reader-int8") and reader.isolate_questions
    questions = [SPOKESMAN, "Who is the governor of Balkh?", "Which IMU leader was killed in a U.S. drone attack?",
                 "Who won the 2014 FIFA World Cup?", "What did Dostum and Noor form?"]
    together = library.ask(questions, [5] * 5, ["hybrid"] * 5)
    alone = [library.ask([q], [5], ["hybrid"])[0] for q in questions]
    assert [(r.answer, r.confidence) for r in together] == [(r.answer, r.confidence) for r in alone]
    assert together[1].answer == "Mohammad Atta Noor"


def test_a_fresh_library_can_start_with_a_split_batch(library_folder):
    # The first batch loads the reader: once, before the two halves start (they would both import it).
    from rag.serve.library import Library

    library = Library(library_folder)
    answers = [r.answer for r in library.ask([SPOKESMAN, "Who is the governor of Balkh?"], [5, 5], ["hybrid"] * 2)]
    assert answers[1] == "Mohammad Atta Noor" and answers[0] in ("Zabih Fetrat", "Dr Zabih Fetrat")


def test_read_only_library_refuses_changes(library_folder, tmp_path):
    folder = tmp_path / "ro"
    shutil.copytree(library_folder, folder)
    server = Served(folder, read_only=True)
    try:
        message = "this library is served read-only: uploads and removals are off"
        assert server.upload({"harbour.txt": HARBOUR.encode()}) == (403, {"error": message})
        doc_id = server.call("GET", "/api/documents")[1][0]["doc_id"]
        assert server.call("DELETE", f"/api/documents/{doc_id}") == (403, {"error": message})
        assert server.call("POST", "/api/ask", {"question": SPOKESMAN})[0] == 200
    finally:
        server.stop()


# -- the chat in a real browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _ask(page, question: str):
    """Ask in the chat and wait for the answer card; returns the last bot message."""
    before = page.locator("#chat .rag-card").count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator("#chat .rag-card").nth(before).wait_for(timeout=120_000)
    return page.locator('#chat [data-testid="bot"]').last


@pytest.mark.browser
def test_browser_text_as_written_sources_jump_and_article_view(served, browser, tmp_path):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(served.url)
    answer = _ask(page, SPOKESMAN)
    assert page.locator('#chat [data-testid="user"]').last.inner_text().strip() == SPOKESMAN
    shown = answer.inner_text()
    assert "Dostum's Party of the Islamic Society" in shown and "&#" not in shown
    assert "Medium confidence" in shown or "High confidence" in shown  # the verifier says 90 %: medium
    # The question heads its answer; the source that holds it names its outlet, never a file or server path.
    assert shown.startswith(SPOKESMAN)
    assert "/tmp" not in page.locator("#chat").inner_text() and "rag/data" not in shown and ".txt" not in shown
    assert "[1] Dostum and Noor announce" in shown and "Afghanistan Today · Waheed Orya · 2015-07-21" in shown
    # Copy: plain text, the answer, its sentence and its source.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
    answer.locator(".rag-copy").click()
    answer.locator(".rag-copy", has_text="Copied").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.split("\n")[0] in ("Dr Zabih Fetrat", "Zabih Fetrat") and "&#" not in copied and "<" not in copied
    assert "a spokesman for Dostum's Party" in copied and "“Dostum and Noor announce" in copied
    assert "Afghanistan Today, 2015-07-21" in copied
    # [1] looks like a link; the question box shows where focus is; one font face, the system's, throughout.
    cite = answer.locator("a.rag-cite").first
    assert "underline" in cite.evaluate("e => getComputedStyle(e).textDecorationLine")
    box = page.locator("#question textarea")
    box.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")  # focus by keyboard, so :focus-visible applies
    assert box.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    fonts = page.evaluate("[...new Set([...document.querySelectorAll('#chat b, #chat p, h2')]"
                          ".map(e => getComputedStyle(e).fontFamily))]")
    assert len(fonts) == 1 and fonts[0].startswith("system-ui"), fonts
    # [1] jumps to its source card.
    answer.locator("a.rag-cite").first.click()
    target = page.evaluate("location.hash")
    assert target.endswith("-s1") and page.locator(target).is_visible()
    # "Read the article" opens the whole article, scrolled to the highlighted answer.
    answer.locator(".rag-article summary").first.click()
    mark = answer.locator(".rag-article-text mark").first
    mark.wait_for(state="visible")
    box, pane = mark.bounding_box(), answer.locator(".rag-article-text").first.bounding_box()
    assert pane["y"] <= box["y"] <= pane["y"] + pane["height"] - box["height"]  # in the article's view
    assert mark.inner_text() in ("Dr Zabih Fetrat", "Zabih Fetrat")
    page.screenshot(path=str(tmp_path / "desktop.png"))


@pytest.mark.browser
def test_browser_reads_a_follow_up_from_the_conversation_until_a_new_one(served, browser, tmp_path):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(served.url)
    assert "Read as" not in _ask(page, "Which IMU leader was killed in a U.S. drone attack?").inner_text()
    follow_up = _ask(page, "When was he killed?")
    assert "Read as: “When was Tohir Yuldosh killed?”" in follow_up.inner_text()
    assert follow_up.locator(".rag-answer-text").inner_text() == "2009"
    page.screenshot(path=str(tmp_path / "follow-up.png"))
    follow_up.locator(".rag-as-typed").click()  # one click: the same question, not rewritten
    page.locator("#chat .rag-card").nth(2).wait_for(timeout=60_000)
    as_typed = page.locator('#chat [data-testid="bot"]').last
    assert page.locator('#chat [data-testid="user"]').last.inner_text().strip() == "When was he killed?"
    assert "Read as" not in as_typed.inner_text() and as_typed.locator(".rag-answer-text").inner_text() != "2009"
    page.locator("#new-conversation").click()
    page.locator("#chat .rag-card").first.wait_for(state="detached")
    alone = _ask(page, "When was he killed?")  # nothing before it now: asked as typed
    assert "Read as" not in alone.inner_text() and alone.locator(".rag-answer-text").inner_text() != "2009"


def _answers(page) -> list[str]:
    return [a.inner_text() for a in page.locator("#chat .rag-answer-text").all()]


@pytest.mark.browser
def test_browser_answers_questions_sent_in_a_row_in_order_and_stops(served, browser):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(served.url)
    box = page.locator("#question textarea")
    questions = [SPOKESMAN, "Which IMU leader was killed in a U.S. drone attack?", "Who is the governor of Balkh?"]
    for question in questions:  # 50 ms apart, each sent before the one before is answered
        box.fill(question)
        box.press("Enter")
        page.wait_for_timeout(50)
    page.locator("#chat .rag-card").nth(2).wait_for(timeout=120_000)
    assert [u.inner_text().strip() for u in page.locator('#chat [data-testid="user"]').all()] == questions
    answers = _answers(page)
    assert answers[0] in ("Dr Zabih Fetrat", "Zabih Fetrat") and answers[1] == "Tohir Yuldosh"
    assert "Noor" in answers[2] and page.locator("#chat .rag-step").count() == 0  # nothing left stuck
    more = ["Who is Tohir Yuldosh?", "Who leads the IMU?", "Where is Faryab?", "Who is Arif Shamsi?"]
    with served.library.compute:  # the models are busy elsewhere: these questions wait
        for question in more:
            box.fill(question)
            box.press("Enter")
            page.wait_for_timeout(50)
        page.wait_for_function("document.querySelectorAll('#chat [data-testid=\"user\"]').length === 7")
        page.locator("#chat .rag-answering").wait_for()
        page.locator("#stop").click()  # Stop takes back every question not answered yet
        page.wait_for_function("document.querySelectorAll('#chat .rag-stopped').length === 4")
    page.wait_for_timeout(3_000)  # the answer that was being computed comes back, and is not shown
    assert page.locator("#chat .rag-stopped").count() == 4 and page.locator("#chat .rag-card").count() == 3
    # Edit the last: its question goes back to the box, its bubble away; "Ask the last again" re-asks the one
    # now last, and answers it.
    page.locator("#edit").click()
    page.wait_for_function("document.querySelector('#question textarea').value === 'Who is Arif Shamsi?'")
    assert page.locator('#chat [data-testid="user"]').count() == 6
    page.locator("#regenerate").click()
    page.wait_for_function("document.querySelectorAll('#chat [data-testid=\"bot\"]')[5]"
                           "?.querySelector('.rag-card') !== null", timeout=120_000)
    assert page.locator('#chat [data-testid="user"]').last.inner_text().strip() == "Where is Faryab?"


@pytest.mark.browser
def test_browser_links_never_navigate_and_the_conversation_survives_a_reload(served, browser):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(served.url + "?__theme=dark&utm_source=mail")
    answer = _ask(page, SPOKESMAN)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.resource_type == "document" else None)
    answer.locator("a.rag-cite").first.click()
    assert page.evaluate("location.search") == "?__theme=dark&utm_source=mail"
    assert page.evaluate("location.hash").endswith("-s1")
    answer.locator(".rag-article summary").first.click()
    answer.locator(".rag-article-text mark").first.wait_for(state="visible")
    assert requests == [] and page.locator("#chat .rag-card").count() == 1  # no page load, the chat intact
    page.reload()
    page.locator("#chat .rag-card").first.wait_for(timeout=30_000)  # kept in the browser
    assert _answers(page)[0] in ("Dr Zabih Fetrat", "Zabih Fetrat")
    follow_up = _ask(page, "Who does he speak for?")  # the restored conversation still carries context
    assert "Read as: “Who does Dr Zabih Fetrat speak for?”" in follow_up.inner_text() or \
        "Read as: “Who does Zabih Fetrat speak for?”" in follow_up.inner_text()
    page.locator("#new-conversation").click()
    page.locator("#chat .rag-card").first.wait_for(state="detached")
    page.reload()
    page.wait_for_timeout(2_000)
    assert page.locator("#chat .rag-card").count() == 0
    context.close()


AXE = Path(__file__).parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def _serious_accessibility_violations(page) -> list[str]:
    """axe-core's WCAG 2 A/AA and best-practice findings of serious or critical impact, one line each."""
    assert AXE.exists(), "axe-core is missing: run `npm install` in the checkout"
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})")
    return [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in found["violations"]
            if v["impact"] in ("serious", "critical")]


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["", "?__theme=dark"])
def test_browser_has_no_serious_accessibility_violations(served, browser, theme):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(served.url + theme)
    page.locator("#chat .rag-welcome").wait_for(timeout=30_000)
    assert _serious_accessibility_violations(page) == []  # the empty state
    answer = _ask(page, SPOKESMAN)
    answer.locator(".rag-article summary").first.click()
    answer.locator(".rag-article-text mark").first.wait_for(state="visible")
    assert _serious_accessibility_violations(page) == []  # an answer, its article open
    _ask(page, "Who won the 2014 FIFA World Cup?")
    page.locator("#chat .rag-no-answer").first.wait_for()
    assert _serious_accessibility_violations(page) == []  # a no-answer


@pytest.mark.browser
def test_browser_empty_state_says_what_is_indexed_and_a_suggestion_asks_in_one_click(served, browser):
    page = browser.new_page(viewport=PHONE)
    page.goto(served.url)
    welcome = page.locator("#chat .rag-welcome")
    welcome.wait_for(timeout=30_000)
    assert "articles indexed:" in welcome.inner_text() and "Dostum and Noor announce" in welcome.inner_text()
    suggestions = welcome.locator(".rag-suggest")
    assert suggestions.count() == 3 and suggestions.first.is_visible()  # inside the chat, on a phone too
    suggested = suggestions.first.inner_text()
    suggestions.first.click()
    page.locator("#chat .rag-card").first.wait_for(timeout=60_000)
    assert page.locator('#chat [data-testid="user"]').first.inner_text().strip() == suggested
    assert page.get_by_text("Use via API").count() == 0 and page.get_by_text("Built with Gradio").count() == 0


@pytest.mark.browser
def test_browser_phone_shows_the_top_of_the_answer_and_errors_inline(served, browser):
    page = browser.new_page(viewport=PHONE)
    page.goto(served.url)
    for question in ("Who is the governor of Balkh?", SPOKESMAN):
        answer = _ask(page, question)
        page.wait_for_timeout(300)  # the scroll runs after the answer renders
        top = answer.bounding_box()["y"]
        assert 0 <= top <= PHONE["height"] / 3, f"answer top at {top}px"
    messages = page.locator('#chat [data-testid="bot"]').count()
    box = page.locator("#question textarea")
    too_long = ("why " * 600, "Questions are limited to 2,000 characters.")
    for text, error in (("   ", "Type a question first."), too_long):
        box.fill(text)
        box.press("Enter")
        page.locator("#question-error", has_text=error).wait_for(timeout=10_000)
        assert page.locator('#chat [data-testid="bot"]').count() == messages  # the conversation stays
        assert page.locator(".toast-wrap .error, .toast-body.error").count() == 0  # no error popups


@pytest.mark.browser
def test_browser_limits_narrow_the_sources_and_a_bad_date_is_said_inline(served, browser):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(served.url)
    page.get_by_text("Limit to").click()
    since = page.locator("#since textarea, #since input").first
    since.fill("March")
    box = page.locator("#question textarea")
    box.fill(SPOKESMAN)
    box.press("Enter")
    page.locator("#question-error", has_text="since must be a date written YYYY-MM-DD, got 'March'").wait_for(
        timeout=10_000)
    since.fill("2016-01-01")  # no article is that recent
    assert "No article matches the limits you set." in _ask(page, SPOKESMAN).inner_text()
    since.fill("2015-01-01")  # only the dated Afghanistan Today article passes
    shown = _ask(page, "Which IMU leader was killed in a U.S. drone attack?").inner_text()
    assert "Dostum and Noor announce new alliance" in shown and "IMU-Taliban Alliance" not in shown


@pytest.mark.browser
def test_browser_payloads_in_an_article_stay_inert(served, browser, tmp_path):
    payload = ("Council minutes\n\nThe clerk <script>window.__pwned = 1</script> read the note "
               "<img src=x onerror=\"window.__pwned = 2\"> aloud, then **[click me](javascript:window.__pwned=3)** "
               "and the treasurer Bea O'Hara-Lind said the budget was 12 million.\n")
    (tmp_path / "minutes.html").write_text(f"<html><body><article><p>{payload}</p></article></body></html>")
    (tmp_path / "minutes.txt").write_text(payload)
    served.library.add_files([tmp_path / "minutes.txt"])
    page = browser.new_page(viewport=DESKTOP)
    page.goto(served.url)
    answer = _ask(page, "Who said the budget was 12 million?")
    text = answer.inner_text()
    assert "Bea O'Hara-Lind" in text
    assert "<script>window.__pwned = 1</script>" in text and "<img src=x" in text  # shown as text
    assert page.evaluate("window.__pwned") is None
    assert answer.locator("img, script").count() == 0
    hrefs = answer.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert all(href.startswith("#") for href in hrefs)


@pytest.mark.browser
def test_browser_upload_lasts_across_a_restart_and_does_not_block_questions(library_folder, browser, tmp_path):
    folder = tmp_path / "lib"
    shutil.copytree(library_folder, folder)
    big = tmp_path / "archive.txt"  # a few hundred passages: seconds of embedding
    big.write_text("Archive of council notes\n\n" + "\n\n".join(
        f"Note {i}: the committee for district {i} met on day {i % 28 + 1} and agreed item {i} of the plan, "
        f"which the treasurer said would cost {i} thousand pounds over the coming year." for i in range(2000)))
    (tmp_path / "harbour.txt").write_text(HARBOUR)
    server = Served(folder)
    try:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(server.url)
        page.locator("#upload input[type=file]").set_input_files([str(big)])
        page.locator("#upload-status", has_text="Indexing").wait_for(timeout=30_000)
        asked = time.monotonic()
        _ask(page, SPOKESMAN)
        answered = time.monotonic() - asked
        still_indexing = "Indexing" in page.locator("#upload-status").inner_text()
        page.locator("#upload-status", has_text="added").wait_for(timeout=300_000)
        assert still_indexing, "the upload finished before the answer: the test proves nothing"
        assert answered < 15, f"a question took {answered:.1f} s during an upload"
        page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "harbour.txt")])
        page.locator("#upload-status", has_text="“Harbour bridge reopens” added").wait_for(timeout=120_000)
        page.locator("#library", has_text="Harbour bridge reopens").wait_for(timeout=10_000)
        page.close()
    finally:
        server.stop()
    server = Served(folder)  # a restart: the uploads are on disk
    try:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(server.url)
        page.locator("#library", has_text="Harbour bridge reopens").wait_for(timeout=10_000)
        assert "Mayor Ana Vasquez-Tran" in _ask(page, "Who cut the ribbon?").inner_text()
        assert not list(Path(tmp_path).glob("**/gradio/**/harbour.txt"))
    finally:
        server.stop()


@pytest.mark.browser
def test_browser_library_is_current_on_every_page_removal_asks_first_and_pdfs_upload(library_folder, browser,
                                                                                  tmp_path):
    from fpdf import FPDF

    folder = tmp_path / "lib"
    shutil.copytree(library_folder, folder)
    pdf = FPDF()
    pdf.set_title("Ferry timetable changes")
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 8, "The ferry to Calais leaves at 7 am from Monday, the port authority said on Friday.")
    pdf.output(str(tmp_path / "ferry.pdf"))
    server = Served(folder)
    try:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(server.url)
        page.locator("#library", has_text="articles").wait_for(timeout=30_000)
        before = int(page.locator("#library").inner_text().split()[0])  # other tests may have added some

        def shows(n: int):
            return page.locator("#library", has_text=f"{before + n} articles")

        status, report = server.upload({"harbour.txt": HARBOUR.encode()})  # from another client
        assert status == 200
        shows(1).wait_for(timeout=30_000)  # seen without a reload
        page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "ferry.pdf")])
        page.locator("#upload-status", has_text="“Ferry timetable changes” added").wait_for(timeout=120_000)
        shows(2).wait_for(timeout=30_000)
        fresh = browser.new_page(viewport=DESKTOP)  # a page opened later shows them all, removable
        fresh.goto(server.url)
        fresh.locator("#library", has_text=f"{before + 2} articles").wait_for(timeout=30_000)
        fresh.locator("#remove-choice input").click()
        fresh.get_by_role("option", name="Harbour bridge reopens").click()
        fresh.locator("#remove").click()
        question = fresh.locator("#remove-question")
        question.wait_for()
        assert "Remove “Harbour bridge reopens”" in question.inner_text()
        fresh.locator("#remove-no").click()  # cancel: nothing removed
        question.wait_for(state="hidden")
        assert f"{before + 2} articles" in fresh.locator("#library").inner_text()
        fresh.locator("#remove").click()
        fresh.locator("#remove-yes").click()
        fresh.locator("#upload-status", has_text="Removed “Harbour bridge reopens”").wait_for(timeout=60_000)
        shows(1).wait_for(timeout=30_000)  # and the first page sees it
        assert "Harbour bridge" not in page.locator("#library").inner_text()
        answer = _ask(page, "When does the ferry to Calais leave?")  # the PDF uploaded in the chat answers
        assert "7 am" in answer.locator(".rag-answer-text").inner_text()
    finally:
        server.stop()


@pytest.mark.browser
def test_browser_signs_in_with_the_read_token_and_writes_only_with_the_write_token(library_folder, browser,
                                                                                   tmp_path):
    from rag.serve.access import Access, Limits, Tokens

    folder = tmp_path / "lib"
    shutil.copytree(library_folder, folder)
    (tmp_path / "harbour.txt").write_text(HARBOUR)
    read, write = "newsroom-read-token-1", "newsroom-write-token-1"
    server = Served(folder, access=Access(Tokens(read, write), Limits(requests_per_minute=0)))
    try:
        page = browser.new_page(viewport=DESKTOP)
        page.goto(server.url)
        assert "/login" in page.url  # the chat is behind the read token
        page.get_by_label("Token").fill("not-the-token-at-all")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("alert").filter(has_text="That token is wrong").wait_for()
        page.get_by_label("Token").fill(read)
        page.get_by_role("button", name="Sign in").click()
        page.locator("#question textarea").wait_for(timeout=60_000)
        assert "Mohammad Atta Noor" in _ask(page, "Who is the governor of Balkh?").inner_text()

        page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "harbour.txt")])
        page.locator("#upload-status", has_text="needs the write token").wait_for(timeout=60_000)
        assert "Harbour bridge reopens" not in page.locator("#library").inner_text()
        page.locator("#write-token input").fill(write)
        page.locator("#upload input[type=file]").set_input_files([str(tmp_path / "harbour.txt")])
        page.locator("#upload-status", has_text="“Harbour bridge reopens” added").wait_for(timeout=120_000)
        assert write not in page.content()
        page.close()
    finally:
        server.stop()
