"""The chat, served with the JSON API by ``rag serve`` (or ``python app.py``).

Only wiring lives here: answering is ``rag.answer.assistant``, the library on disk ``rag.serve.library``,
the HTML ``rag.serve.render``, the HTTP API ``rag.serve.api``, the server's start ``rag.serve.server``.

A question is queued in its page's conversation (``rag.serve.chat_session``) and shown at
once; one worker per page answers the page's questions in the order sent, each through the
library's batcher (``Library.ask_one``), so questions from many pages and API clients that
arrive together share their forward passes. Questions may be sent while others are answered;
Stop, "Ask the last again", "Edit the last" and "New conversation" act on the queue. The
browser keeps the conversation (``gr.BrowserState``), so a reload restores it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls

import gradio as gr  # noqa: E402

from rag.errors import InvalidInputError, RagError  # noqa: E402
from rag.indexing.bundled import corpus_dir  # noqa: E402
from rag.serve.access import Access  # noqa: E402
from rag.serve.chat_session import MAX_KEPT, Session  # noqa: E402
from rag.serve.library import Library  # noqa: E402
from rag.serve.render import escape, response_html  # noqa: E402
from rag.settings import MODES, SUPPORTED_SUFFIXES, check_question  # noqa: E402
from rag.types import Filters, parse_date  # noqa: E402

logger = logging.getLogger(__name__)

UPLOAD_TYPES = list(SUPPORTED_SUFFIXES)
MAX_SESSIONS = 1_000  # pages whose conversations the server keeps
LIBRARY_REFRESH_SECONDS = 5
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
.rag-label { font-size: .75em; text-transform: uppercase; letter-spacing: .05em; margin-right: .3em; }
.rag-confidence { margin: 0 0 .6em; font-size: .9em; }
.rag-read-as { margin: 0 0 .4em; font-size: .9em; font-style: italic; }
.rag-question { margin: 0 0 .4em; font-weight: 600; }
.rag-question::before { content: "Q: "; opacity: .7; }
.rag-no-answer .rag-answer, .rag-none .rag-answer { font-size: 1.05em; }
.rag-closest .rag-source, .rag-also .rag-source { border-style: dashed; }
.rag-also > summary { font-size: .85em; cursor: pointer; margin-top: .4em; }
.rag-copy-text { display: none; }
.rag-as-typed { margin-left: .4em; font-size: .9em; font-style: normal; padding: 0 .5em; background: none;
                border: 1px solid var(--border-color-primary); border-radius: 4px; color: inherit; cursor: pointer; }
.rag-cite { text-decoration: underline; color: var(--link-text-color, var(--color-accent)); }
.rag-welcome { text-align: left; max-width: 40em; margin: 1em auto; }
.rag-suggestions { display: flex; flex-wrap: wrap; gap: .5em; }
.rag-suggest { padding: .4em .8em; border: 1px solid var(--border-color-primary); border-radius: 16px;
               background: var(--background-fill-secondary); color: var(--body-text-color); cursor: pointer; }
.rag-copy { margin-left: .6em; font-size: .85em; padding: 0 .5em; border: 1px solid var(--border-color-primary);
            border-radius: 4px; background: none; cursor: pointer; color: inherit; }
.rag-confidence::before { content: "●"; margin-right: .35em; }
.rag-high::before { color: #1a7f37; } .rag-medium::before { color: #b58400; } .rag-low::before { color: #cf222e; }
.rag-low { color: #cf222e; }
.rag-alternatives ul { margin: .2em 0 .6em; }
.rag-cite { font-weight: 600; }
.rag-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5em .7em; margin: .5em 0; }
.rag-source-head { font-weight: 600; }
.rag-num { margin-right: .2em; }
.rag-meta { font-size: .85em; margin-bottom: .3em; }
.rag-passage { margin: .3em 0; padding-left: .6em; border-left: 3px solid var(--border-color-primary);
               font-size: .92em; }
.rag-article-text { font-size: .9em; padding: .3em; }
#chat mark { background: #ffe58f; color: #1f2328; }
#question textarea:focus-visible, #chat a:focus-visible, #chat summary:focus-visible, button:focus-visible {
  outline: 2px solid var(--color-accent) !important; outline-offset: 2px; }
.max_value, .min_value, .or { color: var(--body-text-color) !important; opacity: 1 !important; }
.rag-source.rag-targeted { outline: 2px solid var(--color-accent); }
#question-error, #question-error * { color: #cf222e; }
.rag-article-text mark { scroll-margin-top: 2em; }
#chat [data-testid="bot"] { scroll-margin-top: 2.5em; }
.rag-more > summary, .rag-article > summary { font-size: .85em; cursor: pointer; }
#library ol { padding-left: 1.2em; margin: 0; } #library li { margin: .3em 0; }
#library .rag-meta { margin: 0; }
"""
# "Copy" puts the answer's plain text on the clipboard. Links inside the chat (a citation, "Read
# the article") move within the page and never navigate:
# Gradio's <base href> would resolve "#id" against "/" and reload a page opened with a query
# string (?__theme=dark), losing the chat.
CHAT_CLICKS = """() => {
  document.addEventListener("click", (event) => {
    const suggested = event.target.closest && event.target.closest("#chat .rag-suggest, #chat .rag-as-typed");
    if (suggested) {  // a suggestion, asked as if typed; or a follow-up asked again as typed, not rewritten
      const box = document.querySelector("#question textarea");
      const asTyped = suggested.classList.contains("rag-as-typed");
      window.ragAsTyped = asTyped;
      box.value = asTyped ? suggested.parentElement.querySelector(".rag-copy-text").textContent : suggested.textContent;
      box.dispatchEvent(new Event("input", {bubbles: true}));
      const enter = new KeyboardEvent("keypress", {key: "Enter", code: "Enter", bubbles: true});
      setTimeout(() => box.dispatchEvent(enter), 50);
      return;
    }
    const copy = event.target.closest && event.target.closest("#chat .rag-copy");
    if (copy) {
      const text = copy.parentElement.querySelector(".rag-copy-text").textContent;
      navigator.clipboard.writeText(text).then(() => { copy.textContent = "Copied"; });
      return;
    }
    const link = event.target.closest && event.target.closest('#chat a[href^="#"]');
    if (!link) return;
    event.preventDefault();
    const id = link.getAttribute("href").slice(1);
    const target = document.getElementById(id);
    if (!target) return;
    target.scrollIntoView({block: "start"});
    history.replaceState(history.state, "", location.pathname + location.search + "#" + id);
    document.querySelectorAll(".rag-targeted").forEach((e) => e.classList.remove("rag-targeted"));
    target.classList.add("rag-targeted");
  }, true);
  document.addEventListener("toggle", (event) => {  // "Read the article" opened: to the answer in it
    const details = event.target;
    if (!details.open || !details.classList || !details.classList.contains("rag-article")) return;
    const goto = [...details.querySelector("summary").classList].find((c) => c.startsWith("rag-goto-"));
    const target = goto && document.getElementById(goto.slice("rag-goto-".length));
    if (target) target.scrollIntoView({block: "center"});
  }, true);
}"""
# The question's inputs as sent, and when; the box is emptied there and then, in the browser, so a
# question typed next is never wiped by a later reply to this one.
SENT_AT = """(...values) => {
  const box = document.querySelector("#question textarea");
  box.value = "";
  box.dispatchEvent(new Event("input", {bubbles: true}));
  const asTyped = window.ragAsTyped ? 1 : 0;
  window.ragAsTyped = false;
  return [...values.slice(0, 6), Date.now(), asTyped];
}"""
SCROLL_TO_ANSWER = """() => {
  const answers = document.querySelectorAll('#chat [data-testid="bot"]');
  if (answers.length) answers[answers.length - 1].scrollIntoView({block: "start"});
}"""


