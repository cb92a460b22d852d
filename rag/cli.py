"""The ``rag`` command: index articles, search them, ask them, evaluate, serve the chat."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
import time
from pathlib import Path

from rag.errors import RagError

logger = logging.getLogger("rag.cli")


def _quiet_libraries() -> None:
    """Keep the terminal for our output: no weight-loading bars or load reports from transformers."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _question(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the question is empty")
    return text


def cmd_index(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from embeddings import Embedder
    from rag.chunking import ChunkSettings
    from rag.index import PassageIndex
    from rag.ingest import iter_article_files, read_documents

    started = time.perf_counter()
    files = iter_article_files(args.paths)
    skipped = []
    docs = []
    for file in tqdm(files, desc="reading", unit="file", disable=len(files) < 2):
        try:
            docs += read_documents([file], on_skip=lambda p, why: skipped.append(why))
        except RagError as e:  # a file with no article in it
            skipped.append(str(e))
    for why in skipped:
        print(f"warning: skipped {why}", file=sys.stderr)
    if not docs:
        raise RagError(f"no readable articles in {', '.join(map(str, args.paths))}")
    embedder = Embedder(args.model)
    if args.update and (args.out / "manifest.json").exists():
        index = PassageIndex.load(args.out, embedder)
        before = len(index.passages)
        index.add(docs, progress=True)
        added = len(index.passages) - before
    else:
        index = PassageIndex.build(docs, embedder, ChunkSettings(args.max_tokens, args.overlap), progress=True)
        added = len(index.passages)
    index.save(args.out)
    print(f"indexed {len(index.documents)} documents, {len(index.passages)} passages ({added} new) "
          f"in {time.perf_counter() - started:.1f} s -> {args.out}")


def cmd_remove(args: argparse.Namespace) -> None:
    from rag.index import PassageIndex

    index = PassageIndex.load(args.index)
    try:
        removed = index.remove(args.doc_ids)
    except KeyError as e:
        raise RagError(e.args[0]) from e
    index.save(args.index)
    print(f"removed {len(args.doc_ids)} documents, {removed} passages; {len(index.passages)} passages left")


def _retriever(args: argparse.Namespace):
    from rag.retriever import Retriever

    return Retriever.load(args.index) if args.index else Retriever.default()


def cmd_search(args: argparse.Namespace) -> None:
    hits = _retriever(args).search(args.question, k=args.k, mode=args.mode)
    if args.json:
        for hit in hits:
            print(json.dumps({"rank": hit.rank, "score": hit.score, "doc_id": hit.document.id,
                              "passage_id": hit.passage.id, "title": hit.document.title,
                              "source": hit.document.source, "date": hit.document.date,
                              "passage": hit.passage.text, "start": hit.passage.start, "end": hit.passage.end},
                             ensure_ascii=False))
        return
    if not hits:
        print("no passages found")
    for hit in hits:
        print(f"[{hit.rank}] {hit.document.title}  (score {hit.score:.4f})")
        print(f"    {hit.document.source}  chars {hit.passage.start}-{hit.passage.end}")
        print(textwrap.indent(textwrap.fill(hit.passage.text, 100), "    "))
        print()


def _read_questions(args: argparse.Namespace) -> list[str]:
    questions = list(args.questions)
    if args.questions_file:
        try:
            text = Path(args.questions_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise RagError(f"cannot read questions from {args.questions_file}: {e}") from e
        questions += [line.strip() for line in text.splitlines() if line.strip()]
    if not questions:
        raise RagError("no question given (pass one as an argument, or --questions FILE)")
    empty = [q for q in questions if not q.strip()]
    if empty:
        raise RagError("a question is empty")
    return questions


def _print_response(response) -> None:
    if response.answer is None:
        print("No answer: the articles do not seem to say. Closest passages:")
    else:
        print(f"{response.answer}  (confidence {response.confidence:.0%})")
    print()
    for c in response.citations:
        date = f", {c.date}" if c.date else ""
        print(f"[{c.number}] {c.title}{date}  - {c.source}")
        text = c.passage
        if c.answer_start is not None:
            text = f"{text[:c.answer_start]}>>{text[c.answer_start:c.answer_end]}<<{text[c.answer_end:]}"
        print(textwrap.indent(textwrap.fill(text, 100), "    "))
        print()


def cmd_ask(args: argparse.Namespace) -> None:
    from rag.assistant import Assistant
    from rag.reader import Reader

    questions = _read_questions(args)
    assistant = Assistant(_retriever(args), Reader(args.reader) if args.reader else None, k=args.k)
    for response in assistant.ask_batch(questions, mode=args.mode):
        if args.json:
            print(json.dumps(response.to_dict(), ensure_ascii=False), flush=True)
        else:
            if len(questions) > 1:
                print(f"Q: {response.question}")
            _print_response(response)


def cmd_serve(args: argparse.Namespace) -> None:
    from app import serve

    serve(args.host, args.port, args.index)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions of news articles, offline.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="index articles (.txt .md .html .jsonl, files or folders)")
    p.add_argument("paths", nargs="+", type=Path, help="article files or folders")
    p.add_argument("--out", type=Path, required=True, help="index folder to write")
    p.add_argument("--update", action="store_true", help="add new articles to the index at --out")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence-transformers model (path or name)")
    p.add_argument("--max-tokens", type=_positive_int, default=160, help="passage length in embedder tokens")
    p.add_argument("--overlap", type=int, default=1, help="sentences shared by neighbouring passages")
    p.set_defaults(run=cmd_index)

    p = sub.add_parser("remove", help="remove documents from an index by id")
    p.add_argument("doc_ids", nargs="+", help="document ids (see `rag search --json`)")
    p.add_argument("--index", type=Path, required=True, help="index folder")
    p.set_defaults(run=cmd_remove)

    p = sub.add_parser("search", help="show the passages retrieved for a question")
    p.add_argument("question", type=_question)
    p.add_argument("--index", type=Path, help="index folder (default: the bundled sample corpus)")
    p.add_argument("-k", type=_positive_int, default=5, help="passages to show")
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("ask", help="answer questions with cited sources")
    p.add_argument("questions", nargs="*", help="one or more questions")
    p.add_argument("--questions", dest="questions_file", type=Path, help="file with one question per line")
    p.add_argument("--index", type=Path, help="index folder (default: the bundled sample corpus)")
    p.add_argument("-k", type=_positive_int, default=5, help="passages to read per question")
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    p.add_argument("--reader", help="extractive QA model folder or name (default: the shipped reader)")
    p.add_argument("--json", action="store_true", help="one JSON object per question, in order")
    p.set_defaults(run=cmd_ask)

    p = sub.add_parser("serve", help="serve the chat UI in the browser")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_positive_int, default=7860)
    p.add_argument("--index", type=Path, help="index folder (default: the bundled sample corpus)")
    p.set_defaults(run=cmd_serve)

    sub.add_parser("eval", help="score against gold questions (see `rag eval --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:  # the eval suite has its own options: `rag eval --help`
        _quiet_libraries()
        from eval.run import main as eval_main

        return eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    _quiet_libraries()
    try:
        args.run(args)
    except (RagError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
