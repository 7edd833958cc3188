"""``-o``, ``--query`` and the global ``--verbose``/``--only-show-errors``/``--debug``, as the
az CLI (knack) has them.

A command returns JSON-ready data; ``--query`` (JMESPath) is applied to it first, then it is
rendered. A command may give its own table layout, used only without ``--query`` (as in az).
"""
from __future__ import annotations

import collections
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

from .._config import Settings
from .._consts import OUTPUT_FORMATS
from .._report import StderrHandler, install

FORMATS = OUTPUT_FORMATS  # az's --output choices
FORMAT_SETTINGS = ("AZML_OUTPUT", "AZURE_CORE_OUTPUT")  # first set wins, then the TTY decides
DEBUG = "azml.debug"
VERBOSE = "azml.verbose"
QUIET = "azml.only_show_errors"
SAID = "azml.said_store"
RUN_ID = re.compile(r"[0-9a-f]{32}")  # MLflow's run ids: never cut in a table
SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40
MIN_COLUMN = 6


def _compile(ctx, param, value):
    """The query compiled before anything is fetched; a bad one is a usage error (exit 2),
    worded as az's argparse words it."""
    if value is None:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(value)
    except (JMESPathError, KeyError) as exc:
        raise click.UsageError(f"argument --query: invalid jmespath_type value: {value!r} "
                               f"({' '.join(str(exc).split())})", ctx) from None


def _flag(key):
    def callback(ctx, param, value):
        if value:
            ctx.meta[key] = True  # shared by the whole command line's contexts
            _verbosity(ctx.meta, (ctx.obj or {}).get("argv", ()))
    return callback


def _verbosity(meta, argv) -> None:
    """az's global verbosity (knack's ``CLILogging``) for the ``azml`` logger: warnings by
    default, --only-show-errors only errors (Python's warnings too), --verbose INFO lines,
    --debug everything, other libraries' DEBUG lines included. Lines are knack's
    ``LEVEL: message`` (``LEVEL: logger: message`` with --debug), written by the logger's one
    stderr handler (``_report``), so none is printed twice. The CLI's main restores it all."""
    logger, handler = _reporter()
    debug = meta.get(DEBUG)
    if meta.get(QUIET):
        logger.setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
    elif debug or meta.get(VERBOSE):
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
    handler.setFormatter(logging.Formatter(("%(levelname)s: %(name)s: %(message)s" if debug
                                            else "%(levelname)s: %(message)s")))
    if debug and handler not in logging.getLogger().handlers:
        logging.getLogger().addHandler(handler)  # MLflow's, urllib3's: as az's --debug shows
        logging.getLogger().setLevel(logging.DEBUG)
    if logger.isEnabledFor(logging.INFO) and not meta.get(SAID):
        meta[SAID] = True  # once, however many times the flags are given
        _say_store(argv)


def _say_store(argv) -> None:
    """--verbose: which store the command reads; --debug: the command line too. Redacted by
    the logger's filter (a URI's password never shows)."""
    try:
        uri = Settings.from_env(["MLFLOW_TRACKING_URI"]).tracking_uri
    except Exception:  # noqa: BLE001 - the command itself reports a bad setting
        return
    log = logging.getLogger("azml")
    log.debug("command line: %s", " ".join(["azml", *map(str, argv)]))
    log.info("tracking store %s", uri)


def _reporter() -> tuple:
    """The ``azml`` logger and its one stderr handler (put back if something removed it)."""
    logger = install()
    return logger, next(h for h in logger.handlers if isinstance(h, StderrHandler))


def command_logging() -> tuple:
    """Set the ``azml`` logger up as a command starts (knack's line format, WARNING), and give
    what :func:`restore_logging` needs to put it back as it was."""
    (logger, handler), root = _reporter(), logging.getLogger()
    saved = logger.level, handler.formatter, root.level, list(root.handlers)
    logger.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    return saved


def restore_logging(saved: tuple) -> None:
    (logger, handler), root = _reporter(), logging.getLogger()
    logger.setLevel(saved[0])
    handler.setFormatter(saved[1])
    root.setLevel(saved[2])
    root.handlers[:] = saved[3]


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


def color_enabled() -> bool:
    """knack's rule: colour only when stdout and stderr are both terminals, and never with
    az's ``AZURE_CORE_NO_COLOR``."""
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        return False
    return not Settings.from_env(["AZURE_CORE_NO_COLOR"], strict=True).no_color


def emit(data, output: str | None, query=None, table=None) -> None:
    """Print ``data`` as az prints a command's result: through knack's own formatters, with
    the query applied as knack applies it, and ``table`` as the command's table transformer
    (unused with ``--query``, as in az). Only a table on a terminal (or with ``COLUMNS``)
    differs: it is fitted to the width (:func:`fit`)."""
    from knack import output as knack_output
    from knack.util import CommandResultItem

    output = (output or default_format()).lower()
    if query is not None:
        from jmespath import Options

        data = query.search(data, Options(collections.OrderedDict))
    if data is None:
        return  # knack prints nothing for a null result (a query that matched nothing)
    if output in ("jsonc", "yamlc") and not color_enabled():
        output = output[:-1]  # knack's OutputProducer.get_formatter
    if output == "table":
        text = _table(data, table if query is None else None, query is not None)
    else:
        formatter = getattr(knack_output, FORMATTERS[output])
        text = formatter(CommandResultItem(data, is_query_active=query is not None))
    sys.stdout.write(text)
    sys.stdout.flush()


