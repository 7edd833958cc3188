"""What every store backend shares: how the retry policy reads errors (their classes are in
``_exceptions``), the run-key filter, and the checks on artifact names and sources. Imports no
MLflow."""
from __future__ import annotations

import errno
import os
import stat
from typing import ClassVar, Protocol, runtime_checkable

from ..._exceptions import PermanentError, StoreError  # noqa: F401 - raised by every backend
from ..records import NAME_MAX, RunSpec

@runtime_checkable
class Store(Protocol):
    """What the sender needs from a tracking store (modelled on sentry-python's ``Transport``).

    Every call is one attempt: the sender owns the retry policy (``_sender``) and reads the
    errors with ``is_transient``/``is_run_level``; a ``PermanentError`` sets one record aside.
    Calls come from the sender thread, and from up to ``CONCURRENCY`` request threads at once
    for ``log_batch``. Implementations: ``MlflowStore`` (``MlflowClient``), ``RestStore`` (a
    tracking server) and the tests' fake (``tests/unit/fakes.py``).
    """

    CONCURRENCY: ClassVar[int]  # log_batch requests the store takes at once (1: no pipelining)
    FORK_GATED: ClassVar[bool]  # a fork must wait for calls in progress (SQLite, SQLAlchemy)

    def open_run(self, spec: RunSpec) -> str | None:
        """The run's id: checked, found by ``spec.run_key`` or created (if ``spec.owned``);
        None while a run another process creates is not there yet."""

    def last_steps(self, run_id: str) -> dict:
        """``{key: highest step}`` of every metric the run has."""

    def run_tag(self, run_id: str, key: str) -> str | None:
        """The run's tag ``key`` as the store has it now, or None."""

    def log_batch(self, run_id: str, metrics: list, tags: list) -> None:
        """``(seq, key, value, timestamp_ms, step)`` metrics and ``(seq, key, value)`` tags."""

    def upload_bytes(self, run_id: str, artifact_path: str, data: bytes) -> None:
        """``data`` stored as the artifact at exactly ``artifact_path``."""

    def upload_file(self, run_id: str, artifact_dir: str, local_path: str) -> None:
        """The file ``local_path`` stored under ``artifact_dir`` with its own name."""

    def end_run(self, run_id: str, status: str, end_time_ms: int) -> None:
        """The run ends with ``status`` (``FINISHED``, ``FAILED``, ``KILLED``)."""

    def log_params(self, run_id: str, params: dict) -> None:
        """Params (write-once: another value for a key is refused)."""

    def update_experiment_tag(self, experiment_id: str, key: str, update) -> bool:
        """The experiment's tag ``key`` set to ``update(current value or None)`` unless that
        is None; True if it wrote. Where ``ATOMIC_TAG_UPDATE`` is false another process may
        write the tag between the read and the write."""


# MLflow error codes that mean "this request is wrong", as opposed to "try again later".
_RUN_GONE = {"RESOURCE_DOES_NOT_EXIST", "INVALID_STATE"}


def _key_filter(spec: RunSpec) -> str:
    """The search filter for the run made for ``spec.run_key``, under the tag its journal uses."""
    run_key = spec.run_key
    if not run_key or not run_key.isalnum():  # made by uuid4().hex; never quoted otherwise
        raise ValueError(f"run key {run_key!r} is not alphanumeric")
    return f"tags.`{spec.key_tag}` = '{run_key}'"


def experiment_tags() -> dict:
    """Tags of an experiment we create: the MLflow 3 UI opens it on its training runs."""
    from ..presentation import EXPERIMENT_KIND_TAG, TRAINING_KIND

    return {EXPERIMENT_KIND_TAG: TRAINING_KIND}


def run_params(tags: dict) -> dict:
    """The params of a run we create, from its arguments tag (``{}`` if it has none)."""
    import json

    from ..presentation import params_from_args
    from ..records import ARGUMENTS_TAG

    try:
        args = json.loads(tags.get(ARGUMENTS_TAG) or "[]")
    except ValueError:
        return {}
    return params_from_args(args) if isinstance(args, list) else {}


