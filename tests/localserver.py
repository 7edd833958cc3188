"""A throwaway ``mlflow server`` on 127.0.0.1, for the tests, the benchmarks and trying things.

Started in its own process group (it has worker children) with MLflow 3's job consumers off:
otherwise seven job-consumer processes start and eat a small machine's CPU.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``mlflow server`` with a SQLite (or given) backend and proxied artifacts under ``root``."""

    def __init__(self, root: Path, backend_uri: str | None = None, extra_args=(),
                 env: dict | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend_uri = backend_uri or f"sqlite:///{self.root / 'server.db'}"
        self.args = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.root / "artifacts"),
            *extra_args,
        ]
        self.env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = self.root / "server.log"

    def start(self, timeout: float = 120.0) -> "LocalServer":
        import requests

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout}s: {self.log.read_text()[-3000:]}")

    def warm(self, connections: int = 16, rounds: int = 10, fast_s: float = 0.25) -> float:
        """Bring every worker process to the state of a server that has been up a while.

        Each uvicorn worker opens its tracking store on its first request: measured here,
        ~1.0-1.3 s for that request against ~0.02 s after. A client keeping one connection
        pays it once; one with several requests in flight meets several cold workers in the
        first seconds of a fresh server, a cost no user of a running server pays. So rounds of
        ``connections`` concurrent store calls, each on its own connection (the kernel hands
        connections to whichever worker accepts), until a round's slowest call is under
        ``fast_s``. Returns the last round's slowest call, in seconds.
        """
        import requests
        from concurrent.futures import ThreadPoolExecutor

        url = self.url + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"

        def call(_):
            began = time.monotonic()
            with requests.Session() as session:  # a new connection each call
                session.get(url, timeout=60)
            return time.monotonic() - began

        slowest = float("inf")
        with ThreadPoolExecutor(connections) as pool:
            for _ in range(rounds):
                slowest = max(pool.map(call, range(connections)))
                if slowest < fast_s:
                    break
        return slowest

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(15)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
