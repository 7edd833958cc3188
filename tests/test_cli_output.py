"""What every ``azml`` command shares with az: output formats and their defaults, tables that
fit a terminal without cutting a run id, global options, one-line errors with az's exit
statuses, quiet broken pipes, ``python -m azml_compat.cli`` and examples in every help."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import click.testing
import pytest
import yaml
from cli_support import AZML, cli, empty_db, one_line_error, sqlite_cli  # noqa: F401 - fixtures
import tty_support
from conftest import free_port

from azml_compat.cli import main

METRICS = {"Accuracy": 0.91234567, "accuracy (%)": 91.2, "precision macro": 0.8765,
           "recall macro": 0.7654, "Loss curve": [0.9, 0.5, 0.3]}


def seed_wide(cli, runs: int = 3) -> list[str]:
    """Runs whose table is far wider than 100 columns."""
    return [cli.seed(METRICS, script=f"train_with_a_long_name_{i}.py") for i in range(runs)]


def in_pty(cli, *args, columns: int, rows: int = 50, stderr=None, **env) -> tuple[int, str]:
    """``azml ARGS`` on a real pseudo-terminal of ``columns`` x ``rows``."""
    env = {"HOME": str(cli.store.home), **env}
    return tty_support.in_pty([AZML, *args], cli.store.workdir, cli.store.env(**env), columns,
                              rows, stderr)


# -- formats --------------------------------------------------------------------------------
def test_every_az_output_format(sqlite_cli):
    run_id = sqlite_cli.seed({"Accuracy": 0.5}, strings={"note": "ok"})
    as_json = json.loads(sqlite_cli("history", "info", "-r", run_id, "-o", "json").stdout)
    assert as_json["run_id"] == run_id
    # jsonc and yamlc are coloured only on a terminal; piped they are plain json and yaml
    assert json.loads(sqlite_cli("history", "info", "-r", run_id, "-o", "jsonc").stdout) == as_json
    assert yaml.safe_load(sqlite_cli("history", "info", "-r", run_id, "-o", "yaml").stdout) == as_json
    assert yaml.safe_load(sqlite_cli("history", "info", "-r", run_id, "-o", "YAMLC").stdout) == as_json
    assert sqlite_cli("history", "info", "-r", run_id, "-o", "none").stdout == ""
    assert run_id in sqlite_cli("history", "info", "-r", run_id, "-o", "tsv").stdout.split("\t")


def test_jsonc_is_coloured_on_a_terminal(sqlite_cli):
    sqlite_cli.seed({"Accuracy": 0.5})
    code, out = in_pty(sqlite_cli, "history", "last", "-o", "jsonc", columns=100)
    assert code == 0 and "\x1b[" in out and '"run_id"' in out
    # az's switch turns it off, even on a terminal
    code, out = in_pty(sqlite_cli, "history", "last", "-o", "jsonc", columns=100,
                       AZURE_CORE_NO_COLOR="1")
    assert code == 0 and "\x1b[" not in out and '"run_id"' in out


def test_jsonc_is_plain_unless_stderr_is_a_terminal_too(sqlite_cli):
    """knack's rule: colour needs stdout and stderr both on a terminal (`2>log` turns it off)."""
    sqlite_cli.seed({"Accuracy": 0.5})
    code, out = in_pty(sqlite_cli, "history", "last", "-o", "yamlc", columns=100,
                       stderr=subprocess.DEVNULL)
    assert code == 0 and "\x1b[" not in out and "run_id: " in out


def test_an_empty_result_is_one_empty_line_and_a_null_one_nothing(sqlite_cli):
    sqlite_cli.seed({"Accuracy": 0.5})
    assert sqlite_cli("history", "list", "-o", "table", "--query", "[?status=='x']").stdout == "\n"
    assert sqlite_cli("history", "list", "-o", "json", "--query", "[?status=='x']").stdout == "[]\n"
    assert sqlite_cli("history", "last", "-o", "json", "--query", "nothing").stdout == ""


def test_json_and_tsv_keys_are_sorted_as_az_sorts_them(sqlite_cli):
    run_id = sqlite_cli.seed({"zeta": 1.5, "Accuracy": 0.5})
    text = sqlite_cli("history", "list", "-o", "json").stdout
    (row,) = json.loads(text)
    assert list(row) == sorted(row) and list(row["properties"]) == sorted(row["properties"])
    fields = sqlite_cli("history", "list", "-o", "tsv").stdout.rstrip("\n").split("\t")
    assert fields[sorted(row).index("run_id")] == run_id
    assert fields[sorted(row).index("status")] == "Completed"


