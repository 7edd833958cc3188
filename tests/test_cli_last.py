"""``azml history last``: the newest run, in the shape of ``info``."""
from __future__ import annotations

from cli_support import cli, empty_db, one_line_error  # noqa: F401 - fixtures


def test_last_is_the_newest_run_in_info_shape(cli):
    cli.seed({"Accuracy": 0.1})
    newest = cli.seed({"Accuracy": 0.2, "loss": [3.0, 2.0, 1.0]}, artifacts={"outputs/m.txt": b"m"})
    last = cli.json("history", "last")
    assert last == cli.json("history", "info", "-r", newest)
    assert last["run_id"] == newest and last["series"]["loss"] == [3.0, 2.0, 1.0]
    assert last["attachments"] == "outputs/m.txt"


def test_last_table_and_tsv(cli):
    run_id = cli.seed({"loss": [3.0, 2.0, 1.0]})
    table = cli("history", "last", "-o", "table").stdout
    assert run_id in table and "Completed" in table
    assert "█" in table and "▁" in table  # the loss series as a sparkline
    tsv = cli("history", "last", "-o", "tsv").stdout
    assert len(tsv.splitlines()) == 1 and run_id in tsv.split("\t")


def test_last_of_an_empty_experiment(cli):
    cli.store.client.create_experiment(cli.store.experiment)
    one_line_error(cli("history", "last", code=1), cli.store.experiment, "no runs")
