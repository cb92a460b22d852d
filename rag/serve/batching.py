"""Run concurrent calls of a batch function together: each caller gets its own result.

A server thread per request would otherwise run one model forward pass per question,
each competing for the same cores. Here one worker takes whatever requests are waiting
(up to ``max_batch``), runs them as one batch, and hands each caller its result; while it
works, new requests queue up and form the next batch. A lone request waits for nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from rag.settings import check_positive_int

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """Batches the items of concurrent :meth:`submit` calls through ``run_batch``.

    Args:
        run_batch: maps a list of items to a list of results, in order.
        max_batch: the most items one batch takes.
    """

    def __init__(self, run_batch: Callable[[Sequence[Item]], Sequence[Result]], max_batch: int = 16) -> None:
        self._run_batch = run_batch
        self.max_batch = check_positive_int("max_batch", max_batch)
        self._waiting: queue.SimpleQueue[tuple[Item, Future]] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name="micro-batcher", daemon=True)
        self._worker.start()

    def submit(self, item: Item) -> Result:
        """Run ``item`` in the next batch and return its result (or raise what the batch raised)."""
        future: Future = Future()
        self._waiting.put((item, future))
        return future.result()

    def _work(self) -> None:
        while True:
            batch = [self._waiting.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self._run_batch([item for item, _ in batch])
            except Exception as e:  # every caller of the batch hears of it
                for _, future in batch:
                    future.set_exception(e)
                continue
            for (_, future), result in zip(batch, results):
                future.set_result(result)
