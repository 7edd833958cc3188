"""``-o``, ``--query`` and the global ``--verbose``/``--only-show-errors``/``--debug``, as the
az CLI (knack) has them.

A command returns JSON-ready data; ``--query`` (JMESPath) is applied to it first, then it is
rendered. A command may give its own table layout, used only without ``--query`` (as in az).
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import shutil
import sys
import warnings

import click

from azml_compat._config import Settings
from azml_compat._consts import OUTPUT_FORMATS
from azml_compat._exceptions import QueryError

FORMATS = OUTPUT_FORMATS  # az's --output choices
FORMAT_SETTINGS = ("AZML_OUTPUT", "AZURE_CORE_OUTPUT")  # first set wins, then the TTY decides
DEBUG = "azml.debug"
VERBOSE = "azml.verbose"
QUIET = "azml.only_show_errors"
RUN_ID = re.compile(r"[0-9a-f]{32}")  # MLflow's run ids: never cut in a table
SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40
MIN_COLUMN = 6


def _compile(ctx, param, value):
    if value is None:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(value)
    except JMESPathError as exc:
        raise QueryError(f"invalid --query {value!r}: {' '.join(str(exc).split())}") from None


def _flag(key):
    def callback(ctx, param, value):
        if value:
            ctx.meta[key] = True  # shared by the whole command line's contexts
            _verbosity(ctx.meta)
    return callback


def _verbosity(meta) -> None:
    """az's global verbosity for our ``azml`` logger: --only-show-errors keeps its warnings
    (and Python's) back, --verbose shows its INFO lines, --debug everything. The CLI's main
    restores the logger when the command ends."""
    logger = logging.getLogger("azml")
    if meta.get(QUIET):
        logger.setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
    elif meta.get(DEBUG) or meta.get(VERBOSE):
        logger.setLevel(logging.DEBUG if meta.get(DEBUG) else logging.INFO)
        if not any(getattr(h, "azml_cli", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.azml_cli = True
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)


# az's global arguments (knack's log.py): accepted by every group and command, so
# `azml --debug history list` and `azml history list --debug` both work, as in az.
debug_option = click.option("--debug", is_flag=True, expose_value=False, callback=_flag(DEBUG),
                            is_eager=True,
                            help="Increase logging verbosity to show all debug logs (and the "
                                 "traceback of an error).")
verbose_option = click.option("--verbose", is_flag=True, expose_value=False,
                              callback=_flag(VERBOSE), is_eager=True,
                              help="Increase logging verbosity. Use --debug for full debug logs.")
quiet_option = click.option("--only-show-errors", is_flag=True, expose_value=False,
                            callback=_flag(QUIET), is_eager=True,
                            help="Only show errors, suppressing warnings.")
GLOBAL_OPTIONS = {"debug": debug_option, "verbose": verbose_option,
                  "only_show_errors": quiet_option}


def output_options(command):
    """``-o`` and ``--query``; the command receives ``output`` (None: the default, decided
    when printing) and ``query``."""
    command = click.option("--query", callback=_compile, metavar="JMESPATH",
                           help="JMESPath query string. See http://jmespath.org/ for more "
                                "information and examples.")(command)
    return click.option("-o", "--output", type=click.Choice(FORMATS, case_sensitive=False),
                        default=None,
                        help="Output format. Default: AZML_OUTPUT, else AZURE_CORE_OUTPUT, "
                             "else table on a terminal and json when piped.")(command)


def default_format() -> str:
    """az's ``core.output`` as a person and a script each expect it: an explicit setting
    (AZML_OUTPUT, else az's own AZURE_CORE_OUTPUT), else table on a terminal and json when
    piped, so `azml history list | jq` works as `az ... | jq` did."""
    settings = Settings.from_env(FORMAT_SETTINGS, strict=True)
    return settings.output or settings.az_output or ("table" if sys.stdout.isatty() else "json")


def rendered(table=None):
    """Output options on a command that returns its result, which is then printed."""

    def wrap(command):
        @output_options
        @functools.wraps(command)
        def run(output, query, **kwargs):
            try:
                result = command(**kwargs)
            except Unfinished as exc:  # what was done is printed, then the one-line error
                emit(exc.result, output, query, table)
                raise click.ClickException(exc.message) from None
            if result is not None:  # None: the command printed its own output
                emit(result, output, query, table)

        return run

    return wrap


class Unfinished(Exception):
    """A command that did part of its work: ``result`` is printed, then ``message`` as the
    one-line error (exit 1)."""

    def __init__(self, result, message: str) -> None:
        super().__init__(message)
        self.result, self.message = result, message


def emit(data, output: str | None, query=None, table=None) -> None:
    output = (output or default_format()).lower()
    if query is not None:
        data, table = query.search(data), None
    color = sys.stdout.isatty()  # knack drops the colour of jsonc/yamlc when piped
    if output in ("json", "jsonc"):
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        text = _highlight(text, "json") if output == "jsonc" and color else text
    elif output in ("yaml", "yamlc"):
        text = _yaml(data).rstrip("\n")
        text = _highlight(text, "yaml") if output == "yamlc" and color else text
    elif output == "tsv":
        text = tsv(data)
    elif output == "none":
        text = ""
    else:
        text = (table or generic_table)(data)
    if text != "":
        click.echo(text)


def _yaml(data) -> str:
    import yaml

    return yaml.safe_dump(data, default_flow_style=False, allow_unicode=True, sort_keys=False)


def _highlight(text: str, language: str) -> str:
    """ANSI colours as az's jsonc/yamlc draw them (pygments' terminal formatter)."""
    try:
        from pygments import highlight
        from pygments.formatters import TerminalFormatter
        from pygments.lexers import JsonLexer, YamlLexer
    except ImportError:  # colour is a nicety: plain text is the same document
        return text
    lexer = JsonLexer() if language == "json" else YamlLexer()
    return highlight(text, lexer, TerminalFormatter()).rstrip("\n")


# -- plain values -------------------------------------------------------------------------------
def cell(value, short: bool = False) -> str:
    """One value as table/tsv text: nested values as compact JSON, None as nothing; ``short``
    rounds floats to 6 significant digits (tables; tsv keeps them exact)."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6g}" if short else repr(value)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    return text.replace("\t", " ").replace("\n", " ")


def columns(items: list) -> list:
    seen = {}
    for item in items:
        seen.update(dict.fromkeys(item))
    return list(seen)


def tsv_value(value) -> str:
    """One field as az's tsv writes it (knack's ``_TsvOutput``): a nested list is its length,
    a nested object is empty (so rows keep their columns), anything else ``str()`` of it
    (``None``, ``True``); tabs and newlines become spaces so a field stays one field."""
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    return (value if isinstance(value, str) else str(value)).replace("\t", " ").replace("\n", " ")


def tsv(data) -> str:
    """One line per item (a result that is not a list is one item), values tab-separated, no
    header (az's tsv). Objects of a list share one column order, the union of their keys, so a
    run lacking a field still has its column."""
    items = data if isinstance(data, list) else [data]
    keys = columns([i for i in items if isinstance(i, dict)])
    lines = []
    for item in items:
        if isinstance(item, dict):
            lines.append("\t".join(tsv_value(item[k]) if k in item else "" for k in keys))
        elif isinstance(item, list):
            lines.append("\t".join(tsv_value(v) for v in item))
        elif isinstance(item, bool):
            lines.append(str(item).lower())
        else:
            lines.append(tsv_value(item))
    return "\n".join(lines)


# -- tables -------------------------------------------------------------------------------------
def terminal_width() -> int | None:
    """The width to fit: the terminal's (or ``COLUMNS``); None when piped."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _uncut(text: str) -> bool:
    """Texts a table never cuts: run ids, which `-r` needs whole (or as a unique prefix)."""
    return bool(RUN_ID.search(text))


def table(headers: list, body: list[list], droppable: list | None = None) -> str:
    """tabulate's plain table, fitted to the terminal's width. First the ``droppable`` columns
    (header names, least wanted first) are left out, as az leaves out nested values, until it
    fits; then the widest remaining columns are cut with ``…``; a run id is never cut (the
    table may then be wider than the terminal). A note on stderr names what was left out."""
    import tabulate as tabulate_module

    tabulate_module.MIN_PADDING = 0  # headers get no extra padding: columns fit as computed
    headers = [str(h) for h in headers]
    texts = [[cell(v, short=True) for v in row] for row in body]
    width = terminal_width()
    if width and headers:
        sizes = [max([len(h)] + [len(r[i]) for r in texts]) for i, h in enumerate(headers)]
        total = lambda: sum(sizes) + 2 * (len(sizes) - 1)  # noqa: E731
        dropped = []
        for name in droppable or ():
            if total() <= width:
                break
            if name in headers and len(headers) > 1:
                i = headers.index(name)
                dropped.append(headers.pop(i))
                sizes.pop(i)
                for row in texts:
                    row.pop(i)
        if dropped:
            _note(f"azml: not shown at {width} columns: {', '.join(dropped)} "
                  "(-o json shows every field)")
        floors = [max([MIN_COLUMN] + [len(t) for t in [h] + [r[i] for r in texts] if _uncut(t)])
                  for i, h in enumerate(headers)]
        while total() > width:
            cuttable = [i for i, n in enumerate(sizes) if n > floors[i]]
            if not cuttable:
                break
            widest = max(cuttable, key=lambda i: sizes[i])
            sizes[widest] -= 1

        def cut(text, n):
            return text if len(text) <= n or _uncut(text) else text[: n - 1] + "…"

        headers = [cut(h, n) for h, n in zip(headers, sizes)]
        texts = [[cut(t, n) for t, n in zip(row, sizes)] for row in texts]
    return tabulate_module.tabulate(texts, headers=headers, tablefmt="simple", numalign="right")


def _note(text: str) -> None:
    """A warning on stderr, unless --only-show-errors."""
    ctx = click.get_current_context(silent=True)
    if not (ctx and ctx.meta.get(QUIET)):
        click.echo(text, err=True)


def _capitalized(key: str) -> str:
    return key[:1].upper() + key[1:]


def generic_table(data) -> str:
    """az's automatic table (knack's ``_TableOutput``): one row per object (a result that is
    not a list is one row), a column per key with a scalar value, first letter capitalized;
    nested values (lists, objects) and nulls are left out; a list of lists gets columns
    Column1..N, a scalar the column Result."""
    items = data if isinstance(data, list) else [data]
    rows = []
    for item in items:
        if isinstance(item, dict):
            rows.append({_capitalized(str(k)): v for k, v in item.items()
                         if v is not None and not isinstance(v, (list, dict))})
        elif isinstance(item, list):
            rows.append({f"Column{i + 1}": v for i, v in enumerate(item)})
        else:
            rows.append({"Result": item})
    keys = columns(rows)
    if not keys:
        return ""
    return table(keys, [[r.get(k) for k in keys] for r in rows])


def field_table(data: dict) -> str:
    """One object as Field/Value lines (``info``'s own layout)."""
    return table(["Field", "Value"], [[k, v] for k, v in data.items()])


def sparkline(series: list, width: int = SPARK_WIDTH) -> str:
    """Unicode bars for a series, averaged into at most ``width`` buckets; gaps for NaN."""
    points = list(series)
    if len(points) > width:
        step = len(points) / width
        buckets = [points[int(i * step): int((i + 1) * step)] for i in range(width)]
        points = [_mean(b) for b in buckets]
    finite = [v for v in points if _finite(v)]
    if not finite:
        return " " * len(points)
    low, high = min(finite), max(finite)
    scale = (len(SPARKS) - 1) / (high - low) if high > low else 0
    return "".join(SPARKS[int(round((v - low) * scale))] if _finite(v) else " " for v in points)


def series_rows(series: dict) -> list[list]:
    """``[name, sparkline, count, min, max, last]`` per series."""
    out = []
    for name, points in series.items():
        finite = [v for v in points if _finite(v)]
        out.append([name, sparkline(points), len(points), min(finite, default=None),
                    max(finite, default=None), points[-1] if points else None])
    return out


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _mean(values):
    finite = [v for v in values if _finite(v)]
    return sum(finite) / len(finite) if finite else None
