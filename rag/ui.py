"""Gradio chat over the assistant, served by ``rag serve`` (or ``python app.py``).

Only wiring lives here; answering is ``rag.assistant``, rendering ``rag.render``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls

import gradio as gr  # noqa: E402

from rag.assistant import Assistant  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.ingest import read_file  # noqa: E402
from rag.render import escape, response_html  # noqa: E402
from rag.settings import MODES  # noqa: E402

logger = logging.getLogger(__name__)

UPLOAD_TYPES = (".txt", ".md", ".html", ".htm")
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_QUESTION_CHARS = 1000
EXAMPLES = [
    "Who is the spokesman for Dostum's party?",
    "Which IMU leader was killed in a U.S. drone attack?",
    "Who is the governor of Balkh?",
    "Why are Uzbek communities vulnerable to IMU infiltration?",
    "Who won the 2014 FIFA World Cup?",
]


def build_app(assistant: Assistant) -> gr.Blocks:
    """The chat UI over ``assistant``; uploads are added to its index for this session."""
    lock = threading.Lock()  # uploads change the index that questions read

    def respond(message: str, history: list, k: int, mode: str):
        question = (message or "").strip()
        if not question:
            raise gr.Error("Type a question first.")
        if len(question) > MAX_QUESTION_CHARS:
            raise gr.Error(f"Questions are limited to {MAX_QUESTION_CHARS} characters.")
        with lock:
            response = assistant.ask(question, k=int(k), mode=mode)
        history = list(history or []) + [{"role": "user", "content": escape(question)},
                                         {"role": "assistant", "content": response_html(response)}]
        return history, ""

    def upload(paths: list[str] | None) -> str:
        # Gradio itself refuses files whose type is not in UPLOAD_TYPES, with a clear message.
        if not paths:
            return "No file chosen."
        lines = []
        for path in map(Path, paths):
            name = escape(path.name)
            if path.stat().st_size > MAX_UPLOAD_BYTES:
                lines.append(f"✗ {name}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
                continue
            try:
                docs = read_file(path)
            except RagError as e:
                lines.append(f"✗ {escape(str(e).replace(str(path), path.name))}")  # names the file itself
                continue
            if not docs:
                lines.append(f"✗ {name}: no text found")
                continue
            with lock:
                added = assistant.retriever.index.add(docs)
            title = escape(docs[0].title)
            lines.append(f"✓ {name}: “{title}”, {added} passages added" if added
                         else f"• {name}: “{title}” is already in the index")
        return "<br>".join(lines)

    with gr.Blocks(title="Ask the articles") as demo:
        gr.Markdown("## Ask the articles\nAnswers are spans of the articles themselves, with numbered sources.")
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Answers", height=560, elem_id="chat", buttons=["copy"])
                question = gr.Textbox(label="Question", placeholder="Ask about the articles…", elem_id="question",
                                      max_lines=3, submit_btn=True)
                gr.Examples(EXAMPLES, inputs=question, label="Try one")
            with gr.Column(scale=1):
                k = gr.Slider(1, 20, value=assistant.k, step=1, label="Passages to read (k)")
                mode = gr.Radio(list(MODES), value=assistant.retriever.mode, label="Retrieval")
                files = gr.File(label="Add articles (.txt .md .html, 2 MB each)", file_count="multiple",
                                file_types=list(UPLOAD_TYPES), type="filepath")
                status = gr.Markdown(elem_id="upload-status")
                gr.Markdown(f"<small>{len(assistant.retriever.index.documents)} articles indexed at start. "
                            "Added articles last for this session; keep them with `rag index --update`.</small>")
        question.submit(respond, [question, chat, k, mode], [chat, question], api_name="ask")
        files.upload(upload, files, status, api_name="upload")
    demo.queue(default_concurrency_limit=2)
    return demo


def serve(host: str = "127.0.0.1", port: int = 7860, index: Path | None = None) -> None:
    """Load the models once, then serve the chat until interrupted.

    Raises:
        RagError: the port is taken (checked before the models load).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as e:
            raise RagError(f"cannot serve on {host}:{port}: {e.strerror or e} (pass another --port)") from e
    assistant = Assistant.load(index) if index else Assistant.default()
    assistant.reader.load()  # before the first question, not during it
    build_app(assistant).launch(server_name=host, server_port=port)

