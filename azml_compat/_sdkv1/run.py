"""SDK v1's ``Run`` (``azureml.core.Run``) on MLflow: the second face of the process's session.

``Run.get_context()`` is this process's run, the same object on every call and the same MLflow
run the Workbench logger logs to (``_process.session()``). Every ``log*`` call validates and
stamps on the caller's thread and hands records to the dispatcher; no I/O, no MLflow import.
Reading back (``get_metrics``, ``get_tags``, ...) first delivers what this process logged
(bounded by ``AZML_FLUSH_TIMEOUT``), then asks the store. Child runs are nested MLflow runs,
each with its own session and journal (``Session.nested``), ended by ``complete()``, by their
``with`` block, or with the process.
"""
from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import types

from .._core import process as _process
from .._exceptions import DeliveryTimeout
from .._core.face import Face
from .._core.paths import clean_artifact_path
from .._core.presentation import RUN_NAME_TAG
from .._core.records import (ARTIFACT, FAILED, FILE, FINISHED, KILLED, MAX_KEY, MAX_TAG_VALUE,
                             METRIC, PARAM, PROPERTY_PARAM_PREFIX, SERIES, TAG,
                             TEXT_METRIC_TAG_PREFIX)
from .._core.values import POINT, classify, encode_text
from . import readback
from .unsupported import NotCovered, NotCoveredAttribute

log = logging.getLogger("azml")
_time_ns = time.time_ns
_lock = threading.Lock()
_context: "Run | None" = None

# SDK v1's words for a list given to run.log (a UserErrorException there).
LIST_ERROR = "run.log does not support list type. Use run.log_list instead"
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": ".png", b"\xff\xd8\xff": ".jpg", b"GIF8": ".gif",
               b"BM": ".bmp"}


class UserErrorException(TypeError, ValueError):
    """SDK v1's error for a call it refuses (``azureml.exceptions.UserErrorException``)."""


def _is_sequence(value) -> bool:
    if isinstance(value, (list, tuple, range, types.GeneratorType)):
        return True
    return type(value).__module__ == "numpy" and getattr(value, "ndim", 0) > 0


