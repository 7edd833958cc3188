"""The experiment's runs table as Workbench's run history showed it: the metrics as columns,
first. Pure functions: no MLflow, no I/O (the sender writes the tag, ``Sender._update_view``).

MLflow 3.17's UI keeps named views of an experiment's runs table (its "Views" menu) as
experiment tags ``mlflow.sharedViewState.<id>``, each a JSON envelope ``{"name", "createdAt",
"updatedAt", "state"}`` whose ``state`` is the view as a JSON string (``selectedColumns``,
``columnOrder``, ...: the fields of its ``ExperimentPageUIState``; the rest take their
defaults), and opens one with ``?viewStateShareKey=<id>`` in the runs page's URL (read in
``mlflow/server/js``: ``useSharedExperimentViewState``, ``savedViewEnvelope``). Nothing the
store holds chooses a view without that parameter: the UI starts from the browser's own last
state, else its defaults (no metric column).

Ours is ``VIEW_TAG``, and only ours is ever written. Each run adds a column for each metric
it logged that the view lacks, never removes one. The metrics come right after the run's name
and start time, sorted as the UI sorts them itself (by code point): the view's
``columnOrder`` puts them before MLflow's Duration column, but 3.17 applies it only when the
view arrives before the grid is drawn, else Duration comes first. No other column is chosen
(the run's name already names the script: Workbench's Script_name).
The envelope carries ``WRITTEN_BY``; the UI writes only its four fields when a person saves
the view, so a view without it is theirs from then on and is left as it is (delete it in the
"Views" menu and the next run makes ours again). An unreadable value is left alone too.
"""
from __future__ import annotations

import json

VIEW_ID = "azml-workbench"
VIEW_TAG = "mlflow.sharedViewState." + VIEW_ID
VIEW_NAME = "Workbench: metrics first"
VIEW_QUERY = "viewStateShareKey=" + VIEW_ID  # added to the runs page's URL to open it
WRITTEN_BY = "azml-compat"
MAX_VALUE = 20_000  # MLflow's limit on an experiment tag's value (and the UI's on a view)
MAX_COLUMNS = 200  # metric columns in the view: a wider table is unreadable anyway


def column(key: str) -> str:
    """The runs table's id of a metric's column (the UI's ``makeCanonicalSortKey``)."""
    return f"metrics.`{key}`"


def merged(current: str | None, keys, now_ms: int) -> str | None:
    """The view's tag with a column for every metric key in ``keys`` (those that fit), or None
    when it needs no change or is not ours to change."""
    if current is None:
        envelope, state = {"name": VIEW_NAME, "createdAt": now_ms}, {}
    else:
        try:
            envelope = json.loads(current)
            state = json.loads(envelope["state"])
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(state, dict) or envelope.get("writtenBy") != WRITTEN_BY:
            return None
    selected = [c for c in state.get("selectedColumns") or [] if isinstance(c, str)]
    shown = [c for c in selected if c.startswith("metrics.")]
    wanted = [column(k) for k in sorted(set(keys))]
    new = [c for c in wanted if c not in shown][: max(0, MAX_COLUMNS - len(shown))]
    if current is not None and not new:
        return None
    others = [c for c in selected if not c.startswith("metrics.")]
    while True:  # the columns that fit in one tag value, all of them if they do
        metrics = sorted(shown + new)
        view = {**state, "selectedColumns": metrics + others, "columnOrder": metrics}
        value = json.dumps({**envelope, "updatedAt": now_ms, "writtenBy": WRITTEN_BY,
                            "state": json.dumps(view, ensure_ascii=False)}, ensure_ascii=False)
        if len(value) <= MAX_VALUE:
            return value if new or current is None else None
        if not new:
            return None
        new = new[: len(new) // 2]
