"""Score the assistant against gold questions, stage by stage and end to end: what ``rag eval`` runs.

    rag eval                                       # bundled gold set on the bundled corpus
    rag eval --gold my.jsonl --index DIR
    rag eval --squad ../shared/squad/dev-v1.1.json --sample 500   # SQuAD-open: its paragraphs are the corpus

Reports retrieval top-k accuracy and MRR for each mode and fusion option, the reader alone on the gold
passage, end-to-end EM/F1 with no-answer precision/recall and citation accuracy, and
per-stage latency. Writes a JSON report and a PNG plot next to it.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rag.answer import about_articles
from rag.answer.assistant import Assistant
from rag.errors import MissingDependencyError, require
from rag.evaluation import selective
from rag.evaluation.conversations import BUNDLED_CONVERSATIONS, evaluate_conversations, load_dialogues
from rag.evaluation.gold import BUNDLED_GOLD, GoldQuestion, doc_names, from_doc, holds_answer, load_gold, squad_corpus
from rag.evaluation.metrics import best_over_gold, latency_summary
from rag.index.open import open_index
from rag.indexing.bundled import default_index
from rag.indexing.local import LocalPipeline
from rag.indexing.workflow import build_index
from rag.read.reader import Reader
from rag.search.retriever import Retriever
from rag.settings import DEFAULT_K, DEFAULT_MODE, MODES, Mode
from rag.types import Passage

logger = logging.getLogger(__name__)

KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Record:
    """One question's end-to-end outcome."""

    id: str
    kind: str
    answer: str | None
    confidence: float
    em: float
    f1: float
    em_at_3: float  # the best EM of the answer and its alternatives: the top 3 distinct answers
    cited_right: bool
    seconds: dict[str, float]


CONVEX_WEIGHTS = (0.3, 0.5, 0.7)  # dense weights of convex fusion reported beside RRF


def convex_variant(dense_weight: float) -> str:
    """The name of hybrid retrieval with convex fusion at this dense weight, as reports list it."""
    return f"hybrid, convex {dense_weight:g} dense"


def retrieval_variants(retriever: Retriever) -> dict[str, tuple[Retriever, Mode]]:
    """Each mode and each fusion option, by name: (a retriever over the same index, its mode)."""
    index = retriever.index
    variants: dict[str, tuple[Retriever, Mode]] = {mode: (retriever, mode) for mode in MODES if mode != "hybrid"}
    variants["hybrid, rrf"] = (Retriever(index, fusion="rrf", rrf_k=retriever.rrf_k), "hybrid")
    for weight in CONVEX_WEIGHTS:
        variants[convex_variant(weight)] = (Retriever(index, fusion="convex", dense_weight=weight), "hybrid")
    return variants


def evaluate_retrieval(retriever: Retriever, gold: list[GoldQuestion], batch_size: int = 64) -> dict:
    """Top-k accuracy and MRR (over the first 10) on answerable questions, for each mode and fusion."""
    answerable = [g for g in gold if g.answerable]
    results = {}
    for name, (variant, mode) in retrieval_variants(retriever).items():
        first_rank = []
        for lo in range(0, len(answerable), batch_size):
            chunk = answerable[lo:lo + batch_size]
            for g, hits in zip(chunk, variant.search_batch([g.question for g in chunk], max(KS), mode)):
                first_rank.append(next((h.rank for h in hits if holds_answer(h.passage.text, g.answers)), None))
        n = max(1, len(first_rank))
        results[name] = {f"top{k}": sum(r is not None and r <= k for r in first_rank) / n for k in KS}
        results[name]["mrr"] = sum(1 / r for r in first_rank if r is not None) / n
        results[name]["questions"] = len(first_rank)
    return results


