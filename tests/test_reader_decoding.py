"""Span decoding against a fake model whose logits are set by hand (Haystack's MockModel idea)."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from embeddings import default_model_path
from rag.read.reader import Reader
from rag.read.span_decoding import SpanPrior, best_spans, sentence_ends, snap_to_words, trim_attribution, trim_edges
from rag.types import Answer, NoAnswer, Passage, Reading


class FakeQA:
    """Start/end logits from token ids: chosen tokens get chosen scores, [CLS] gets ``null``, the rest 0.

    It runs as an ONNX Runtime session does (``run(names, inputs)``), so no model and no torch are loaded.
    """

    def __init__(self, tokenizer, starts: dict[str, float], ends: dict[str, float], null: float = 0.0):
        self.starts = {self._id(tokenizer, t): s for t, s in starts.items()}
        self.ends = {self._id(tokenizer, t): s for t, s in ends.items()}
        self.null = null
        self.calls = 0

    @staticmethod
    def _id(tokenizer, token: str) -> int:
        found = tokenizer.token_to_id(token)
        assert found is not None, f"{token!r} is not one token"
        return found

    def run(self, names, inputs):
        assert names == ["start_logits", "end_logits"]
        self.calls += 1
        input_ids = inputs["input_ids"]
        start = np.zeros(input_ids.shape, dtype=np.float32)
        end = np.zeros(input_ids.shape, dtype=np.float32)
        for token, score in self.starts.items():
            start[input_ids == token] = score
        for token, score in self.ends.items():
            end[input_ids == token] = score
        start[:, 0] = end[:, 0] = self.null / 2
        return start, end


TOKENIZER_JSON = (Path(default_model_path()) / "tokenizer.json").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tokenizer():
    plain = Tokenizer.from_str(TOKENIZER_JSON)
    plain.no_padding()
    plain.no_truncation()
    return plain


def reader(tokenizer, starts, ends, null=0.0, **settings):
    settings.setdefault("max_length", 128)
    settings.setdefault("stride", 32)
    return Reader.from_session(FakeQA(tokenizer, starts, ends, null), TOKENIZER_JSON, **settings)


FILLER = " ".join(["the river runs past the old mill"] * 60)


def test_answer_in_a_later_window_maps_to_the_right_characters(tokenizer):
    text = f"{FILLER}. The prize went to zebra tiger last year. {FILLER}."
    passage = Passage("d-3", "d", text, 1000, 1000 + len(text))
    r = reader(tokenizer, {"zebra": 5.0}, {"tiger": 5.0})
    reading = r.read("who won the prize?", [passage])
    first = reading.answer
    assert reading.decision == "answer" and isinstance(first, Answer)
    assert first.text == "zebra tiger"
    assert text[first.start:first.end] == "zebra tiger"
    assert (first.doc_start, first.doc_end) == (1000 + first.start, 1000 + first.end)
    assert first.passage_id == "d-3" and first.doc_id == "d"
    assert first.score == pytest.approx(10.0)
    assert r._model.calls >= 1


def test_a_span_never_ends_before_it_starts(tokenizer):
    text = "First came zebra then came the tiger."
    r = reader(tokenizer, {"tiger": 9.0, "zebra": 1.0}, {"zebra": 9.0, "tiger": 1.0})
    answers = r.read("what came?", [text], top_k=5).answers
    assert answers
    for a in answers:
        assert a.start < a.end and text[a.start:a.end] == a.text
    # tiger..zebra is backwards; the best valid spans are single words or zebra..tiger.
    assert answers[0].text in {"zebra", "tiger", "zebra then came the tiger"}
    assert answers[0].score == pytest.approx(10.0)


def test_spans_longer_than_the_limit_are_forbidden(tokenizer):
    text = "zebra " + "and " * 40 + "tiger"
    r = reader(tokenizer, {"zebra": 5.0}, {"tiger": 5.0}, max_answer_tokens=10)
    best = r.read("what?", [text]).answers[0]
    assert best.text != text and len(tokenizer.encode(best.text, add_special_tokens=False).ids) <= 10


def test_no_answer_is_explicit_and_carries_a_score(tokenizer):
    r = reader(tokenizer, {"zebra": 1.0}, {"zebra": 1.0}, null=8.0, threshold=0.0)
    reading = r.read("what?", ["a zebra stood still."])
    assert reading.decision == "abstain" and reading.answer is None
    assert reading.no_answer.score == pytest.approx(6.0)  # the best span's margin is 2 - 8 = -6
    assert 0.0 <= reading.no_answer.confidence <= 1.0
    assert reading.answers[0].text == "zebra"  # the spans below the threshold are still there


def test_best_span_is_chosen_across_passages(tokenizer):
    passages = [Passage("a-0", "a", "a zebra here.", 0, 13), Passage("b-0", "b", "a tiger there.", 50, 64)]
    r = reader(tokenizer, {"zebra": 1.0, "tiger": 4.0}, {"zebra": 1.0, "tiger": 4.0})
    first = r.read("which animal?", passages).answer
    assert (first.text, first.passage_id, first.doc_start) == ("tiger", "b-0", 52)


def test_the_same_span_in_overlapping_windows_is_reported_once(tokenizer):
    text = f"{FILLER}. zebra. {FILLER}"
    r = reader(tokenizer, {"zebra": 5.0}, {"zebra": 5.0}, max_length=128, stride=56)
    answers = r.read("what?", [text], top_k=5).answers
    assert [a.text for a in answers].count("zebra") == 1


def test_spans_are_whole_words(tokenizer):
    pieces = tokenizer.encode("fetrat", add_special_tokens=False).tokens
    assert len(pieces) > 1  # the name is split into word pieces
    r = reader(tokenizer, {pieces[1]: 5.0}, {pieces[1]: 5.0})
    first = r.read("who?", ["Dr Zabih Fetrat said so."]).answer
    assert first.text == "Fetrat"


def test_batch_equals_single_and_checks_input(tokenizer):
    r = reader(tokenizer, {"zebra": 3.0}, {"zebra": 3.0})
    single = r.read("what?", ["a zebra."])
    assert r.read_batch(["what?", "what?"], [["a zebra."], ["a zebra."]]) == [single, single]
    with pytest.raises(ValueError, match="2 questions but 1"):
        r.read_batch(["a?", "b?"], [["x"]])
    with pytest.raises(ValueError, match="''"):
        r.read("", ["x"])
    with pytest.raises(ValueError, match="0"):
        r.read("a?", ["x"], top_k=0)


def test_best_spans_on_raw_logits():
    start = np.array([1.0, 0.0, 0.0, 5.0, 0.0, 9.0, 0.0])
    end = np.array([1.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0])
    context = np.array([False, False, True, True, True, True, True])
    spans = best_spans(start, end, context, max_answer_tokens=3, top_n=3)
    # (5, 4) would score 15 but ends before it starts; the best valid is (3, 4): 5 + 6 - 2.
    assert (spans[0].start, spans[0].end, spans[0].score) == (3, 4, pytest.approx(9.0))
    assert all(s.start <= s.end < s.start + 3 for s in spans)
    assert best_spans(start, end, np.zeros(7, dtype=bool), 3, 3) == []
    with pytest.raises(ValueError):
        best_spans(start, end, context, 0, 3)


def _every_span(start, end, context, max_answer_tokens, prior, sentence_end):
    """The spec best_spans must meet, by brute force: every valid (i, j), best first, ties by place."""
    null = start[0] + end[0]
    table = list(prior.length_log_prior) + [0.0] * 64
    spans = []
    for i in np.flatnonzero(context):
        for j in np.flatnonzero(context):
            if i <= j < i + max_answer_tokens:
                score = float(start[i]) + float(end[j]) + table[min(j - i, len(table) - 1)]
                if prior.crossing_penalty and (sentence_end & context)[i:j].any():  # a context token ends a sentence
                    score -= prior.crossing_penalty
                spans.append((score, int(i), int(j)))
    spans.sort(key=lambda s: (-s[0], s[1], s[2]))
    return [(score - null, i, j) for score, i, j in spans]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_best_spans_equals_brute_force(data):
    n = data.draw(st.integers(1, 40))
    logits = st.lists(st.sampled_from([-2.0, 0.0, 0.5, 1.0, 3.0]), min_size=n, max_size=n)  # few values: many ties
    start, end = np.array(data.draw(logits)), np.array(data.draw(logits))
    context = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    sentence_end = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    prior = SpanPrior(tuple(data.draw(st.lists(st.sampled_from([0.0, -0.5, -1.0]), max_size=6))),
                      data.draw(st.sampled_from([0.0, 1.0])))
    max_tokens, top_n = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 12))
    got = [(s.score, s.start, s.end) for s in best_spans(start, end, context, max_tokens, top_n, prior, sentence_end)]
    expected = _every_span(start, end, context, max_tokens, prior, sentence_end)[:top_n]
    assert [(i, j) for _, i, j in got] == [(i, j) for _, i, j in expected]
    assert [s for s, _, _ in got] == pytest.approx([s for s, _, _ in expected])


def test_questions_without_passages_get_no_answer(tokenizer):
    r = reader(tokenizer, {"zebra": 3.0}, {"zebra": 3.0})
    assert r.read_batch(["what?"], [[]]) == [Reading((), NoAnswer(score=float("inf"), confidence=1.0), "abstain")]
    mixed = r.read_batch(["what?", "what?"], [[], ["a zebra."]])
    assert mixed[0].decision == "abstain" and mixed[1].answer.text == "zebra"


def test_separators_at_the_edges_are_trimmed(tokenizer):
    r = reader(tokenizer, {"zebra": 5.0}, {",": 5.0})
    first = r.read("what?", ["They saw a zebra, then left."]).answer
    assert first.text == "zebra"


def test_snap_to_words_widens_to_whole_words_inside_the_context_only():
    #            [CLS] q    [SEP] Fe  ##tr ##at said [SEP]
    words = [None, 0, None, 0, 0, 0, 1, None]
    context = np.array([False, False, False, True, True, True, True, False])
    assert snap_to_words(4, 4, context, words) == (3, 5)
    assert snap_to_words(6, 6, context, words) == (6, 6)
    assert snap_to_words(3, 6, context, words) == (3, 6)


def test_trim_edges_drops_separators_but_never_the_whole_span():
    text = "said: Dr Zabih Fetrat, a spokesman"
    start = text.index(":")
    assert text[slice(*trim_edges(text, start, text.index(",") + 1))] == "Dr Zabih Fetrat"
    assert trim_edges(",", 0, 1) == (0, 1)


def test_length_prior_and_crossing_penalty_shift_the_best_span():
    # Positions 2..6 are context; a sentence ends at 3. Raw best: (2, 6) = 5 + 5.
    start = np.array([0.0, 0.0, 5.0, 0.0, 4.5, 0.0, 0.0])
    end = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0])
    context = np.array([False, False, True, True, True, True, True])
    sentence_end = np.array([False, False, False, True, False, False, False])
    assert (best_spans(start, end, context, 10, 1)[0].start, 6) == (2, 6)
    crossing = best_spans(start, end, context, 10, 1, SpanPrior(crossing_penalty=1.0), sentence_end)[0]
    assert (crossing.start, crossing.end, crossing.score) == (4, 6, pytest.approx(9.5))
    # A length prior that favours 3-token spans over 5-token ones does the same.
    prior = SpanPrior(length_log_prior=(0.0, 0.0, 0.0, -1.0, -1.0))
    assert best_spans(start, end, context, 10, 1, prior)[0].start == 4
    # The model sure enough of the long span keeps it despite the penalty.
    start[2] = 9.0
    assert best_spans(start, end, context, 10, 1, SpanPrior(crossing_penalty=1.0), sentence_end)[0].start == 2


def test_sentence_ends_only_before_a_capital():
    text = "The U.S. drone hit. Then 3.5 more came."
    offsets = [(0, 3), (4, 5), (5, 6), (6, 7), (7, 8), (9, 14), (15, 18), (18, 19), (20, 24), (25, 28), (29, 33),
               (34, 38), (38, 39)]
    assert [text[s:e] for s, e in offsets][:8] == ["The", "U", ".", "S", ".", "drone", "hit", "."]
    ends = sentence_ends(offsets, text, np.ones(len(offsets), dtype=bool))
    assert [text[s:e] for (s, e), end in zip(offsets, ends) if end] == ["."] and ends[7]


@pytest.mark.parametrize("span, trimmed", [
    ("2028, the spokesman said.", "2028"), ("Nadia Osei said", "Nadia Osei"),
    ("in March, according to officials", "in March"), ("Mohammad Atta Noor", "Mohammad Atta Noor"),
    ("said", "said"),
])
def test_attribution_tails_are_trimmed(span, trimmed):
    text = f"He wrote: {span} Later."
    start = text.index(span)
    s, e = trim_attribution(text, start, start + len(span))
    assert text[s:e] == trimmed
