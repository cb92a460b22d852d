"""The reader's training data: which questions, which held-out slice, and how they become batches.

Training (``rag.training.train``) and calibration (``rag.training.calibrate``) both read
their questions through here, so they agree on the mix, the negatives and the held-out slice.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from rag.evaluation.squad import SquadQuestion, load_squad

# Fraction of each training file used, chosen on held-out evidence (``python -m eval.reader_held_out``
# and the answer lengths, README "How it was trained"): every set whose answers are short, as
# news answers are (the bundled gold's median is 3 words), in full; PolicyQA and COVID-QA,
# whose answers are clauses (36% and 54% longer than 8 words, against 3-12% elsewhere) and
# would teach the runaway spans the reader must unlearn, in part.
DEFAULT_MIX = {
    "squadshifts_new_wiki": 1.0,
    "tydiqa_en": 1.0,
    "qed": 1.0,
    "squadshifts_reddit": 1.0,
    "squadshifts_amazon_reviews": 1.0,
    "reviewrc": 1.0,
    "qamr": 1.0,
    "covidqa": 0.5,
    "policyqa": 0.25,
}


def is_held_out(context: str, every: int = 50) -> bool:
    """True for the fixed ~1/``every`` of paragraphs kept out of reader training.

    The split is by paragraph, so no held-out question shares its passage with a
    training question. It decides on a hash of the text, so it never changes with
    file order or sampling.
    """
    digest = hashlib.sha1(context.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % every == 0


@dataclass(frozen=True)
class TrainSettings:
    """The settings of one training run; ``reader.json`` records them."""

    mix: dict[str, float]
    negative_rate: float = 0.25
    swap_rate: float = 0.0  # questions also asked with one of their names swapped for one the paragraph lacks
    hard_negative_rate: float = 0.0  # questions also read with the BM25-nearest paragraph that lacks the answer
    max_length: int = 256
    stride: int = 96
    negative_windows: int = 1  # windows without the answer kept per long paragraph (COVID-QA's run to 60)
    batch_size: int = 32
    epochs: float = 2.0
    lr: float = 1e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 13
    init: str | None = None  # a reader folder to train further, instead of a fresh span head
    precision: str = "bf16"  # "bf16": autocast matmuls to bfloat16 (weights and optimizer stay fp32); or "fp32"


def sample_questions(data_dir: Path, mix: dict[str, float], rng: random.Random) -> list[SquadQuestion]:
    chosen = []
    for name, fraction in mix.items():
        questions = [q for q in load_squad(data_dir / f"{name}.json") if not is_held_out(q.context)]
        rng.shuffle(questions)
        chosen += questions[: round(len(questions) * fraction)]
    return chosen


def _negative_context(question: SquadQuestion, pool: dict[tuple[str, str], list[str]],
                      by_file: dict[str, list[str]], rng: random.Random) -> str | None:
    """A paragraph that does not hold the answer: from the same article or, as often, from another
    article of the same file (the first kind when the second has none, and the other way round).

    The same article teaches the reader a near miss: the right topic, not the answer. Another
    article teaches it what a retriever's wrong hit looks like.
    """
    same_article = pool[(question.source, question.title)]
    kinds = [same_article, [c for c in by_file[question.source] if c not in same_article]]
    if rng.random() < 0.5:
        kinds.reverse()
    for candidates in kinds:
        options = [c for c in candidates
                   if c != question.context and not any(a.lower() in c.lower() for a in question.answers)]
        if options:
            return rng.choice(options)
    return None


_WORD = r"[A-Z][\w'-]*[a-z][\w'-]*"
_NAME = re.compile(rf"\b(?!(?:The|A|An|In|On|At|Of|For|And|But|Its|His|Her|Their)\b){_WORD}(?: {_WORD})*")


@functools.lru_cache(maxsize=100_000)  # a paragraph's names are asked for once per question of its article
def names_in(text: str) -> tuple[str, ...]:
    """Runs of capitalised words that do not start a sentence: names, roughly."""
    names = []
    for m in _NAME.finditer(text):
        before = text[:m.start()].rstrip()
        if before and before[-1] not in ".!?:;\"\u201c(":
            names.append(m.group())
    return tuple(names)


def swapped_question(question: str, context: str, names: list[str], rng: random.Random) -> str | None:
    """The question with a name it shares with its paragraph swapped for one the paragraph never mentions.

    "Who is the governor of Balkh?" over a paragraph on Balkh's governor becomes "Who is the
    governor of Kunduz?": the paragraph no longer answers it, though it still matches every
    other word. That is the near miss a reader meets when the article it needs is not
    indexed (as SQuAD 2.0's unanswerable questions teach). ``names`` are drawn from other
    paragraphs of the same article first, so the swap stays on topic. None when the question
    names nothing its paragraph does, or no name is left to swap in.
    """
    lowered = context.lower()
    shared = [n for n in dict.fromkeys(names_in(question)) if n in context]
    options = [n for n in dict.fromkeys(names) if n.lower() not in lowered and n.lower() not in question.lower()]
    if not shared or not options:
        return None
    name = rng.choice(shared)
    return question.replace(name, rng.choice(options[:50]), 1)


def hard_negatives(questions: list[SquadQuestion], chosen: list[int], depth: int = 5) -> dict[int, str]:
    """For each chosen question, the paragraph of its file that BM25 ranks best for it without holding its answer.

    The distractor a retriever really hands the reader: the same words, not the answer.
    """
    import bm25s

    by_file: dict[str, list[int]] = {}
    for i in chosen:
        by_file.setdefault(questions[i].source, []).append(i)
    contexts_of: dict[str, dict[str, None]] = {}  # each file's paragraphs, once each, in order
    for q in questions:
        contexts_of.setdefault(q.source, {})[q.context] = None
    found: dict[int, str] = {}
    for source, asked in by_file.items():
        contexts = list(contexts_of[source])
        if len(contexts) < 2:
            continue
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(contexts, stopwords="en", show_progress=False), show_progress=False)
        k = min(depth, len(contexts))
        ranked, _ = retriever.retrieve(bm25s.tokenize([questions[i].question for i in asked], stopwords="en",
                                                      show_progress=False), k=k, show_progress=False)
        for i, rows in zip(asked, ranked):
            q = questions[i]
            found_context = next((contexts[r] for r in rows if contexts[r] != q.context
                                  and not any(a.lower() in contexts[r].lower() for a in q.answers)), None)
            if found_context is not None:
                found[i] = found_context
    return found


def build_pairs(questions: list[SquadQuestion], negative_rate: float,
                rng: random.Random, swap_rate: float = 0.0,
                hard_negative_rate: float = 0.0) -> list[tuple[str, str, int, str]]:
    """(question, context, answer_start, answer_text) pairs; answer_text is '' for no-answer pairs.

    At ``negative_rate`` a question also comes with a paragraph that lacks its answer; at
    ``swap_rate`` it also comes, with its own paragraph, with a name swapped (:func:`swapped_question`);
    at ``hard_negative_rate`` with the paragraph of its file that BM25 ranks best for it among
    those without its answer (:func:`hard_negatives`).
    """
    hard = (hard_negatives(questions, [i for i in range(len(questions)) if rng.random() < hard_negative_rate])
            if hard_negative_rate else {})
    pool: dict[tuple[str, str], list[str]] = {}
    by_file: dict[str, list[str]] = {}
    for q in questions:
        pool.setdefault((q.source, q.title), [])
        if q.context not in pool[(q.source, q.title)]:
            pool[(q.source, q.title)].append(q.context)
    for (source, _), contexts in pool.items():
        by_file.setdefault(source, []).extend(contexts)
    for source in by_file:  # bound the fallback scan on files of one-paragraph articles
        rng.shuffle(by_file[source])
        by_file[source] = by_file[source][:200]
    pairs = []
    for i, q in enumerate(questions):
        pairs.append((q.question, q.context, q.answer_starts[0], q.answers[0]))
        if i in hard:
            pairs.append((q.question, hard[i], -1, ""))
        if rng.random() < negative_rate:
            negative = _negative_context(q, pool, by_file, rng)
            if negative is not None:
                pairs.append((q.question, negative, -1, ""))
        if swap_rate and rng.random() < swap_rate:
            swapped = swapped_question(q.question, q.context, _names_nearby(q, pool, by_file, rng), rng)
            if swapped is not None:
                pairs.append((swapped, q.context, -1, ""))
    rng.shuffle(pairs)
    return pairs


def _names_nearby(question: SquadQuestion, pool: dict[tuple[str, str], list[str]],
                  by_file: dict[str, list[str]], rng: random.Random) -> list[str]:
    """Names of the question's article's other paragraphs, then of a few of its file's."""
    same_article = [c for c in pool[(question.source, question.title)] if c != question.context]
    others = rng.sample(by_file[question.source], min(5, len(by_file[question.source])))
    return [n for c in same_article + others for n in names_in(c)]


def featurize(pairs: list[tuple[str, str, int, str]], tokenizer, max_length: int,
              stride: int, negative_windows: int, rng: random.Random) -> list[dict[str, list[int] | int]]:
    """Tokenize into windows and label each with its answer's token span, or (0, 0) for none.

    Of a long paragraph's windows, those that hold the answer are all kept, and at most
    ``negative_windows`` of the others, drawn at random: a 30-page paper would otherwise
    bring 60 windows of "no answer" for each of its questions.
    """
    features = []
    for lo in range(0, len(pairs), 1000):
        chunk = pairs[lo:lo + 1000]
        enc = tokenizer([p[0] for p in chunk], [p[1] for p in chunk], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
        by_pair: dict[int, list[dict]] = {}
        for i, offsets in enumerate(enc["offset_mapping"]):
            _, _, answer_start, answer = chunk[enc["overflow_to_sample_mapping"][i]]
            sequence_ids = enc.sequence_ids(i)
            start = end = 0
            if answer:
                answer_end = answer_start + len(answer)
                ctx = [t for t, s in enumerate(sequence_ids) if s == 1]
                if offsets[ctx[0]][0] <= answer_start and offsets[ctx[-1]][1] >= answer_end:
                    start = next(t for t in ctx if offsets[t][1] > answer_start)
                    end = next(t for t in reversed(ctx) if offsets[t][0] < answer_end)
            by_pair.setdefault(enc["overflow_to_sample_mapping"][i], []).append(
                {"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                 "start": start, "end": end})
        for windows in by_pair.values():
            positives = [w for w in windows if w["end"] > 0]
            negatives = [w for w in windows if w["end"] == 0]
            keep = negative_windows if positives else max(1, negative_windows)  # a negative pair keeps one
            features += positives + rng.sample(negatives, min(len(negatives), keep))
    return features


def batches_by_length(features: list[dict], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length, in random order: padding to the longest then costs little."""
    order = list(range(len(features)))
    rng.shuffle(order)
    batches = []
    for lo in range(0, len(order), batch_size * 50):
        block = sorted(order[lo:lo + batch_size * 50], key=lambda i: len(features[i]["input_ids"]))
        batches += [block[j:j + batch_size] for j in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(features: list[dict], pad_id: int, width: int | None = None) -> dict[str, torch.Tensor]:
    """A batch as tensors, padded to its longest window, or to ``width`` (one shape for every batch)."""
    width = width or max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        ids[row, :n] = torch.tensor(f["input_ids"])
        types[row, :n] = torch.tensor(f["token_type_ids"])
        mask[row, :n] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start_positions": torch.tensor([f["start"] for f in features]),
            "end_positions": torch.tensor([f["end"] for f in features])}


def held_out_sets(data_dir: Path, mix: dict[str, float], negative_rate: float, seed: int,
                  distractors: int = 4, swap_rate: float = 0.0) -> list[tuple[str, tuple[str, ...], list[str]]]:
    """Held-out questions as a retriever hands them to the reader: (question, gold answers, passages).

    Each question comes with its own paragraph and up to ``distractors`` others that do not
    hold its answer (its article's first, then its file's), shuffled. At ``negative_rate`` it
    also comes once more with distractors alone and no gold answers: there the reader should
    abstain. At ``swap_rate`` it comes once more with the same passages and a name swapped
    (:func:`swapped_question`), and no gold answers. Only held-out paragraphs are used, so none
    was trained on.
    """
    rng = random.Random(seed)
    questions = [q for name, fraction in mix.items() if fraction > 0
                 for q in load_squad(data_dir / f"{name}.json") if is_held_out(q.context) and q.answers]
    by_article: dict[tuple[str, str], list[str]] = {}
    by_file: dict[str, list[str]] = {}
    for q in questions:
        for pool in (by_article.setdefault((q.source, q.title), []), by_file.setdefault(q.source, [])):
            if q.context not in pool:
                pool.append(q.context)
    rng.shuffle(questions)
    sets = []
    for q in questions:
        nearby = by_article[(q.source, q.title)] + rng.sample(by_file[q.source], min(50, len(by_file[q.source])))
        others = list(dict.fromkeys(c for c in nearby if c != q.context
                                    and not any(a.lower() in c.lower() for a in q.answers)))
        passages = [q.context, *others[:distractors]]
        rng.shuffle(passages)
        sets.append((q.question, q.answers, passages))
        if rng.random() < negative_rate and others:
            sets.append((q.question, (), others[:distractors + 1]))
        if swap_rate and rng.random() < swap_rate:
            swapped = swapped_question(q.question, "\n".join(passages), _names_nearby(q, by_article, by_file, rng),
                                       rng)
            if swapped is not None:
                sets.append((swapped, (), passages))
    return sets


def held_out_pairs(data_dir: Path, mix: dict[str, float], negative_rate: float,
                   seed: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(question, passage, gold answers) on held-out paragraphs; no gold answers on negative pairs."""
    rng = random.Random(seed)
    questions = [q for name, fraction in mix.items() if fraction > 0
                 for q in load_squad(data_dir / f"{name}.json") if is_held_out(q.context)]
    golds = {(q.question, q.context): q.answers for q in questions}
    return [(question, context, golds.get((question, context), ()) if answer else ())
            for question, context, _, answer in build_pairs(questions, negative_rate, rng)]
