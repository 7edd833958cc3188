"""Every ``azml`` command's output, in every format and with a set of queries, is byte for byte
what az's own framework prints for the same result object: a real ``knack.CLI`` with one
command that returns the object ``azml`` computed (and ``azml``'s table transformer, as an az
command module registers its own) is invoked with the same ``-o`` and ``--query``.

The only differences allowed are the ones ``docs/cli.md`` lists with their reason (see
``LISTED``); a test below checks that the list and the document agree."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from cli_support import empty_db, sqlite_cli  # noqa: F401 - fixtures
from knack import CLI, CLICommandsLoader
from knack.commands import CommandGroup

from azml_compat.cli import _output

FORMATS = ["json", "jsonc", "yaml", "yamlc", "tsv", "table", "none"]
# Queries any result shape takes, then ones for a list of runs and for one run.
QUERIES = [None, "@", "length(@)", "[0]", "[].run_id", "{run: run_id, acc: Accuracy}",
           "series", "[].{id: run_id, acc: Accuracy, args: properties.arguments, "
                     "props: properties, gone: attachments}"]
DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
# (command, format) pairs whose bytes docs/cli.md says differ from knack's, and why there
LISTED = {("history info", "table"), ("history last", "table")}

_RESULT = {}


def produce():
    """The knack command: returns the object azml printed."""
    return _RESULT["data"]


class _Loader(CLICommandsLoader):
    def load_command_table(self, args):
        with CommandGroup(self, "", f"{__name__}#{{}}") as group:
            group.command("show", "produce", table_transformer=_RESULT.get("transformer"))
        return super().load_command_table(args)


def knack_prints(tmp_path, data, fmt: str, query: str | None, transformer=None) -> tuple[int, str]:
    """``(exit status, stdout)`` of az's framework printing ``data``."""
    _RESULT.update(data=data, transformer=transformer)
    root = logging.getLogger()
    saved = root.level, list(root.handlers)  # knack's logging setup is for its process
    out = io.StringIO()
    cli = CLI(cli_name="azmlref", config_dir=str(tmp_path / "knack"),
              config_env_var_prefix="AZMLREF", commands_loader_cls=_Loader, out_file=out)
    args = ["show", "-o", fmt] + (["--query", query] if query is not None else [])
    try:
        code = cli.invoke(args, out_file=out)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    return code, out.getvalue()


@pytest.fixture
def recorded(monkeypatch):
    """Each result ``azml`` hands to its printer, before the query, with its transformer."""
    seen = []
    real = _output.emit

    def emit(data, output, query=None, table=None):
        seen.append((data, table))
        return real(data, output, query, table)

    monkeypatch.setattr(_output, "emit", emit)
    from azml_compat.cli import submit

    monkeypatch.setattr(submit, "emit", emit)
    return seen


@pytest.fixture
def commands(sqlite_cli, tmp_path):
    """Command lines over a store with runs of metrics, a series, params and artifacts."""
    first = sqlite_cli.seed({"Accuracy": 0.91234567, "accuracy (%)": 91.2, "loss": [0.9, 0.4]},
                            params={"lr": "0.1"}, args=["0.1", "x\ty"],
                            artifacts={"outputs/model.pkl": b"m", "outputs/n/a.txt": b"a"})
    second = sqlite_cli.seed({"Accuracy": 1, "f1 (macro)": 0.5}, strings={"note": "ok"})
    sqlite_cli("history", "promote", "-r", first, "-ap", "outputs/model.pkl", "-n", "m1")
    return {
        "history list": ["history", "list"],
        "history last": ["history", "last"],
        "history info": ["history", "info", "-r", first],
        "history compare": ["history", "compare", "-r", first, "-r", second],
        "history download": ["history", "download", "-r", first, "-d", tmp_path / "dl",
                             "--overwrite"],
        "asset download": ["asset", "download", "-n", "m1", "-d", tmp_path / "asset",
                           "--overwrite"],
        "history promote": ["history", "promote", "-r", first, "-ap", "outputs/n", "-n", "m2"],
        "sync --list": ["sync", "--list"],
        "sync": ["sync"],
    }


def test_every_command_format_and_query_prints_knacks_bytes(sqlite_cli, commands, recorded,
                                                            tmp_path):
    compared, differ = 0, []
    for name, args in commands.items():
        for fmt in FORMATS:
            for query in QUERIES:
                recorded.clear()
                extra = ["-o", fmt] + (["--query", query] if query is not None else [])
                ours = sqlite_cli(*args, *extra, code=None)
                ((data, transformer),) = recorded
                code, theirs = knack_prints(tmp_path, data, fmt, query, transformer)
                if (name, fmt) in LISTED and query is None:
                    parts = transformer(data)  # the documented difference: one table per part
                    theirs = "\n".join(knack_prints(tmp_path, part, fmt, None, lambda r: r)[1]
                                       for part in parts)
                compared += 1
                if code != 0:  # knack could not print it (a table of nothing): neither can we
                    assert ours.exit_code == 1 and ours.stdout == "", (name, fmt, query)
                    assert ours.stderr.startswith("ERROR: "), ours.stderr
                elif ours.exit_code != 0 or ours.stdout != theirs:
                    differ.append((name, fmt, query, ours.stdout, theirs, ours.stderr))
    assert compared == len(commands) * len(FORMATS) * len(QUERIES)
    assert not differ, "\n\n".join(f"{d[0]} -o {d[1]} --query {d[2]!r}:\nazml:\n{d[3]}\n"
                                   f"knack:\n{d[4]}\n{d[5]}" for d in differ[:5])


def test_the_listed_differences_are_documented():
    text = DOC.read_text()
    section = text[text.index("## Where azml differs from az"):]
    for command, fmt in LISTED:
        assert f"`azml {command} -o {fmt}`" in section, (command, fmt)
