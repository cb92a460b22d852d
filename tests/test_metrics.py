"""SQuAD metrics: the official v1.1 script's normalisation and scores on known cases."""

import pytest

from rag.evaluation.metrics import best_over_gold, exact_match, f1_score, latency_summary
from rag.read.normalize import normalize_answer


@pytest.mark.parametrize("text, expected", [
    ("The  Cat!", "cat"),
    ("an apple a day", "apple day"),
    ("Theatre and Anthem", "theatre and anthem"),  # articles only as whole words
    ("U.S. drone", "us drone"),
    ("co-operate, (now)", "cooperate now"),
    ("  a\tb\n c ", "b c"),
    ("“Noor”", "“noor”"),  # the official script strips ASCII punctuation only
    ("THE", ""),
])
def test_normalisation_matches_the_official_script(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_and_f1_on_known_inputs():
    assert exact_match("The Cat.", "cat") == 1.0
    assert exact_match("cats", "cat") == 0.0
    assert f1_score("the cat sat", "cat sat on the mat") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert f1_score("Mohammad Atta Noor", "Atta Noor") == pytest.approx(0.8)
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("the", "a") == 0.0  # both normalise to nothing: no overlap
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)  # repeated tokens count once each


def test_best_over_gold_and_no_answer():
    assert best_over_gold("Atta Noor", ["Mohammad Atta Noor", "Atta Noor"]) == (1.0, 1.0)
    assert best_over_gold("Noor", ["Mohammad Atta Noor"]) == (0.0, pytest.approx(0.5))
    assert best_over_gold(None, []) == (1.0, 1.0)
    assert best_over_gold("anything", []) == (0.0, 0.0)
    assert best_over_gold(None, ["Kunduz"]) == (0.0, 0.0)


def test_latency_summary_is_numpy_percentile():
    assert latency_summary([0.1, 0.2, 0.3, 0.4, 1.0]) == {"p50": 0.3, "p95": pytest.approx(0.88)}
    assert latency_summary([0.25]) == {"p50": 0.25, "p95": 0.25}
    with pytest.raises(ValueError):
        latency_summary([])
