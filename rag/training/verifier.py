"""Train the answer verifier (``rag.answer.verifier``) on held-out reader outputs, and measure it.

The data are the held-out paragraphs of the reader's training sets (``rag.training.data.is_held_out``:
the reader never trained on them) made into one index, searched and read as the assistant does
(hybrid retrieval, five passages). Each held-out question is asked three ways:

- **answerable**: as it is; the label is whether the chosen answer is right (F1 >= 0.5);
- **removed** (at ``--removed-rate``): with every passage holding a gold answer taken out of the
  hits, so the reader meets the same article's other paragraphs and other articles, as when the
  index does not hold the answer; any answer is wrong;
- **swapped** (at ``--swap-rate``): a name the question shares with its paragraph swapped for one
  of the same article the paragraph never mentions ("... governor of Balkh?" -> "... of Kunduz?",
  ``rag.training.data.swapped_question``); any answer is wrong.

Then, in order:

1. the retrieval weight of answer choice (``choose_answer``, BERTserini's mix) is chosen on a
   grid by mean F1 on the answerable questions;
2. a logistic regression, gradient boosting and a small MLP are compared by cross-fitting: five
   folds by article, each model scored on the folds it did not see, against the plain margin;
3. the shipped model is fitted on all of it: the logistic regression, which held up best on sets
   it never saw (each set left out in turn, the others training it: the domain shift a user's
   own archive brings), while in-set the three were close. Then
   its confidence levels set on its cross-fitted probabilities: "high" where answers were right
   at least 95 % of the time, "medium" 80 %, and abstention on as many questions as the reader's
   calibrated margin threshold abstains on, now those the verifier ranks least likely right. The
   levels are checked across halves: set on one half of the articles, counted on the other.

The reader's held-out outputs are cached (``--cache``), so a second run only refits. SQuAD dev is
never used.

    python -m rag.training.verifier --data ../shared/qa-train --out runs/verifier
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import pickle
import random
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rag.answer.assistant import choose_answer, contradicted
from rag.answer.verifier import FEATURES, FILE_NAME, features, relative_scores
from rag.errors import require
from rag.evaluation import selective
from rag.evaluation.gold import load_squad
from rag.evaluation.metrics import best_over_gold
from rag.read.reader import Reader, shipped_reader_dir
from rag.search.retriever import Retriever
from rag.settings import DEFAULT_K, configure_entry_point
from rag.training.calibrate import abstention_scores
from rag.training.data import DEFAULT_MIX, is_held_out, names_in, swapped_question
from rag.types import Answer, Document, Hit, Reading

logger = logging.getLogger(__name__)

RETRIEVAL_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0)  # margin units per unit of relative retrieval score
LEVEL_ACCURACY = {"high": 0.95, "medium": 0.80}
FOLDS = 5
SPANS = 10  # candidate spans per question, as the assistant asks the reader


@dataclass(frozen=True)
class Example:
    """One held-out question as the assistant met it: what was retrieved and what the reader read."""

    set: str
    article: str
    kind: str  # "answerable", "removed" or "swapped"
    question: str
    golds: tuple[str, ...]
    hits: tuple[Hit, ...]
    reading: Reading


def collect(data_dir: Path, mix: dict[str, float], reader: Reader, removed_rate: float, swap_rate: float,
            seed: int, k: int = DEFAULT_K) -> list[Example]:
    """Index the held-out paragraphs, then search and read every held-out question (see the module's notes)."""
    from rag.indexing.workflow import index_documents

    rng = random.Random(seed)
    questions = [(name, q) for name, fraction in mix.items() if fraction > 0
                 for q in load_squad(data_dir / f"{name}.json") if is_held_out(q.context) and q.answers]
    paragraphs: dict[str, Document] = {}
    for name, q in questions:
        key = hashlib.sha1(q.context.encode()).hexdigest()[:16]
        paragraphs.setdefault(q.context, Document(f"{name}-{key}", q.title or name, q.context, name))
    by_article: dict[tuple[str, str], list[str]] = {}
    for name, q in questions:
        if q.context not in by_article.setdefault((name, q.title), []):
            by_article[(name, q.title)].append(q.context)
    asked: list[tuple[str, str, str, str, tuple[str, ...], bool]] = []  # set, article, kind, question, golds, drop
    for name, q in questions:
        article = f"{name}/{q.title}"
        asked.append((name, article, "answerable", q.question, q.answers, False))
        if rng.random() < removed_rate:
            asked.append((name, article, "removed", q.question, q.answers, True))
        if rng.random() < swap_rate:
            nearby = [c for c in by_article[(name, q.title)] if c != q.context]
            nearby += rng.sample(list(paragraphs), min(5, len(paragraphs)))
            swapped = swapped_question(q.question, q.context, [n for c in nearby for n in names_in(c)], rng)
            if swapped is not None:
                asked.append((name, article, "swapped", swapped, (), False))
    with tempfile.TemporaryDirectory() as folder:
        index_documents(Path(folder) / "index", list(paragraphs.values()), export=False)
        retriever = Retriever.load(Path(folder) / "index")
        found = retriever.search_batch([a[3] for a in asked], k + 10)
    hits = []
    for (_, _, _, _, golds, drop), hs in zip(asked, found):
        if drop:  # the index as if it lacked every passage that holds the answer
            hs = [h for h in hs if not any(g.lower() in h.passage.text.lower() for g in golds)]
        hits.append(tuple(replace(h, rank=rank) for rank, h in enumerate(hs[:k], 1)))
    readings = reader.read_batch([a[3] for a in asked], [[h.passage for h in hs] for hs in hits], top_k=SPANS)
    return [Example(name, article, kind, question, () if drop else golds, hs, reading)
            for (name, article, kind, question, golds, drop), hs, reading in zip(asked, hits, readings)]


def chosen(example: Example, weight: float) -> tuple[list[Answer], list[list[Answer]]] | None:
    """The candidate the assistant would give, and every distinct one; None when nothing was read or the
    passages rule the candidate out (``rag.answer.assistant.contradicted``: the assistant abstains)."""
    if not example.reading.answers:
        return None
    rank = {h.passage.id: h.rank for h in example.hits}
    best, groups = choose_answer(example.reading, rank, -np.inf, relative_scores(example.hits), weight)
    return None if contradicted(example.question, best, example.hits) is not None else (best, groups)


def weight_grid(examples: list[Example]) -> dict[str, dict[str, float]]:
    """EM and F1 of the chosen answer on the answerable questions at each retrieval weight."""
    answerable = [e for e in examples if e.kind == "answerable"]
    grid = {}
    for weight in RETRIEVAL_WEIGHTS:
        scores = [best_over_gold(c[0][0].text if c else None, e.golds)
                  for e in answerable for c in [chosen(e, weight)]]
        grid[f"{weight:g}"] = {"em": 100 * float(np.mean([s[0] for s in scores])),
                               "f1": 100 * float(np.mean([s[1] for s in scores]))}
    return grid


def table(examples: list[Example], weight: float) -> dict[str, np.ndarray]:
    """Features, labels and bookkeeping of every example that has a candidate answer."""
    rows, f1s, margins, sets, articles, answerable = [], [], [], [], [], []
    for e in examples:
        choice = chosen(e, weight)
        if choice is None:
            continue
        best, groups = choice
        rows.append(features(e.question, best, groups, list(e.hits)))
        f1s.append(best_over_gold(best[0].text, e.golds)[1] if e.golds else 0.0)
        margins.append(best[0].score)
        sets.append(e.set)
        articles.append(e.article)
        answerable.append(bool(e.golds))
    f1 = np.array(f1s)
    return {"x": np.array(rows), "right": f1 >= 0.5, "f1": f1, "margin": np.array(margins),
            "set": np.array(sets), "article": np.array(articles), "answerable": np.array(answerable)}


def models() -> dict:
    """The candidate models, unfitted (scikit-learn, from the ``[train]`` extra)."""
    sklearn = require("sklearn", "train", "training the answer verifier")
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    del sklearn
    return {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
        "gradient boosting": HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                                            l2_regularization=1.0, random_state=0),
        "mlp": make_pipeline(StandardScaler(), MLPClassifier((16,), alpha=1e-2, max_iter=2000, random_state=0)),
    }


