"""Delivery that goes on after the script exits.

A backlog the exit cannot deliver within ``AZML_HANDOFF_AFTER`` (a million points left at the
end take ~150 s on a single-worker server) is handed to a detached process, so the training
job ends when its script does:

1. the exit stops its own sender (what it delivered is settled in the journal, a series
   record up to its last delivered point) and starts ``python -m azml_compat._core.handoff
   JOURNAL``, in a session of its own (a terminal closing or a job's process group being
   killed does not end it), while it still holds the journal's lock;
2. the exit closes the journal (keeping private copies of ``outputs/`` files), which lets go
   of the lock, and exits;
3. the detached process waits for that lock (so it never sends while the script's sender
   could), notes its pid in the journal's meta (``azml sync --list``: "delivering (pid N)"),
   and replays the journal as ``azml sync`` does: from where the script stopped, no record
   sent twice but the few requests in flight when the sender stopped (resent identically:
   MLflow ignores a metric it already has).

If the store stops answering for ``--give-up-after`` seconds it leaves the rest in the journal
for ``azml sync``. What it says goes to ``<journal>.log`` beside the journal (deleted with the
journal once everything is delivered).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys

log = logging.getLogger("azml")


def log_path(journal_path: str) -> str:
    return journal_path[:-3] + ".log"


def start(journal_path: str, give_up_after: float) -> int:
    """Start the detached delivery of ``journal_path`` (call while holding its lock); its pid.
    It inherits the environment (the store's credentials never touch the disk)."""
    fd = os.open(log_path(journal_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "azml_compat._core.handoff", journal_path, f"{give_up_after:g}"],
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True,
            close_fds=True, cwd=os.path.dirname(journal_path) or None)
    finally:
        os.close(fd)
    return proc.pid


def main(argv: list[str]) -> int:
    from .._config import Settings
    from .replay import SYNC_SETTINGS, sync_one

    path, give_up_after = argv[0], float(argv[1])
    settings = Settings.from_env(SYNC_SETTINGS)
    result = sync_one(path, give_up_after=give_up_after, settings=settings, wait_lock=True,
                      claim=True)
    gone = not os.path.exists(path)  # delivered: by us, or by the script or a sync first
    if gone and result.skipped:  # gone when we got the lock: we made that lock file again
        try:
            os.unlink(path[:-3] + ".lock")
        except OSError:
            pass
    if gone or result.ok:  # a journal kept for refused records only: --list counts them
        try:
            os.unlink(log_path(path))
        except OSError:
            pass
        return 0
    reason = result.error or result.skipped or "records left"
    log.warning("background delivery of %s stopped: %s; run `azml sync` to deliver the rest",
                path, reason)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
