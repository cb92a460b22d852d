"""The training script on a tiny synthetic set: it trains, checkpoints, resumes step for step and saves
a loadable reader."""

import json

import pytest

from rag.evaluation.squad import load_squad

pytestmark = pytest.mark.slow  # training imports torch: each test imports what it needs, so the fast suite does not

ANIMALS = ["zebra", "tiger", "lion", "otter", "camel", "horse"]


@pytest.fixture()
def data_dir(tmp_path):
    paragraphs = []
    for i, animal in enumerate(ANIMALS):
        context = f"The {animal} lives in the park. It was brought there by keeper number {i}."
        answer = f"keeper number {i}"
        paragraphs.append({"context": context, "qas": [{"id": f"q{i}", "question": f"Who brought the {animal}?",
                           "answers": [{"text": answer, "answer_start": context.index(answer)}]}]})
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "tiny.json").write_text(json.dumps({"data": [{"title": "Zoo", "paragraphs": paragraphs}]}))
    return folder


def test_pairs_include_negatives_without_the_answer(data_dir):
    import random

    from rag.training.data import build_pairs

    questions = load_squad(data_dir / "tiny.json")
    assert all(q.context[q.answer_starts[0]:].startswith(q.answers[0]) for q in questions)
    pairs = build_pairs(questions, negative_rate=1.0, rng=random.Random(0))
    negatives = [p for p in pairs if p[3] == ""]
    assert len(negatives) == len(questions)
    answer_of = {q.question: q.answers[0] for q in questions}
    for question, context, _, _ in negatives:
        assert answer_of[question] not in context


def test_swapped_names_make_questions_the_paragraph_cannot_answer(tmp_path):
    import random

    from rag.training.data import build_pairs, names_in, swapped_question

    sentence = "Who is the governor of Balkh? Then the Taliban said General Dostum met him in Mazar-e Sharif."
    assert names_in(sentence) == (
        "Balkh", "Taliban", "General Dostum", "Mazar-e Sharif")  # not "Who" or "Then", which start sentences
    context = "Mohammad Atta Noor, the governor of Balkh, met Dostum."
    assert swapped_question("Who is the governor of Balkh?", context, ["Kunduz", "Dostum"], random.Random(0)) == \
        "Who is the governor of Kunduz?"  # never a name the paragraph holds
    assert swapped_question("Who is the governor?", context, ["Kunduz"], random.Random(0)) is None
    paragraphs = [{"context": f"The {place} governor is Ahmad Khan number {i}. Kabul is far.",
                   "qas": [{"id": f"q{i}", "question": f"Who governs {place}?",
                            "answers": [{"text": f"Ahmad Khan number {i}", "answer_start": 4 + len(place) + 13}]}]}
                  for i, place in enumerate(["Balkh", "Kunduz", "Takhar"])]
    (tmp_path / "set.json").write_text(json.dumps({"data": [{"title": "North", "paragraphs": paragraphs}]}))
    questions = load_squad(tmp_path / "set.json")
    pairs = build_pairs(questions, negative_rate=0.0, rng=random.Random(0), swap_rate=1.0)
    swapped = [(q, c) for q, c, start, answer in pairs if answer == ""]
    assert len(swapped) == len(questions)
    for question, context in swapped:
        place = question.removeprefix("Who governs ").removesuffix("?")
        assert place in {"Balkh", "Kunduz", "Takhar"} and place not in context


