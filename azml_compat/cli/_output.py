"""``-o table|json|tsv`` and ``--query``, as the az CLI had them.

A command returns JSON-ready data; ``--query`` (JMESPath) is applied to it first, then it is
rendered. A command may give its own table layout, used only without ``--query`` (as in az).
"""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import sys

import click

from azml_compat._exceptions import QueryError

FORMATS = ("table", "json", "tsv")
DEBUG = "azml.debug"
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


def _debug(ctx, param, value):
    if value:
        ctx.meta[DEBUG] = True


debug_option = click.option("--debug", is_flag=True, expose_value=False, callback=_debug,
                             is_eager=True, help="Show the traceback of an error.")


def output_options(command):
    """``-o``, ``--query`` and ``--debug``; the command receives ``output`` and ``query``."""
    command = debug_option(command)
    command = click.option("--query", callback=_compile, metavar="JMESPATH",
                           help="JMESPath query applied to the JSON result.")(command)
    return click.option("-o", "--output", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="Output format.")(command)


def rendered(table=None):
    """Output options on a command that returns its result, which is then printed."""

    def wrap(command):
        @output_options
        @functools.wraps(command)
        def run(output, query, **kwargs):
            result = command(**kwargs)
            if result is not None:  # None: the command printed its own output
                emit(result, output, query, table)

        return run

    return wrap


def emit(data, output: str, query=None, table=None) -> None:
    if query is not None:
        data, table = query.search(data), None
    if output == "json":
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    elif output == "tsv":
        text = tsv(data)
    else:
        text = (table or generic_table)(data)
    if text != "":
        click.echo(text)


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


def tsv(data) -> str:
    """One line per item, values tab-separated, no header (az's tsv)."""
    if isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        keys = columns(data)
        return "\n".join("\t".join(cell(i.get(k)) for k in keys) for i in data)
    if isinstance(data, list):  # one line per item; an item that is a list is one row
        return "\n".join("\t".join(cell(v) for v in i) if isinstance(i, list) else tsv(i)
                         for i in data)
    if isinstance(data, dict):
        return "\t".join(cell(v) for v in data.values())
    return cell(data)


# -- tables -------------------------------------------------------------------------------------
def terminal_width() -> int | None:
    """The width to fit: the terminal's (or ``COLUMNS``); None when piped."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def table(headers: list, body: list[list]) -> str:
    """tabulate's plain table, narrowed to the terminal by shortening the widest columns."""
    import tabulate as tabulate_module

    tabulate_module.MIN_PADDING = 0  # headers get no extra padding: columns fit as computed
    texts = [[cell(v, short=True) for v in row] for row in body]
    width = terminal_width()
    if width and headers:
        sizes = [max([len(str(h))] + [len(r[i]) for r in texts]) for i, h in enumerate(headers)]
        while sum(sizes) + 2 * (len(sizes) - 1) > width and max(sizes) > MIN_COLUMN:
            sizes[sizes.index(max(sizes))] -= 1
        cut = lambda text, n: text if len(text) <= n else text[: n - 1] + "…"  # noqa: E731
        headers = [cut(str(h), n) for h, n in zip(headers, sizes)]
        texts = [[cut(t, n) for t, n in zip(row, sizes)] for row in texts]
    return tabulate_module.tabulate(texts, headers=headers, tablefmt="simple", numalign="right")


def generic_table(data) -> str:
    """Lists of objects as rows; one object as Field/Value lines; scalars as they are."""
    if isinstance(data, list) and data and all(isinstance(i, dict) for i in data):
        keys = columns(data)
        return table(keys, [[i.get(k) for k in keys] for i in data])
    if isinstance(data, list):
        return table(["Result"], [[i] for i in data]) if data else ""
    if isinstance(data, dict):
        return table(["Field", "Value"], [[k, v] for k, v in data.items()])
    return cell(data)


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
