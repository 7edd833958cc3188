"""Run a command on a real pseudo-terminal, as a person's shell would: what it prints there
(colours, progress bars) is what a person sees."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios


def in_pty(argv, cwd, env: dict, columns: int = 100, rows: int = 50,
           stderr=None, timeout: float = 120) -> tuple[int, str]:
    """``argv`` with stdin, stdout and (unless ``stderr`` is given) stderr on a pseudo-terminal
    of ``columns`` x ``rows``, no COLUMNS/LINES variables: ``(exit status, all it printed)``
    with the terminal's CRLF as ``\\n`` (a bare ``\\r``, a bar redrawn, stays)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    environ = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(argv, cwd=cwd, env=environ, stdin=follower, stdout=follower,
                            stderr=follower if stderr is None else stderr, close_fds=True)
    os.close(follower)
    out = b""
    try:
        while True:  # read until the child closes the terminal (EIO on Linux)
            ready, _, _ = select.select([leader], [], [], timeout)
            assert ready, f"{argv} printed nothing for {timeout} s"
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(timeout=timeout), out.decode(errors="replace").replace("\r\n", "\n")