def test_tsv_writes_nested_values_as_az_does(sqlite_cli):
    sqlite_cli.seed({"Accuracy": 0.5}, args=["0.1", "x"])
    (row,) = sqlite_cli.json("history", "list")
    fields = sqlite_cli("history", "list", "-o", "tsv").stdout.rstrip("\n").split("\t")
    assert len(fields) == len(row)
    by_key = dict(zip(row, fields))
    assert by_key["properties"] == ""  # an object: an empty field keeps the columns aligned
    assert by_key["attachments"] == "None"  # null, as az's tsv writes it
    listed = sqlite_cli("history", "list", "-o", "tsv", "--query",
                        "[].[properties.arguments, Accuracy]").stdout.strip()
    assert listed == "2\t0.5"  # a list: its length


def test_table_leaves_out_nested_values_as_az_does(sqlite_cli):
    run_id = sqlite_cli.seed({"Accuracy": 0.5}, args=["0.1"])
    out = sqlite_cli("history", "list", "-o", "table", "--query",
                     "[].{run: run_id, id: run_id, props: properties, args: properties.arguments, "
                     "acc: Accuracy, gone: attachments}").stdout
    header = out.splitlines()[0].split()
    # first letter capitalized; objects, lists, nulls and knack's skipped `id` left out
    assert header == ["Run", "Acc"]
    assert run_id in out and "{" not in out and "[" not in out


def test_default_is_table_on_a_terminal_and_json_when_piped(sqlite_cli):
    run_id = sqlite_cli.seed({"Accuracy": 0.5})
    piped = sqlite_cli.run("history", "list")
    assert piped.returncode == 0 and json.loads(piped.stdout)[0]["run_id"] == run_id
    code, out = in_pty(sqlite_cli, "history", "list", columns=120)
    assert code == 0 and out.splitlines()[0].split()[-4:] == [
        "Run_id", "Script_name", "Start_time_utc", "Status"]


def test_settings_choose_the_default_format(sqlite_cli):
    run_id = sqlite_cli.seed({"Accuracy": 0.5})
    az = sqlite_cli("history", "last", env={"AZURE_CORE_OUTPUT": "tsv"}).stdout
    assert run_id in az.split("\t")
    ours = sqlite_cli("history", "last", env={"AZURE_CORE_OUTPUT": "tsv", "AZML_OUTPUT": "yaml"})
    assert yaml.safe_load(ours.stdout)["run_id"] == run_id  # AZML_OUTPUT wins
    given = sqlite_cli("history", "last", "-o", "json", env={"AZML_OUTPUT": "yaml"}).stdout
    assert json.loads(given)["run_id"] == run_id  # -o wins over both
    bad = sqlite_cli("history", "last", env={"AZML_OUTPUT": "xml"}, code=1)
    one_line_error(bad, "AZML_OUTPUT", "xml")


# -- tables never cut a run id ------------------------------------------------------------------
@pytest.mark.parametrize("columns", [100, 80])
def test_list_on_a_narrow_terminal_keeps_run_ids_whole(sqlite_cli, columns):
    ids = seed_wide(sqlite_cli)
    code, out = in_pty(sqlite_cli, "history", "list", columns=columns)
    assert code == 0, out
    lines = out.splitlines()
    table = [line for line in lines if not line.startswith("WARNING: ")]
    assert all(run_id in out for run_id in ids)
    assert max(len(line) for line in table) <= columns, out
    assert table[0].split()[-2:] == ["Run_id", "Status"]
    note = [line for line in lines if line.startswith("WARNING: not shown")]
    assert len(note) == 1 and "Start_time_utc" in note[0]  # says what it left out


@pytest.mark.parametrize("columns", [100, 80])
def test_list_with_columns_set_keeps_run_ids_whole(sqlite_cli, columns):
    ids = seed_wide(sqlite_cli)
    result = sqlite_cli("history", "list", "-o", "table", env={"COLUMNS": str(columns)})
    lines = result.stdout.splitlines()
    assert all(run_id in result.stdout for run_id in ids)
    assert max(len(line) for line in lines) <= columns
    assert [line.split()[-2] for line in lines[2:]] == ids[::-1]  # each row's whole run id
    quiet = sqlite_cli("history", "list", "-o", "table", "--only-show-errors",
                       env={"COLUMNS": str(columns)})
    assert quiet.stdout == result.stdout and quiet.stderr == ""  # the note is a warning


def test_prefix_shown_by_a_table_finds_the_run(sqlite_cli):
    ids = seed_wide(sqlite_cli)
    out = sqlite_cli("history", "list", "-o", "table", env={"COLUMNS": "80"}).stdout
    shown = out.splitlines()[2].split()[-2]
    assert shown == ids[-1]
    assert sqlite_cli.json("history", "info", "-r", shown[:7])["run_id"] == ids[-1]


