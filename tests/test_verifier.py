"""The answer verifier and what it reads: answer types, key words near the answer, acronyms, and the
selective-answering measures (``rag.answer.evidence``, ``definitions``, ``verifier``, ``rag.evaluation.selective``)."""

import json

import numpy as np
import pytest

from rag.answer import definitions, evidence
from rag.answer.verifier import FEATURES, FILE_NAME, Verifier, features, same_answer
from rag.errors import ModelLoadError
from rag.evaluation import selective
from rag.read.reader import shipped_reader_dir
from rag.types import Answer, Document, Hit, Passage


@pytest.mark.parametrize(("question", "kind"), [
    ("How many fighters does the IMU have?", "number"), ("In what year was Dostum born?", "date"),
    ("When was the attack?", "date"), ("Where was the alliance forged?", "place"),
    ("Which province nearly fell?", "place"), ("Who is the governor of Balkh?", "entity"),
    ("What did Shamsi call the alliance?", None), ("Why did they host them?", None)])
def test_the_question_says_which_type_of_answer_it_wants(question, kind):
    assert evidence.expected_type(question) == kind


@pytest.mark.parametrize(("question", "span", "agreement"), [
    ("How many people live in Afghanistan?", "nearly 30 million", 1),
    ("How many people live in Afghanistan?", "Mazar-e Sharif", -1),
    ("When was the attack?", "May 28", 1), ("In what year was he killed?", "2009", 1),
    ("When was the attack?", "the governor's compound", -1),
    ("Who is the governor of Balkh?", "Mohammad Atta Noor", 1),
    ("Who is the governor of Balkh?", "2009", -1),
    ("Who was killed with him?", "the province's police chief", 0),
    ("What did Shamsi call the alliance?", "good news", 0)])
def test_type_agreement(question, span, agreement):
    assert evidence.type_agreement(question, span) == agreement


BALKH = "In light of Kunduz nearly falling, Balkh Governor Mohammad Atta Noor and First Vice President Dostum met."
LATER = "Late last month, Governor Noor and General Mohammad Daud Daud set aside old feuds."


def _span(text: str, span: str) -> tuple[str, int, int]:
    return text, text.index(span), text.index(span) + len(span)


@pytest.mark.parametrize(("question", "text", "span", "why"), [
    ("In what year was Dostum born?", "Two years ago, Dostum formed the Front.", "Two years ago",
     "“Two years ago” is not a year"),
    ("In what year was Dostum born?", "Dostum, born in 1954, formed the Front.", "1954", None),
    ("What year of college is she in?", "She is a sophomore.", "sophomore", None),
    ("Who is the governor of Kunduz?", BALKH, "Mohammad Atta Noor",
     "the articles name Mohammad Atta Noor as Balkh's governor, not Kunduz's"),
    ("Who is the governor of Balkh?", BALKH, "Mohammad Atta Noor", None),
    ("Who is the governor of Kunduz?", "Noor, governor of Balkh, spoke.", "Noor", "Balkh's governor"),
    ("Who is the president of Uzbekistan?", BALKH, "Dostum", None),  # the text gives no country
    ("Who is the governor of Kunduz?", "Who won? Governor Noor did.", "Noor", None),  # no place named
])
def test_a_span_is_ruled_out_only_where_the_text_itself_contradicts_it(question, text, span, why):
    found = evidence.contradiction(question, *_span(text, span))
    assert found is None if why is None else why in found


def test_a_title_given_in_another_passage_rules_out_the_same_person_by_surname():
    question = "Who is the governor of Kunduz?"
    assert "Balkh's governor" in evidence.contradiction(question, *_span(LATER, "Governor Noor"), [BALKH])
    assert evidence.contradiction("Who is the governor of Balkh?", *_span(LATER, "Noor"), [BALKH]) is None
    # a first name many share is not the same person
    assert evidence.contradiction(question, *_span(LATER, "General Mohammad Daud Daud"), [BALKH]) is None


def test_key_words_split_names_from_other_words_and_are_found_near_the_span():
    names, words = evidence.key_words("What is the population of Kabul?")
    assert names == {"kabul"} and "popul" in words
    text = "Afghanistan has nearly 30 million people. " + "Filler words here. " * 20 + "Kabul is the capital."
    start = text.index("nearly")
    assert evidence.share_near(names, text, start, start + 17) == 0.0
    assert evidence.share_in(names, text) == 1.0
    assert evidence.share_in_sentence({"afgha"}, text, start, start + 17) == 1.0
    assert evidence.share_in_sentence(names, text, start, start + 17) == 0.0
    assert evidence.share_near(set(), text, 0, 1) == 1.0  # nothing asked, nothing missing