FORMATTERS = {"json": "format_json", "jsonc": "format_json_color", "yaml": "format_yaml",
              "yamlc": "format_yaml_color", "tsv": "format_tsv", "none": "format_none"}


def cell(value):
    """A table transformer's value: knack leaves a null out of its row, which would move
    that column to the end of the table, or drop it (tabulate orders columns as rows first
    name them): an empty cell instead. A dict or list (a logged document) is left out of a
    knack table too: compact JSON, as Workbench's table printed it."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


class Tables(list):
    """What a table transformer returns for several tables, one after the other (``info``:
    its fields, then its series), each rendered by knack, a blank line between them."""


def _table(data, transformer, query_active: bool) -> str:
    """knack's ``format_table`` on the result (a transformer's rows are printed as they come,
    a plain object's keys sorted, as knack does); on a terminal the rows are fitted first."""
    from knack.output import format_table
    from knack.util import CommandResultItem

    if transformer is not None:
        data = transformer(data)
    parts = data if isinstance(data, Tables) else [data]
    width = terminal_width()
    texts = []
    for rows in parts:
        if width:
            rows = fit(_auto_rows(rows, sort=transformer is None and not query_active),
                       width, getattr(transformer, "droppable", None))
        final = width or transformer is not None  # knack must print these rows as they are
        texts.append(format_table(CommandResultItem(
            rows, table_transformer=_as_is if final else None, is_query_active=query_active)))
    return "\n".join(texts)


def _as_is(rows):
    """The table transformer of rows already made (knack then neither sorts nor changes them)."""
    return rows


def _auto_rows(data, sort: bool) -> list:
    """knack's automatic table rows (``_TableOutput._auto_table``) for a result, so that they
    can be fitted before knack prints them."""
    from knack.output import _TableOutput

    return _TableOutput(sort)._auto_table(data if isinstance(data, list) else [data])


# -- tables -------------------------------------------------------------------------------------
def terminal_width() -> int | None:
    """The width to fit: the terminal's (or ``COLUMNS``); None when piped."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _uncut(text: str) -> bool:
    """Texts a table never cuts: run ids, which `-r` needs whole (or as a unique prefix)."""
    return bool(RUN_ID.search(text))


def fit(rows: list, width: int, droppable=None) -> list:
    """Table rows (dicts of header to scalar) narrowed to ``width`` as tabulate will lay them
    out (two spaces between columns, a header's column two wider than its name): first the
    ``droppable`` columns (a function of the headers, least wanted first) are left out, then
    the widest values are cut with ``…``. Headers are never cut (a cut header names nothing),
    nor run ids (``-r`` needs them), so the table may stay wider than the terminal. One
    warning names what was left out."""
    headers = list(dict.fromkeys(k for row in rows for k in row))
    texts = [{k: str(v) for k, v in row.items()} for row in rows]

    def size(h):
        return max([len(h) + 2] + [len(r.get(h, "")) for r in texts])

    def total():
        return sum(size(h) for h in headers) + 2 * (len(headers) - 1)

    dropped = []
    for name in (droppable(headers) if droppable else ()):
        if total() <= width:
            break
        if name in headers and len(headers) > 1:
            headers.remove(name)
            dropped.append(name)
    if dropped:
        logging.getLogger("azml").warning("not shown at %d columns: %s (-o json shows every "
                                          "field)", width, ", ".join(dropped))
    sizes = {h: size(h) for h in headers}
    floors = {h: max([len(h) + 2, MIN_COLUMN] + [len(r[h]) for r in texts
                                                  if h in r and _uncut(r[h])])
              for h in headers}
    while sum(sizes.values()) + 2 * (len(headers) - 1) > width:
        cuttable = [h for h in headers if sizes[h] > floors[h]]
        if not cuttable:
            break
        sizes[max(cuttable, key=lambda h: sizes[h])] -= 1

    def cut(text, n):
        return text if len(text) <= n or _uncut(text) else text[: n - 1] + "…"

    return [collections.OrderedDict((h, cut(r[h], sizes[h])) for h in headers if h in r)
            for r in texts]


def series_rows(series: dict) -> list:
    """A row per series: its name, a sparkline, count, min, max and last value."""
    out = []
    for name, points in series.items():
        finite = [v for v in points if _finite(v)]
        out.append(collections.OrderedDict(
            [("Series", name), ("Chart", sparkline(points)), ("Count", len(points)),
             ("Min", min(finite, default="")), ("Max", max(finite, default="")),
             ("Last", points[-1] if points and points[-1] is not None else "")]))
    return out


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


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _mean(values):
    finite = [v for v in values if _finite(v)]
    return sum(finite) / len(finite) if finite else None
