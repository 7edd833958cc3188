"""The record vocabulary: what travels from ``log()`` to the store, and the limits it must fit.

A record is a tuple ``(seq, kind, ...)``; ``seq`` is the dispatcher's sequence number:

* ``(seq, METRIC, key, value, timestamp_ms, step)``
* ``(seq, SERIES, key, [values], timestamp_ms, first_step)``
* ``(seq, TAG, key, value)``
* ``(seq, ARTIFACT, artifact_path, data)``      content given to ``upload()``
* ``(seq, FILE, artifact_dir, local_path)``     a file from ``outputs/``
* ``(seq, PARAM, key, value)``                  a param (SDK v1's add-only properties)
* ``(seq, END, status, end_time_ms)``           the run ends

The journal stores these columns as they are; the batcher packs them into requests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

METRIC, SERIES, TAG, ARTIFACT, FILE, END = "metric", "series", "tag", "artifact", "file", "end"
PARAM = "param"

# How a run this library started ends (MLflow's RunStatus names).
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"

# MLflow's limits (mlflow/utils/validation.py): log_batch, keys, tag values.
MAX_METRICS = 1000
MAX_TAGS = 100
MAX_ENTITIES = 1000
MAX_BYTES = 900_000  # log_batch's 1 MB request limit, with a margin for the JSON framing
MAX_KEY = 250
MAX_TAG_VALUE = 8000  # longer tag values are cut by MLflow (MLFLOW_TRUNCATE_LONG_VALUES)
NAME_MAX = 255  # bytes in one path component on every common file system (ext4, xfs, APFS)

# Tags this library sets. A mapped key's original Workbench name is in NAME_TAG_PREFIX + key.
# They start with "mlflow." because the MLflow UI lists every other tag on the run page, ahead
# of the script's own strings; runs written before carry the LEGACY_* names, still read.
NAME_TAG_PREFIX = "mlflow.azml.name."
# SDK v1's run.log(name, "text") is a metric there and a tag here: this hidden tag, set once per
# name, tells get_metrics() which tags were logged as metrics (run.tag() ones are not).
TEXT_METRIC_TAG_PREFIX = "mlflow.azml.text_metric."
SCRIPT_TAG = "mlflow.azml.script_name"
ARGUMENTS_TAG = "mlflow.azml.arguments"  # JSON list of the script's arguments
WORKDIR_TAG = "mlflow.azml.working_dir"
LEGACY_NAME_TAG_PREFIX = "azml.name."
LEGACY_TAGS = {SCRIPT_TAG: "azml.script_name", ARGUMENTS_TAG: "azml.arguments",
               WORKDIR_TAG: "azml.working_dir"}
# A client-made id: finds a run whether or not we saw it created. A journal written before
# it moved under "mlflow." carries LEGACY_RUN_KEY_TAG in its tags, and its run is looked up
# by that name (else `azml sync` would create a second run for a run that exists).
RUN_KEY_TAG = "mlflow.azml.run_key"
# SDK v1's properties are the params under this prefix: every run also gets its script's
# arguments as params (``--kernel linear``: ``kernel``), and MLflow never lets a param change,
# so a property ``kernel`` must not be the param ``kernel``. An option name has no "/"
# (``presentation.params_from_args``), so the two can never meet.
PROPERTY_PARAM_PREFIX = "properties/"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under this one
LEGACY_RUN_KEY_TAG = "azml.run_key"


@dataclass
class RunSpec:
    """Which run to log to: an existing one (``run_id``), or the one made for ``run_key`` in
    ``experiment_name`` (created by its owner; looked up by everyone, the owner first)."""

    tracking_uri: str
    experiment_name: str
    run_id: str | None = None
    start_time_ms: int = 0
    tags: dict = field(default_factory=dict)
    run_key: str | None = None
    # True when this process creates the run, and so ends it. False for an attached run and for
    # a forked child, which waits for its parent's run (found by key) instead of making one.
    owned: bool | None = None
    # True while no run can hold ``run_key`` yet: the key was just made by this process and no
    # creation was tried. The first creation then skips the key lookup (a runs/search, 30-90 ms
    # on MLflow's default server, measured); the store clears it before trying.
    # False for a spec rebuilt from a journal: that process may have created the run.
    new_key: bool = False

    def __post_init__(self) -> None:
        if self.owned is None:
            self.owned = self.run_id is None
        if self.run_key:
            self.tags = {**self.tags, self.key_tag: self.run_key}

    @property
    def key_tag(self) -> str:
        """The tag that holds ``run_key``: the old name for a journal written under it."""
        old = LEGACY_RUN_KEY_TAG in self.tags and RUN_KEY_TAG not in self.tags
        return LEGACY_RUN_KEY_TAG if old else RUN_KEY_TAG