@pytest.mark.parametrize(("question", "acronym"), [
    ("What does IMU stand for?", "IMU"), ("What does the acronym ANSF stand for?", "ANSF"),
    ("What is the IMU?", "IMU"), ("What is RFE/RL?", "RFE/RL"), ("What is NATO short for?", "NATO"),
    ("What is the full name of the IMU?", "IMU"),
    ("What is the population of Kabul?", None), ("What is Taliban?", None), ("Who leads the IMU?", None)])
def test_acronym_questions_are_recognised(question, acronym):
    assert definitions.asked_acronym(question) == acronym


@pytest.mark.parametrize(("text", "acronym", "long_form"), [
    ("Militants of the Islamic Movement of Uzbekistan (IMU) pose for a photo.", "IMU",
     "Islamic Movement of Uzbekistan"),
    ("A report by Radio Free Europe/Radio Liberty (RFE/RL) said so.", "RFE/RL", "Radio Free Europe/Radio Liberty"),
    ("Staff need Personal Protective Equipment (PPE) at all times.", "PPE", "Personal Protective Equipment"),
    ("They sent Short Message Systems (SMS) to everyone.", "SMS", "Short Message Systems"),
    ("It is a limited liability company (LLC) in Delaware.", "LLC", "limited liability company")])
def test_the_long_form_is_found_before_the_parenthesis(text, acronym, long_form):
    span = definitions.spelled_out(acronym, text)
    assert span is not None and text[span[0]:span[1]] == long_form


def test_no_long_form_where_the_text_never_spells_the_acronym_out():
    assert definitions.spelled_out("IMU", "The IMU (a militant group) is active in the north.") is None
    assert definitions.spelled_out("IMU", "The IMU is active in the north.") is None


def _hit(text: str, rank: int, score: float = 1.0, dense: float | None = 0.5, bm25: float | None = 2.0) -> Hit:
    doc = Document(f"d{rank}", f"Article {rank}", text, f"{rank}.txt")
    return Hit(Passage(f"d{rank}-0", doc.id, text, 0, len(text)), doc, score, rank, dense, bm25)


def test_the_best_ranked_passage_that_spells_it_out_is_cited():
    hits = [_hit("The IMU is active.", 1), _hit("The Islamic Movement of Uzbekistan (IMU) was formed.", 2)]
    hit, start, end = definitions.find("IMU", hits)
    assert hit.rank == 2 and hit.passage.text[start:end] == "Islamic Movement of Uzbekistan"


def test_auroc_coverage_and_risk_on_hand_made_scores():
    right = np.array([True, True, False, False])
    assert selective.auroc(np.array([4, 3, 2, 1]), right) == 1.0
    assert selective.auroc(np.array([1, 2, 3, 4]), right) == 0.0
    assert selective.auroc(np.array([1, 1, 1, 1]), right) == 0.5
    assert np.isnan(selective.auroc(np.array([1, 2]), np.array([True, True])))
    coverage, risk = selective.risk_coverage(np.array([4, 3, 2, 1]), right)
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0] and risk == pytest.approx([0.0, 0.0, 1 / 3, 0.5])
    assert selective.coverage_at(np.array([4, 3, 2, 1]), right, 0.9) == 0.5
    assert selective.coverage_at(np.array([1, 2, 3, 4]), right, 0.9) == 0.0
    assert selective.aurc(np.array([4, 3, 2, 1]), right) == pytest.approx((0 + 0 + 1 / 3 + 0.5) / 4)


def _answer(text: str, score: float, passage: str, start: int = 0) -> Answer:
    return Answer(text, score, 0.5, passage, "d", start, start + len(text), start, start + len(text))


