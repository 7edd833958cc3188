"""Every `azml` command that talks to a tracking server, with arguments that reach it: what
``tests/test_rest_client.py`` and ``python -m bench.dead_server`` run against a closed port, a
hung server and a trickling one (one table, so the benchmark measures exactly what the tests
check)."""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

RUN = "0" * 32
COMMANDS = {  # "{folder}": the command's own working folder
    "history list": ["history", "list"],
    "history last": ["history", "last"],
    "history info": ["history", "info", "-r", RUN],
    "history info -a": ["history", "info", "-r", RUN, "-a", "driver_log"],
    "history download": ["history", "download", "-r", RUN, "-d", "{folder}/dl"],
    "history compare": ["history", "compare", "-r", RUN, "-r", "1" * 32],
    "history promote": ["history", "promote", "-r", RUN, "-ap", "outputs", "-n", "m"],
    "asset download": ["asset", "download", "-l", "{folder}/model.link", "-d", "{folder}/asset"],
    "submit": ["submit", "{folder}/train.py"],
    "sync": ["sync"],  # the caller leaves a journal first
}


def command(name: str, folder) -> list[str]:
    """The arguments of ``name``, with the script and link file it needs written in ``folder``."""
    folder = Path(folder)
    (folder / "train.py").write_text("print('ran')\n")
    (folder / "model.link").write_text(json.dumps({"name": "m", "version": "1"}))
    return [arg.format(folder=folder) for arg in COMMANDS[name]]


class TricklingServer:
    """A slow-loris server on 127.0.0.1: it answers every connection with a status line, then
    one byte of an endless header every ``interval`` seconds. Each read of a client gets data
    long before a per-read timeout, so only a deadline on the whole request ends it.

    ``with TricklingServer() as url:`` serves in daemon threads and, on leaving, stops them all
    and closes every socket it opened."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> str:
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)  # so the accept loop sees the stop
        self._spawn(self._accept)
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self._spawn(self._trickle, conn)

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self._stop.wait(self.interval):
                    conn.sendall(b"X")  # one more byte of a header line that never ends
            except OSError:  # the client gave up and closed: done
                return
