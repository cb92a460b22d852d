"""Soak and abuse benchmark: many clients mixing questions, searches, uploads and removals on `rag serve`,
then the same with costly and malformed requests sent alongside.

    python -m eval.soak [--clients 16] [--seconds 60] [--warm-up-seconds 90]

Starts `rag serve` with a write token and the default limits on a copy of the bundled index.
Each client connects from its own loopback address (127.0.0.10, .11, ...), so each has its own
rate, as clients on a newsroom's network do. After a warm-up (each kind of request once, then
``--clients`` clients at once, then phase 4's load for ``--warm-up-seconds``), four phases,
``--seconds`` each:

1. quiet: one client asks the gold questions alone: the server's own p50/p95;
2. quiet under abuse: the same, with the abuser of phase 4 alongside;
3. soak: ``--clients`` clients, each in a loop: 70 % ask, 20 % search, 5 % upload an article of
   its own, 5 % remove one it uploaded;
4. soak under abuse: the same, and one more client sending, in a loop, the costly requests a
   shared server must bound: a 1 MB question, k of 10^9 and 10^30, k as a string and as true,
   a lone surrogate, NULs, punctuation only, a 1 MB body, 30 files in one upload, writes
   without the token.

Reports per phase the requests, the 429s (a client waits as ``Retry-After`` says), errors
(anything but a 2xx; for the abuser, anything but the 4xx and 429 it is meant to get), 5xx,
and p50/p95 of ordinary questions (and the ratio of p95 with the abuser to without it, for one
client and for ``--clients``); tracebacks in the server's log; and the documents: every
one that should be there (the bundled ones, and each upload not removed) against what the
server lists at the end.

The server's resident memory is read every half second throughout, and its growth is reported
in two like-for-like states, each against the warmed-up server:
- under load: the median of the readings in the last 15 s of the loaded warm-up against the same
  of phase 4 (the same mix of requests; one reading under load swings with the requests in
  flight at that instant, by tens of MB), and the slope of a line fit to phase 4's readings;
- at rest: after the warm-up and after phase 4, each read once the server has had 15 s with no
  request (``rag serve`` gives freed heap back after 10 s idle: ``rag.serve.memory``).
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from eval.process_memory import memory_mb
from eval.results import write_json
from rag.errors import run_guarded
from rag.evaluation.gold import BUNDLED_GOLD, load_gold
from rag.evaluation.metrics import latency_summary
from rag.settings import configure_entry_point

TOKEN = "soak-write-token-" + uuid.uuid4().hex
# Memory at rest is read after this long with no request: the server trims 10-12.5 s after its last.
QUIET_SECONDS = 15.0
SAMPLE_SECONDS = 0.5  # how often memory is read throughout
LOADED_WINDOW_SECONDS = 15.0  # memory under load: the median of the readings in a loaded phase's last seconds
ABUSE = [  # (what, method, path, body, headers): each must get a 4xx, never a 5xx
    ("1 MB question", "POST", "/api/ask", {"question": "Who? " * 200_000}, {}),
    ("k = 10^9", "POST", "/api/ask", {"question": "Who leads the IMU?", "k": 10**9}, {}),
    ("k = 10^30", "POST", "/api/search", {"question": "Who leads the IMU?", "k": 10**30}, {}),
    ("k as a string", "POST", "/api/ask", {"question": "Who leads the IMU?", "k": "5"}, {}),
    ("k as true", "POST", "/api/ask", {"question": "Who leads the IMU?", "k": True}, {}),
    ("lone surrogate", "POST", "/api/ask", {"question": "\ud800"}, {}),
    ("NUL bytes", "POST", "/api/ask", {"question": "\x00\x00\x00"}, {}),
    ("punctuation only", "POST", "/api/search", {"question": "?!..."}, {}),
    ("1 MB body", "POST", "/api/ask", {"question": "Who?", "sources": ["x" * 1_000_000]}, {}),
    ("remove without the token", "DELETE", "/api/documents/anything", None, {}),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, source: str, method: str, path: str, body: object = None, headers: dict | None = None,
            raw: bytes | None = None) -> tuple[int, float, object]:
    """(status, seconds, parsed body) of one request from the loopback address ``source``; status 0 if it failed.

    A 429's body is replaced by its ``Retry-After`` seconds, as an int.
    """
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300, source_address=(source, 0))
    try:
        connection.request(method, path, body=data, headers={"content-type": "application/json", **(headers or {})})
        response = connection.getresponse()
        payload = response.read()
        if response.status == 429:
            return 429, time.perf_counter() - started, int(response.getheader("retry-after") or 1)
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = payload[:200].decode("utf-8", "replace")
        return response.status, time.perf_counter() - started, parsed
    except OSError as e:
        return 0, time.perf_counter() - started, f"{type(e).__name__}: {e}"
    finally:
        connection.close()


def _upload(port: int, source: str, files: dict[str, bytes], token: str | None) -> tuple[int, float, object]:
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                    f"Content-Type: text/plain\r\n\r\n".encode() + data + b"\r\n"
                    for name, data in files.items()) + f"--{boundary}--\r\n".encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}",
               **({"authorization": f"Bearer {token}"} if token else {})}
    return request(port, source, "POST", "/api/documents", raw=body, headers=headers)


def _article(client: int, n: int) -> bytes:
    tag = uuid.uuid4().hex[:10]
    return (f"Council {tag} votes on the harbour budget\n\nThe council of district {client}-{n} ({tag}) voted "
            f"on Tuesday to fund {n + 3} new ferries, its clerk said. The vote was {client + 5} to {n % 4}.\n").encode()


class Client(threading.Thread):
    """One newsroom user, from its own address, until ``stop``: the ordinary mix of requests."""

    def __init__(self, number: int, port: int, questions: list[str], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.source = f"127.0.0.{10 + number}"
        self.number, self.port, self.questions, self.stop = number, port, questions, stop
        self.rng = random.Random(number)
        self.statuses: list[int] = []
        self.throttled = 0
        self.ask_seconds: list[float] = []
        self.errors: list[str] = []
        self.uploaded: list[str] = []
        self.removed: list[str] = []
        self.history: dict[str, list[str]] = {}  # what this client saw happen to each document it uploaded

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            roll = self.rng.random()
            if roll < 0.7:
                status, seconds, body = request(self.port, self.source, "POST", "/api/ask",
                                                {"question": self.rng.choice(self.questions)})
                if status == 200:
                    self.ask_seconds.append(seconds)
            elif roll < 0.9:
                status, _, body = request(self.port, self.source, "POST", "/api/search",
                                          {"question": self.rng.choice(self.questions), "k": 3})
            elif roll < 0.95 or not self.uploaded:
                status, _, body = _upload(self.port, self.source, {f"c{self.number}-{n}.txt": _article(self.number, n)},
                                          TOKEN)
                if status == 200:
                    self.uploaded += [d["doc_id"] for d in body["added"]]
                    for d in body["added"] + body["already_indexed"]:
                        self.history.setdefault(d["doc_id"], []).append("added" if d in body["added"] else "already")
            else:
                doc_id = self.uploaded.pop(self.rng.randrange(len(self.uploaded)))
                status, _, body = request(self.port, self.source, "DELETE", f"/api/documents/{doc_id}",
                                          headers={"authorization": f"Bearer {TOKEN}"})
                self.history.setdefault(doc_id, []).append(f"removed: {status}")
                if status == 200:
                    self.removed.append(doc_id)
                else:  # refused or throttled: still there
                    self.uploaded.append(doc_id)
            if status == 429:  # a well-behaved client waits as it is told
                self.throttled += 1
                self.stop.wait(float(body))  # type: ignore[arg-type]
                continue
            self.statuses.append(status)
            if status != 200:
                self.errors.append(f"{status}: {str(body)[:120]}")


class Abuser(threading.Thread):
    """Sends the costly and malformed requests of ABUSE in a loop, from its own address."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.source = "127.0.0.9"
        self.statuses: dict[str, list[int]] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            for what, method, path, body, headers in ABUSE:
                status = request(self.port, self.source, method, path, body, headers)[0]
                self.statuses.setdefault(what, []).append(status)
            files = {f"f{i}.txt": _article(99, i) for i in range(30)}
            self.statuses.setdefault("30 files in one upload", []).append(_upload(self.port, self.source, files,
                                                                                   TOKEN)[0])
            self.statuses.setdefault("upload without the token", []).append(
                _upload(self.port, self.source, {"x.txt": _article(98, 0)}, None)[0])
            time.sleep(0.05)