def test_queried_tables_never_cut_run_ids(sqlite_cli):
    ids = seed_wide(sqlite_cli, 2)
    out = sqlite_cli("history", "list", "-o", "table", "--query",
                     "[].{script: script_name, run: run_id, start: start_time_utc}",
                     env={"COLUMNS": "40"}).stdout
    assert all(run_id in out for run_id in ids)


# -- global options, errors, pipes ----------------------------------------------------------------
def _commands(group: click.Group, path=("azml",)):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, path + (name,))
        else:
            yield path + (name,)


COMMANDS = sorted(set(_commands(main)))


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_global_options_on_every_command(path):
    result = click.testing.CliRunner().invoke(
        main, [*path[1:], "--verbose", "--only-show-errors", "--debug", "-h"])
    assert result.exit_code == 0, result.output
    assert "--only-show-errors" in result.stdout


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_ends_with_examples(path):
    out = click.testing.CliRunner().invoke(main, [*path[1:], "-h"]).stdout
    sections = out.rstrip().split("\n\n")
    start = next(i for i, s in enumerate(sections) if s.strip() == "Examples")
    examples = sections[start + 1:]
    assert examples and all(len(s.strip().splitlines()) == 2 for s in examples), out
    assert all(s.strip().splitlines()[1].strip().startswith(("azml ", "alias az=azml"))
               for s in examples)


def test_verbose_says_how_long_the_command_ran(sqlite_cli):
    sqlite_cli.seed({"Accuracy": 0.5})
    assert sqlite_cli.run("history", "list").stderr == b""
    for flag in ("--verbose", "--debug"):
        err = sqlite_cli.run("history", "list", flag).stderr.decode().splitlines()
        assert [line for line in err if "command ran in" in line] == [
            next(line for line in err if line.startswith("INFO: ") and "command ran in" in line)
        ], err  # once, as az's INFO line
        assert any(line.startswith("INFO: ") and "tracking store sqlite:///" in line
                   for line in err), err


def test_debug_shows_debug_lines_and_verbose_does_not(sqlite_cli):
    sqlite_cli.seed({"Accuracy": 0.5})
    debug = sqlite_cli.run("--debug", "history", "list").stderr.decode().splitlines()
    assert "DEBUG: azml: command line: azml --debug history list" in debug, debug
    verbose = sqlite_cli.run("history", "list", "--verbose", "--verbose").stderr.decode()
    assert "DEBUG" not in verbose and verbose.count("tracking store") == 1, verbose


def test_an_invalid_query_is_a_usage_error(sqlite_cli):
    proc = sqlite_cli.run("history", "list", "--query", "[[")
    assert proc.returncode == 2 and proc.stdout == b""
    one_line_error(proc, "ERROR: argument --query: invalid jmespath_type value: '[['")


def test_global_options_before_the_command(sqlite_cli):
    run_id = sqlite_cli.seed({"Accuracy": 0.5})
    result = sqlite_cli("--only-show-errors", "--verbose", "history", "--debug", "last",
                        "-o", "json")
    assert json.loads(result.stdout)["run_id"] == run_id


@pytest.mark.parametrize("args, words", [
    (["history", "info"], ["Missing option", "--run", "azml history info -h"]),
    (["history", "list", "-o", "xml"], ["xml", "--output"]),
    (["history", "list", "--no-such-flag"], ["--no-such-flag"]),
    (["history", "lst"], ["lst"]),
    (["ml", "experiment", "submit", "-c", "docker", "x.py"], ["docker"]),
])
def test_usage_errors_are_one_line_and_exit_2(sqlite_cli, args, words):
    proc = sqlite_cli.run(*args)
    assert proc.returncode == 2 and proc.stdout == b""
    line = one_line_error(proc, *words)
    assert line.startswith("ERROR: ")


