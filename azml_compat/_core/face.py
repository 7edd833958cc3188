"""What every face (the Workbench logger, SDK v1's ``Run``) holds of the session it logs to:
its hot-path callables, bound once so a log call is one dict lookup and one method call, and
what a value that is not a plain number becomes as records (the same for both faces)."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from .dispatcher import DoneHandle
from .records import ARTIFACT, MAX_TAG_VALUE, METRIC, SERIES, TAG
from .values import (DOCUMENT, NOTHING, POINT, SERIES as SERIES_VALUE, TABLE, TEXT, classify,
                     encode_text)

if TYPE_CHECKING:
    from .dispatcher import Handle
    from .session import Session

_time_ns = time.time_ns


class Face:
    """Bound to one session; ``_process`` rebinds the process's faces after ``os.fork``."""

    _session: "Session"

    def _bind(self, session: "Session") -> None:
        """Log through ``session`` from now on. After ``os.fork`` the child rebinds the objects
        the script already holds (module globals, class attributes) to its own session."""
        self._session = session
        self._key_of = session.keys.known.get  # a C call on the hot path
        self._put = session.dispatcher.put
        self._put_stepped = session.dispatcher.put_stepped

    def _record(self, name: str, key: str, value) -> "Handle":
        """What a value that is not a plain number becomes, for both faces: a metric point, a
        stepped metric, a tag (a text too long for one also a file), a table or a JSON
        document."""
        timestamp = _time_ns() // 1_000_000  # taken before the (possibly slow) conversion
        kind, payload = classify(name, value)
        if kind == POINT:
            return self._put_stepped(METRIC, key, payload, timestamp)
        if kind == SERIES_VALUE:
            return self._put_stepped(SERIES, key, payload, timestamp, len(payload))
        if kind == TEXT:
            if len(payload) > MAX_TAG_VALUE:
                # MLflow caps tag values at 8,000 characters: keep the whole text as a file.
                path = f"metrics/{key}.txt"
                self._put(ARTIFACT, path, encode_text(payload))
                note = f"... [truncated; full text in artifact {path}]"
                payload = payload[: MAX_TAG_VALUE - len(note)] + note
            return self._put(TAG, key, payload)
        if kind == TABLE:  # MLflow's own table: the UI draws it, mlflow.load_table reads it
            columns, rows = payload
            return self._session.tables.snapshot(f"metrics/{key}", columns, rows)
        if kind == DOCUMENT:
            type_name, content = payload
            document = {"name": name, "type": type_name, "timestamp": timestamp, "value": content}
            data = encode_text(json.dumps(document, ensure_ascii=False, allow_nan=False))
            path = f"metrics/{key}.json"
            handle = self._put(ARTIFACT, path, data)
            if type_name in ("list", "dict"):  # readable on the run's page, not only as JSON
                self._session.note_value(name, type_name, content, path)
            return handle
        if kind == NOTHING:
            return DoneHandle()
        raise AssertionError(kind)