def evaluate_reader(reader: Reader, retriever: Retriever, gold: list[GoldQuestion]) -> dict:
    """EM/F1 of the reader's best span on the gold passage (its threshold ignored: span quality alone).

    Questions about the articles themselves (``rag.answer.about_articles``) are left out: the reader does
    not answer them.
    """
    index = retriever.index
    # Passages by every name of their document, built once: a scan of the whole index per
    # question would cost minutes on SQuAD-sized corpora.
    passages_named: dict[str, list[Passage]] = {}
    for p in index.passages:
        for name in doc_names(index.documents[p.doc_id]):
            passages_named.setdefault(name, []).append(p)
    for passages in passages_named.values():  # in text order, whichever order the index lists them in
        passages.sort(key=lambda p: p.start)
    pairs = []
    for g in gold:
        if not g.answerable or about_articles.asked_about(g.question):  # those are answered from metadata
            continue
        named = passages_named.get(g.doc, []) if g.doc is not None else []
        passage = next((p for p in named if holds_answer(p.text, g.answers)), None)
        if passage is not None:
            pairs.append((g, passage))
    readings = reader.read_batch([g.question for g, _ in pairs], [[p] for _, p in pairs], top_k=1)
    scores = [best_over_gold(r.answers[0].text if r.answers else None, g.answers)
              for (g, _), r in zip(pairs, readings)]
    n = max(1, len(scores))
    return {"em": sum(s[0] for s in scores) / n, "f1": sum(s[1] for s in scores) / n, "questions": len(scores)}


def evaluate_end_to_end(assistant: Assistant, gold: list[GoldQuestion], mode: Mode | None = None) -> list[Record]:
    """Ask each question on its own (so timings are per question) and score the response."""
    records = []
    for g in tqdm(gold, desc="asking", unit="question", disable=len(gold) < 20):
        started = time.perf_counter()
        response = assistant.ask(g.question, mode=mode)
        total = time.perf_counter() - started
        em, f1 = best_over_gold(response.answer, g.answers)
        em_at_3 = max([em, *(best_over_gold(a.answer, g.answers)[0] for a in response.alternatives[:2])])
        first = response.citations[0] if response.citations else None
        cited_right = (response.answer is not None and first is not None and g.answerable
                       and from_doc(first.document, g.doc)
                       and holds_answer(first.passages[0].hit.passage.text, g.answers))
        records.append(Record(g.id, g.kind, response.answer, response.confidence, em, f1, em_at_3, cited_right,
                              {"retrieve": response.timings["retrieve"], "read": response.timings["read"],
                               "total": total}))
    return records


CALIBRATION_BINS = 10


