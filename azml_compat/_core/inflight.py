"""How many ``log_batch`` requests to keep in flight to a tracking server, and what the last
process to send there found, so that the next one starts where that one ended.

A short script never finishes climbing: 20,000 points are 20 requests, and the first
``EPOCH`` of them go one at a time before a second level is tried. Measured against MLflow's
default server (4 workers, warmed, load ~2-3 on 2 cores), 20,000 points took 2.63 s starting
at one request in flight and 2.02 s starting at two (MLflow's own script: 5.80 s); against
``--workers 1`` starting at two cost 2.91 -> 3.50 s. Hence the memory: one small file per
server in ``$AZML_HOME/in-flight/`` (beside the journal folder, never in it: nothing there but
journals), written when a sender closes, read when the next one starts.
It is a hint. It is never trusted beyond the levels it names (the window goes on measuring and
moves), and a missing, unreadable or malformed file means starting at one, as before. The
file is named by a hash of the tracking URI without its credentials and holds only levels and
rates.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time

from .._redact import redact

log = logging.getLogger("azml")

# Older than this, a server's memory is not used: its configuration may have changed.
REMEMBER_FOR_S = 7 * 24 * 3600


class InFlight:
    """How many ``log_batch`` requests to keep in flight: the number the server absorbs
    fastest, found by climbing from one (or from where the last process left off).

    More is not always faster. Measured on this 2-core machine with 1,000-point batches:
    MLflow's default server (uvicorn, 4 workers) took 9.1k points/s one at a time and 14.4k
    with 4 in flight, but `mlflow server --workers 1` took 9.8k one at a time and 8.2-8.9k
    with 2-4: its one process runs the requests in threads that contend for the GIL and for
    SQLite's write lock. So after every ``EPOCH`` completed requests the rate (points per
    second of time with requests in flight) is compared with the level's neighbours': up a
    level while climbing paid or the level above was faster, down while the level below is
    unknown or was faster. The neighbours are measured again now and then (``FORGET``): the
    server's load changes.
    """

    EPOCH = 6  # completed requests per measurement (~0.5-1 s at 1,000 points a request)
    FORGET = 8  # epochs after which the neighbours' rates are measured again

    def __init__(self, most: int, remembered: dict | None = None) -> None:
        self.most = most
        self.limit = 1
        self.rates: dict[int, float] = {}
        if remembered is not None:
            self.limit, self.rates = _valid(remembered, most)
        self._points = 0
        self._requests = 0
        self._busy = 0.0  # seconds of this epoch with deliver() running
        self._since: float | None = None  # when deliver() (re)started counting
        self._epochs = 0

    def state(self) -> dict:
        """What a later process starts from (``InFlight(most, remembered=state)``)."""
        return {"limit": self.limit, "rates": {str(k): v for k, v in self.rates.items()}}

    def resume(self, now: float) -> None:
        self._since = now

    def pause(self, now: float) -> None:
        if self._since is not None:
            self._busy += now - self._since
            self._since = None

    def completed(self, points: int, now: float) -> None:
        self._points += points
        self._requests += 1
        if self._requests < self.EPOCH:
            return
        self.pause(now)
        rate = self._points / self._busy if self._busy > 0 else 0.0
        self.resume(now)
        self._points = self._requests = 0
        self._busy = 0.0
        old = self.rates.get(self.limit)
        self.rates[self.limit] = rate if old is None else (old + rate) / 2
        self._epochs += 1
        if self._epochs % self.FORGET == 0:
            self.rates = {self.limit: self.rates[self.limit]}
        rates, here, up, down = self.rates, self.rates[self.limit], self.limit + 1, self.limit - 1
        # Up to an unknown level only while climbing paid (this level beat the one below).
        climbing = rates.get(down) is None or here > rates[down]
        if up <= self.most and (rates[up] > here if up in rates else climbing):
            self.limit = up
        elif down >= 1 and (down not in rates or rates[down] > here):
            self.limit = down


def _valid(remembered: dict, most: int) -> tuple[int, dict[int, float]]:
    """``(limit, rates)`` from a remembered state, within ``1..most``; ``(1, {})`` for
    anything else."""
    try:
        limit = int(remembered["limit"])
        rates = {int(k): float(v) for k, v in remembered.get("rates", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return 1, {}
    if not 1 <= limit <= most:
        return 1, {}
    return limit, {k: v for k, v in rates.items() if 1 <= k <= most and v > 0}


def memory_path(home: str, tracking_uri: str) -> str:
    """The memory file, under ``home`` (``$AZML_HOME``), of the server at ``tracking_uri``:
    named by a hash of the URI with its credentials taken out, so neither a password nor a
    token reaches the file system."""
    digest = hashlib.sha256(redact(tracking_uri).encode("utf-8", "surrogatepass")).hexdigest()
    return os.path.join(home, "in-flight", f"{digest[:16]}.json")


def recall(path: str, now: float | None = None) -> dict | None:
    """The state a previous process left at ``path``, or None (none, old, unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            found = json.load(fh)
        saved = float(found["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (time.time() if now is None else now) - saved > REMEMBER_FOR_S:
        return None
    return found if isinstance(found, dict) else None


def remember(path: str, window: InFlight) -> None:
    """Leave ``window``'s state at ``path`` for the next process (atomically: concurrent
    processes each write a whole file, the last one wins). Nothing measured: nothing written."""
    if not window.rates:
        return
    partial = f"{path}.{os.getpid()}.partial"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(partial, "w", encoding="utf-8") as fh:
            json.dump({**window.state(), "at": time.time()}, fh)
        os.replace(partial, path)
    except OSError as exc:  # a hint: a full or read-only disk costs the next run a climb
        log.debug("cannot keep the requests-in-flight level at %s: %s", path, exc)
        try:
            os.unlink(partial)
        except OSError:
            pass