def test_features_read_the_answer_its_rivals_and_its_passage():
    text = "Balkh Governor Mohammad Atta Noor met Dostum in Faryab."
    hits = [_hit(text, 1, score=2.0, dense=0.6, bm25=3.0), _hit("Other words entirely.", 2, score=1.0, bm25=None)]
    start = text.index("Mohammad")
    best = [_answer("Mohammad Atta Noor", 9.0, hits[0].passage.id, start)]
    same = [_answer("Atta Noor", 8.0, hits[0].passage.id, text.index("Atta"))]
    rival = [_answer("Dostum", 6.0, hits[0].passage.id, text.index("Dostum"))]
    x = dict(zip(FEATURES, features("Who is the governor of Balkh?", best, [best, same, rival], hits)))
    assert x["margin"] == 9.0 and x["gap"] == 3.0  # the rival, not the same answer with other bounds
    assert x["share"] == pytest.approx((np.exp(9) + np.exp(8)) / (np.exp(9) + np.exp(8) + np.exp(6) + 1))
    assert x["log_rank"] == 0.0 and x["fused"] == 1.0 and x["dense"] == 0.6 and x["bm25"] == 1.0
    assert x["type"] == 1 and x["type_asked"] == 1
    assert x["names_near"] == x["names_in"] == x["names_sentence"] == 1.0
    assert same_answer(best, same) and not same_answer(best, rival)
    swapped = dict(zip(FEATURES, features("Who is the governor of Kunduz?", best, [best], hits)))
    assert swapped["names_in"] == 0.0 and swapped["gap"] == 10.0


def _saved(levels=None, features_=FEATURES) -> dict:
    n = len(features_)
    return {"features": list(features_), "levels": levels or {"high": 0.9, "medium": 0.6, "low": 0.1},
            "retrieval_weight": 2.0,
            "model": {"mean": [0.0] * n, "scale": [1.0] * n, "coef": [1.0] + [0.0] * (n - 1), "intercept": -5.0}}


def test_the_verifier_is_a_logistic_regression_on_standardised_features_with_levels():
    verifier = Verifier.load_dict(_saved())
    x = np.zeros(len(FEATURES))
    x[0] = 5.0
    assert verifier.probability(x) == pytest.approx(0.5) and verifier.retrieval_weight == 2.0
    assert verifier.level(0.95) == "high" and verifier.level(0.6) == "medium" and verifier.level(0.2) == "low"
    assert verifier.level(0.05) is None


def test_a_verifier_of_other_features_or_a_broken_file_is_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="other features"):
        Verifier.load_dict(_saved(features_=FEATURES[:-1]))
    broken = _saved()
    broken["model"]["coef"] = [1.0]
    with pytest.raises(ModelLoadError, match="not a readable verifier"):
        Verifier.load_dict(broken)
    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read"):
        Verifier.beside(tmp_path)
    assert Verifier.beside(tmp_path / "elsewhere") is None


def test_the_shipped_verifier_loads_and_its_levels_are_ordered():
    verifier = Verifier.beside(shipped_reader_dir())
    assert verifier is not None
    assert verifier.levels["high"] >= verifier.levels["medium"] >= verifier.levels["low"] > 0
    saved = json.loads((shipped_reader_dir() / FILE_NAME).read_text())
    counts = saved["held_out"]["level_counts"]
    assert counts["high"]["right"] >= 0.95 * counts["high"]["answers"]
    assert counts["medium"]["right"] >= 0.80 * counts["medium"]["answers"]


def test_training_sets_levels_that_hold_on_its_data_and_exports_the_fitted_model():
    from rag.training.calibrate import abstention_scores
    from rag.training.verifier import check_export, export, level_counts, levels, models

    rng = np.random.default_rng(0)
    probability = rng.random(2000)
    right = rng.random(2000) < probability  # calibrated by construction
    cut = levels(probability, right, abstain_share=0.2)
    assert cut["high"] >= cut["medium"] >= cut["low"]
    assert cut["low"] == pytest.approx(np.quantile(probability, 0.2))
    counts = level_counts(probability, right, cut)
    assert counts["high"]["right"] >= 0.95 * counts["high"]["answers"] > 0
    assert counts["medium"]["right"] >= 0.80 * counts["medium"]["answers"] > 0
    assert sum(c["answers"] for c in counts.values()) == 2000
    scores = abstention_scores(np.array([True, False, False, True]), np.array([1.0, 0.0, 0.0, 0.0]),
                               np.array([True, True, False, False]))
    assert scores == {"f1_with_no_answer": 0.5, "no_answer_precision": 0.5, "no_answer_recall": 0.5}
    x = rng.normal(size=(300, len(FEATURES)))
    y = x[:, 0] + 0.5 * rng.normal(size=300) > 0
    model = models()["logistic"].fit(x, y)
    exported = export(model)
    check_export(exported, model, x)  # raises if the plain numbers give other probabilities
    verifier = Verifier.load_dict({"features": list(FEATURES), "model": exported, "levels": cut})
    assert verifier.probability(x[0]) == pytest.approx(model.predict_proba(x[:1])[0, 1])
