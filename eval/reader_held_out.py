"""A reader's held-out F1 on each training set: the evidence for the training mix.

    python -m eval.reader_held_out --data ../shared/qa-train [--reader runs/reader] [--backend torch|onnx|int8]

For every file of the training data, its held-out paragraphs (``rag.training.data.is_held_out``:
never trained on; SQuAD dev is never used) are read one at a time: each question with its
own paragraph and, for a quarter of them, once more with a paragraph that does not hold its
answer. Reports per set the best span's EM/F1 on answerable pairs, F1 counting abstention
(at the reader's calibrated threshold), and no-answer precision and recall. Writes JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from eval.results import write_json
from rag.errors import run_guarded
from rag.evaluation.metrics import best_over_gold
from rag.read import runtime
from rag.read.reader import Reader
from rag.settings import EXPLICIT_BACKENDS, configure_entry_point
from rag.training.data import held_out_pairs


def score_set(reader: Reader, pairs: list[tuple[str, str, tuple[str, ...]]]) -> dict:
    """EM/F1 of the best span on answerable pairs, and abstention at the reader's threshold."""
    results = reader.read_batch([q for q, _, _ in pairs], [[p] for _, p, _ in pairs], top_k=1)
    em, f1, abstained, f1_abstaining = [], [], [], []
    for (_, _, golds), answers in zip(pairs, results):
        span = answers.answers[0]
        e, f = best_over_gold(span.text, golds) if golds else (0.0, 0.0)
        skip = span.score < reader.threshold
        abstained.append(skip)
        f1_abstaining.append(float(not golds) if skip else f)
        if golds:
            em.append(e)
            f1.append(f)
    has_answer = np.array([bool(g) for _, _, g in pairs])
    skipped = np.array(abstained)
    return {"answerable": int(has_answer.sum()), "negatives": int((~has_answer).sum()),
            "em": 100 * float(np.mean(em)), "f1": 100 * float(np.mean(f1)),
            "f1_with_abstention": 100 * float(np.mean(f1_abstaining)),
            "no_answer_precision": 100 * float((skipped & ~has_answer).sum() / max(1, skipped.sum())),
            "no_answer_recall": 100 * float((skipped & ~has_answer).sum() / max(1, (~has_answer).sum()))}


def run(data_dir: Path, reader_dir: Path | None, seed: int, backend: str = "torch") -> dict:
    reader = runtime.reader(reader_dir, backend)
    sets = {}
    for path in sorted(data_dir.glob("*.json")):
        sets[path.stem] = score_set(reader, held_out_pairs(data_dir, {path.stem: 1.0}, 0.25, seed))
    answerable = sum(s["answerable"] for s in sets.values())
    macro = {k: float(np.mean([s[k] for s in sets.values()])) for k in ("em", "f1", "f1_with_abstention")}
    return {"reader": reader.model_name, "backend": backend, "precision": reader.precision,
            "threshold": reader.threshold, "seed": seed, "answerable": answerable, "macro": macro, "sets": sets}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the training data folder (its held-out slice)")
    parser.add_argument("--reader", type=Path, default=None, help="reader folder (default: the shipped reader)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=EXPLICIT_BACKENDS, default="torch",
                        help="how the reader runs (onnx and int8 need the exports `rag index` makes)")
    parser.add_argument("--out", type=Path, default=Path("eval-results/reader_held_out.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = run(args.data, args.reader, args.seed, args.backend)
    write_json(args.out, result)
    print(f"held-out slices, reader {result['reader']} ({result['backend']}, {result['precision']}, "
          f"threshold {result['threshold']:.2f})")
    print(f"  {'set':<28}{'n':>6}{'EM':>7}{'F1':>7}{'F1+NA':>7}{'NA P':>7}{'NA R':>7}")
    for name, s in result["sets"].items():
        print(f"  {name:<28}{s['answerable']:>6}{s['em']:>7.1f}{s['f1']:>7.1f}{s['f1_with_abstention']:>7.1f}"
              f"{s['no_answer_precision']:>7.1f}{s['no_answer_recall']:>7.1f}")
    m = result["macro"]
    print(f"  {'macro average':<28}{result['answerable']:>6}{m['em']:>7.1f}{m['f1']:>7.1f}"
          f"{m['f1_with_abstention']:>7.1f}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