def _library_views(library: Library, seen: str = "") -> tuple:
    """The Library panel's listing, the outlets filter's and the removal list's choices, and the snapshot they
    show; all skipped, without listing anything, when that snapshot is ``seen`` (this page shows it already)."""
    signature = str(library.version)  # read before the listing: a swap in between is drawn at the next look
    if signature == seen:
        return gr.skip(), gr.skip(), gr.skip(), seen
    documents = library.documents()
    named = [(d, d["outlet"] or d["file_name"]) for d in documents]
    items = "".join(f"<li><b>{escape(d['title'])}</b><div class='rag-meta'>"
                    + " · ".join(escape(part) for part in (name, d["date"], f"{d['passage_count']} passages") if part)
                    + "</div></li>" for d, name in named)
    listing = f"<p>{len(documents)} articles</p><ol>{items}</ol>"
    outlets = sorted({d["outlet"] for d in documents if d["outlet"]})
    removable = [(f"{d['title']} ({name})", d["doc_id"]) for d, name in named]
    return listing, gr.update(choices=outlets), gr.update(choices=removable, value=None), signature


def _welcome(library: Library) -> dict:
    """The empty chat: what is indexed, and three questions to ask of it, one click each. The bundled
    library gets questions written for it; any other, "who wrote" and "when" questions on its newest
    articles, which metadata answers (``rag.answer.about_articles``)."""
    documents = library.documents()
    newest = sorted(documents, key=lambda d: d["date"] or "", reverse=True)
    titles = "; ".join(f"“{d['title']}”" + (f" ({d['outlet']})" if d["outlet"] else "") for d in newest[:3])
    more = f" and {len(documents) - 3} more" if len(documents) > 3 else ""
    if {d["file_name"] for d in documents} == {p.name for p in corpus_dir().iterdir() if p.is_file()}:
        questions = EXAMPLES[:3]
    else:
        questions = [f"Who wrote “{d['title']}”?" if d["author"] else f"What is “{d['title']}” about?"
                     for d in newest[:3]]
    if not documents:
        return gr.update(placeholder="No article is indexed yet: add some in the Library panel.")
    buttons = "".join(f"<button type='button' class='rag-suggest'>{escape(q)}</button>" for q in questions)
    return gr.update(placeholder=(
        f"<div class='rag-welcome'><p><b>{len(documents)} article{'s' if len(documents) != 1 else ''} indexed:</b> "
        f"{escape(titles)}{escape(more)}.</p><p>Ask about them in your own words; each answer is a span of an "
        f"article, with its source. Try one:</p><div class='rag-suggestions'>{buttons}</div></div>"))


