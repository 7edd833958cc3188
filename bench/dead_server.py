"""Every ``azml`` command against a server that is down (a closed port), one that is hung
(accepts TCP connections, never answers) and one that trickles (a header byte a second,
forever): seconds until it ends, its exit status and its one line. Target: each within 15 s.

    python -m bench.dead_server        # or: python bench/dead_server.py
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

if not __package__:  # run as a file: bench/__init__.py did not put tests/ on sys.path
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "tests"))
from dead_server_commands import (  # noqa: E402 - the table the tests check
    COMMANDS, TricklingServer, command)

GUARD = 120  # seconds before a command is called hung and killed


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def _env(uri: str, folder: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "AZML_"))}
    env.update(MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME="bench", HOME=folder,
               AZML_HOME=os.path.join(folder, "home"), **extra)
    return env


def _leave_a_journal(uri: str, folder: str) -> None:
    script = os.path.join(folder, "logs.py")
    with open(script, "w") as fh:
        fh.write("from azureml.logging import get_azureml_logger\n"
                 "get_azureml_logger().log('acc', 0.5)\n")
    subprocess.run([sys.executable, script], cwd=folder, capture_output=True, timeout=GUARD,
                   env=_env(uri, folder, AZML_FLUSH_TIMEOUT="1"))


def measure(azml: str, uri: str, name: str, args: list, folder: str) -> tuple:
    if name.startswith("sync"):
        _leave_a_journal(uri, folder)
    started = time.monotonic()
    try:
        proc = subprocess.run([azml, *args], cwd=folder, env=_env(uri, folder),
                              capture_output=True, text=True, timeout=GUARD)
        code, err = proc.returncode, proc.stderr.strip().splitlines()
    except subprocess.TimeoutExpired:
        code, err = None, [f"still running after {GUARD} s: killed"]
    return time.monotonic() - started, code, err


def main() -> int:
    azml = shutil.which("azml", path=os.path.dirname(sys.executable)) or shutil.which("azml")
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(128)
    trickling = TricklingServer()
    servers = {"closed port": _closed_port(),
               "hung server": f"http://127.0.0.1:{hung.getsockname()[1]}",
               "trickling": trickling.__enter__()}
    print(f"{'command':<20} {'server':<12} {'seconds':>8} {'exit':>5}  lines  first line")
    worst = 0.0
    try:
        for name in COMMANDS:
            for kind, uri in servers.items():
                with tempfile.TemporaryDirectory(prefix="azml-dead-") as folder:
                    args = command(name, folder)
                    elapsed, code, err = measure(azml, uri, name, args, folder)
                worst = max(worst, elapsed)
                line = (err[0] if err else "")[:90]
                print(f"{name:<20} {kind:<12} {elapsed:8.1f} {code!s:>5}  {len(err):>5}  {line}",
                      flush=True)
    finally:
        hung.close()
        trickling.__exit__(None, None, None)
    print(f"slowest: {worst:.1f} s (target: every command within 15 s)")
    return 0 if worst < 15 else 1


if __name__ == "__main__":
    sys.exit(main())