def _first_run(found: list) -> str | None:
    """One run for a key even if a store somehow holds two: the earliest, then the lowest id,
    so every process that looks picks the same one."""
    return min(found)[1] if found else None


def http_status(exc: BaseException) -> int | None:
    get = getattr(exc, "get_http_status_code", None)
    if get is None:
        return None
    try:
        return int(get())
    except Exception:  # noqa: BLE001
        return None


# Local errors that no retry fixes: the record itself is undeliverable (a name too long for the
# file system, a source file gone, unreadable, or a folder; a file where a folder must go).
_PERMANENT_ERRNOS = {errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOENT,
                     errno.ENOTDIR, errno.EISDIR, errno.EEXIST}


def _is_network_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("requests", "urllib3", "http", "socket", "ssl")


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed: network or disk trouble, 429, 5xx, auth (fixable).

    A 4xx is permanent only when it carries MLflow's error body: a proxy or load balancer in
    front of the server answers its own HTML 404/400 pages while the server is being moved,
    and rejecting on those would drop records a retry delivers.
    """
    if isinstance(exc, PermanentError):
        return False
    status = http_status(exc)
    if status is not None:
        if isinstance(exc, StoreError) and 400 <= status < 500 and exc.error_code is None:
            return True
        return status >= 500 or status in (401, 403, 408, 429)
    if isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNOS and not _is_network_error(exc):
        return False
    if isinstance(exc, (OSError, TimeoutError)):  # includes requests' and urllib3's errors
        return True
    kind = type(exc)
    if kind.__module__ == "sqlite3":  # SQLITE_BUSY past the busy timeout, a full disk, ...
        return kind.__name__ == "OperationalError"
    return kind.__module__.startswith("sqlalchemy") and kind.__name__ in (
        "OperationalError", "TimeoutError", "DisconnectionError")


def is_run_level(exc: BaseException) -> bool:
    """True when the store refused the whole run (deleted, finished), not one record."""
    return getattr(exc, "error_code", None) in _RUN_GONE


def check_artifact_name(artifact_path: str) -> None:
    """PermanentError if no file system could store a component of ``artifact_path``."""
    for part in artifact_path.split("/"):
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise PermanentError(
                f"artifact path {artifact_path!r}: the name {part[:40]!r}... is "
                f"{len(part.encode('utf-8', 'surrogateescape'))} bytes, more than a file "
                f"system allows ({NAME_MAX})")


def open_source(local_path: str, artifact_dir: str | None = None):
    """The FILE record's source opened for reading, or PermanentError naming why it cannot be.

    Opened non-blocking and checked with ``fstat``: a FIFO in ``outputs/`` would otherwise
    block the upload (and every record after it) until someone writes to it. With the
    record's ``artifact_dir``, what was opened is checked to lie inside the project (a link
    in ``outputs/`` swapped after the scan must not lead out: ``_outputs.escaping_target``).
    """
    try:
        fd = os.open(local_path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in _PERMANENT_ERRNOS or exc.errno == errno.ENXIO:
            raise PermanentError(f"cannot read {local_path!r}: {exc.strerror}") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise PermanentError(f"{local_path!r} is not a regular file; not uploaded")
    if artifact_dir is not None:
        from ..outputs import escaping_target

        real = escaping_target(fd, local_path, artifact_dir)
        if real is not None:
            os.close(fd)
            raise PermanentError(f"{local_path!r} leads to {real!r}, outside the project folder "
                                 "and the share directory; not uploaded")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _never_sent(exc: BaseException) -> bool:
    """True for a connection that was never made (refused, unreachable): no request went out."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and (
        "NewConnectionError" in repr(exc) or "Connection refused" in str(exc))


