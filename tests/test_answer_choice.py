"""The assistant's answer-choice rule (``rag.answer.assistant.choose_answer``) on hand-made readings."""

from rag.answer.assistant import NEAR_TIE, choose_answer
from rag.types import Answer, NoAnswer, Reading


def span(text: str, score: float, passage: str, start: int = 0) -> Answer:
    return Answer(text=text, score=score, confidence=0.5, passage_id=passage, doc_id="d", start=start,
                  end=start + len(text), doc_start=start, doc_end=start + len(text))


def reading(*answers: Answer) -> Reading:
    return Reading(tuple(sorted(answers, key=lambda a: -a.score)), NoAnswer(-1.0, 0.1), "answer")


RANKS = {"p1": 1, "p2": 2, "p3": 3}


def test_a_clearly_better_span_wins_over_one_that_more_passages_hold():
    best, groups = choose_answer(reading(span("Noor", 5.0, "p3"), span("Dostum", 4.0, "p1"),
                                         span("Dostum", 3.9, "p2")), RANKS, threshold=1.0)
    assert [a.text for a in best] == ["Noor"] and len(groups) == 2


def test_a_near_tie_goes_to_the_answer_more_passages_hold():
    best, _ = choose_answer(reading(span("Noor", 5.0, "p3"), span("Atta Noor", 5.0 - NEAR_TIE / 2, "p1"),
                                    span("Atta Noor", 2.0, "p2")), RANKS, threshold=1.0)
    assert best[0].text == "Atta Noor" and {a.passage_id for a in best} == {"p1", "p2"}


def test_an_even_near_tie_goes_to_the_better_ranked_passage():
    best, _ = choose_answer(reading(span("Noor", 5.0, "p3"), span("Dostum", 4.9, "p1")), RANKS, threshold=1.0)
    assert best[0].text == "Dostum"


def test_a_tie_outside_the_margin_does_not_count():
    best, _ = choose_answer(reading(span("Noor", 5.0, "p3"), span("Dostum", 5.0 - 2 * NEAR_TIE, "p1"),
                                    span("Dostum", 4.0, "p2")), RANKS, threshold=1.0)
    assert best[0].text == "Noor"


def test_spans_of_one_answer_are_grouped_by_their_normalised_text():
    best, groups = choose_answer(reading(span("the IMU", 3.0, "p2"), span("IMU.", 2.9, "p1")), RANKS, threshold=1.0)
    assert len(groups) == 1 and [a.passage_id for a in best] == ["p2", "p1"]  # best span first


def test_an_answer_below_the_threshold_never_wins_a_tie():
    best, _ = choose_answer(reading(span("Noor", 3.0, "p3"), span("Dostum", 2.9, "p1"), span("Dostum", 2.8, "p2")),
                            RANKS, threshold=2.95)
    assert best[0].text == "Noor"


def test_the_retrieval_weight_lets_a_span_of_the_best_passage_beat_a_slightly_higher_one_of_a_weak_passage():
    spans = reading(span("Noor", 5.0, "p3"), span("Dostum", 4.5, "p1"))
    retrieval = {"p1": 1.0, "p3": 0.2}
    assert choose_answer(spans, RANKS, threshold=1.0)[0][0].text == "Noor"
    best, groups = choose_answer(spans, RANKS, 1.0, retrieval, retrieval_weight=2.0)
    assert best[0].text == "Dostum" and [g[0].text for g in groups] == ["Dostum", "Noor"]


def test_with_no_span_over_the_threshold_the_best_is_still_chosen():
    best, _ = choose_answer(reading(span("Noor", -1.0, "p3"), span("Dostum", -3.0, "p1")), RANKS, threshold=2.0)
    assert best[0].text == "Noor"
