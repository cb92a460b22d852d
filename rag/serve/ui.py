"""The chat, served with the JSON API by ``rag serve`` (or ``python app.py``).

Only wiring lives here: answering is ``rag.answer.assistant``, the library on disk ``rag.serve.library``,
the HTML ``rag.serve.render``, the HTTP API ``rag.serve.api``, the server's start ``rag.serve.server``.

A question goes through three events, so the user sees each step as it happens: the
question and "Searching N passages…" appear at once; retrieval and then reading run as
Gradio batches (``batch=True``, on ``Assistant.retrieve_batch`` and ``answer_batch``), so
questions that arrive together share their forward passes; the answer card replaces the
step line, and the page scrolls to the top of the answer. Gradio cannot batch a generator,
hence the chain of events rather than one generator.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls

import gradio as gr  # noqa: E402

from rag.answer.conversation import read_question  # noqa: E402
from rag.errors import InvalidInputError, RagError  # noqa: E402
from rag.serve.access import Access  # noqa: E402
from rag.serve.library import Library  # noqa: E402
from rag.serve.render import escape, response_html  # noqa: E402
from rag.settings import MODES, SUPPORTED_SUFFIXES, check_question  # noqa: E402
from rag.types import Filters, Turn, parse_date  # noqa: E402

logger = logging.getLogger(__name__)

UPLOAD_TYPES = list(SUPPORTED_SUFFIXES)
MAX_BATCH = 16  # questions retrieved or read together
EXAMPLES = [
    "Who is the spokesman for Dostum's party?",
    "Which IMU leader was killed in a U.S. drone attack?",
    "Who is the governor of Balkh?",
    "Why are Uzbek communities vulnerable to IMU infiltration?",
    "Who won the 2014 FIFA World Cup?",
]
CSS = """
.rag-card { line-height: 1.45; }
.rag-answer { font-size: 1.15em; margin: 0 0 .2em; }
.rag-label { font-size: .75em; text-transform: uppercase; letter-spacing: .05em; opacity: .7; margin-right: .3em; }
.rag-confidence { margin: 0 0 .6em; font-size: .9em; }
.rag-read-as { margin: 0 0 .4em; font-size: .9em; font-style: italic; }
.rag-confidence::before { content: "●"; margin-right: .35em; }
.rag-high::before { color: #1a7f37; } .rag-medium::before { color: #b58400; } .rag-low::before { color: #cf222e; }
.rag-low { color: #cf222e; }
.rag-alternatives ul { margin: .2em 0 .6em; }
.rag-cite { text-decoration: none; font-weight: 600; }
.rag-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5em .7em; margin: .5em 0; }
.rag-source-head { font-weight: 600; }
.rag-num { opacity: .7; margin-right: .2em; }
.rag-meta { font-size: .85em; opacity: .75; margin-bottom: .3em; }
.rag-passage { margin: .3em 0; padding-left: .6em; border-left: 3px solid var(--border-color-primary);
               font-size: .92em; }
.rag-article-text { max-height: 18em; overflow-y: auto; font-size: .9em; padding: .3em; }
.rag-source:target { outline: 2px solid var(--color-accent); }
#question-error, #question-error * { color: #cf222e; }
.rag-article-text mark { scroll-margin-top: 2em; }
#chat [data-testid="bot"] { scroll-margin-top: 2.5em; }
.rag-more > summary, .rag-article > summary { font-size: .85em; cursor: pointer; opacity: .8; }
#library ol { padding-left: 1.2em; margin: 0; } #library li { margin: .3em 0; }
#library .rag-meta { margin: 0; }
"""
SCROLL_TO_ANSWER = """() => {
  const answers = document.querySelectorAll('#chat [data-testid="bot"]');
  if (answers.length) answers[answers.length - 1].scrollIntoView({block: "start"});
}"""


def _library_views(library: Library) -> tuple[str, dict]:
    """The Library panel's listing and the removal dropdown's update, from one listing of the index."""
    documents = library.documents()
    items = "".join(f"<li><b>{escape(d['title'])}</b><div class='rag-meta'>"
                    + " · ".join(escape(part) for part in (d["outlet"], d["date"], f"{d['passages']} passages") if part)
                    + "</div></li>" for d in documents)
    choices = [(f"{d['title']} ({d['outlet']})", d["id"]) for d in documents]
    return f"<p>{len(documents)} articles</p><ol>{items}</ol>", gr.update(choices=choices, value=None)


def _filters(since: str | None, until: str | None, sources: list[str] | None) -> Filters:
    """The chat's "Limit to" fields as search filters; raises InvalidInputError on a bad date."""
    return Filters(since=parse_date((since or "").strip() or None, "since"),
                   until=parse_date((until or "").strip() or None, "until"), sources=tuple(sources or ()))


def build_app(library: Library, access: Access | None = None) -> gr.Blocks:
    """The chat over ``library``, behind ``access``: questions, answer and source cards, uploads and the
    Library panel (which asks for the write token once, where the server has one)."""
    access = access if access is not None else Access()
    limits = access.limits

    def start(message: str, history: list, since: str, until: str, sources: list, turns: list):
        """Show the question at once, or say inline what is wrong with it or its limits. The pending
        question is the one asked and the one read from the conversation so far (``turns``)."""
        question = (message or "").strip()
        if not question:
            return history, message, "Type a question first.", None
        if len(question) > limits.question_chars:
            return history, message, f"Questions are limited to {limits.question_chars:,} characters.", None
        try:
            check_question(question)
        except InvalidInputError as e:
            return history, message, escape(str(e)), None
        try:
            _filters(since, until, sources)
        except InvalidInputError as e:
            return history, message, escape(str(e)), None
        searching = f"Searching {len(library.index.passages)} passages…"
        history = [*history, {"role": "user", "content": escape(question)},
                   {"role": "assistant", "content": f"<p class='rag-step'>{searching}</p>"}]
        return history, "", "", {"asked": question, "read": read_question(question, turns)}

    def retrieve(questions: list, ks: list, modes: list, since: list, until: list, sources: list, histories: list):
        histories = list(histories)  # Gradio hands a batch's inputs over as tuples
        asked = [i for i, q in enumerate(questions) if q]
        hits: list = [None] * len(questions)
        found = library.retrieve([questions[i]["read"] for i in asked], [int(ks[i]) for i in asked],
                                 [modes[i] for i in asked],
                                 filters=[_filters(since[i], until[i], sources[i]) for i in asked])
        for i, passages in zip(asked, found):
            hits[i] = passages
            step = f"<p class='rag-step'>Reading {len(passages)} passages…</p>"
            histories[i] = [*histories[i][:-1], {"role": "assistant", "content": step}]
        return [hits, histories]

    def read(questions: list, hits: list, histories: list, conversations: list):
        histories, conversations = list(histories), list(conversations)
        asked = [i for i, q in enumerate(questions) if q]
        if asked:
            responses = library.answer([questions[i]["read"] for i in asked], [hits[i] for i in asked])
            for i, response in zip(asked, responses):
                response = replace(response, question=questions[i]["asked"], question_as_read=questions[i]["read"])
                histories[i] = [*histories[i][:-1], {"role": "assistant", "content": response_html(response)}]
                conversations[i] = [*conversations[i], Turn(response.question, response.answer)]
        return [histories, [None] * len(questions), conversations]

    def add_files(paths: list[str] | None, token: str):
        if not paths:
            yield "No file chosen.", gr.skip(), gr.skip(), None
            return
        if not access.tokens.can_write(token or None):
            for path in paths:
                Path(path).unlink(missing_ok=True)
            yield "✗ Adding articles needs the write token: enter it above.", gr.skip(), gr.skip(), None
            return
        if len(paths) > limits.upload_files:
            yield f"✗ At most {limits.upload_files} files at once.", gr.skip(), gr.skip(), None
            return
        yield f"Indexing {len(paths)} file(s)… questions are still answered meanwhile.", gr.skip(), gr.skip(), None
        try:
            report = library.add_files([Path(p) for p in paths], max_file_bytes=limits.upload_bytes)
        except RagError as e:
            yield f"✗ {escape(str(e))}", gr.skip(), gr.skip(), None
            return
        finally:
            for path in paths:  # nothing of an upload is served back but through its source card
                Path(path).unlink(missing_ok=True)
        lines = [f"✓ “{escape(d.title)}” added" for d in report.added]
        lines += [f"• “{escape(d.title)}” was already indexed" for d in report.already]
        lines += [f"✗ {escape(message)}" for message in report.skipped]
        if report.added:
            total = len(library.index.documents)
            lines.append(f"{report.passages} passages added; the library now has {total} articles.")
        yield "<br>".join(lines), *_library_views(library), None

    def remove(doc_id: str | None, token: str):
        if not doc_id:
            return "Choose an article to remove.", gr.skip(), gr.skip()
        if not access.tokens.can_write(token or None):
            return "✗ Removing articles needs the write token: enter it above.", gr.skip(), gr.skip()
        title = library.index.documents[doc_id].title if doc_id in library.index.documents else doc_id
        try:
            passages = library.remove(doc_id)
        except RagError as e:
            return f"✗ {escape(str(e))}", gr.skip(), gr.skip()
        return (f"Removed “{escape(title)}” ({passages} passages).", *_library_views(library))

    with gr.Blocks(title="Ask the articles") as demo:
        gr.Markdown("## Ask the articles\nAnswers are spans of the articles themselves, with numbered sources.")
        pending = gr.State(None)
        hits = gr.State(None)
        turns = gr.State([])  # the conversation so far, for reading follow-ups
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Answers", height=600, elem_id="chat", buttons=["copy"], autoscroll=False,
                                  latex_delimiters=[])
                question = gr.Textbox(label="Question", placeholder="Ask about the articles…", elem_id="question",
                                      max_lines=3, submit_btn=True)
                error = gr.Markdown(elem_id="question-error")
                new_conversation = gr.Button("New conversation", elem_id="new-conversation", size="sm",
                                             variant="secondary")
                gr.Examples(EXAMPLES, inputs=question, label="Try one")
            with gr.Column(scale=1):
                k = gr.Slider(1, min(20, limits.k), value=min(library.assistant.k, limits.k), step=1,
                              label="Passages to read (k)")
                mode = gr.Radio(list(MODES), value=library.assistant.retriever.mode, label="Retrieval")
                with gr.Accordion("Limit to", open=False):
                    since = gr.Textbox(label="Published from (YYYY-MM-DD)", elem_id="since", max_lines=1)
                    until = gr.Textbox(label="Published until (YYYY-MM-DD)", elem_id="until", max_lines=1)
                    outlets = sorted({d.outlet for d in library.index.documents.values() if d.outlet})
                    sources = gr.Dropdown(outlets, multiselect=True, allow_custom_value=True, label="Outlets",
                                          elem_id="sources")
                with gr.Accordion("Library", open=not library.read_only):
                    listing, choices = _library_views(library)
                    table = gr.HTML(listing, elem_id="library")
                    if library.read_only:
                        gr.Markdown("<small>This library is read-only.</small>")
                    else:
                        token = gr.Textbox(label="Write token", type="password", elem_id="write-token",
                                           visible=access.tokens.writing_needs_token, max_lines=1,
                                           info="Adding and removing articles needs it on this server.")
                        files = gr.File(label=f"Add articles ({', '.join(UPLOAD_TYPES)}; "
                                              f"{limits.upload_bytes / 1e6:g} MB each)",
                                        file_count="multiple", file_types=UPLOAD_TYPES, type="filepath",
                                        elem_id="upload")
                        status = gr.Markdown(elem_id="upload-status")
                        choice = gr.Dropdown(choices["choices"], label="Remove an article", value=None,
                                             elem_id="remove-choice")
                        remove_button = gr.Button("Remove", elem_id="remove", variant="stop", size="sm")
                        files.upload(add_files, [files, token], [status, table, choice, files], api_name="upload",
                                     concurrency_id="library", concurrency_limit=1)
                        remove_button.click(remove, [choice, token], [status, table, choice], api_name="remove",
                                            concurrency_id="library", concurrency_limit=1)

        new_conversation.click(lambda: ([], [], ""), None, [chat, turns, error], api_visibility="private")
        (question.submit(start, [question, chat, since, until, sources, turns], [chat, question, error, pending],
                         concurrency_limit=None, api_name="ask")
         .then(retrieve, [pending, k, mode, since, until, sources, chat], [hits, chat], batch=True,
               max_batch_size=MAX_BATCH,
               concurrency_id="compute", concurrency_limit=1)
         .then(read, [pending, hits, chat, turns], [chat, pending, turns], batch=True, max_batch_size=MAX_BATCH,
               concurrency_id="compute", concurrency_limit=1)
         .then(None, js=SCROLL_TO_ANSWER))
    demo.queue(default_concurrency_limit=None)
    return demo


def mount(app, library: Library, access: Access | None = None):
    """Mount the chat over ``library`` at ``/`` of the FastAPI ``app``, behind ``access``; returns the app."""
    access = access if access is not None else Access()
    return gr.mount_gradio_app(app, build_app(library, access), path="/", css=CSS,
                               max_file_size=access.limits.upload_bytes)
