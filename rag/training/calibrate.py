"""Fit a reader's decoding, then calibrate its confidence and no-answer threshold, on the held-out slice.

    python -m rag.training.calibrate --reader runs/reader --data ../shared/qa-train

The slice is the ~2% of paragraphs that ``rag.training.data.is_held_out`` keeps out of
training. First the decoding (:func:`fit_decoding`): each held-out question is read with its
own paragraph and four that do not hold its answer, as a retriever hands them over; the
span length prior's weight, the sentence-crossing penalty and the trimming of attribution
tails are chosen on a grid by exact match, the logits computed once. Then the threshold is
fitted in the same shape the assistant reads in: each held-out question with its own
paragraph and four others, and, at the training negative rate, once more with five
paragraphs none of which holds its answer (a question the index cannot answer). The best
span over five passages scores higher than over one, so a threshold fitted on single
paragraphs abstains too rarely once five are read. Then:

- confidence is a logistic fit (Platt scaling) of "the best span is right" (F1 >= 0.5)
  on the best span's margin over no-answer;
- the threshold is the margin that maximises mean F1 when abstaining scores 1 on a
  question without an answer and 0 on one with an answer.

Both go into the reader's ``reader.json``, with the held-out EM/F1. SQuAD dev is never used.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from rag.errors import require
from rag.evaluation.metrics import best_over_gold
from rag.read.reader import Reader
from rag.read.span_decoding import SpanPrior
from rag.settings import configure_entry_point
from rag.training.data import DEFAULT_MIX, TrainSettings, held_out_sets
from rag.types import Passage

LENGTH_WEIGHTS = (0.0, 0.25, 0.5, 1.0)  # multiples of the log length prior tried
CROSSING_PENALTIES = (0.0, 1.0, 2.0, 4.0)  # margin units taken from a span across a sentence end

logger = logging.getLogger(__name__)


def best_threshold(margins: np.ndarray, f1_if_answered: np.ndarray, has_answer: np.ndarray,
                   weights: np.ndarray | None = None) -> tuple[float, float]:
    """The threshold with the best (weighted) mean F1, abstaining below it; returns (threshold, F1)."""
    candidates = np.unique(np.concatenate([margins, [np.inf]]))
    best = (-np.inf, 0.0)
    for t in candidates:
        answered = margins >= t
        f1 = np.average(np.where(answered, f1_if_answered, (~has_answer).astype(float)), weights=weights)
        if f1 > best[1] + 1e-12:
            best = (float(t), float(f1))
    return best


def abstention_scores(answered: np.ndarray, f1_if_answered: np.ndarray, has_answer: np.ndarray) -> dict[str, float]:
    """Mean F1 counting abstentions (1 on a question without an answer, else 0), and no-answer precision and
    recall, when only the ``answered`` questions are answered."""
    return {"f1_with_no_answer": float(np.where(answered, f1_if_answered, (~has_answer).astype(float)).mean()),
            "no_answer_precision": float((~answered & ~has_answer).sum() / max(1, (~answered).sum())),
            "no_answer_recall": float((~answered & ~has_answer).sum() / max(1, (~has_answer).sum()))}


def length_log_prior(reader: Reader, golds: list[tuple[str, ...]]) -> tuple[float, ...]:
    """log p(L) - max log p(L) for answers of L = 1 .. max_answer_tokens tokens, add-one smoothed."""
    reader.load()
    counts = np.ones(reader.max_answer_tokens)
    for answers in golds:
        length = len(reader._plain.encode(answers[0], add_special_tokens=False).ids)
        counts[min(max(length, 1), reader.max_answer_tokens) - 1] += 1
    log_p = np.log(counts / counts.sum())
    return tuple(float(x) for x in log_p - log_p.max())


def fit_decoding(reader: Reader, data_dir: Path, mix: dict[str, float], seed: int) -> dict:
    """Choose the decoding (length prior weight, crossing penalty, attribution trimming) by held-out EM.

    Returns:
        The choice, as ``reader.json`` records it under "decoding", with the EM/F1 of every option.
    """
    sets = held_out_sets(data_dir, mix, 0.0, seed)
    passages = [[Passage(f"p{i}", "", text, 0, len(text)) for i, text in enumerate(texts)] for _, _, texts in sets]
    windows = reader.windows([(q, p.text) for (q, _, _), ps in zip(sets, passages) for p in ps])
    logits = reader.logits([w for _, w in windows])
    base = length_log_prior(reader, [golds for _, golds, _ in sets])
    grid: dict[str, dict[str, float]] = {}
    best: tuple[str, float, float, bool] | None = None
    for weight in LENGTH_WEIGHTS:
        for penalty in CROSSING_PENALTIES:
            for trim in (False, True):
                reader.prior = SpanPrior(tuple(weight * x for x in base), penalty)
                reader.trim_attribution = trim
                scores = [best_over_gold(r.answers[0].text if r.answers else None, golds)
                          for r, (_, golds, _) in zip(reader.decode(passages, windows, logits, top_k=1), sets)]
                name = f"length x{weight:g}, crossing {penalty:g}, trim {'on' if trim else 'off'}"
                grid[name] = {"em": 100 * float(np.mean([s[0] for s in scores])),
                              "f1": 100 * float(np.mean([s[1] for s in scores]))}
                if best is None or grid[name]["em"] > grid[best[0]]["em"] + 1e-9:
                    best = (name, weight, penalty, trim)
    assert best is not None  # the grids are not empty
    name, weight, penalty, trim = best
    reader.prior = SpanPrior(tuple(weight * x for x in base), penalty)
    reader.trim_attribution = trim
    return {"length_log_prior": list(reader.prior.length_log_prior), "length_weight": weight,
            "crossing_penalty": penalty, "trim_attribution": trim,
            "held_out": {"questions": len(sets), "passages_per_question": len(passages[0]) if passages else 0,
                         "chosen": name, "grid": grid}}


def calibrate(reader_dir: Path, data_dir: Path, mix: dict[str, float] | None = None) -> dict:
    """Fit confidence and threshold for the reader in ``reader_dir`` and record them in its reader.json."""
    LogisticRegression = require("sklearn.linear_model", "train", "calibrating a reader").LogisticRegression
    info_path = reader_dir / "reader.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}  # a reader from elsewhere
    defaults = TrainSettings(mix=DEFAULT_MIX)
    training = info.get("training", {})
    mix = mix or training.get("mix", defaults.mix)
    seed = training.get("seed", defaults.seed)
    reader = Reader(reader_dir, threshold=-np.inf, prior=SpanPrior(), trim_attribution=False)
    info["decoding"] = fit_decoding(reader, data_dir, mix, seed)
    logger.info("decoding: %s", info["decoding"]["held_out"]["chosen"])
    sets = held_out_sets(data_dir, mix, training.get("negative_rate", defaults.negative_rate), seed,
                         swap_rate=training.get("swap_rate", defaults.swap_rate))
    results = reader.read_batch([q for q, _, _ in sets], [list(texts) for _, _, texts in sets], top_k=1)
    scores, em_answered, f1_answered = [], [], []
    for (_, golds, _), answers in zip(sets, results):
        span = answers.answers[0]
        scores.append(span.score)
        em, f1 = best_over_gold(span.text, golds) if golds else (0.0, 0.0)
        em_answered.append(em)
        f1_answered.append(f1)
    margins = np.array(scores)
    f1s = np.array(f1_answered)
    has_answer = np.array([bool(g) for _, g, _ in sets])
    fit = LogisticRegression(C=1e4).fit(margins[:, None], (f1s >= 0.5).astype(int))
    threshold, _ = best_threshold(margins, f1s, has_answer)
    answered = margins >= threshold
    calibration = {
        "scale": float(fit.coef_[0, 0]),
        "offset": float(fit.intercept_[0]),
        "threshold": threshold,
        "held_out": {
            "questions": len(sets),
            "passages_per_question": 5,
            "with_answer": int(has_answer.sum()),
            "span_em_on_answerable": float(np.array(em_answered)[has_answer].mean()),
            "span_f1_on_answerable": float(f1s[has_answer].mean()),
            **abstention_scores(answered, f1s, has_answer),
        },
    }
    info["calibration"] = calibration
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    logger.info("calibration: %s", json.dumps(calibration))
    return calibration


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", type=Path, required=True,
                        help="reader folder: one trained here, or any extractive QA model saved locally")
    parser.add_argument("--mix", type=json.loads, help="JSON {file stem: fraction}; default: the reader's training mix")
    parser.add_argument("--data", type=Path, required=True, help="the training data folder")
    args = parser.parse_args(argv)
    configure_entry_point(verbose=True)
    print(json.dumps(calibrate(args.reader, args.data, args.mix), indent=2))


if __name__ == "__main__":
    main()
