"""Any tracking store MLflow can open (SQLite, PostgreSQL, file, plugins), through
``MlflowClient``. Imported by the sender thread, never by ``log()``: it imports MLflow."""
from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile

from ..._consts import DEFAULT_HTTP_TIMEOUT
from ..records import RunSpec
from .base import _first_run, _key_filter, check_artifact_name, experiment_tags, open_source, run_params


@contextlib.contextmanager
def bounded_mlflow_http(timeout: float = DEFAULT_HTTP_TIMEOUT):
    """MLflow's own HTTP retries off, and its timeout ours, for the duration of one call.

    MLflow's artifact clients retry each request inside one call (urllib3, 7 tries with backoff:
    496 s measured against a hung server), which made ``azml sync --give-up-after`` meaningless.
    The sender's retry policy decides instead; an `azml` command passes its own 10 s timeout so
    it ends within 15 s on a dead server. MLflow's own tqdm bar is off too: it draws on stderr
    even when piped (a pipeline's log got ``Downloading artifacts: 100%|...``); ours
    (``_progress``) is drawn on a terminal only. Settings the user made are left alone.
    """
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": f"{timeout:g}",
             "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    added = [name for name in names if name not in os.environ]
    for name in added:
        os.environ[name] = names[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)



class MlflowStore:
    """Run lifecycle, batches and artifacts through ``MlflowClient``."""

    CONCURRENCY = 1  # requests in flight: a local database takes one writer at a time
    FORK_GATED = True  # a fork waits for calls into SQLite/SQLAlchemy to finish (see ForkGate)

    def __init__(self, tracking_uri: str) -> None:
        from ..environment import import_mlflow_quietly
        import_mlflow_quietly()  # MLflow's INFO lines stay off the script's console
        from mlflow.tracking import MlflowClient

        from .sqlite import prepare

        prepare(tracking_uri)  # a SQLite file is made whole, once, before MLflow touches it
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)

    def open_run(self, spec: RunSpec) -> str | None:
        """The run's id: checked if given, else found by key, else created if ``spec.owned``.

        None when the run is not there yet and this process does not own it (a forked child
        whose parent has not created it yet): the caller asks again later.
        """
        if spec.run_id:
            # Fail early and clearly on an unknown id; the experiment, for its runs' view.
            self.experiment_id = self._get_run(spec.run_id)
            return spec.run_id
        if not spec.owned:
            found = self._find_experiment(spec.experiment_name)
            if found is None or not spec.run_key:
                return None
            return self._find_run_by_key(found[0], spec)
        experiment_id = self._experiment_id(spec.experiment_name)
        self.experiment_id = experiment_id  # for the run's link in the UI
        found = None
        if spec.run_key and not spec.new_key:
            # Creating is made idempotent by looking first: an earlier attempt whose answer
            # was lost (a timeout) may have created it, or a killed process before `azml sync`.
            found = self._find_run_by_key(experiment_id, spec)
        spec.new_key = False  # from this attempt on, a run with the key may exist
        run_id = found if found is not None else self._create_run(experiment_id, spec)
        # Logged each time the run is opened (same values: MLflow accepts them again), so a
        # creation whose params request failed gets them on the retry that finds the run.
        params = run_params(spec.tags)
        if params:
            self.log_params(run_id, params)
        return run_id

    def log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])

    def _get_run(self, run_id: str) -> str:
        """The run's experiment id; MLflow's error if there is no such run."""
        return self.client.get_run(run_id).info.experiment_id

    def _find_run_by_key(self, experiment_id: str, spec: RunSpec) -> str | None:
        from mlflow.entities import ViewType

        runs = self.client.search_runs([experiment_id], _key_filter(spec),
                                       run_view_type=ViewType.ALL, max_results=50)
        return _first_run([(r.info.start_time, r.info.run_id) for r in runs])

    def _create_run(self, experiment_id: str, spec: RunSpec) -> str:
        from mlflow.tracking.context.registry import resolve_tags

        run = self.client.create_run(
            experiment_id, start_time=spec.start_time_ms, tags=resolve_tags(spec.tags)
        )
        return run.info.run_id

    def _experiment_id(self, name: str) -> str:
        """Find or create the experiment; if another process creates it in between, look again."""
        for attempt in range(2):
            found = self._find_experiment(name)
            if found is not None:
                experiment_id, stage = found
                if stage == "deleted":
                    raise ValueError(
                        f"experiment {name!r} is deleted; restore it (mlflow experiments restore "
                        f"--experiment-id {experiment_id}) or set MLFLOW_EXPERIMENT_NAME")
                return experiment_id
            try:
                return self._create_experiment(name)
            except Exception as exc:  # noqa: BLE001 - only "already exists" is looked at again
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS" or attempt:
                    raise
        raise AssertionError("unreachable")

    def _find_experiment(self, name: str) -> tuple[str, str] | None:
        """``(experiment id, lifecycle stage)``, or None if there is none by that name."""
        experiment = self.client.get_experiment_by_name(name)
        return None if experiment is None else (experiment.experiment_id, experiment.lifecycle_stage)

    def _create_experiment(self, name: str) -> str:
        return self.client.create_experiment(name, tags=experiment_tags())

    def last_steps(self, run_id: str) -> dict:
        """``{key: highest step}`` of every metric the run has."""
        metrics = self.client.get_run(run_id).data._metric_objs  # the latest point of each key
        return {m.key: m.step for m in metrics}

    def run_tag(self, run_id: str, key: str) -> str | None:
        return self.client.get_run(run_id).data.tags.get(key)

    def log_batch(self, run_id: str, metrics: list, tags: list) -> None:
        from mlflow.entities import Metric, RunTag

        self.client.log_batch(
            run_id,
            metrics=[Metric(key, value, ts, step) for _, key, value, ts, step in metrics],
            tags=[RunTag(key, value) for _, key, value in tags],
        )

    def upload_bytes(self, run_id: str, artifact_path: str, data: bytes) -> None:
        check_artifact_name(artifact_path)
        directory, filename = posixpath.split(artifact_path)
        with tempfile.TemporaryDirectory(prefix="azml-upload-") as tmp:
            local = os.path.join(tmp, filename)
            with open(local, "wb") as fh:
                fh.write(data)
            with bounded_mlflow_http():
                self.client.log_artifact(run_id, local, directory or None)

    def upload_file(self, run_id: str, artifact_dir: str, local_path: str) -> None:
        check_artifact_name(posixpath.join(artifact_dir, os.path.basename(local_path)))
        # A FIFO, a folder, a vanished file or a link leading out of the project: set aside.
        with open_source(local_path, artifact_dir) as source:
            if os.path.realpath(local_path) == os.path.abspath(local_path):
                source.close()
                with bounded_mlflow_http():
                    self.client.log_artifact(run_id, local_path, artifact_dir or None)
                return
            # Through a link: MLflow opens by path, so it gets a copy of what was checked
            # (under the link's name), not a path a swapped link could lead elsewhere.
            with tempfile.TemporaryDirectory(prefix="azml-upload-") as tmp:
                local = os.path.join(tmp, os.path.basename(local_path))
                with open(local, "wb") as copy:
                    shutil.copyfileobj(source, copy, 1 << 20)
                with bounded_mlflow_http():
                    self.client.log_artifact(run_id, local, artifact_dir or None)

    def end_run(self, run_id: str, status: str, end_time_ms: int) -> None:
        self.client.set_terminated(run_id, status, end_time=end_time_ms)

    # Another process's write of the same tag may come between our read and write (a sweep's
    # runs starting together): the caller checks again a moment later (``Sender``).
    ATOMIC_TAG_UPDATE = False

    def update_experiment_tag(self, experiment_id: str, key: str, update) -> bool:
        """Read, update, write; True if it wrote."""
        value = update(self._experiment_tag(experiment_id, key))
        if value is None:
            return False
        self._set_experiment_tag(experiment_id, key, value)
        return True

    def _experiment_tag(self, experiment_id: str, key: str) -> str | None:
        return self.client.get_experiment(experiment_id).tags.get(key)

    def _set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.client.set_experiment_tag(experiment_id, key, value)


class LazyClient:
    """For a store that shares ``MlflowStore``'s logic but not its ``__init__`` (which imports
    MLflow): ``client`` is an ``MlflowClient`` made, and MLflow imported, only on first use
    (uploads to an artifact store only MLflow knows: S3, Azure Blob, ...)."""

    tracking_uri: str
    _mlflow_client = None

    @property
    def client(self):
        if self._mlflow_client is None:
            from ..environment import import_mlflow_quietly

            import_mlflow_quietly()
            from mlflow.tracking import MlflowClient

            self._mlflow_client = MlflowClient(self.tracking_uri)
        return self._mlflow_client
