"""The `rag` command, run in-process through its real entry point."""

import json

import pytest

from rag.cli import main


@pytest.mark.slow
def test_index_then_search_json(tmp_path, capsys, corpus_docs):
    articles = tmp_path / "articles"
    articles.mkdir()
    for i, doc in enumerate(corpus_docs):
        (articles / f"{i}.txt").write_text(doc.text)
    (articles / "photo.txt").write_bytes(b"\x00\x01\x02binary")
    out = tmp_path / "idx"
    assert main(["index", str(articles), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("photo.txt: binary file, not text") == 1
    assert "indexed 2 documents" in captured.out

    assert main(["search", "Which IMU leader was killed in a U.S. drone attack?", "--index", str(out),
                 "-k", "3", "--json"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert {"rank", "score", "doc_id", "title", "source", "passage", "start", "end"} <= set(hits[0])
    assert "Tohir Yuldosh" in hits[0]["passage"]


@pytest.mark.slow
def test_default_index_search_prints_titles(capsys):
    assert main(["search", "Who is the spokesman for Dostum's party?", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] Dostum and Noor announce new alliance")
    assert "Zabih Fetrat" in out.split("[2]")[0]


@pytest.mark.parametrize("argv, message", [
    (["index", "/no/such/folder", "--out", "{tmp}/x"], "no such file or folder"),
    (["search", "anything", "--index", "{tmp}/none"], "no index folder"),
    (["index", "{tmp}/empty", "--out", "{tmp}/x"], "no readable articles"),
])
def test_user_mistakes_print_one_line_and_fail(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_empty_question_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "   "])
    assert exit_info.value.code == 2
    assert "the question is empty" in capsys.readouterr().err