def test_hard_negatives_are_the_bm25_nearest_paragraphs_without_the_answer(tmp_path):
    import random

    from rag.training.data import build_pairs, hard_negatives

    paragraphs = [
        {"context": "The zebra keeper feeds the zebra hay at noon.", "qas": [
            {"id": "q0", "question": "What does the zebra keeper feed the zebra?",
             "answers": [{"text": "hay", "answer_start": 33}]}]},
        {"context": "A zebra keeper once fed a zebra carrots, and the zebra kicked.", "qas": [
            {"id": "q2", "question": "What did the zebra do?", "answers": [{"text": "kicked", "answer_start": 55}]}]},
        {"context": "The otter swims in the pond.", "qas": [
            {"id": "q1", "question": "Where does the otter swim?",
             "answers": [{"text": "the pond", "answer_start": 19}]}]},
    ]
    (tmp_path / "zoo.json").write_text(json.dumps({"data": [{"title": "Zoo", "paragraphs": paragraphs}]}))
    questions = load_squad(tmp_path / "zoo.json")
    assert hard_negatives(questions, [0]) == {0: paragraphs[1]["context"]}  # the zebra's other paragraph
    pairs = build_pairs(questions, negative_rate=0.0, rng=random.Random(0), hard_negative_rate=1.0)
    negatives = [(q, c) for q, c, _, answer in pairs if answer == ""]
    assert len(negatives) == len(questions)
    gold = {q.question: q.answers[0] for q in questions}
    assert all(gold[q] not in c for q, c in negatives)


def test_train_stops_resumes_and_saves_a_reader(data_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    from rag.read.reader import Reader
    from rag.training.data import TrainSettings
    from rag.training.train import train

    settings = TrainSettings(mix={"tiny": 1.0}, batch_size=2, max_length=128, stride=32, epochs=2.0, lr=1e-4)
    out = tmp_path / "reader"
    with pytest.raises(SystemExit) as stopped:
        train(data_dir, out, settings, checkpoint_every=1, max_minutes=0.0)
    assert stopped.value.code == 3 and (out / "checkpoint.pt").exists()
    train(data_dir, out, settings, checkpoint_every=1)
    assert not (out / "checkpoint.pt").exists()
    straight = tmp_path / "straight"  # the same run, never stopped: resuming changes nothing
    train(data_dir, straight, settings, checkpoint_every=1)
    resumed, uninterrupted = load_file(out / "model.safetensors"), load_file(straight / "model.safetensors")
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)
    info = json.loads((out / "reader.json").read_text())
    assert info["training"]["mix"] == {"tiny": 1.0} and info["stats"]["steps"] >= 2
    assert Reader(out).read("Who brought the zebra?", ["The zebra lives in the park."]).answers

    further = tmp_path / "further"
    train(data_dir, further, TrainSettings(mix={"tiny": 1.0}, batch_size=2, max_length=128, stride=32,
                                           epochs=1.0, init=str(out)))
    assert json.loads((further / "reader.json").read_text())["training"]["init"] == str(out)


def test_calibration_fits_decoding_and_threshold_on_held_out_sets_of_five(tmp_path):
    import shutil

    from rag.read.reader import Reader, shipped_reader_dir
    from rag.training.calibrate import calibrate
    from rag.training.data import is_held_out

    paragraphs, i = [], 0
    while len(paragraphs) < 12:  # only held-out paragraphs count: make enough of them
        animal = ANIMALS[len(paragraphs) % len(ANIMALS)]
        context = (f"The {animal} lives in the park, in enclosure {i}. It was brought there by keeper "
                   f"number {len(paragraphs)}, who feeds it every morning.")
        i += 1
        if not is_held_out(context):
            continue
        answer = f"keeper number {len(paragraphs)}"
        paragraphs.append({"context": context, "qas": [{"id": f"q{i}", "question": f"Who brought the {animal} "
                                                                                 f"in enclosure {i - 1}?",
                           "answers": [{"text": answer, "answer_start": context.index(answer)}]}]})
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "tiny.json").write_text(json.dumps({"data": [{"title": "Zoo", "paragraphs": paragraphs}]}))
    reader_dir = tmp_path / "reader"
    shutil.copytree(shipped_reader_dir(), reader_dir)

    calibration = calibrate(reader_dir, folder, {"tiny": 1.0})
    info = json.loads((reader_dir / "reader.json").read_text())
    assert info["calibration"] == calibration and info["decoding"]["held_out"]["questions"] == 12
    held_out = calibration["held_out"]
    assert held_out["passages_per_question"] == 5 and held_out["questions"] > held_out["with_answer"] == 12
    assert 0.0 <= held_out["no_answer_precision"] <= 1.0 and 0.0 <= held_out["no_answer_recall"] <= 1.0
    assert Reader(reader_dir).threshold == calibration["threshold"]
