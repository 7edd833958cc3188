"""Every error azml-compat raises, in one tree. Public (``from azml_compat import ...``):
``AzmlError``, ``RecordRejected``, ``DeliveryTimeout``; the rest are internal.

* AzmlError                     base of every error of ours
  + RecordRejected              handle.wait(): this record did not reach the store and will not
  |                             by waiting (refused, undeliverable, or no run to log to);
  |                             ``__cause__`` is the store's error; ``.status``, ``.error_code``
  + DeliveryTimeout             handle.wait() without a timeout: the store took no record for
  |                             AZML_WAIT_TIMEOUT s (also a ``TimeoutError``)
  + ConfigError                 a bad setting, one line naming it (also a ``ValueError``)
  + StoreError                  a tracking server's refusal: HTTP status, MLflow error code
  + PermanentError              a record no retry can deliver (its name, its local file)
  + IncompleteDatabase          a SQLite store MLflow cannot use as it is (not retryable)
  + GaveUp                      ``azml sync --give-up-after``: the store stayed unreachable
  |  + Stopped                  the sender was stopped (its session closed) while retrying
  + JournalLocked               a journal another live process (or sync) holds
  + UnreadableJournal           a journal without the meta that says where its records go
  + RunGone                     ``azml sync``: the store no longer has the journal's run
  + RunNotCreated               ``azml submit``: the run could not be created in time
  + HistoryError                the ``azml`` CLI: something the user can fix, in one line
  + QueryError                  the CLI: a bad ``--query``

Errors MLflow, the OS or the network raise stay theirs; the retry policy reads them
(``_stores.base.is_transient``) and ``RecordRejected`` carries them as its cause.
"""
from __future__ import annotations

import sys


class AzmlError(Exception):
    """Base class of every error azml-compat raises."""


class ConfigError(AzmlError, ValueError):
    """A setting's value cannot be used; the message is one line naming it and the value.
    A ``ValueError`` too: scripts that caught the ValueError a bad URI raised still do."""


# -- what handle.wait() raises ---------------------------------------------------------------------
class RecordRejected(AzmlError):
    """``handle.wait()``: the record did not reach the store and waiting will not change that.

    Raised on every backend (SQLite through ``MlflowClient``, a server over REST, a local file
    that cannot be read). The store's own error is ``__cause__``; ``status`` is the HTTP status
    of the server's answer (None when no HTTP request was refused: SQLite, a local error);
    ``error_code`` is MLflow's (``INVALID_PARAMETER_VALUE``, ...) or None. ``kind`` and ``key``
    name the record (``"tag"``, ``"bad,key"``). Every ``wait()`` raises a new object, so threads
    waiting on records of one refused request never share (and rewrite) one traceback.
    """

    def __init__(self, message: str, *, kind: str | None = None, key: str | None = None,
                 status: int | None = None, error_code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key
        self.status = status
        self.error_code = error_code

    @classmethod
    def for_record(cls, seq: int, kind: str, key: str | None, cause: BaseException, store: str,
                   kept: bool = False, journal: str | None = None) -> "RecordRejected":
        """One line naming the record and the store's reason. ``kept``: the run could not be
        opened, nothing was sent, and the record stays in ``journal`` (None: in memory only)."""
        from ._config import redact_text

        text = str(cause).strip().splitlines()
        reason = redact_text(f"{type(cause).__name__}: {text[0] if text else ''}".strip())[:500]
        what = f"{kind} {key!r} (record #{seq})" if key is not None else f"record #{seq}"
        if isinstance(cause, PermanentError):  # found out here, before or while sending
            message = f"{what} cannot be delivered to {store}: {reason}"
        elif not kept:
            message = f"{what} was refused by {store}: {reason}"
        else:
            where = (f"it stays in {journal}: run `azml sync` once the run is there" if journal
                     else "it is kept in memory only (the journal could not be written)")
            message = (f"{what} was not delivered: cannot log to this run at {store} ({reason}); "
                       f"{where}")
        return cls(message, kind=kind, key=key, status=http_status_of(cause),
                   error_code=getattr(cause, "error_code", None))


def http_status_of(cause: BaseException) -> int | None:
    """The HTTP status a server answered with, or None where no HTTP request was refused.

    MLflow's own exceptions map every error code to a status (``get_http_status_code``) even
    when no HTTP was involved (the SQLite store): only a ``RestException`` came from a server.
    """
    if isinstance(cause, StoreError):
        return cause.status
    exceptions = sys.modules.get("mlflow.exceptions")
    if exceptions is not None and isinstance(cause, exceptions.RestException):
        try:
            return int(cause.get_http_status_code())
        except Exception:  # noqa: BLE001
            return None
    status = getattr(getattr(cause, "response", None), "status_code", None)  # requests' errors
    return status if isinstance(status, int) else None


class DeliveryTimeout(AzmlError, TimeoutError):
    """``wait()`` gave up on a store that delivered nothing for ``AZML_WAIT_TIMEOUT`` seconds."""


# -- tracking stores -------------------------------------------------------------------------------
class StoreError(AzmlError):
    """A tracking server's refusal, with what the retry policy needs to know."""

    def __init__(self, message: str, status: int, error_code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.retry_after = retry_after

    def get_http_status_code(self) -> int:
        return self.status

    @classmethod
    def from_response(cls, response, endpoint: str) -> "StoreError":
        try:
            body = response.json()
            code, message = body.get("error_code"), body.get("message") or response.text
        except ValueError:
            code, message = None, response.text.strip()[:500]
        retry_after = None
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            pass
        return cls(f"{endpoint}: HTTP {response.status_code} {code or ''} {message}".strip(),
                   response.status_code, code, retry_after)


class PermanentError(AzmlError):
    """A record no retry can deliver (its local file, its name): set it aside, go on."""


class IncompleteDatabase(AzmlError):
    """A SQLite tracking store MLflow cannot use as it is; the message says what to do.

    Not an OSError nor a SQLAlchemy error: retrying cannot fix it, so the sender gives up at
    once and the records stay in the journal for ``azml sync``.
    """


# -- journals and sync -----------------------------------------------------------------------------
class GaveUp(AzmlError):
    """The store stayed unreachable past ``give_up_after``: the records stay where they are
    (a give-up is never a rejection; the next ``azml sync`` tries again)."""


class Stopped(GaveUp):
    """``Sender.stop()`` came while the sender was retrying (the dispatcher is closing): like a
    give-up, the records stay in the journal for ``azml sync``."""


class JournalLocked(AzmlError):
    """Another live process (or ``azml sync``) holds this journal."""


class UnreadableJournal(AzmlError):
    """A journal without the meta that says where its records go."""


class RunGone(AzmlError):
    """``azml sync``: the store no longer has the journal's run (deleted, or its database
    wiped); the records stay for ``azml sync --to-new-run``."""


# -- the azml command ------------------------------------------------------------------------------
class RunNotCreated(AzmlError):
    """The run could not be created in time: the script is not started (nothing ran, so
    nothing is lost)."""


class HistoryError(AzmlError):
    """Something the user can fix, said in one line."""


class QueryError(AzmlError):
    """A bad ``--query``: told before anything is fetched."""
