"""The ``rag`` command: index articles, search them, ask them, evaluate, serve the chat.

Only the parser is built at start-up; each command imports what it needs when it runs,
so ``rag --help`` answers at once. Every error a user can cause is a ``RagError``:
``rag.errors.run_guarded`` prints it as one line and exits 2. Each command is a short
printer over the library: ``rag index`` over ``rag.indexing.workflow``, ``rag ask`` over
``rag.answer.assistant``.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from embeddings import DEFAULT_MODEL
from rag.errors import RagError, run_guarded
from rag.serve.access import Limits
from rag.settings import (
    BACKENDS,
    DEFAULT_FUSION,
    DEFAULT_K,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MODE,
    DENSE_KINDS,
    FUSIONS,
    HNSW_FROM,
    MODES,
    SUPPORTED_SUFFIXES,
    ChunkSettings,
    DenseSettings,
    check_positive_int,
    configure_entry_point,
)

if TYPE_CHECKING:
    from rag.answer.assistant import Assistant
    from rag.protocols import Pipeline
    from rag.types import Filters, Response

T = TypeVar("T")


BACKEND_HELP = ("how the models run: onnx (ONNX Runtime, no torch import: the fastest start), torch, "
                "int8 (onnx with the reader quantized: faster, a few answers differ; docs/results.md), "
                "or auto: onnx where `rag index` has exported the models (default)")


def _positive_int(text: str) -> int:
    try:
        return check_positive_int("the value", int(text))
    except ValueError:  # int() of a non-number, or a number below 1
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def _location(text: str) -> str | Path:
    from rag.index.open import as_location

    return as_location(text)


def _store(text: str) -> str:
    from rag.index.open import SCHEMES, is_uri

    if not is_uri(text):
        raise argparse.ArgumentTypeError(f"{text!r} is no store; name one as "
                                         "postgresql://USER@HOST:PORT/DB?table=NAME, qdrant://HOST:PORT/COLLECTION "
                                         f"or qdrant:FOLDER/COLLECTION (schemes: {', '.join(SCHEMES)})")
    return text


def _question(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the question is empty")
    return text


def cmd_index(args: argparse.Namespace) -> None:
    from rag.indexing.workflow import index_articles

    def skipped(message: str) -> None:
        print(f"skipped {message}", file=sys.stderr)

    chunking = {"max_tokens": args.max_tokens, "overlap_sentences": args.overlap}
    dense = {name: getattr(args, name) for name in ("kind", "hnsw_m", "ef_construction", "ef_search")}
    with _pipeline(args) as pipeline:
        report = index_articles(
            args.out or args.store, args.paths, pipeline=pipeline, max_file_bytes=int(args.max_file_mb * 1_000_000),
            on_skip=skipped, update=args.update, model=args.model, wait=not args.no_wait,
            chunking=_settings(ChunkSettings, chunking), dense=_settings(DenseSettings, dense))
    added = report.added
    print(f"indexed {report.documents} documents, {report.passages} passages ({added.passages} new) in "
          f"{report.seconds:.1f} s -> {report.location}"
          + (f"; merged {report.merged} duplicates" if report.merged else "")
          + (f"; {len(added.copies)} copies of indexed articles recorded as their copies" if added.copies else "")
          + (f"; skipped {len(report.skipped)}" if report.skipped else ""))


def _settings(kind: type[T], asked: dict[str, object]) -> T | None:
    """Settings with what was asked on the command line, the defaults elsewhere; None if nothing was asked."""
    given = {name: value for name, value in asked.items() if value is not None}
    return kind(**given) if given else None


def _pipeline(args: argparse.Namespace) -> AbstractContextManager[Pipeline]:
    from rag.indexing.local import LocalPipeline

    if args.ray is None:
        return nullcontext(LocalPipeline(progress=True))
    try:
        from rag.indexing.ray import RayPipeline
    except ImportError as e:
        raise RagError(f"--ray needs Ray: pip install -e \".[cluster]\" ({e})") from None
    where = f"the Ray cluster at {args.ray}" if args.ray else f"a local Ray of {args.ray_workers} workers"
    print(f"reading and embedding on {where}", file=sys.stderr)
    return RayPipeline(args.ray or None, args.ray_workers)


def cmd_remove(args: argparse.Namespace) -> None:
    from rag.indexing.workflow import remove_documents

    report = remove_documents(args.index, args.doc_ids, wait=not args.no_wait)
    print(f"removed {report.documents_removed} documents, {report.passages_removed} passages; "
          f"{report.passages} passages left")


def _retriever(args: argparse.Namespace):
    from rag.search.retriever import Retriever

    settings = {"fusion": args.fusion}
    if args.index:
        return Retriever.load(args.index, backend=args.backend, **settings)
    return Retriever.default(args.backend, **settings)


def _filters(args: argparse.Namespace):
    from rag.types import Filters

    return Filters(args.since, args.until, tuple(args.source), tuple(args.author), tuple(args.doc_id))


def cmd_search(args: argparse.Namespace) -> None:
    filters = _filters(args)  # a bad date fails before any model loads
    hits = _retriever(args).search(args.question, k=args.k, mode=args.mode, filters=filters)
    if args.json:
        for hit in hits:
            print(json.dumps(hit.to_dict(), ensure_ascii=False))
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
    if any(not q.strip() for q in questions):
        raise RagError("a question is empty")
    return questions


def _print_response(response) -> None:
    if response.answer is None:
        why = f" ({response.ruled_out})" if response.ruled_out else ""
        print(f"The articles do not say{why}. Closest passages:")
    else:
        possible = "possible answer: " if response.level == "low" else ""
        print(f"{possible}{response.answer}  ({response.level} confidence, {response.confidence:.0%})")
        if response.level == "low":
            for alt in response.alternatives:
                print(f"  or: {alt.answer}  ({alt.confidence:.0%}) [{alt.citation}]")
    print()
    for c in response.citations:
        doc = c.document
        date = f", {doc.date}" if doc.date else ""
        print(f"[{c.number}] {doc.title}{date}  - {doc.url or doc.source}")
        for cited in c.passages:
            text, start, end = cited.hit.passage.text, cited.answer_start, cited.answer_end
            if start is not None:
                text = f"{text[:start]}>>{text[start:end]}<<{text[end:]}"
            print(textwrap.indent(textwrap.fill(text, 100), "    "))
        print()


def cmd_ask(args: argparse.Namespace) -> None:
    from rag.answer.assistant import Assistant
    from rag.read import runtime

    questions = _read_questions(args)
    filters = _filters(args)
    reader = runtime.reader(args.reader, args.backend)  # a bad path fails before the index loads
    assistant = Assistant(_retriever(args), reader, k=args.k)
    for response in _answers(assistant, questions, args, filters):
        if args.json:
            print(json.dumps(response.to_dict(), ensure_ascii=False), flush=True)
        else:
            if len(questions) > 1:
                print(f"Q: {response.question}")
            if response.question_as_read != response.question:
                print(f"Read as: {response.question_as_read}")
            _print_response(response)


def _answers(assistant: Assistant, questions: list[str], args: argparse.Namespace,
             filters: Filters | None) -> Iterator[Response]:
    """All at once in batches; or, with --conversation, one after another, each after the ones before."""
    from rag.types import Turn

    if not args.conversation:
        yield from assistant.ask_batch(questions, mode=args.mode, filters=filters)
        return
    history: list[Turn] = []
    for question in questions:
        response = assistant.ask(question, mode=args.mode, filters=filters, history=history)
        history.append(Turn(question, response.answer))
        yield response


def cmd_serve(args: argparse.Namespace) -> None:
    from rag.serve.access import Access, Limits, Tokens
    from rag.serve.server import serve

    limits = Limits(args.max_question_chars, args.max_k, args.max_body_kb * 1000, args.max_upload_files,
                    int(args.max_upload_mb * 1_000_000), args.rate_limit)
    access = Access(Tokens.load(args.read_token_file, args.write_token_file), limits)
    serve(args.host, args.port, args.index, args.read_only, args.backend, access)


def cmd_eval(args: argparse.Namespace) -> None:
    from rag.evaluation.run import evaluate, table

    report, out, png = evaluate(args.gold, args.squad, args.index, args.sample, args.seed, args.k, args.mode,
                           args.reader, args.out, args.conversations)
    print(table(report))
    print(f"\nwrote {out}" + (f" and {png}" if png else ""))


def _add_retrieval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fusion", choices=FUSIONS, default=DEFAULT_FUSION,
                   help="how hybrid mode fuses dense and BM25: convex (weighted normalised scores, the default) "
                        "or rrf (reciprocal rank)")
    p.add_argument("--since", help="only articles published on or after this date (YYYY-MM-DD)")
    p.add_argument("--until", help="only articles published on or before this date (YYYY-MM-DD)")
    p.add_argument("--source", action="append", default=[], help="only articles of this outlet (repeatable)")
    p.add_argument("--author", action="append", default=[], help="only articles by this author (repeatable)")
    p.add_argument("--doc-id", action="append", default=[], help="only this document (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions of news articles, offline.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)
    chunking = ChunkSettings()

    p = sub.add_parser("index", help=f"index articles, files or folders ({' '.join(SUPPORTED_SUFFIXES)})")
    p.add_argument("paths", nargs="+", type=Path, help="article files or folders")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="index folder to write")
    target.add_argument("--store", type=_store, metavar="URI",
                        help="write to a server instead: postgresql://USER@HOST:PORT/DB?table=NAME, "
                             "qdrant://HOST:PORT/COLLECTION (qdrant:FOLDER/COLLECTION: Qdrant's local mode)")
    p.add_argument("--update", action="store_true", help="add new articles to the index at --out or --store")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="read and embed on Ray: a local Ray, or the cluster at ADDRESS (needs the [cluster] extra)")
    p.add_argument("--ray-workers", type=_positive_int, default=2, help="workers of a local Ray (default 2)")
    p.add_argument("--model", help=f"sentence-transformers model, folder or name (default: {DEFAULT_MODEL}, "
                                   "or the index's own with --update)")
    p.add_argument("--max-tokens", type=_positive_int,
                   help=f"passage length in embedder tokens (default {chunking.max_tokens})")
    p.add_argument("--overlap", type=_non_negative_int,
                   help=f"sentences shared by neighbouring passages (default {chunking.overlap_sentences})")
    p.add_argument("--max-file-mb", type=float, default=DEFAULT_MAX_FILE_BYTES / 1e6,
                   help="refuse article files larger than this (default %(default)g)")
    p.add_argument("--no-wait", action="store_true", help="fail at once if another process is writing the index")
    dense = DenseSettings()
    p.add_argument("--dense", dest="kind", choices=DENSE_KINDS,
                   help=f"FAISS index: flat (exact), hnsw, or auto: hnsw from {HNSW_FROM:,} passages (default auto)")
    p.add_argument("--hnsw-m", type=_positive_int, help=f"HNSW neighbours per node (default {dense.hnsw_m})")
    p.add_argument("--ef-construction", type=_positive_int,
                   help=f"HNSW build candidate list (default {dense.ef_construction})")
    p.add_argument("--ef-search", type=_positive_int, help=f"HNSW search candidate list (default {dense.ef_search})")
    p.set_defaults(run=cmd_index)

    p = sub.add_parser("remove", help="remove documents from an index by id")
    p.add_argument("doc_ids", nargs="+", help="document ids (see `rag search --json`)")
    p.add_argument("--index", type=_location, required=True, help="index folder, or postgresql:// or qdrant:// URI")
    p.add_argument("--no-wait", action="store_true", help="fail at once if another process is writing the index")
    p.set_defaults(run=cmd_remove)

    p = sub.add_parser("search", help="show the passages retrieved for a question")
    p.add_argument("question", type=_question)
    p.add_argument("--index", type=_location,
                   help="index folder, or postgresql:// or qdrant:// URI (default: the bundled sample corpus)")
    p.add_argument("-k", type=_positive_int, default=DEFAULT_K, help="passages to show")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE)
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    _add_retrieval_options(p)
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("ask", help="answer questions with cited sources")
    p.add_argument("questions", nargs="*", help="one or more questions")
    p.add_argument("--questions", dest="questions_file", type=Path, help="file with one question per line")
    p.add_argument("--index", type=_location,
                   help="index folder, or postgresql:// or qdrant:// URI (default: the bundled sample corpus)")
    p.add_argument("-k", type=_positive_int, default=DEFAULT_K, help="passages to read per question")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE)
    p.add_argument("--reader", help="extractive QA model folder or name (default: the shipped reader)")
    p.add_argument("--json", action="store_true", help="one JSON object per question, in order")
    p.add_argument("--conversation", action="store_true",
                   help="ask the questions in turn as one conversation: a follow-up (\"When was he killed?\") "
                        "is read from the questions and answers before it")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    _add_retrieval_options(p)
    p.set_defaults(run=cmd_ask)

    p = sub.add_parser("serve", help="serve the chat and the JSON API (/api, docs at /docs)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_positive_int, default=7860)
    p.add_argument("--index", type=_location,
                   help="index to serve, and to add uploads to: a folder, or a postgresql:// or qdrant:// URI "
                        "(default: your own library folder, first filled with the bundled articles)")
    p.add_argument("--read-only", action="store_true", help="turn uploads and removal off")
    p.add_argument("--write-token-file", type=Path, metavar="FILE",
                   help="uploads and removals need this token (the file's first line; or set RAG_WRITE_TOKEN); "
                        "needed to serve writes on any address but loopback")
    p.add_argument("--read-token-file", type=Path, metavar="FILE",
                   help="asking, searching and the chat need this token too (or set RAG_READ_TOKEN)")
    limits = Limits()
    p.add_argument("--max-question-chars", type=_positive_int, default=limits.question_chars,
                   help="longest question taken (default %(default)s)")
    p.add_argument("--max-k", type=_positive_int, default=limits.k,
                   help="most passages a question may ask to read (default %(default)s)")
    p.add_argument("--max-body-kb", type=_positive_int, default=limits.body_bytes // 1000,
                   help="largest JSON request body (default %(default)s)")
    p.add_argument("--max-upload-files", type=_positive_int, default=limits.upload_files,
                   help="most files in one upload (default %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=limits.upload_bytes / 1e6,
                   help="largest uploaded file (default %(default)g)")
    p.add_argument("--rate-limit", type=_non_negative_int, default=limits.requests_per_minute,
                   help="requests a minute per client to the API and the chat, 0 for none (default %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the models run: auto (default) embeds questions with ONNX Runtime and reads with "
                        "PyTorch, bf16 where the CPU has it; int8 reads with the quantized reader: more answers "
                        "per second, a few answers differ from fp32's (docs/results.md); torch or onnx for all models")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("eval", help="score against gold questions, stage by stage (see docs/results.md)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--gold", type=Path, help="gold JSONL (default: the bundled corpus's gold questions)")
    source.add_argument("--squad", type=Path, help="SQuAD v1.1/v2.0 JSON: its paragraphs become the corpus")
    p.add_argument("--index", type=_location,
                   help="index folder, or postgresql:// or qdrant:// URI "
                        "(default: bundled corpus, or built from --squad)")
    p.add_argument("--sample", type=_positive_int, help="score a fixed random sample of this many questions")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample")
    p.add_argument("-k", type=_positive_int, default=DEFAULT_K, help="passages read per question")
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE, help="retrieval mode end to end")
    p.add_argument("--reader", help="reader model folder or name (default: the shipped reader)")
    p.add_argument("--out", type=Path, help="JSON report path (default: eval-results/<gold>.json)")
    p.add_argument("--conversations", type=Path,
                   help="conversational gold JSONL: follow-up EM/F1 with and without reading the conversation "
                        "(default: the bundled set, with the bundled gold on the bundled corpus)")
    p.set_defaults(run=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    configure_entry_point(args.verbose)
    return run_guarded(args.run, args)


if __name__ == "__main__":
    sys.exit(main())
