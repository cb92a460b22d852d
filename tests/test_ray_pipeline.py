"""Indexing on a local Ray of 2 workers gives the index that one process builds."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings import Embedder
from rag.cli import main
from rag.index.folder import PassageIndex
from rag.indexing.bundled import corpus_dir
from rag.indexing.local import LocalPipeline
from rag.ingest import read_documents, read_or_skip
from rag.settings import ChunkSettings

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline():
    from rag.indexing.ray import RayPipeline

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the failing reader below, on the workers
    with RayPipeline(workers=2) as started:
        yield started


class FailsFirstTime:
    """Reads a file, but raises the first time each file is read, as a lost worker or a flaky disk would."""

    def __init__(self, marks: Path) -> None:
        self.marks = marks

    def __call__(self, path, on_skip, max_file_bytes):
        mark = self.marks / path.name
        if not mark.exists():
            mark.touch()
            raise OSError(f"injected failure reading {path}")
        return read_or_skip(path, on_skip, max_file_bytes)


def test_ray_reads_and_embeds_what_one_process_does(pipeline):
    embedder = Embedder(precision="fp32")
    documents = read_documents([corpus_dir()])
    passages, vectors = LocalPipeline().chunk_and_embed(documents, embedder, ChunkSettings())
    skipped = []
    assert pipeline.read([corpus_dir()], skipped.append) == documents and not skipped
    ray_passages, ray_vectors = pipeline.chunk_and_embed(documents, embedder, ChunkSettings())
    assert ray_passages == passages
    np.testing.assert_allclose(ray_vectors, vectors, atol=1e-5)


def test_a_failed_task_is_retried_without_duplicating_documents(pipeline, tmp_path, corpus_docs):
    articles = tmp_path / "articles"
    articles.mkdir()
    for i, doc in enumerate(corpus_docs * 2):  # each article twice, under two names: stored once
        (articles / f"{i}.txt").write_text(doc.text)
    (articles / "empty.txt").write_text("   ")
    marks = tmp_path / "marks"
    marks.mkdir()
    skipped = []
    documents = pipeline.read([articles], skipped.append, read=FailsFirstTime(marks))
    assert len(list(marks.iterdir())) == 5  # every file failed once
    assert documents == read_documents([articles], on_skip=lambda _: None)
    assert len(documents) == len(corpus_docs)
    assert skipped == [f"{articles / 'empty.txt'}: no text in it"]


def test_rag_index_on_ray_writes_the_single_process_index(tmp_path, capsys):
    assert main(["index", str(corpus_dir()), "--out", str(tmp_path / "local")]) == 0
    assert main(["index", str(corpus_dir()), "--out", str(tmp_path / "ray"), "--ray", "--ray-workers", "2"]) == 0
    assert "local Ray of 2 workers" in capsys.readouterr().err
    local, on_ray = PassageIndex.open(tmp_path / "local"), PassageIndex.open(tmp_path / "ray")
    assert list(on_ray.documents.values()) == list(local.documents.values())
    assert list(on_ray.passages) == list(local.passages)
    rows = np.arange(local.rows)
    vectors = [np.vstack([s.vectors.reconstruct(int(r)) for r in rows])
               for s in (local.segments[0], on_ray.segments[0])]
    # bf16 passages, batched differently by the workers: equal to bf16 rounding, the same neighbours
    assert np.abs(vectors[0] - vectors[1]).max() < 0.02
    assert np.all(np.einsum("ij,ij->i", *vectors) > 0.999)
