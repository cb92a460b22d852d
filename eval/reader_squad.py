"""Benchmark the reader alone on SQuAD: each question read with its gold paragraph.

    python -m eval.reader_squad --squad ../shared/squad/dev-v1.1.json [--sample 2000] [--backend torch|onnx|int8]

EM and F1 use the official SQuAD v1.1 normalisation, max over the gold answers, on
the reader's best span (the no-answer threshold is not applied: every v1.1 question
has an answer). Also reports windows per second and the reader's size on disk.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from eval.results import write_json
from rag.errors import run_guarded
from rag.evaluation.metrics import best_over_gold
from rag.evaluation.squad import load_squad
from rag.read import runtime
from rag.read.reader import Reader
from rag.settings import EXPLICIT_BACKENDS, configure_entry_point


def folder_megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.is_dir() else float("nan")


def benchmark(reader: Reader, squad: Path, sample: int | None = None, seed: int = 0, chunk: int = 64) -> dict:
    """Read every (or a sample of) SQuAD question with its paragraph and score the best span."""
    questions = [q for q in load_squad(squad) if q.answers]
    if sample:
        questions = random.Random(seed).sample(questions, min(sample, len(questions)))
    reader.load()
    em = f1 = abstained = 0.0
    started = time.perf_counter()
    for lo in tqdm(range(0, len(questions), chunk), desc="reading", unit="batch"):
        batch = questions[lo:lo + chunk]
        for q, reading in zip(batch, reader.read_batch([q.question for q in batch], [[q.context] for q in batch], 1)):
            e, f = best_over_gold(reading.answers[0].text, q.answers)
            em, f1 = em + e, f1 + f
            abstained += reading.decision == "abstain"
    seconds = time.perf_counter() - started
    windows = len(reader.windows([(q.question, q.context) for q in questions]))
    n = len(questions)
    return {"squad": str(squad), "questions": n, "sample_seed": seed if sample else None,
            "em": 100 * em / n, "f1": 100 * f1 / n, "abstain_rate_at_threshold": abstained / n,
            "windows": windows, "seconds": seconds, "windows_per_second": windows / seconds,
            "reader": reader.model_name, "max_length": reader.max_length, "stride": reader.stride,
            "reader_megabytes_on_disk": folder_megabytes(Path(reader.model_name))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, required=True, help="SQuAD v1.1 JSON, e.g. ../shared/squad/dev-v1.1.json")
    parser.add_argument("--sample", type=int, help="a fixed random sample of this many questions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reader", help="reader folder or model name (default: the shipped reader)")
    parser.add_argument("--backend", choices=EXPLICIT_BACKENDS, default="torch",
                        help="how the reader runs (onnx and int8 need the exports `rag index` makes)")
    parser.add_argument("--out", type=Path, default=Path("eval-results/reader_squad.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = benchmark(runtime.reader(args.reader, args.backend), args.squad, args.sample, args.seed)
    result["backend"] = args.backend
    write_json(args.out, result)
    print(f"{'reader':<22}{Path(result['reader']).name}")
    for key, label in (("questions", "questions"), ("em", "EM"), ("f1", "F1"),
                       ("abstain_rate_at_threshold", "abstains at threshold"),
                       ("windows_per_second", "windows / s"), ("reader_megabytes_on_disk", "size on disk (MB)")):
        value = result[key]
        print(f"{label:<22}{value:.3f}" if isinstance(value, float) else f"{label:<22}{value}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
