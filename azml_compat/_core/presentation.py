"""How a Workbench run presents itself in the MLflow UI: its name, its arguments as parameters,
and its description (``mlflow.note.content``, Markdown). Pure functions: no MLflow, no I/O.

Workbench named a run after its script and arguments (``train.py 0.01``) and showed them on the
run's page; MLflow gives a run a random name and no parameters unless told.
"""
from __future__ import annotations

import os
import re
import shlex

RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
# The MLflow 3 UI reads this experiment tag to open the experiment on its training runs
# (ExperimentKind.CUSTOM_MODEL_DEVELOPMENT in mlflow/server/js) where the kind is taken from
# the experiment; see docs/api.md "The MLflow UI" for the URL that also works where it is not.
TRAINING_KIND = "custom_model_development"

MAX_RUN_NAME = 250  # MLflow's runs.name column
MAX_PARAM_VALUE = 6000  # longer param values are cut by MLflow (MLFLOW_TRUNCATE_LONG_VALUES)
MAX_NOTE = 8000  # a tag value
_OPTION = re.compile(r"^--?([A-Za-z_][\w.\-]*)(?:=(.*))?$", re.S)
_NUMBER = re.compile(r"^-\d|^-\.\d")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_name(script: str, args) -> str:
    """``train.py 0.01``: the script's file name and its arguments, quoted as a shell would."""
    return _cut(" ".join([os.path.basename(script), *([shlex.join(args)] if args else [])]),
                MAX_RUN_NAME)


def params_from_args(args) -> dict:
    """The script's arguments as run parameters.

    ``--name value``, ``--name=value`` and ``-n value`` give ``name``/``n``; an option followed
    by another option (or nothing) is a flag, ``"true"``; every other argument is ``arg0``,
    ``arg1``, ... in order (positional ones only). ``--`` ends the options; a negative number is
    a value. An option name MLflow would not take as a key stays a positional argument. The same
    option twice keeps the last value, as argparse does.
    """
    params: dict[str, str] = {}
    position = 0
    items = list(args)
    i, options = 0, True
    while i < len(items):
        token = items[i]
        i += 1
        if options and token == "--":
            options = False
            continue
        match = _OPTION.match(token) if options and not _NUMBER.match(token) else None
        if match:
            name, value = match.group(1), match.group(2)
            if value is None:
                following = items[i] if i < len(items) else None
                if following is not None and (following == "--" or not following.startswith("-")
                                              or _NUMBER.match(following)):
                    if following != "--":
                        value, i = following, i + 1
                value = "true" if value is None else value
            params[name] = _cut(value, MAX_PARAM_VALUE)
            continue
        params[f"arg{position}"] = _cut(token, MAX_PARAM_VALUE)
        position += 1
    return params


_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def _cell(text: str) -> str:
    """Plain text in a table cell: every ASCII punctuation character backslash-escaped (what
    CommonMark allows), so no ``*``, ``_``, backquote or ``|`` of a name is read as Markdown."""
    return _PUNCTUATION.sub(r"\\\1", text.replace("\n", " "))


def _code(text: str) -> str:
    """An inline code span, unless the text has a backquote (then plain, escaped). Inside a
    code span only ``|`` is escaped: GFM splits a row's cells before reading the spans, and a
    span shows every other character as it is."""
    if "`" in text:
        return _cell(text)
    return "`" + text.replace("\n", " ").replace("|", "\\|") + "`"


VALUE_SHOWN = 600  # characters of one logged value shown in the description, at most


def _shown(kind: str, content, path: str) -> str:
    """A list of str or a dict as one table cell: its items as code spans, as many as fit in
    ``VALUE_SHOWN`` characters, then how many more and the artifact holding them all."""
    import json

    # Made lazily, only as far as shown: a list of a million labels costs what 600 chars do.
    def clip(text: str) -> str:
        return _code(text if len(text) <= VALUE_SHOWN else text[:VALUE_SHOWN] + "…")

    items = ((clip(str(item)) for item in content) if kind == "list" else
             (f"{clip(str(k))}: {clip(json.dumps(v, ensure_ascii=False))}"
              for k, v in content.items()))
    shown, used = [], 0
    for item in items:
        if used + len(item) > VALUE_SHOWN and shown:
            break
        shown.append(item)
        used += len(item) + 2
    text = ", ".join(shown) if shown else "(empty)"
    if len(shown) < len(content):
        text += f" … {len(content) - len(shown)} more: all in artifact {_code(path)}"
    return text