def test_broken_pipe_ends_quietly(sqlite_cli):
    run_id = sqlite_cli.seed({"points": [float(i) for i in range(20000)]},
                             artifacts={"outputs/big.bin": b"x" * (4 << 20)})
    for args in (["history", "info", "-r", run_id, "-o", "json"],
                 ["history", "info", "-r", run_id, "-a", "outputs/big.bin"]):
        proc = subprocess.Popen([AZML, *args], cwd=sqlite_cli.store.workdir,
                                env=sqlite_cli.store.env(HOME=str(sqlite_cli.store.home)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.read(10)  # `| head -c 10`: read a little, then go away
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0 and err == b"", err  # as az: quiet, status 0


def test_python_m_azml_compat_cli(sqlite_cli):
    run_id = sqlite_cli.seed({"Accuracy": 0.5})
    proc = subprocess.run([sys.executable, "-m", "azml_compat.cli", "history", "list"],
                          cwd=sqlite_cli.store.workdir, capture_output=True, timeout=120, check=False,
                          env=sqlite_cli.store.env(HOME=str(sqlite_cli.store.home)))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["run_id"] == run_id
    usage = subprocess.run([sys.executable, "-m", "azml_compat.cli", "nope"], capture_output=True,
                           timeout=120, cwd=sqlite_cli.store.workdir, check=False)
    assert usage.returncode == 2 and one_line_error(usage, "nope").startswith("ERROR:")


def test_sync_failure_prints_its_rows_then_one_line(sqlite_cli, tmp_path):
    """A journal whose server is gone: the rows are the result, the error one line."""
    url = f"http://127.0.0.1:{free_port()}"
    store = sqlite_cli.store
    env = {"MLFLOW_TRACKING_URI": url, "AZML_FLUSH_TIMEOUT": "1", "HOME": str(tmp_path),
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    store.run_script("from azureml.logging import get_azureml_logger\n"
                     "get_azureml_logger().log('x', 1)\n", **env)
    assert len(store.journals()) == 1
    proc = sqlite_cli.run("sync", "--give-up-after", "1", "-o", "json", **env)
    assert proc.returncode == 1
    (row,) = json.loads(proc.stdout)
    assert row["state"].startswith("failed") and row["pending"] >= 1
    errors = [line for line in proc.stderr.decode().splitlines() if "ERROR" in line]
    assert len(errors) == 1 and errors[0].startswith("ERROR: 1 journal(s) not delivered")
    assert "Error:" not in proc.stderr.decode()
    # the retry warnings on the way are warnings: --only-show-errors leaves the error alone
    quiet = sqlite_cli.run("sync", "--give-up-after", "1", "--only-show-errors", **env)
    assert quiet.returncode == 1
    one_line_error(quiet, "ERROR:", "not delivered", "azml sync")
    assert len(store.journals()) == 1  # kept for the next sync


# -- shell completion ---------------------------------------------------------------------------
def test_bash_completion_as_documented(sqlite_cli):
    """The line docs/cli.md gives, in a real bash: commands and -o's choices complete."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    line = 'eval "$(_AZML_COMPLETE=bash_source azml)"'
    assert line in doc

    def complete(*words: str) -> list[str]:
        script = (f'{line}\nCOMP_WORDS=({" ".join(words)}); COMP_CWORD={len(words) - 1}\n'
                  '_azml_completion azml; printf "%s\\n" "${COMPREPLY[@]}"')
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              timeout=120, env=sqlite_cli.store.env(), check=True)
        return proc.stdout.split()

    assert complete("azml", "history", "l") == ["last", "list"]
    assert complete("azml", "history", "list", "-o", "y") == ["yaml", "yamlc"]
    assert "--only-show-errors" in complete("azml", "sync", "--o")


def _screen(out: str) -> str:
    """What a terminal shows of ``out``: a line redrawn after ``\\r`` (sync's progress line)
    is its last drawing, escape sequences aside."""
    shown = (line.rstrip("\r").rsplit("\r", 1)[-1] for line in out.split("\n"))
    return "\n".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line) for line in shown)


def test_sync_tables_keep_their_headers_at_80_columns(sqlite_cli, tmp_path):
    """A journal of a dead server's run: `sync --list` and `sync` at 80 columns name every
    column they show in full (a cut `Track…` names nothing), run id whole, within 80."""
    url = f"http://127.0.0.1:{free_port()}"
    env = {"MLFLOW_TRACKING_URI": url, "AZML_FLUSH_TIMEOUT": "1", "HOME": str(tmp_path),
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    sqlite_cli.store.run_script("from azureml.logging import get_azureml_logger\n"
                                "get_azureml_logger().log('x', 1)\n", **env)
    for args in (["sync", "--list"], ["sync", "--give-up-after", "1"]):
        code, out = in_pty(sqlite_cli, *args, "-o", "table", columns=80, **env)
        out = _screen(out)
        # sync's progress line stays on the screen above the table, as its last state
        lines = [line for line in out.splitlines() if line and not line.startswith(
            ("WARNING: ", "ERROR: ", "azml sync: "))]
        header = lines[0].split()
        assert "…" not in lines[0], out
        assert {"Journal", "Run_id", "Pending", "State"} <= set(header), out
        assert all(len(line) <= 80 for line in lines[:2]), out
        assert any(line.startswith("WARNING: not shown at 80 columns: Tracking_uri")
                   for line in out.splitlines()), out
