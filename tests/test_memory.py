"""The server gives freed heap back only when no request is in flight, once per quiet spell."""

from __future__ import annotations

import asyncio
import time

from rag.serve.memory import IdleTrim


def test_the_heap_is_trimmed_once_after_each_quiet_spell_and_never_during_a_request():
    trims: list[float] = []

    async def slow_app(scope, receive, send):
        await asyncio.sleep(0.5)  # in flight for longer than the idle time

    trimmer = IdleTrim(slow_app, idle_seconds=0.2, trim=lambda: trims.append(time.monotonic()))

    async def request() -> float:
        await trimmer({"type": "http"}, None, None)
        return time.monotonic()

    time.sleep(0.5)
    assert trims == []  # nothing served yet: nothing to give back
    started = time.monotonic()
    finished = asyncio.run(request())
    assert all(t < started for t in trims) and trims == []  # not while the request was in flight
    time.sleep(0.6)
    assert len(trims) == 1 and trims[0] >= finished + 0.2  # once, after the quiet time
    time.sleep(0.4)
    assert len(trims) == 1  # and not again while nothing happens
    asyncio.run(request())
    time.sleep(0.6)
    assert len(trims) == 2 and trimmer.trims == 2


def test_lifespan_events_pass_through_without_counting():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    trimmer = IdleTrim(app, idle_seconds=0.1, trim=lambda: None)
    asyncio.run(trimmer({"type": "lifespan"}, None, None))
    time.sleep(0.3)
    assert seen == ["lifespan"] and trimmer.trims == 0