class _Experiment:
    """``run.experiment``: its name (the MLflow experiment's); the rest is not covered."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotCoveredAttribute(f"run.experiment.{name}")

    def __repr__(self) -> str:
        return f"Experiment(Name: {self.name})"


class Run(Face):
    """SDK v1's run, logging to MLflow. Get it with ``Run.get_context()``."""

    def __init__(self, experiment=None, run_id=None, outputs=None, **kwargs) -> None:
        raise NotCovered("Run(experiment, run_id) (a run of a workspace)")

    @classmethod
    def _over(cls, session, parent: "Run | None" = None) -> "Run":
        run = object.__new__(cls)
        run._parent = parent
        run._properties = {}
        run._children: list[Run] = []
        run._text_metrics: set[str] = set()  # keys whose TEXT_METRIC_TAG_PREFIX tag is queued
        if parent is None:
            _process.bind(run)  # the process's run: rebound after os.fork
            run._session.watch_logs()  # SDK v1 uploaded ./logs while the run ran
        else:
            run._bind(session)
        return run

    # -- the run -------------------------------------------------------------------------------
    @classmethod
    def get_context(cls, allow_offline=True, used_for_context_manager=False, **kwargs) -> "Run":
        """This process's run (there is no offline run here: this process is the run's
        environment, so ``allow_offline`` changes nothing)."""
        global _context
        run = _context
        if run is None:
            with _lock:
                if _context is None:
                    _context = Run._over(None)
                run = _context
        return run

    @property
    def id(self) -> str:
        """The MLflow run id. The run is made in the background: this waits for it, up to
        ``AZML_FLUSH_TIMEOUT`` seconds. A store that cannot be reached by then must not end the
        training: it warns once and gives ``pending_<run key>``, the key `azml sync` creates
        the run under (the tag ``mlflow.azml.run_key``)."""
        session = self._session
        run_id = session.run.run_id or session.run.wait(session.settings.flush_timeout)
        if run_id is not None:
            return run_id
        if not getattr(self, "_told_pending", False):
            self._told_pending = True
            log.warning("run.id: the run is not created yet at %s after %g s "
                        "(AZML_FLUSH_TIMEOUT); using its key until it is", session.dispatcher.store,
                        session.settings.flush_timeout)
        return f"pending_{session.spec.run_key}"

    @property
    def parent(self) -> "Run | None":
        return self._parent

    @property
    def experiment(self) -> _Experiment:
        return _Experiment(self._session.spec.experiment_name)

    @property
    def name(self) -> str | None:
        return self._session.spec.tags.get(RUN_NAME_TAG)

    @property
    def display_name(self) -> str | None:
        return self.name

    @property
    def status(self) -> str:
        return self.get_status()

    @property
    def type(self) -> str:
        return "azureml.scriptrun"

    @property
    def tags(self) -> dict:
        return self.get_tags()

    @property
    def properties(self) -> dict:
        return self.get_properties()

    def _key(self, name) -> str:
        key = self._key_of(name) if type(name) is str else None
        return key if key is not None else self._session.new_key(name)

    # -- log* (no I/O: records to the dispatcher) --------------------------------------------
    def log(self, name, value, description="", step=None) -> None:
        """A number (or bool, numpy scalar): a metric point, steps 0, 1, 2... in call order, or
        ``step``; a str: the tag ``name``; a list: SDK v1's error (use ``log_list``)."""
        key = self._key_of(name) if type(name) is str else None
        if key is None:
            key = self._session.new_key(name)
        kind = type(value)
        if (kind is float or kind is int) and step is None:
            self._put_stepped(METRIC, key, value if kind is float else float(value),
                              _time_ns() // 1_000_000)
            return
        self._log_value(name, key, value, step)

    def _log_value(self, name, key, value, step) -> None:
        if _is_sequence(value):
            raise UserErrorException(LIST_ERROR)
        if step is not None:
            timestamp = _time_ns() // 1_000_000
            kind, payload = classify(name, value)
            if kind != POINT:
                raise UserErrorException(
                    f"run.log({name!r}, ..., step={step!r}): a step is only for a number, "
                    f"got {type(value).__name__}")
            if isinstance(step, bool) or not isinstance(step, int) and not hasattr(step, "__index__"):
                raise UserErrorException(f"run.log({name!r}, ..., step={step!r}): step must be an int")
            self._put(METRIC, key, payload, timestamp, int(step))
            return
        if isinstance(value, str) and key not in self._text_metrics:
            self._text_metrics.add(key)  # once per name: get_metrics() lists it as SDK v1 did
            self._put(TAG, TEXT_METRIC_TAG_PREFIX + key, "1")
        self._record(name, key, value)

    def log_list(self, name, value, description="") -> None:
        """Numbers: one stepped metric; strings: a JSON document ``metrics/<name>.json``."""
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise UserErrorException(f"run.log_list({name!r}, ...): value must be a list, "
                                     f"got {type(value).__name__}")
        self._record(name, self._key(name), list(value))

    def log_row(self, name, description=None, **kwargs) -> None:
        """One row of the table ``name`` (artifact ``<name>.json``); numbers also as the stepped
        metric ``<name>.<column>``."""
        self._log_rows(name, {column: [cell] for column, cell in kwargs.items()})

    def log_table(self, name, value, description="") -> None:
        """Rows ``{column: [cells]}`` appended to the table ``name``."""
        if not isinstance(value, dict):
            raise UserErrorException(f"run.log_table({name!r}, ...): value must be a dict of "
                                     f"column lists, got {type(value).__name__}")
        self._log_rows(name, {column: list(cells) if _is_sequence(cells) else [cells]
                              for column, cells in value.items()})

    def _log_rows(self, name, columns: dict) -> None:
        if not isinstance(name, str):
            raise UserErrorException(f"table name must be a str, got {type(name).__name__}")
        self._session.tables.add(name, columns)
        timestamp = _time_ns() // 1_000_000
        for column, cells in columns.items():
            numbers = [c for c in cells if classify_number(c)]
            if numbers and len(numbers) == len(cells):
                key = self._key(f"{name}.{column}")
                values = [float(c) for c in cells]
                if len(values) == 1:
                    self._put_stepped(METRIC, key, values[0], timestamp)
                else:
                    self._put_stepped(SERIES, key, values, timestamp, len(values))

    def log_image(self, name, path=None, plot=None, description="") -> None:
        """A PNG/JPEG artifact: the file at ``path`` as it is, or ``plot`` (a matplotlib figure
        or ``pyplot``) saved as PNG. The bytes are taken now: scripts overwrite the file."""
        if (path is None) == (plot is None):
            raise UserErrorException(
                f"run.log_image({name!r}): give exactly one of path= or plot= "
                f"(got {'both' if path is not None else 'neither'})")
        if path is not None:
            with open(os.fspath(path), "rb") as stream:
                data = stream.read()
        else:
            if not hasattr(plot, "savefig"):
                raise UserErrorException(f"run.log_image({name!r}): plot must be a matplotlib "
                                         f"figure or pyplot, got {type(plot).__name__}")
            buffer = io.BytesIO()
            plot.savefig(buffer, format="png")
            data = buffer.getvalue()
        suffix = next((ext for magic, ext in IMAGE_TYPES.items() if data.startswith(magic)), "")
        artifact = name if os.path.splitext(name)[1].lower() in (suffix, ".jpeg") else name + suffix
        self._put(ARTIFACT, clean_artifact_path(artifact, what=f"image name {name!r}"), data)

    def _log_document(self, call: str, name, value) -> None:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise UserErrorException(f"run.{call}({name!r}, ...): invalid JSON provided") from None
        if not isinstance(value, dict):
            raise UserErrorException(f"run.{call}({name!r}, ...): value must be a dict or a "
                                     f"JSON string, got {type(value).__name__}")
        _, content = classify(name, value)  # JSON-safe copy (NaN -> null), errors name it
        data = encode_text(json.dumps(content[1], ensure_ascii=False, allow_nan=False))
        self._put(ARTIFACT, clean_artifact_path(f"{name}.json", what=f"name {name!r}"), data)

    def log_confusion_matrix(self, name, value, description="") -> None:
        self._log_document("log_confusion_matrix", name, value)

    def log_accuracy_table(self, name, value, description="") -> None:
        self._log_document("log_accuracy_table", name, value)

    def log_predictions(self, name, value, description="") -> None:
        self._log_document("log_predictions", name, value)

    def log_residuals(self, name, value, description="") -> None:
        self._log_document("log_residuals", name, value)

    # -- files ---------------------------------------------------------------------------------
    def upload_file(self, name, path_or_stream, datastore_name=None) -> None:
        """The file (or stream) as the artifact ``name``, bytes unchanged. A file keeping its
        own name is read when it is sent (as ``outputs/`` is); a renamed one, and a stream,
        are read now."""
        if datastore_name is not None:
            raise NotCovered("run.upload_file(..., datastore_name=...)")
        artifact = clean_artifact_path(name, what="upload name")
        if hasattr(path_or_stream, "read"):
            data = path_or_stream.read()
            self._put(ARTIFACT, artifact, encode_text(data) if isinstance(data, str) else bytes(data))
            return
        path = os.path.abspath(os.fspath(path_or_stream))
        if not os.path.isfile(path):
            raise UserErrorException(f"run.upload_file({name!r}, {path_or_stream!r}): no such file")
        folder, base = os.path.split(artifact)
        if base == os.path.basename(path):
            self._put(FILE, folder, path)
        else:
            with open(path, "rb") as stream:
                self._put(ARTIFACT, artifact, stream.read())

    def upload_files(self, names, paths, return_artifacts=False, timeout_seconds=None,
                     datastore_name=None) -> None:
        names, paths = list(names), list(paths)
        if len(names) != len(paths):
            raise UserErrorException(f"run.upload_files: {len(names)} names for {len(paths)} paths")
        for name, path in zip(names, paths):
            self.upload_file(name, path, datastore_name=datastore_name)

    def upload_folder(self, name, path, datastore_name=None) -> None:
        """Every file under ``path`` as ``name/<relative path>``."""
        if not os.path.isdir(path):
            raise UserErrorException(f"run.upload_folder({name!r}, {path!r}): not a folder")
        root = clean_artifact_path(name, what="upload name", allow_root=True)
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            relative = os.path.relpath(folder, path)
            for file in sorted(files):
                target = "/".join(p for p in (root, "" if relative == "." else relative, file) if p)
                self.upload_file(target.replace(os.sep, "/"), os.path.join(folder, file),
                                 datastore_name=datastore_name)

    # -- tags and properties -------------------------------------------------------------------
    def tag(self, key, value=None) -> None:
        """The tag ``key`` (``value`` None: an empty tag, as SDK v1 showed a tag without one)."""
        text = "" if value is None else str(value)
        self._put(TAG, self._key(key), text[:MAX_TAG_VALUE])

    def set_tags(self, tags) -> None:
        if isinstance(tags, dict):
            for key, value in tags.items():
                self.tag(key, value)
        elif isinstance(tags, (list, tuple, set)):
            for key in tags:
                self.tag(key)
        else:
            raise UserErrorException(f"run.set_tags: tags must be a dict, got {type(tags).__name__}")

    def add_properties(self, properties) -> None:
        """The params ``properties/<name>`` (``PROPERTY_PARAM_PREFIX``: never one of the
        script's arguments' params); like SDK v1, a property cannot change once added."""
        if not isinstance(properties, dict):
            raise UserErrorException(f"run.add_properties: properties must be a dict, got "
                                     f"{type(properties).__name__}")
        items = {}
        for name, value in properties.items():
            key = PROPERTY_PARAM_PREFIX + self._key(name)
            if len(key) > MAX_KEY:
                raise UserErrorException(
                    f"run.add_properties: property name {name!r} is too long ({len(name)} "
                    f"characters; MLflow keeps at most {MAX_KEY - len(PROPERTY_PARAM_PREFIX)})")
            items[key] = (name, str(value))
        for key, (name, value) in items.items():
            known = self._properties.get(key)
            if known is not None and known != value:
                raise UserErrorException(
                    f"run.add_properties: property {name!r} is already {known!r}; properties "
                    f"cannot be changed (new value {value!r})")
        for key, (_, value) in items.items():
            if key not in self._properties:
                self._properties[key] = value
                self._put(PARAM, key, value)

    # -- children ------------------------------------------------------------------------------
    def child_run(self, name=None, run_id=None, outputs=None) -> "Run":
        """A nested MLflow run (``mlflow.parentRunId``), named ``name``, logged by this process.
        Use it as a context manager, or end it with ``complete()``/``fail()``."""
        if run_id is not None or outputs is not None:
            raise NotCovered("run.child_run(run_id=..., outputs=...)")
        # Ended with this run if never ended itself (the session does it, with this status).
        session = self._session.nested(name if name is None else str(name))
        child = Run._over(session, parent=self)
        self._children.append(child)
        return child

    def create_children(self, count=None, tag_key=None, tag_values=None) -> list:
        if tag_values is not None:
            children = []
            for value in tag_values:
                child = self.child_run()
                child.tag(tag_key, value)
                children.append(child)
            return children
        if count is None:
            raise UserErrorException("run.create_children: give count or tag_values")
        return [self.child_run() for _ in range(int(count))]

    def get_children(self, recursive=False, tags=None, properties=None, type=None, status=None,
                     _rehydrate_runs=True):
        """The child runs this process made (a run of another process is not covered)."""
        found = list(self._children)
        if recursive:
            for child in self._children:
                found += child.get_children(recursive=True)
        return iter(found)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.complete()
        elif issubclass(kind, KeyboardInterrupt):
            self._end(KILLED)
        else:
            self.fail()

    # -- end of the run ------------------------------------------------------------------------
    def _end(self, status: str) -> None:
        """The end is queued, not waited for (SDK v1 waited; here delivery goes on in the
        background like every other record, and the exit waits for it, bounded). A nested
        run's threads and journal are let go once it is delivered."""
        session = self._session
        if session._ended:
            return
        session.status = status
        session.end()
        if self._parent is not None:
            threading.Thread(target=_close_when_delivered, args=(session,),
                             name="azml-nested-end", daemon=True).start()

    def complete(self, _set_status=True) -> None:
        """The run ends FINISHED (after delivering what was logged, bounded)."""
        self._end(FINISHED)

    def fail(self, error_details=None, error_code=None, _set_status=True) -> None:
        """The run ends FAILED; ``error_details`` (text or an exception) kept as the tag
        ``error``."""
        if error_details is not None:
            self.tag("error", error_details if isinstance(error_details, str) else repr(error_details))
        self._end(FAILED)

    def cancel(self) -> None:
        self._end(KILLED)

    def flush(self, timeout_seconds=300) -> None:
        """Block until what was logged is stored (like ``wait()``), at most ``timeout_seconds``."""
        session = self._session
        session.tables.flush()
        if not session.dispatcher.flush(timeout_seconds):
            raise DeliveryTimeout(f"run.flush: not everything reached {session.dispatcher.store} "
                                  f"in {timeout_seconds:g} s; it stays in the journal")

    # -- reading back --------------------------------------------------------------------------
    def _delivered(self):
        """The store's queries and this run's id, once what this process logged is stored."""
        session = self._session
        session.tables.flush()
        if not session.dispatcher.flush(session.settings.flush_timeout, stall_timeout=True):
            log.warning("reading run %s back while some of its records are not stored yet",
                        session.run.run_id or "(not created yet)")
        run_id = session.run.run_id or session.run.wait(session.settings.flush_timeout)
        if run_id is None:
            raise DeliveryTimeout(f"cannot read run {self.id} back: it is not created yet at "
                                  f"{session.dispatcher.store}")
        return readback.client(session.spec.tracking_uri), run_id

    def get_metrics(self, name=None, recursive=False, run_type=None, populate=False) -> dict:
        """SDK v1's shapes: a name logged once -> its value, N times -> the list, a table ->
        ``{column: [cells]}``. ``recursive``: ``{run_id: metrics}`` of this run and every run
        nested under it."""
        client, run_id = self._delivered()
        if not recursive:
            return readback.metrics(client, run_id, name, self._session.tables.rows)
        for child in self.get_children(recursive=True):
            child._delivered()
        out, todo = {}, [client.run(run_id)]
        while todo:
            run = todo.pop(0)
            out[run.info.run_id] = readback.metrics(client, run.info.run_id, name)
            todo += readback.children(client, run)
        return out

    def get_tags(self) -> dict:
        client, run_id = self._delivered()
        return readback.user_tags(client.run(run_id).data.tags)

    def remove_tags(self, tags) -> None:
        keys = [tags] if isinstance(tags, str) else list(tags)
        client, run_id = self._delivered()
        present = client.run(run_id).data.tags
        for key in keys:
            mapped = self._key(key)
            if mapped in present:
                readback.delete_tag(client, run_id, mapped)

    def get_properties(self) -> dict:
        """The properties added (not the params of the script's arguments)."""
        client, run_id = self._delivered()
        return readback.properties(client.run(run_id))

    def get_status(self) -> str:
        client, run_id = self._delivered()
        return readback.STATUS.get(client.run(run_id).info.status, "Running")

    def get_details(self) -> dict:
        client, run_id = self._delivered()
        run = client.run(run_id)
        return readback.details(run, readback.properties(run))

    # -- the rest of SDK v1's Run: named, not covered ------------------------------------------
    def register_model(self, model_name, model_path=None, tags=None, properties=None,
                       model_framework=None, model_framework_version=None, description=None,
                       datasets=None, sample_input_dataset=None, sample_output_dataset=None,
                       resource_configuration=None, **kwargs):
        raise NotCovered("run.register_model()")

    def get_secret(self, name):
        raise NotCovered("run.get_secret()")

    def get_secrets(self, secrets):
        raise NotCovered("run.get_secrets()")

    @property
    def input_datasets(self):
        raise NotCovered("run.input_datasets")

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotCoveredAttribute(f"run.{name}")

    def __repr__(self) -> str:
        session = self._session
        return (f"Run(Experiment: {session.spec.experiment_name},\n"
                f"Id: {session.run.run_id or 'pending'},\nType: azureml.scriptrun,\n"
                f"Status: Running)")


def _close_when_delivered(session) -> None:
    """A nested run's finisher: once its records are stored, close it (threads, journal); if
    the process exits first, the parent's close does it, bounded like the rest of the exit."""
    while not session.dispatcher.flush(1.0):
        if session._closed:
            return
    session.close()


def classify_number(value) -> bool:
    """True for a cell that charts: a number (bools count, as SDK v1 charted them), not NaN text."""
    if isinstance(value, (bool, int, float)):
        return True
    return type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None \
        and value.dtype.kind in "biuf" and getattr(value, "ndim", 0) == 0


class _OfflineRun(Run):
    """SDK v1's offline run, for scripts that import it to compare: never returned here."""