def evaluate_selective(assistant: Assistant, gold: list[GoldQuestion], mode: Mode | None = None,
                       batch_size: int = 32) -> dict:
    """How well the confidence ranks right answers above wrong ones, against the reader's plain margin.

    Every question the reader answers (not those about the articles, nor the acronyms spelled
    out) is asked once more without abstaining, so each has the answer it would get; an answer
    to a question without one is wrong. Where the margin threshold decides (no verifier, or a
    dense or BM25 search alone) the questions below it still get no answer, and are left out.
    Reports the figures of ``rag.evaluation.selective`` for the confidence shown and for the
    margin, the calibration curve (confidence against accuracy, in ten bins), and each
    confidence level's answers and how many were right.
    """
    answering = Assistant(assistant.retriever, assistant.reader, k=assistant.k,
                          spans_per_question=assistant.spans_per_question, verifier=assistant.verifier, abstain=False)
    confidence, margin, right, level = [], [], [], []
    for lo in range(0, len(gold), batch_size):
        chunk = gold[lo:lo + batch_size]
        for g, response in zip(chunk, answering.ask_batch([g.question for g in chunk], mode=mode)):
            if response.margin is None or response.answer is None:  # not read by the reader
                continue
            confidence.append(response.confidence)
            margin.append(response.margin)
            right.append(g.answerable and best_over_gold(response.answer, g.answers)[1] >= 0.5)
            level.append(response.level)
    conf, ok = np.array(confidence), np.array(right, dtype=bool)
    bins = np.minimum((conf * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    return {
        "questions": len(ok),
        "confidence": selective.summary(conf, ok),
        "margin": selective.summary(np.array(margin), ok),
        "calibration": [{"bin": [b / CALIBRATION_BINS, (b + 1) / CALIBRATION_BINS], "answers": int((bins == b).sum()),
                         "mean_confidence": float(conf[bins == b].mean()), "accuracy": float(ok[bins == b].mean())}
                        for b in range(CALIBRATION_BINS) if (bins == b).any()],
        "levels": {name: {"answers": sum(lv == name for lv in level),
                          "right": int(sum(r for lv, r in zip(level, ok) if lv == name))}
                   for name in ("high", "medium", "low")},
        "verifier": assistant.verifier is not None,
        "curves": {"confidence": _curve(conf, ok), "margin": _curve(np.array(margin), ok)},
    }


def _curve(scores: np.ndarray, right: np.ndarray) -> dict[str, list[float]]:
    coverage, risk = selective.risk_coverage(scores, right)
    return {"coverage": coverage.round(4).tolist(), "risk": risk.round(4).tolist()}


def summarize(records: list[Record], gold: list[GoldQuestion]) -> dict:
    answerable = {g.id for g in gold if g.answerable}
    predicted_none = [r for r in records if r.answer is None]
    gold_none = [r for r in records if r.id not in answerable]
    true_none = [r for r in predicted_none if r.id not in answerable]
    on_answerable = [r for r in records if r.id in answerable]
    by_kind = {}
    for kind in sorted({r.kind for r in records}):
        subset = [r for r in records if r.kind == kind]
        by_kind[kind] = {"questions": len(subset), "em": statistics.mean(r.em for r in subset),
                         "f1": statistics.mean(r.f1 for r in subset)}
    return {
        "questions": len(records),
        "em": statistics.mean(r.em for r in records),
        "f1": statistics.mean(r.f1 for r in records),
        "em_at_3": statistics.mean(r.em_at_3 for r in records),
        "em_at_3_answerable": statistics.mean(r.em_at_3 for r in on_answerable) if on_answerable else None,
        "em_answerable": statistics.mean(r.em for r in on_answerable) if on_answerable else None,
        "f1_answerable": statistics.mean(r.f1 for r in on_answerable) if on_answerable else None,
        "no_answer_precision": len(true_none) / len(predicted_none) if predicted_none else None,
        "no_answer_recall": len(true_none) / len(gold_none) if gold_none else None,
        "citation_accuracy": (sum(r.cited_right for r in on_answerable) / len(on_answerable)
                              if on_answerable else None),
        "by_kind": by_kind,
        "latency_seconds": {stage: latency_summary([r.seconds[stage] for r in records])
                            for stage in ("retrieve", "read", "total")},
    }


def _fmt(x) -> str:
    return "   -  " if x is None else f"{100 * x:6.1f}"


def table(report: dict) -> str:
    lines = [f"gold: {report['gold']}   corpus: {report['corpus']}   questions: {report['questions']}", "",
             "retrieval (answer string in top k)   " + "  ".join(f"top-{k:<2}" for k in KS) + "     MRR"]
    for mode, r in report["retrieval"].items():
        lines.append(f"  {mode:<34}" + "  ".join(_fmt(r[f'top{k}']) for k in KS) + f"  {_fmt(r['mrr'])}")
    rd = report["reader"]
    lines += ["", f"reader on the gold passage ({rd['questions']} q)   EM {_fmt(rd['em'])}   F1 {_fmt(rd['f1'])}"]
    e = report["end_to_end"]
    lines += ["", f"end to end ({report['mode']}, k={report['k']})",
              f"  EM {_fmt(e['em'])}   F1 {_fmt(e['f1'])}   (answerable only: EM {_fmt(e['em_answerable'])}"
              f"   F1 {_fmt(e['f1_answerable'])})",
              f"  EM@3 {_fmt(e['em_at_3'])}   (answerable only: {_fmt(e['em_at_3_answerable'])}; the gold answer among"
              " the top 3 distinct answers)",
              f"  no-answer precision {_fmt(e['no_answer_precision'])}   recall {_fmt(e['no_answer_recall'])}",
              f"  citation accuracy {_fmt(e['citation_accuracy'])}"]
    for kind, k in e["by_kind"].items():
        lines.append(f"    {kind:<16} {k['questions']:4d} q   EM {_fmt(k['em'])}   F1 {_fmt(k['f1'])}")
    lines += ["", "latency (ms)        p50      p95"]
    for stage, t in e["latency_seconds"].items():
        lines.append(f"  {stage:<14} {1000 * t['p50']:8.1f} {1000 * t['p95']:8.1f}")
    sel = report.get("selective")
    if sel:
        lines += ["", f"answer or abstain ({sel['questions']} questions the reader answers, each answered;"
                      " right: F1 >= 0.5)",
                  f"  {'score':<34}{'AUROC':>7}{'AURC':>7}{'cov@90':>8}{'cov@95':>8}"]
        for name, label in (("confidence", "confidence shown" + (" (verifier)" if sel["verifier"] else "")),
                            ("margin", "reader's margin alone")):
            m = sel[name]
            lines.append(f"  {label:<34}{m['auroc']:7.3f}{m['aurc']:7.3f}{_fmt(m['coverage_at_90']):>8}"
                         f"{_fmt(m['coverage_at_95']):>8}")
        lines.append("  levels: " + ", ".join(f"{name} {c['right']} right of {c['answers']}"
                                              for name, c in sel["levels"].items()))
    c = report.get("conversations")
    if c:
        lines += ["", f"follow-up questions ({c['gold']}: {c['dialogues']} dialogues, {c['follow_ups']} follow-ups)",
                  f"  read from the conversation   EM {_fmt(c['with_rewriting']['em'])}"
                  f"   F1 {_fmt(c['with_rewriting']['f1'])}",
                  f"  asked alone                  EM {_fmt(c['asked_alone']['em'])}"
                  f"   F1 {_fmt(c['asked_alone']['f1'])}",
                  f"  first turns the rewriting changed: {len(c['first_turns_changed'])} of {c['dialogues']}"]
    return "\n".join(lines)


def plot(report: dict, records: list[Record], path: Path) -> None:
    """Retrieval accuracy against k for each mode, and confidences of right and wrong answers.

    Raises:
        MissingDependencyError: matplotlib is not installed (the ``eval`` extra).
    """
    require("matplotlib", "eval", "plotting the report").use("Agg")
    import matplotlib.pyplot as plt

    sel = report.get("selective")
    fig, (left, right, third) = plt.subplots(1, 3, figsize=(16, 4))
    for mode, r in report["retrieval"].items():
        left.plot(KS, [100 * r[f"top{k}"] for k in KS], marker="o", label=mode)
    left.set(xlabel="k", ylabel="answer in top k (%)", title="Retrieval", xticks=KS, ylim=(0, 101))
    left.legend()
    right_conf = [r.confidence for r in records if r.answer is not None and r.f1 >= 0.5]
    wrong_conf = [r.confidence for r in records if r.answer is not None and r.f1 < 0.5]
    right.hist([right_conf, wrong_conf], bins=10, range=(0, 1), label=["right (F1 ≥ 0.5)", "wrong"],
               color=["tab:green", "tab:red"])
    right.set(xlabel="confidence", ylabel="answers", title="Confidence of given answers")
    right.legend()
    if sel:
        bins = sel["calibration"]
        third.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        third.plot([b["mean_confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                   label="accuracy by confidence")
        for name, color in (("confidence", "tab:blue"), ("margin", "tab:orange")):
            curve = sel["curves"][name]
            third.plot(curve["coverage"], [1 - r for r in curve["risk"]], color=color, alpha=0.6,
                       label=f"accuracy at coverage, by {name}")
        third.set(xlabel="confidence / coverage", ylabel="accuracy", title="Calibration and risk-coverage",
                  xlim=(0, 1), ylim=(0, 1.02))
        third.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(gold: list[GoldQuestion], assistant: Assistant, gold_name: str, corpus_name: str,
        mode: Mode = DEFAULT_MODE) -> tuple[dict, list[Record]]:
    """Every stage on one gold set; returns the report and the per-question records."""
    report = {"gold": gold_name, "corpus": corpus_name, "questions": len(gold), "mode": mode, "k": assistant.k,
              "reader_model": assistant.reader.model_name, "reader_threshold": assistant.reader.threshold}
    report["retrieval"] = evaluate_retrieval(assistant.retriever, gold)
    report["reader"] = evaluate_reader(assistant.reader, assistant.retriever, gold)
    records = evaluate_end_to_end(assistant, gold, mode)
    report["end_to_end"] = summarize(records, gold)
    report["selective"] = evaluate_selective(assistant, gold, mode)
    return report, records


def evaluate(gold_file: Path | None = None, squad: Path | None = None, index_dir: str | Path | None = None,
             sample: int | None = None, seed: int = 0, k: int = DEFAULT_K, mode: Mode = DEFAULT_MODE,
             reader: str | None = None, out: Path | None = None,
             conversations: Path | None = None) -> tuple[dict, Path, Path | None]:
    """Run every stage on a gold set and write the JSON report and its plot.

    Args:
        gold_file: gold JSONL; the bundled gold set by default.
        squad: SQuAD JSON instead of ``gold_file``: its paragraphs become the corpus.
        index_dir: an index folder or Qdrant collection (``rag.search.retriever.open_index``); by default the
            bundled index, or one built from ``squad``.
        sample: score a fixed random sample of this many questions.
        seed: the seed of ``sample``.
        k: passages read per question.
        mode: retrieval mode end to end.
        reader: reader folder or model name; the shipped reader by default.
        out: the JSON report's path; ``eval-results/<gold>.json`` by default.
        conversations: conversational gold (``rag.evaluation.conversations``) on the same index; the
            bundled set when the bundled gold set runs on the bundled corpus.

    Returns:
        The report, the JSON's path, and the plot's (None without matplotlib, the ``eval`` extra).
    """
    if squad is not None:
        documents, gold = squad_corpus(squad)
        name = squad.stem
        index = open_index(index_dir) if index_dir else build_index(documents, pipeline=LocalPipeline(progress=True))
        corpus = str(index_dir or f"{len(documents)} paragraphs of {squad.name}")
    else:
        path = gold_file or BUNDLED_GOLD
        gold, name = load_gold(path), path.stem
        index = open_index(index_dir) if index_dir else default_index()
        corpus = str(index_dir or "bundled sample corpus")
    if sample:
        gold = random.Random(seed).sample(gold, min(sample, len(gold)))
    if conversations is None and squad is None and gold_file is None and index_dir is None:
        conversations = BUNDLED_CONVERSATIONS
    dialogues = load_dialogues(conversations) if conversations else None
    with index:  # a Qdrant collection in local mode is free for the next client once this one closes
        assistant = Assistant(Retriever(index, mode=mode), Reader(reader) if reader else None, k=k)
        report, records = run(gold, assistant, name, corpus, mode)
        if dialogues and conversations:
            report["conversations"] = {"gold": conversations.stem, **evaluate_conversations(assistant, dialogues)}
    out = out or Path("eval-results") / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**report, "records": [asdict(r) for r in records]}, indent=2) + "\n")
    png = out.with_suffix(".png")
    try:
        plot(report, records, png)
    except MissingDependencyError as e:  # the figures are all in the JSON and the table; the plot is extra
        logger.warning("no plot: %s", e)
        return report, out, None
    return report, out, png