def cross_fitted(data: dict[str, np.ndarray], by: str = "article") -> dict[str, np.ndarray]:
    """Each model's probability for every example, from a fit that never saw its article (``by="article"``:
    five folds) or its whole training set (``by="set"``: one fold per set)."""
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    out = {name: np.zeros(len(data["right"])) for name in models()}
    splitter = GroupKFold(FOLDS) if by == "article" else LeaveOneGroupOut()
    for train, test in splitter.split(data["x"], data["right"], data[by]):
        for name, model in models().items():
            fitted = clone(model).fit(data["x"][train], data["right"][train])
            out[name][test] = fitted.predict_proba(data["x"][test])[:, 1]
    return out


def measured(scores: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> dict[str, dict[str, dict]]:
    """Per training set and over all: each score's selective figures (``rag.evaluation.selective``)."""
    report: dict[str, dict[str, dict]] = {}
    for name in [*sorted(set(data["set"].tolist())), "all"]:
        rows = np.ones(len(data["set"]), bool) if name == "all" else data["set"] == name
        report[name] = {score: selective.summary(values[rows], data["right"][rows]) for score, values in scores.items()}
    return report


def levels(probability: np.ndarray, right: np.ndarray, abstain_share: float) -> dict[str, float]:
    """The lowest probability of "high", "medium" and "low" (see the module's notes).

    "low" is the probability below which ``abstain_share`` of the questions fall: the verifier
    abstains as often as the reader's calibrated margin threshold does on the same questions, on
    those it ranks least likely right instead of those with the smallest margins.
    """
    candidates = np.unique(probability)[::-1]

    def lowest(ceiling: float, accuracy: float) -> float:
        best = ceiling
        for t in candidates[candidates < ceiling]:
            band = (probability >= t) & (probability < ceiling)
            if right[band].mean() >= accuracy:
                best = float(t)
        return best

    high = lowest(np.inf, LEVEL_ACCURACY["high"])
    medium = lowest(high, LEVEL_ACCURACY["medium"])
    low = float(np.quantile(probability, abstain_share)) if abstain_share > 0 else 0.0
    return {"high": high, "medium": max(medium, low), "low": min(low, max(medium, low))}


def level_counts(probability: np.ndarray, right: np.ndarray, cut: dict[str, float]) -> dict[str, dict[str, int]]:
    """How many answers each level holds, and how many of them were right."""
    bands = {"high": (cut["high"], np.inf), "medium": (cut["medium"], cut["high"]), "low": (cut["low"], cut["medium"]),
             "abstain": (-np.inf, cut["low"])}
    return {name: {"answers": int(((probability >= lo) & (probability < hi)).sum()),
                   "right": int(right[(probability >= lo) & (probability < hi)].sum())}
            for name, (lo, hi) in bands.items()}


def halves_check(probability: np.ndarray, data: dict[str, np.ndarray], abstain_share: float) -> dict[str, dict]:
    """Levels set on one half of the articles, counted on the other, both ways round."""
    half = np.array([int(hashlib.sha1(a.encode()).hexdigest(), 16) % 2 for a in data["article"]], dtype=bool)
    out = {}
    for name, fit, check in (("set on A, counted on B", half, ~half), ("set on B, counted on A", ~half, half)):
        cut = levels(probability[fit], data["right"][fit], abstain_share)
        out[name] = {"levels": cut, "counts": level_counts(probability[check], data["right"][check], cut)}
    return out


def export(model) -> dict:
    """The fitted logistic pipeline as the plain numbers ``rag.answer.verifier.Verifier`` reads."""
    scaler, logistic = model.steps[0][1], model.steps[1][1]
    return {"kind": "logistic", "mean": scaler.mean_.tolist(),
            "scale": np.where(scaler.scale_ > 0, scaler.scale_, 1.0).tolist(),
            "coef": logistic.coef_[0].tolist(), "intercept": float(logistic.intercept_[0]),
            "coefficients_by_feature": dict(zip(FEATURES, logistic.coef_[0].round(4).tolist()))}


def check_export(exported: dict, model, x: np.ndarray) -> None:
    """Raise unless the exported numbers give the fitted model's own probabilities."""
    from rag.answer.verifier import Verifier

    verifier = Verifier.load_dict({"features": list(FEATURES), "model": exported, "levels": {}})
    ours = np.array([verifier.probability(row) for row in x])
    theirs = model.predict_proba(x)[:, 1]
    if not np.allclose(ours, theirs, atol=1e-9):
        raise AssertionError(f"exported verifier differs from the fitted one by up to {np.abs(ours - theirs).max()}")


def train(data_dir: Path, out: Path, reader_dir: Path, removed_rate: float, swap_rate: float, seed: int,
          save: bool) -> dict:
    """Collect (or load the cached) held-out outputs, choose, fit, measure; write ``verifier.json`` if ``save``."""
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "examples.pkl"
    reader = Reader(reader_dir)
    mix = reader.info.get("training", {}).get("mix", DEFAULT_MIX)
    if cache.exists():
        examples = pickle.loads(cache.read_bytes())
    else:
        examples = collect(data_dir, mix, reader, removed_rate, swap_rate, seed)
        cache.write_bytes(pickle.dumps(examples))
    grid = weight_grid(examples)
    weight = float(max(grid, key=lambda w: (grid[w]["f1"], -float(w))))
    data = table(examples, weight)
    probabilities = cross_fitted(data)
    report = measured({"margin": data["margin"], **probabilities}, data)
    unseen = measured({"margin": data["margin"], **cross_fitted(data, by="set")}, data)
    shipped = "logistic"
    model = models()[shipped].fit(data["x"], data["right"])
    exported = export(model)
    check_export(exported, model, data["x"])
    abstain_share = float((data["margin"] < reader.threshold).mean())
    cut = levels(probabilities[shipped], data["right"], abstain_share)
    answered = {"verifier": probabilities[shipped] >= cut["low"], "margin": data["margin"] >= reader.threshold}
    result = {
        "features": list(FEATURES),
        "model": exported,
        "levels": cut,
        "retrieval_weight": weight,
        "training": {"data": str(data_dir), "reader": str(reader_dir), "removed_rate": removed_rate,
                     "swap_rate": swap_rate, "seed": seed,
                     "examples": {kind: sum(e.kind == kind for e in examples)
                                  for kind in ("answerable", "removed", "swapped")}},
        "held_out": {"retrieval_weight_grid": grid, "model": shipped, "by_set": report,
                     "by_set_left_out": unseen,
                     "level_counts": level_counts(probabilities[shipped], data["right"], cut),
                     "halves": halves_check(probabilities[shipped], data, abstain_share),
                     "abstaining": {"share": abstain_share, "reader_threshold": reader.threshold,
                                    **{name: abstention_scores(a, data["f1"], data["answerable"])
                                       for name, a in answered.items()}}},
    }
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    if save:
        (reader_dir / FILE_NAME).write_text(json.dumps(result, separators=(",", ":")) + "\n")
    return result


def print_report(result: dict) -> None:
    """The held-out tables: the weight grid, each score per set, and the level counts."""
    held = result["held_out"]
    print("retrieval weight  EM     F1")
    for w, s in held["retrieval_weight_grid"].items():
        chosen_mark = "  <- chosen" if float(w) == result["retrieval_weight"] else ""
        print(f"{w:>16}  {s['em']:5.1f}  {s['f1']:5.1f}{chosen_mark}")
    for title, key in (("five folds by article", "by_set"), ("each set left out of training", "by_set_left_out")):
        print(f"\n{title}\n{'set':<28}{'score':<19}{'n':>6}{'acc':>7}{'AUROC':>7}{'AURC':>7}{'cov@90':>8}{'cov@95':>8}")
        for name, scores in held[key].items():
            for score, s in scores.items():
                print(f"{name:<28}{score:<19}{s['questions']:>6}{100 * s['accuracy']:>7.1f}{s['auroc']:>7.3f}"
                      f"{s['aurc']:>7.3f}{100 * s['coverage_at_90']:>8.1f}{100 * s['coverage_at_95']:>8.1f}")
    print("\nlevels:", {k: round(v, 3) for k, v in result["levels"].items()})
    ab = held["abstaining"]
    print(f"abstaining on {100 * ab['share']:.1f} % (as the margin threshold {ab['reader_threshold']:.2f} does):")
    for name in ("margin", "verifier"):
        print(f"  {name:<9} F1 with abstentions {100 * ab[name]['f1_with_no_answer']:5.1f}   no-answer precision "
              f"{100 * ab[name]['no_answer_precision']:5.1f} recall {100 * ab[name]['no_answer_recall']:5.1f}")
    for level, c in held["level_counts"].items():
        print(f"  {level:<8} {c['right']:>5} right of {c['answers']:>5}")
    for name, check in held["halves"].items():
        print(f"  {name}: " + ", ".join(f"{k} {c['right']}/{c['answers']}" for k, c in check["counts"].items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the training data folder (../shared/qa-train)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the cached reader outputs and report.json")
    parser.add_argument("--reader", type=Path, default=shipped_reader_dir(),
                        help="the reader folder (default: the shipped reader)")
    parser.add_argument("--removed-rate", type=float, default=0.5)
    parser.add_argument("--swap-rate", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--save", action="store_true", help="write verifier.json into the reader folder")
    args = parser.parse_args(argv)
    configure_entry_point(verbose=True)
    print_report(train(args.data, args.out, args.reader, args.removed_rate, args.swap_rate, args.seed, args.save))


if __name__ == "__main__":
    main()
