"""Fault injection: kill -9 mid-save, concurrent writers, read-only and full disks, corrupt and bad input.

Every test counts documents before and after: the figure that matters is documents lost, and it
must be 0. Run ``pytest -s tests/test_fault_injection.py`` to see the counts.

Real processes and real filesystems: the kills are SIGKILL of a forked writer at each primitive
file operation of a save (not timing), the concurrent writers are ``rag index --update`` processes,
and the read-only and full disks are small tmpfs mounts (where this machine lets root mount one).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag.cli import main
from rag.errors import IndexWriteError, InvalidInputError, RagError
from rag.index.folder import PassageIndex
from rag.indexing.local import LocalPipeline
from rag.indexing.workflow import add_documents, build_index
from rag.types import Document
from tests.fakes import HashEmbedder, use_fake_models

ROOT = Path(__file__).resolve().parents[1]
PRIMITIVES = ("open", "write", "fsync", "mkdir", "rename", "replace", "unlink", "rmdir")


def _articles(prefix: str, n: int) -> list[Document]:
    texts = [f"{prefix} report {i}: the council of district {i} voted on the {prefix} budget. "
             f"Officials said the vote on item {i} was close." for i in range(n)]
    from rag.ingest import document_id

    return [Document(document_id(t), f"{prefix} {i}", t, f"{prefix}-{i}.txt") for i, t in enumerate(texts)]


def _doc_ids(folder: Path) -> set[str]:
    return set(PassageIndex.open(folder, HashEmbedder()).documents)


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture()
def fake_models(monkeypatch):
    """The CLI in this process builds and loads indexes with the fake embedder."""
    use_fake_models(monkeypatch.setattr)


@pytest.fixture()
def base(tmp_path, fake_index):
    """A saved index of the bundled corpus, to copy for each trial."""
    return fake_index.save(tmp_path / "base")


def _save_killed_at(folder: Path, docs: list[Document], kill_at: int) -> bool:
    """Fork a writer that adds ``docs`` and saves, SIGKILLed at its ``kill_at``-th file operation.

    Returns True if the kill happened, False if the save finished first.
    """
    pid = os.fork()
    if pid == 0:  # the writer
        try:
            index = PassageIndex.open(folder, HashEmbedder())
            add_documents(index, docs)
            calls = [0]

            def counted(fn):
                def op(*args, **kwargs):
                    calls[0] += 1
                    if calls[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return fn(*args, **kwargs)
                return op

            for name in PRIMITIVES:
                setattr(os, name, counted(getattr(os, name)))
            index.save(folder)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.slow  # a save killed at each of its file operations in turn: seconds
def test_kill_9_at_every_file_operation_of_a_save_loses_nothing(tmp_path, base):
    before = _doc_ids(base)
    new = _articles("harbour", 5)
    after = before | {d.id for d in new}
    outcomes = {"old": 0, "new": 0}
    kill_at = 1
    while True:
        trial = tmp_path / f"trial-{kill_at}"
        shutil.copytree(base, trial)
        if not _save_killed_at(trial, new, kill_at):
            assert _doc_ids(trial) == after  # the save ran to the end
            break
        found = _doc_ids(trial)  # loads, whatever instant the writer died at
        assert found in (before, after), f"killed at operation {kill_at}: {len(before | after) - len(found)} lost"
        outcomes["old" if found == before else "new"] += 1
        # The next save cleans what the dead one left, and keeps every document.
        index = PassageIndex.open(trial, HashEmbedder())
        add_documents(index, new)
        index.save(trial)
        assert _doc_ids(trial) == after
        live = (trial / "CURRENT").read_text().strip()
        assert all(e in (".writer.lock", "CURRENT", live) or e.startswith("gen-") for e in _entries(trial))
        assert len([e for e in _entries(trial) if e.startswith("gen-")]) <= 2
        kill_at += 1
    kills = kill_at - 1
    print(f"\nfault injection: {kills} kill -9 points survived ({outcomes['old']} left the old index, "
          f"{outcomes['new']} the new one), 0 documents lost")
    assert kills >= 20 and outcomes["old"] and outcomes["new"]  # the kills spanned the commit point


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from tests.fakes import use_fake_models
    use_fake_models(setattr)
    from rag.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def _write_articles(folder: Path, docs: list[Document]) -> Path:
    folder.mkdir()
    (folder / "articles.jsonl").write_text("".join(json.dumps({"title": d.title, "text": d.text}) + "\n" for d in docs))
    return folder


@pytest.mark.slow  # two writer processes, three times
@pytest.mark.parametrize("trial", range(3))
def test_concurrent_updates_keep_every_document(tmp_path, base, trial):
    folder = tmp_path / "idx"
    shutil.copytree(base, folder)
    batches = [_articles(f"writer{w}-trial{trial}", 10) for w in range(2)]
    sources = [_write_articles(tmp_path / f"w{w}", docs) for w, docs in enumerate(batches)]
    from rag.index.generations import IndexFolder

    with IndexFolder(folder).writer():  # both writers start while the lock is held, so they must contend
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), "index", str(src), "--out", str(folder),
                                     "--update"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for src in sources]
        for writer in writers:  # release only once both are blocked on the lock
            said = iter(writer.stderr.readline, "")
            assert any("waiting for another process to finish writing" in line for line in said)
    results = [w.communicate(timeout=120) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], results
    expected = _doc_ids(base) | {d.id for docs in batches for d in docs}
    lost = len(expected - _doc_ids(folder))
    print(f"\nconcurrent writers, trial {trial}: 2 writers x 10 documents, {lost} documents lost")
    assert lost == 0


def test_a_second_writer_with_no_wait_fails_clearly(tmp_path, base, fake_models, capsys):
    folder = tmp_path / "idx"
    shutil.copytree(base, folder)
    src = _write_articles(tmp_path / "src", _articles("late", 2))
    from rag.index.generations import IndexFolder

    with IndexFolder(folder).writer():
        holder = subprocess.run([sys.executable, "-c", WRITER, str(ROOT), "index", str(src), "--out", str(folder),
                                 "--update", "--no-wait"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert holder.returncode == 2
    assert holder.stderr.strip().splitlines()[-1].startswith("error: another process is writing the index")
    assert "Traceback" not in holder.stderr
    assert _doc_ids(folder) == _doc_ids(base)


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture()
def small_disk(tmp_path):
    where = tmp_path / "disk"
    _mount_tmpfs(where, "size=256k")
    yield where
    gc.collect()  # as in read_only_disk
    subprocess.run(["umount", str(where)], check=True)


@pytest.fixture()
def read_only_disk(tmp_path, fake_index):
    where = tmp_path / "ro"
    _mount_tmpfs(where, "size=4m")
    fake_index.save(where / "idx")
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
    yield where
    gc.collect()  # indexes the test loaded hold their files open (memory map, SQLite) until collected
    subprocess.run(["umount", str(where)], check=True)


def test_read_only_folder_fails_in_one_line_before_any_embedding(tmp_path, read_only_disk, fake_models, capsys,
                                                                  monkeypatch):
    src = _write_articles(tmp_path / "src", _articles("ro", 3))
    encoded = []
    monkeypatch.setattr(HashEmbedder, "encode", lambda self, texts, **_: encoded.append(texts))
    before = _doc_ids(read_only_disk / "idx")
    for out, update in ((read_only_disk / "new", []), (read_only_disk / "idx", ["--update"])):
        assert main(["index", str(src), "--out", str(out), *update]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: cannot ") and "Read-only file system" in err[-1]
    assert encoded == []  # refused before the embedder ran
    assert _doc_ids(read_only_disk / "idx") == before


def test_full_disk_fails_in_one_line_and_keeps_the_old_index(tmp_path, small_disk, fake_models, capsys):
    folder = small_disk / "idx"
    build_index(_articles("small", 3), HashEmbedder()).save(folder)
    before = _doc_ids(folder)
    big = _articles("flood", 600)
    # The index's own save: a real ENOSPC midway, the live index untouched (added by the primitive,
    # which does not check the room first as the indexing workflow does).
    index = PassageIndex.open(folder, HashEmbedder())
    index.add_embedded(big, *LocalPipeline().chunk_and_embed(big, index.embedder, index.chunking))
    with pytest.raises(IndexWriteError, match="the disk is full; the index there is unchanged"):
        index.save(folder)
    assert _doc_ids(folder) == before
    assert [e for e in _entries(folder) if e.startswith(".gen-")] == []  # the torn generation is gone
    # The CLI checks the room first, before embedding.
    src = _write_articles(tmp_path / "src", big)
    assert main(["index", str(src), "--out", str(folder), "--update"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: not enough disk space for the index")
    assert _doc_ids(folder) == before


def test_out_pointed_at_a_folder_of_articles_touches_nothing(tmp_path, fake_models, capsys):
    articles = _write_articles(tmp_path / "mydocs", _articles("mine", 3))
    (articles / "notes.txt").write_text("my own notes")
    snapshot = {p.name: p.read_bytes() for p in articles.iterdir()}
    for argv in (["index", str(articles), "--out", str(articles)],
                 ["index", str(articles), "--out", str(articles), "--update"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is not an index folder and is not empty" in err and err.count("\n") == 1
        assert {p.name: p.read_bytes() for p in articles.iterdir()} == snapshot


def test_update_with_other_chunk_settings_is_an_error(tmp_path, base, fake_models, capsys):
    folder = tmp_path / "idx"
    shutil.copytree(base, folder)
    src = _write_articles(tmp_path / "src", _articles("more", 2))
    assert main(["index", str(src), "--out", str(folder), "--update", "--max-tokens", "80"]) == 2
    assert "was built with chunking ChunkSettings(max_tokens=160, overlap_sentences=1); an update keeps" in \
        capsys.readouterr().err
    assert _doc_ids(folder) == _doc_ids(base)
    assert main(["index", str(src), "--out", str(folder), "--update", "--max-tokens", "160"]) == 0
    assert _doc_ids(folder) == _doc_ids(base) | {d.id for d in _articles("more", 2)}


def test_malformed_inputs_are_skipped_once_each_and_the_rest_is_indexed(tmp_path, fake_models, capsys):
    src = tmp_path / "src"
    src.mkdir()
    good = _articles("good", 2)
    (src / "feed.jsonl").write_text(json.dumps({"text": good[0].text}) + "\n{broken json\n"
                                    + json.dumps({"title": "no text"}) + "\n"
                                    + json.dumps({"text": good[1].text}) + "\n")
    (src / "utf16.txt").write_bytes("A UTF-16 article about the harbour council's vote.".encode("utf-16"))
    (src / "photo.txt").write_bytes(b"\x89PNG\x00\x00binary")
    (src / "dump.txt").write_text("word " * 500_000)  # 2.5 MB
    out = tmp_path / "idx"
    assert main(["index", str(src), "--out", str(out), "--max-file-mb", "1"]) == 0
    captured = capsys.readouterr()
    for where in ("feed.jsonl:2:", "feed.jsonl:3:", "photo.txt: binary file", "dump.txt: 2.5 MB, over the size limit"):
        assert captured.err.count(where) == 1, where
    assert "indexed 3 documents" in captured.out and "skipped 4" in captured.out
    titles = {d.title for d in PassageIndex.open(out, HashEmbedder()).documents.values()}
    assert "A UTF-16 article about the harbour council's vote." in titles


def test_library_errors_are_rag_errors_and_value_errors(fake_index):
    index = PassageIndex.open(fake_index.save(Path(os.environ["RAG_CACHE_DIR"]) / "lib-errors"), HashEmbedder())
    with pytest.raises(InvalidInputError, match="list of document ids, got the string 'abc'"):
        index.remove("abc")
    with pytest.raises(InvalidInputError, match="no document with id 'nope'"):
        index.remove(["nope"])
    from rag.ingest import read_documents
    from rag.read.reader import Reader
    from rag.search.retriever import Retriever
    from rag.settings import ChunkSettings

    for call in (lambda: Retriever(index).search(""), lambda: Retriever(index).search("q", k=0),
                 lambda: Retriever(index, mode="nope"), lambda: ChunkSettings(max_tokens=2),
                 lambda: Reader(max_answer_tokens=0), lambda: read_documents(["/no/such/path"])):
        with pytest.raises(RagError):
            call()
    with pytest.raises(ValueError):  # still catchable the old way
        Retriever(index).search("q", k=-1)


def test_a_missing_reader_path_fails_at_once_in_one_line(capsys):
    assert main(["ask", "anything", "--reader", "/missing/reader"]) == 2
    err = capsys.readouterr().err
    assert err == "error: no reader model at /missing/reader: that folder does not exist\n"


def test_a_busy_port_fails_in_one_line_before_loading_models(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot serve on 127.0.0.1:{port}") and err.count("\n") == 1


@pytest.mark.slow
def test_a_model_that_is_not_installed_fails_at_once_in_one_line(tmp_path, fake_index, capsys):
    import time

    src = _write_articles(tmp_path / "src", _articles("x", 1))
    started = time.perf_counter()
    assert main(["index", str(src), "--out", str(tmp_path / "idx"), "--model", "no-such/embedder"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: embedding model 'no-such/embedder' is not installed here")
    assert "RAG_ALLOW_DOWNLOADS=1" in err[-1] and not any("Traceback" in line for line in err)
    # An index that names a model this machine lacks (the fake one) fails the same way at its first query.
    fake_index.save(tmp_path / "fake-idx")
    assert main(["search", "council", "--index", str(tmp_path / "fake-idx")]) == 2
    assert capsys.readouterr().err.startswith("error: embedding model 'fake-hash-embedder' is not installed here")
    assert time.perf_counter() - started < 30  # no network retries