def run_note(script: str, args, cwd: str, renamed: dict, logged: dict | None = None) -> str:
    """The run's description: what ran, where, the names MLflow got in place of the script's
    (``{key: original name}``), and the lists of str and dicts the script logged (``{name:
    (kind, value, artifact path)}``), as Markdown within one tag value."""
    lines = [
        f"Workbench run of {_code(os.path.basename(script))}, logged by azml-compat.",
        "",
        "| | |",
        "| --- | --- |",
        f"| script | {_code(script)} |",
        f"| arguments | {_code(shlex.join(args)) if args else '(none)'} |",
        f"| working folder | {_code(cwd)} |",
    ]
    if renamed:
        # Name first, as the script has it; both as code spans and an arrow between them: the
        # UI draws a Markdown table without borders or padding, and two plain columns read as
        # one ("accuracy ___accuracy (%)").
        lines += ["", "Names MLflow does not accept were renamed (`azml history` shows the "
                  "originals):", "", "| name logged by the script | | key in MLflow |",
                  "| --- | --- | --- |"]
        for index, (key, name) in enumerate(sorted(renamed.items(), key=lambda kv: kv[1])):
            row = f"| {_code(name)} | → | {_code(key)} |"
            if sum(len(line) + 1 for line in lines) + len(row) > MAX_NOTE - 80:
                lines.append(f"\n... and {len(renamed) - index} more (`azml history info`).")
                break
            lines.append(row)
    if logged:
        # A dict or list of str is a JSON artifact, which the run's page does not show: its
        # items here, in what room the tag has left (the artifact always has them all).
        lines += ["", "Lists and dicts the script logged:", "", "| name | items |",
                  "| --- | --- |"]
        for index, (name, (kind, content, path)) in enumerate(sorted(logged.items())):
            row = f"| {_code(name)} | {_shown(kind, content, path)} |"
            if sum(len(line) + 1 for line in lines) + len(row) > MAX_NOTE - 80:
                lines.append(f"\n... and {len(logged) - index} more (artifacts under "
                             "`metrics/`, `azml history info`).")
                break
            lines.append(row)
    return "\n".join(lines)


UI_PORT = 5000  # `mlflow ui`'s default port
# `python -m mlflow`, not `mlflow`: it needs only the interpreter that just ran the script,
# not its scripts folder on PATH (`pip install --user` puts `mlflow` in ~/.local/bin, often
# not on PATH; an unactivated venv has it in venv/bin).
UI_COMMAND = "python -m mlflow ui"


def where_line(tracking_uri: str, experiment_id: str | None, run_id: str,
               view: bool = False) -> str:
    """The one line a finished run prints: its page on a tracking server, or the command that
    serves a local store and the page it then has; then the experiment's runs table, in the
    Workbench view (``_view``: metrics as columns) when ``view`` (it was saved). No
    credentials: the user part of the URI is dropped from the link and redacted in the
    command."""
    import shlex
    from urllib.parse import urlsplit, urlunsplit

    from .._config import redact
    from .view import VIEW_QUERY

    # Without workflowType the MLflow 3.17 UI shows the run under its GenAI view ("Evaluation
    # runs", GenAI sidebar): the browser's last choice, default GenAI.
    page = (f"#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
            if experiment_id else f"#/runs/{run_id}")
    # Apart by spaces: a terminal takes a ";" or ")" touching a link as part of it.
    runs = (f" | all runs: {{base}}/#/experiments/{experiment_id}/runs?workflowType="
            f"machine_learning{'&' + VIEW_QUERY if view else ''}" if experiment_id else "")
    parts = urlsplit(tracking_uri)
    if parts.scheme in ("http", "https"):
        host = parts.netloc.rsplit("@", 1)[-1]
        base = urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
        return f"run {run_id}: {base}/{page}" + runs.format(base=base)
    base = f"http://127.0.0.1:{UI_PORT}"
    return (f"run {run_id}: see it with `{UI_COMMAND} --backend-store-uri "
            f"{shlex.quote(redact(tracking_uri))}`, then {base}/{page}" + runs.format(base=base))