class MemorySampler(threading.Thread):
    """Reads a process's resident memory every :data:`SAMPLE_SECONDS`, each reading labelled with ``phase``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.phase, self.stop = pid, "start", threading.Event()
        self.readings: list[tuple[str, float, float]] = []  # (phase, monotonic seconds, VmRSS MB)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                rss = memory_mb(self.pid)["VmRSS"]
            except (OSError, KeyError):  # the process has ended
                return
            self.readings.append((self.phase, time.monotonic(), rss))
            self.stop.wait(SAMPLE_SECONDS)

    def under_load(self, phase: str) -> dict[str, float]:
        """Phase ``phase``'s readings: the median of those in its last :data:`LOADED_WINDOW_SECONDS`, its
        lowest and highest reading, and the slope of a least-squares line through all of them (MB a minute)."""
        times = np.array([t for p, t, _ in self.readings if p == phase])
        rss = np.array([r for p, _, r in self.readings if p == phase])
        if len(rss) < 2:
            raise SystemExit(f"too few memory readings in phase {phase!r}: make it longer")
        last = rss[times >= times[-1] - LOADED_WINDOW_SECONDS]
        return {"median_of_last_seconds": float(np.median(last)), "readings_in_last_seconds": len(last),
                "min": float(rss.min()), "max": float(rss.max()),
                "slope_mb_per_minute": float(np.polyfit((times - times[0]) / 60, rss, 1)[0])}


def _start(folder: Path, port: int, token_file: Path, log: Path) -> subprocess.Popen:
    """`rag serve` in a process of its own, its log to ``log`` (a pipe nobody reads would fill and stall it)."""
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", str(folder), "--port",
                                   str(port), "--write-token-file", str(token_file)],
                                  stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"rag serve exited: {log.read_text()}")
        if request(port, "127.0.0.1", "GET", "/api/documents")[0] == 200:
            return server
        time.sleep(0.5)
    server.kill()
    raise SystemExit("rag serve did not start within 180 s")


def _warm_up(port: int, questions: list[str], clients: int) -> None:
    """Every kind of request, one client and then ``clients`` at once (twice), so that memory is measured from
    a server that has run its largest batches, concurrent uploads and all its threads (allocators keep what
    they once needed)."""
    for q in questions[:5]:
        request(port, "127.0.0.1", "POST", "/api/ask", {"question": q})
        request(port, "127.0.0.1", "POST", "/api/search", {"question": q})
    status, _, body = _upload(port, "127.0.0.1", {"warm-up.txt": _article(0, 0)}, TOKEN)
    for doc in body["added"] if status == 200 else []:  # type: ignore[index]
        request(port, "127.0.0.1", "DELETE", f"/api/documents/{doc['doc_id']}",
                headers={"authorization": f"Bearer {TOKEN}"})
    def one_client(i: int) -> None:  # what a soak client does, once of each
        source = f"127.0.3.{i + 1}"
        for q in questions[i::clients][:3]:
            request(port, source, "POST", "/api/ask", {"question": q})
        status, _, body = _upload(port, source, {f"warm-{i}.txt": _article(100 + i, 0)}, TOKEN)
        for doc in body["added"] if status == 200 else []:  # type: ignore[index]
            request(port, source, "DELETE", f"/api/documents/{doc['doc_id']}",
                    headers={"authorization": f"Bearer {TOKEN}"})

    for _ in range(2):
        burst = [threading.Thread(target=one_client, args=(i,)) for i in range(clients)]
        for thread in burst:
            thread.start()
        for thread in burst:
            thread.join()


def _phase(port: int, questions: list[str], clients: int, seconds: float, abuse: bool) -> tuple[dict, list[Client]]:
    stop = threading.Event()
    workers = [Client(i, port, questions, stop) for i in range(clients)]
    abuser = Abuser(port, stop) if abuse else None
    for worker in workers + ([abuser] if abuser else []):
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers + ([abuser] if abuser else []):
        worker.join(timeout=300)
    statuses = [s for w in workers for s in w.statuses]
    asks = [s for w in workers for s in w.ask_seconds]
    row = {"clients": clients, "requests": len(statuses), "throttled": sum(w.throttled for w in workers),
           "ordinary_errors": sum(s != 200 for s in statuses),
           "error_examples": [e for w in workers for e in w.errors][:5],
           "ordinary_5xx": sum(s >= 500 or s == 0 for s in statuses), "asks": len(asks),
           "ask_latency_s": latency_summary(asks) if asks else None}
    if abuser:
        row["abuse"] = {what: sorted(set(s)) for what, s in abuser.statuses.items()}
        row["abuse_requests"] = sum(len(s) for s in abuser.statuses.values())
        row["abuse_5xx"] = sum(code >= 500 or code == 0 for s in abuser.statuses.values() for code in s)
        row["abuse_unexpected"] = sorted({code for s in abuser.statuses.values() for code in s}
                                         - {400, 401, 403, 404, 413, 429})
    return row, workers


def run(clients: int, seconds: float, warm_up_seconds: float, server_log: Path) -> dict:
    """The warm-up and the three phases (see the module's notes); the server's log is copied to ``server_log``."""
    questions = [g.question for g in load_gold(BUNDLED_GOLD) if g.answerable]
    work = Path(tempfile.mkdtemp(prefix="rag-soak-"))
    try:
        from rag.indexing.bundled import default_index

        folder = default_index().save(work / "index")
        token_file = work / "token"
        token_file.write_text(TOKEN + "\n")
        port = _free_port()
        log = work / "server.log"
        server = _start(folder, port, token_file, log)
        sampler = MemorySampler(server.pid)
        sampler.start()
        at_rest = {}

        def phase(name: str, clients: int, seconds: float, abuse: bool) -> tuple[dict, list[Client]]:
            sampler.phase = name
            return _phase(port, questions, clients, seconds, abuse)

        def rest(when: str) -> None:  # memory once the server has had a quiet moment (it trims when idle)
            sampler.phase = f"at rest {when}"
            time.sleep(QUIET_SECONDS)
            at_rest[when] = memory_mb(server.pid)

        try:
            before = {d["doc_id"] for d in request(port, "127.0.0.1", "GET", "/api/documents")[2]}
            sampler.phase = "warm-up"
            _warm_up(port, questions, clients)
            _, warming = phase("loaded warm-up", clients, warm_up_seconds, abuse=True)
            rest("after warm-up")
            quiet, alone = phase("quiet", 1, seconds, abuse=False)
            quiet_abused, alone_abused = phase("quiet under abuse", 1, seconds, abuse=True)
            soak, soaked = phase("soak", clients, seconds, abuse=False)
            abused, abusing = phase("soak under abuse", clients, seconds, abuse=True)
            rest("after soak under abuse")
            listed = {d["doc_id"] for d in request(port, "127.0.0.1", "GET", "/api/documents")[2]}
        finally:
            sampler.stop.set()
            sampler.join()
            server.terminate()
            server.wait(timeout=60)
        tracebacks = log.read_text().count("Traceback")
        server_log.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, server_log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    clients_of_all_phases = warming + alone + alone_abused + soaked + abusing
    kept = {doc_id for w in clients_of_all_phases for doc_id in w.uploaded}
    removed = {doc_id for w in clients_of_all_phases for doc_id in w.removed}
    expected = (before | kept) - removed
    loaded = {name: sampler.under_load(name) for name in ("loaded warm-up", "soak", "soak under abuse")}
    return {"clients": clients, "seconds_per_phase": seconds, "warm_up_seconds": warm_up_seconds,
            "phases": {"quiet": quiet, "quiet under abuse": quiet_abused, "soak": soak, "soak under abuse": abused},
            "server_tracebacks": tracebacks,
            "rss_under_load_mb": loaded, "rss_under_load_growth": _ratio(loaded, "median_of_last_seconds") - 1,
            "memory_at_rest_mb": at_rest, "rss_at_rest_growth": _ratio(at_rest, "VmRSS") - 1,
            "rss_readings": [{"phase": p, "seconds": round(t - sampler.readings[0][1], 2), "mb": round(r, 1)}
                             for p, t, r in sampler.readings],
            "documents": {"before": len(before), "uploaded_and_kept": len(kept), "removed": len(removed),
                          "expected": len(expected), "listed": len(listed),
                          "lost": sorted(expected - listed), "unexpected": sorted(listed - expected),
                          "history_of_the_unexpected": {doc_id: [event for w in clients_of_all_phases
                                                                 for event in w.history.get(doc_id, [])]
                                                        for doc_id in sorted(listed - expected)}}}


def _ratio(memory: dict[str, dict[str, float]], key: str) -> float:
    """The last reading of ``memory`` over its first (the end of the soak over the warmed-up server)."""
    first, *_, last = memory.values()
    return last[key] / first[key]


def table(result: dict) -> str:
    lines = [f"{'phase':<20}{'requests':>9}{'429':>6}{'errors':>8}{'5xx':>5}{'asks':>6}{'p50 ms':>8}{'p95 ms':>8}"]
    for name, row in result["phases"].items():
        latency = row["ask_latency_s"] or {"p50": float("nan"), "p95": float("nan")}
        lines.append(f"{name:<20}{row['requests']:>9}{row['throttled']:>6}{row['ordinary_errors']:>8}"
                     f"{row['ordinary_5xx']:>5}"
                     f"{row['asks']:>6}{1000 * latency['p50']:>8.0f}{1000 * latency['p95']:>8.0f}")
    phases = result["phases"]
    abused = [phases["quiet under abuse"], phases["soak under abuse"]]
    statuses = {what: sorted({code for row in abused for code in row["abuse"][what]}) for what in abused[1]["abuse"]}
    unexpected = sorted({code for row in abused for code in row["abuse_unexpected"]})
    lines += ["", f"abuse: {sum(row['abuse_requests'] for row in abused)} requests, "
                  f"5xx {sum(row['abuse_5xx'] for row in abused)}, statuses other than "
                  f"400/401/403/404/413/429: {unexpected or 'none'}",
              *(f"  {what:<26} {codes}" for what, codes in statuses.items()),
              "ordinary p95 under abuse / without: " + ", ".join(
                  f"{phases[plain]['clients']} client{'s' if phases[plain]['clients'] > 1 else ''} "
                  f"{_p95(phases[plain + ' under abuse']) / _p95(phases[plain]):.2f}" for plain in ("quiet", "soak")),
              *_memory_lines(result),
              f"tracebacks in the server's log: {result['server_tracebacks']}",
              f"documents: {result['documents']['expected']} expected, {result['documents']['listed']} listed, "
              f"{len(result['documents']['lost'])} lost, {len(result['documents']['unexpected'])} unexpected"]
    return "\n".join(lines)


def _p95(row: dict) -> float:
    return row["ask_latency_s"]["p95"] if row["ask_latency_s"] else float("nan")


def _memory_lines(result: dict) -> list[str]:
    loaded, rest = result["rss_under_load_mb"], result["memory_at_rest_mb"]
    lines = [f"server RSS under load (MB; median of each phase's last {LOADED_WINDOW_SECONDS:.0f} s, its range, "
             "slope):"]
    lines += [f"  {name:<18}{row['median_of_last_seconds']:>7.0f}   {row['min']:.0f}-{row['max']:.0f}"
              f"   {row['slope_mb_per_minute']:+.1f} MB/min" for name, row in loaded.items()]
    lines += [f"  growth from the loaded warm-up to the end of the soak under abuse: "
              f"{100 * result['rss_under_load_growth']:+.1f} %",
              f"server RSS at rest (MB, after {QUIET_SECONDS:.0f} s with no request): "
              + ", ".join(f"{when} {m['VmRSS']:.0f}" for when, m in rest.items())
              + f"; growth {100 * result['rss_at_rest_growth']:+.1f} %"]
    return lines


def _seconds(text: str) -> float:
    """A phase's length from the command line: at least 5 s, so that memory is read often enough in it."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not seconds >= 5:
        raise argparse.ArgumentTypeError(f"a phase must last at least 5 s, not {text}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=_seconds, default=60.0, help="length of each phase")
    # 90 s: under this load the server's memory climbs for the first 60-90 s, then holds (docs/results.md)
    parser.add_argument("--warm-up-seconds", type=_seconds, default=90.0,
                        help="length of the loaded warm-up (the soak under abuse's mix), from whose end memory "
                             "growth is measured")
    parser.add_argument("--out", type=Path, default=Path("eval-results/soak.json"))
    args = parser.parse_args(argv)
    configure_entry_point()
    return run_guarded(report, args)


def report(args: argparse.Namespace) -> None:
    result = run(args.clients, args.seconds, args.warm_up_seconds, args.out.with_suffix(".server.log"))
    print(table(result))
    write_json(args.out, result)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