def _filters(since: str | None, until: str | None, sources: list[str] | None) -> Filters:
    """The chat's "Limit to" fields as search filters; raises InvalidInputError on a bad date."""
    return Filters(since=parse_date((since or "").strip() or None, "since"),
                   until=parse_date((until or "").strip() or None, "until"), sources=tuple(sources or ()))


def build_app(library: Library, access: Access | None = None) -> gr.Blocks:
    """The chat over ``library``, behind ``access``: questions, answer and source cards, uploads and the
    Library panel (which asks for the write token once, where the server has one)."""
    access = access if access is not None else Access()
    limits = access.limits

    sessions: OrderedDict[str, Session] = OrderedDict()
    sessions_lock = threading.Lock()

    def session_of(request: gr.Request) -> Session:
        """This page's conversation (the most recent pages' are kept, the others forgotten)."""
        key = request.session_hash or ""
        with sessions_lock:
            session = sessions.pop(key, None) or Session()
            sessions[key] = session
            while len(sessions) > MAX_SESSIONS:
                sessions.popitem(last=False)
            return session

    def restore(kept: list, request: gr.Request):
        """A page opens: the conversation its browser kept, before anything asked already (a question sent
        at once may arrive first)."""
        restored = Session.from_json(kept)
        session = session_of(request)
        with session.lock:
            session.entries = [*restored.entries, *session.entries][-MAX_KEPT:]
        return session.messages()

    def send(message: str, k: int, mode: str, since: str, until: str, sources: list, sent: float | None,
             as_typed: float | None, request: gr.Request):
        """Queue the question and show it at once, or say inline what is wrong with it or its limits."""
        session = session_of(request)
        question = (message or "").strip()
        problem = None
        if not question:
            problem = "Type a question first."
        elif len(question) > limits.question_chars:
            problem = f"Questions are limited to {limits.question_chars:,} characters."
        else:
            try:
                check_question(question)
                _filters(since, until, sources)
            except InvalidInputError as e:
                problem = escape(str(e))
        if problem:  # the box was emptied as it was sent: the question goes back, to be fixed
            return gr.skip(), message, problem
        session.add(question, int(k), mode, since or "", until or "", sources, float(sent or 0), bool(as_typed))
        return session.messages(), gr.skip(), ""

    def work(request: gr.Request):
        """Answer this page's waiting questions in order; a second worker for the page leaves it to the first."""
        session = session_of(request)
        while session.next_waiting() is not None:
            with session.answering() as mine:
                if not mine:
                    break
                while (entry := session.next_waiting()) is not None:
                    entry.status = "answering"
                    yield session.messages(), session.to_json()
                    try:
                        response = library.ask_one(entry.read, entry.k, entry.mode,  # type: ignore[arg-type]
                                                   _filters(entry.since, entry.until, entry.sources))
                    except RagError as e:
                        if entry.status == "answering":
                            entry.status, entry.html = "failed", f"<p class='rag-step'>{escape(str(e))}</p>"
                        yield session.messages(), session.to_json()
                        continue
                    if entry.status != "answering":  # stopped meanwhile
                        continue
                    response = replace(response, question=entry.asked, question_as_read=entry.read)
                    entry.status, entry.answer, entry.html = "answered", response.answer, response_html(response)
                    yield session.messages(), session.to_json()
        yield gr.skip(), gr.skip()

    def stop(request: gr.Request):
        session = session_of(request)
        session.stop()
        return session.messages(), session.to_json()

    def regenerate(request: gr.Request):
        """Ask the last question again (read again from the conversation before it)."""
        session = session_of(request)
        last = session.drop_last()
        if last is None:
            return gr.skip(), gr.skip()
        session.add(last.asked, last.k, last.mode, last.since, last.until, last.sources)
        return session.messages(), session.to_json()

    def edit(request: gr.Request):
        """Take the last question back into the question box."""
        session = session_of(request)
        last = session.drop_last()
        if last is None:
            return gr.skip(), gr.skip(), gr.skip()
        return session.messages(), session.to_json(), last.asked

    def new_conversation(request: gr.Request):
        session = session_of(request)
        session.stop()
        with session.lock:
            session.entries = []
        return [], [], ""

    def add_files(paths: list[str] | None, token: str):
        if not paths:
            yield "No file chosen.", None
            return
        if not access.tokens.can_write(token or None):
            for path in paths:
                Path(path).unlink(missing_ok=True)
            yield "✗ Adding articles needs the write token: enter it above.", None
            return
        if len(paths) > limits.upload_files:
            yield f"✗ At most {limits.upload_files} files at once.", None
            return
        yield f"Indexing {len(paths)} file(s)… questions are still answered meanwhile.", None
        try:
            report = library.add_files([Path(p) for p in paths], max_file_bytes=limits.upload_bytes)
        except RagError as e:
            yield f"✗ {escape(str(e))}", None
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
        yield "<br>".join(lines), None

    def library_views_since(seen: str):
        return _library_views(library, seen)

    def confirm_removal(doc_id: str | None):
        """Name the article and ask before removing it."""
        document = library.index.documents.get(doc_id) if doc_id else None
        if document is None:
            return "Choose an article to remove.", gr.update(visible=False), ""
        named = f"“{escape(document.title)}”" + (f" ({escape(document.outlet)})" if document.outlet else "")
        return "", gr.update(visible=True), f"Remove {named} from the library? This cannot be undone."

    def remove(doc_id: str | None, token: str):
        hidden = gr.update(visible=False)
        if not doc_id:
            return "Choose an article to remove.", hidden
        if not access.tokens.can_write(token or None):
            return "✗ Removing articles needs the write token: enter it above.", hidden
        title = library.index.documents[doc_id].title if doc_id in library.index.documents else doc_id
        try:
            passages = library.remove(doc_id)
        except RagError as e:
            return f"✗ {escape(str(e))}", hidden
        return f"Removed “{escape(title)}” ({passages} passages).", hidden

    with gr.Blocks(title="Ask the articles") as demo:
        gr.Markdown("## Ask the articles\nAnswers are spans of the articles themselves, with numbered sources.")
        kept = gr.BrowserState([], storage_key="rag-conversation")
        sent = gr.Number(visible=False)  # when the page sent a question, set by SENT_AT
        as_typed = gr.Number(visible=False)  # 1 when "Ask it as typed" sent it, set by SENT_AT
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Answers", height=600, elem_id="chat", buttons=[], autoscroll=False,
                                  latex_delimiters=[])
                question = gr.Textbox(label="Question", placeholder="Ask about the articles…", elem_id="question",
                                      max_lines=3, submit_btn="Ask")
                error = gr.Markdown(elem_id="question-error")
                with gr.Row():
                    stop_button = gr.Button("Stop", elem_id="stop", size="sm", variant="secondary")
                    regenerate_button = gr.Button("Ask the last again", elem_id="regenerate", size="sm",
                                                  variant="secondary")
                    edit_button = gr.Button("Edit the last", elem_id="edit", size="sm", variant="secondary")
                    new_button = gr.Button("New conversation", elem_id="new-conversation", size="sm",
                                           variant="secondary")
            with gr.Column(scale=1):
                k = gr.Slider(1, min(20, limits.k), value=min(library.assistant.k, limits.k), step=1,
                              label="Passages to read (k)")
                mode = gr.Radio(list(MODES), value=library.assistant.retriever.mode, label="Retrieval")
                with gr.Accordion("Limit to", open=False):
                    since = gr.Textbox(label="Published from (YYYY-MM-DD)", elem_id="since", max_lines=1)
                    until = gr.Textbox(label="Published until (YYYY-MM-DD)", elem_id="until", max_lines=1)
                    sources = gr.Dropdown([], multiselect=True, allow_custom_value=True, label="Outlets",
                                          elem_id="sources")
                with gr.Accordion("Library", open=not library.read_only):
                    seen = gr.State("")  # the signature of the library this page shows
                    table = gr.HTML("", elem_id="library")
                    choice = gr.Dropdown([], label="Remove an article", value=None, elem_id="remove-choice",
                                         visible=not library.read_only)
                    library_views = [table, sources, choice, seen]
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
                        remove_button = gr.Button("Remove…", elem_id="remove", variant="secondary", size="sm")
                        with gr.Group(visible=False, elem_id="remove-confirm") as confirm:
                            confirm_text = gr.Markdown(elem_id="remove-question")
                            with gr.Row():
                                yes = gr.Button("Yes, remove it", elem_id="remove-yes", variant="stop", size="sm")
                                no = gr.Button("Cancel", elem_id="remove-no", size="sm")
                        (files.upload(add_files, [files, token], [status, files], api_name="upload",
                                      concurrency_id="library", concurrency_limit=1)
                         .then(library_views_since, [seen], library_views, api_visibility="private",
                               show_progress="hidden"))
                        remove_button.click(confirm_removal, [choice], [status, confirm, confirm_text],
                                            api_visibility="private")
                        no.click(lambda: gr.update(visible=False), None, [confirm], api_visibility="private")
                        (yes.click(remove, [choice, token], [status, confirm], api_name="remove",
                                   concurrency_id="library", concurrency_limit=1)
                         .then(library_views_since, [seen], library_views, api_visibility="private",
                               show_progress="hidden"))

        demo.load(restore, [kept], [chat], api_visibility="private")
        demo.load(lambda: _welcome(library), None, [chat], api_visibility="private", show_progress="hidden")

        demo.load(library_views_since, [seen], library_views, api_visibility="private", show_progress="hidden")
        # Changes from other pages and the API: looked for every few seconds, redrawn only when there are some.
        gr.Timer(LIBRARY_REFRESH_SECONDS).tick(library_views_since, [seen], library_views,
                                               api_visibility="private", show_progress="hidden")
        (question.submit(send, [question, k, mode, since, until, sources, sent, as_typed], [chat, question, error],
                         js=SENT_AT, concurrency_limit=1, concurrency_id="send", trigger_mode="multiple",
                         api_name="ask")
         .then(work, None, [chat, kept], concurrency_limit=None)
         .then(None, js=SCROLL_TO_ANSWER))
        # Everything that changes a page's queue goes through one line, so it acts in the order clicked.
        stop_button.click(stop, None, [chat, kept], concurrency_limit=1, concurrency_id="send",
                          api_visibility="private")
        (regenerate_button.click(regenerate, None, [chat, kept], concurrency_limit=1, concurrency_id="send",
                                 api_visibility="private")
         .then(work, None, [chat, kept], concurrency_limit=None))
        edit_button.click(edit, None, [chat, kept, question], concurrency_limit=1, concurrency_id="send",
                          api_visibility="private")
        new_button.click(new_conversation, None, [chat, kept, error], concurrency_limit=1, concurrency_id="send",
                         api_visibility="private")
    demo.queue(default_concurrency_limit=None)
    return demo


def mount(app, library: Library, access: Access | None = None):
    """Mount the chat over ``library`` at ``/`` of the FastAPI ``app``, behind ``access``; returns the app."""
    access = access if access is not None else Access()
    # System fonts (nothing fetched from a font CDN, one face for every letter); no Gradio footer (its API
    # page is Gradio's, not /api; its settings and branding mean nothing to a newsroom).
    theme = gr.themes.Default(font=["system-ui", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
                              font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])
    return gr.mount_gradio_app(app, build_app(library, access), path="/", css=CSS, js=CHAT_CLICKS, theme=theme,
                               footer_links=[], max_file_size=access.limits.upload_bytes)
