"""``rag serve`` in a thread of the test process, and a client for it: the real server, no stand-in."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``rag serve`` in a thread: FastAPI with the chat mounted, over a library folder."""

    def __init__(self, folder: Path, read_only: bool = False, access=None) -> None:
        """``access`` defaults to no tokens and no rate limit: the tests' requests all come from one address."""
        import uvicorn

        from rag.serve.access import Access, Limits
        from rag.serve.api import create_app
        from rag.serve.library import Library
        from rag.serve.ui import mount

        access = access if access is not None else Access(limits=Limits(requests_per_minute=0))
        self.library = Library(folder, read_only=read_only)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(mount(create_app(self.library, access), self.library, access), host="127.0.0.1",
                                port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def call(self, method: str, path: str, body: object = None, token: str | None = None,
             raw: bytes | None = None) -> tuple[int, dict | list]:
        """One request; ``body`` is sent as JSON (``raw`` as it is), ``token`` as the bearer."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(self.url + path, method=method, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def upload(self, files: dict[str, bytes], token: str | None = None) -> tuple[int, dict]:
        boundary = uuid.uuid4().hex
        body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                        f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
                        for name, data in files.items()) + f"--{boundary}--\r\n".encode()
        headers = {"content-type": f"multipart/form-data; boundary={boundary}",
                   **({"authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(self.url + "/api/documents", method="POST", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
