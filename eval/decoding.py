"""Where the reader's exact matches go: decoding variants on held-out questions, logits computed once.

    python -m eval.decoding --data ../shared/qa-train [--questions 600]

Each held-out question of the reader's training mix (``rag.training.data.held_out_sets``:
never trained on; SQuAD dev is never used) is read with its own paragraph and up to four
others that do not hold its answer, shuffled, as a retriever would hand them over. The shipped reader computes every
window's logits once; then each variant decodes the same logits:

- span score: the margin over the window's no-answer logit (what the project does), or the
  raw start + end logits (what Haystack does);
- length: spans of at most 30 tokens, or of any length;
- choice across passages: the single best span; the answer whose spans add up to the most
  confidence over the passages; or the best span, with answers within a margin of it
  (``NEAR_TIES``) decided by that support, or by how many passages hold them, then by
  the earliest passage (the assistant's rule; the passage order is shuffled here).

Reports EM/F1 per variant and writes JSON, so a decoding change is chosen on held-out data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from eval.results import write_json
from rag.errors import run_guarded
from rag.evaluation.metrics import best_over_gold
from rag.read.normalize import normalize_answer
from rag.read.reader import Reader
from rag.read.span_decoding import best_spans
from rag.settings import configure_entry_point
from rag.training.data import DEFAULT_MIX, held_out_sets

NEAR_TIES = (0.1, 0.25, 0.5, 1.0)  # margins within which support across passages breaks a near-tie


def window_logits(reader: Reader, pairs: list[tuple[str, str]]) -> list[tuple[int, object, np.ndarray, np.ndarray]]:
    """(pair index, window encoding, start logits, end logits) for every window of every pair."""
    windows = reader.windows(pairs)
    return [(pair, window, starts, ends)
            for (pair, window), (starts, ends) in zip(windows, reader.logits([w for _, w in windows]))]


def decode(reader: Reader, windows, pairs, n_sets: int, per_set: int, raw: bool, max_tokens: int,
           support: float, counted: bool = False) -> list[str]:
    """The answer to each question set under one decoding variant."""
    candidates: list[list[tuple[float, str, int]]] = [[] for _ in range(n_sets)]
    for pair, window, start, end in windows:
        context = np.array([s == 1 for s in window.sequence_ids], dtype=bool)
        null = float(start[0] + end[0])
        text = pairs[pair][1]
        for span in best_spans(start, end, context, max_tokens, top_n=10):
            score = span.score + null if raw else span.score
            s, e = window.offsets[span.start][0], window.offsets[span.end][1]
            candidates[pair // per_set].append((score, text[s:e].strip(" ,;:"), pair % per_set))
    answers = []
    for found in candidates:
        groups: dict[str, list[tuple[float, int]]] = {}
        for score, text, passage in found:
            groups.setdefault(normalize_answer(text) or text, []).append((score, passage))
        top = max(score for spans in groups.values() for score, _ in spans)
        # support: how far below the best span an answer may be and still win on support (inf: always)
        near = [g for g in groups if max(s for s, _ in groups[g]) >= top - support]
        if counted:  # the assistant's rule: more passages, then the earlier passage, then the score
            best = max(near, key=lambda g: (len({p for _, p in groups[g]}), -min(p for _, p in groups[g]),
                                            max(s for s, _ in groups[g])))
        else:
            best = max(near, key=lambda g: (sum(reader.confidence(s) for s, _ in groups[g]),
                                            max(s for s, _ in groups[g])))
        answers.append(max((s, t) for s, t, _ in found if (normalize_answer(t) or t) == best)[1])
    return answers


def run(data_dir: Path, n: int, distractors: int, seed: int) -> dict:
    reader = Reader()
    sets = held_out_sets(data_dir, reader.info.get("training", {}).get("mix", DEFAULT_MIX), 0.0, seed, distractors)[:n]
    per_set = distractors + 1
    pairs = [(q, p) for q, _, passages in sets for p in (passages + [""] * per_set)[:per_set]]
    windows = window_logits(reader, [(q, p or ".") for q, p in pairs])
    results = {}
    for raw in (False, True):
        for max_tokens in (30, 512):
            for support in (float("inf"), 0.0, *NEAR_TIES):
                choice = {float("inf"): "support sum", 0.0: "best span"}.get(
                    support, f"best span, ties {support:g} by support")
                length = "<= 30 tokens" if max_tokens == 30 else "any length"
                name = f"{'raw logits' if raw else 'margin'}, {length}, {choice}"
                for counted in (False, True) if support in NEAR_TIES else (False,):
                    answers = decode(reader, windows, pairs, len(sets), per_set, raw, max_tokens, support, counted)
                    scores = [best_over_gold(a, golds) for a, (_, golds, _) in zip(answers, sets)]
                    results[name + (", by passages then rank" if counted else "")] = {
                        "em": 100 * float(np.mean([s[0] for s in scores])),
                        "f1": 100 * float(np.mean([s[1] for s in scores]))}
    return {"questions": len(sets), "passages_per_question": per_set, "seed": seed, "reader": reader.model_name,
            "precision": reader.precision, "variants": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the training data folder (its held-out slice)")
    parser.add_argument("--questions", type=int, default=600)
    parser.add_argument("--distractors", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("eval-results/decoding.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = run(args.data, args.questions, args.distractors, args.seed)
    write_json(args.out, result)
    print(f"{result['questions']} held-out questions, {result['passages_per_question']} passages each "
          f"(own paragraph + distractors), reader {result['precision']}")
    print(f"  {'variant':<46}{'EM':>7}{'F1':>7}")
    for name, r in result["variants"].items():
        print(f"  {name:<46}{r['em']:>7.1f}{r['f1']:>7.1f}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
