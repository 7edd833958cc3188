"""The real MLflow UI (headless Chromium, ``test_ui_browser``'s fixtures) shows a Workbench run
the way Workbench did: renamed keys that read as their names, the rename list as a table, a
DataFrame as a table, the metrics as columns of the experiment's runs table, and a list of str
on the run's page. Each part saves a screenshot (``AZML_SCREENSHOTS=docs/img``)."""
from __future__ import annotations

import textwrap

from test_ui_browser import TIMEOUT_MS, _save, browser_page  # noqa: F401 - fixture

SCRIPT = textwrap.dedent("""
    import pandas as pd
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("accuracy (%)", 93.5)
    logger.log("top@5", 0.99)
    logger.log("a|b", 1.0)
    logger.log("c\\\\d`e*f*", 2.0)
    logger.log("p\\\\q", 3.0)
    logger.log("Loss curve", [1.0 / (i + 1) for i in range(20)])
    logger.log("confusion", pd.DataFrame({"cat": [5, 1], "dog": [2, 7]}, index=["cat", "dog"]))
    logger.log("labels (predicted)", ["cat", "dog", "cat"])
    logger.log("params", {"lr": 0.01, "layers": [64, 32]})
    logger.log("every label", [f"label {i}" for i in range(1000)])
""")


def _run_page(url: str, run) -> str:
    return (f"{url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
            "?workflowType=machine_learning")


def test_the_rename_list_is_a_table_of_readable_keys(server_store, browser_page, tmp_path):
    server_store.run_script(SCRIPT, "0.01")
    run = server_store.only_run()
    page = browser_page
    page.set_viewport_size({"width": 1440, "height": 1200})
    page.goto(_run_page(server_store.uri, run))
    page.get_by_text("Workbench run of").first.wait_for()
    page.get_by_text("Show more").first.click()
    table = page.locator("table", has_text="key in MLflow")
    table.wait_for()
    headers = table.locator("th").all_inner_texts()
    assert [h.strip() for h in headers] == ["name logged by the script", "", "key in MLflow"], headers
    rows = {tuple(c.strip() for c in row.locator("td").all_inner_texts())
            for row in table.locator("tbody tr").all()}
    # One row per renamed name, its two cells apart; a "|" in a name stays in its cell.
    assert rows == {("accuracy (%)", "→", "accuracy _pct_"), ("top@5", "→", "top_at_5"),
                    ("a|b", "→", "a_b"), ("c\\d`e*f*", "→", "c_d_e_f_"),
                    ("p\\q", "→", "p_q"), ("labels (predicted)", "→", "labels _predicted_")}, rows
    # The metrics table of the run's page lists the readable keys.
    page.get_by_role("link", name="accuracy _pct_").first.wait_for()
    _save(page, tmp_path, "ui-run-renamed-keys.png")


def test_a_dataframe_is_an_mlflow_table_in_the_ui(server_store, browser_page, tmp_path):
    server_store.run_script(SCRIPT, "0.01")
    run = server_store.only_run()
    page = browser_page
    page.goto(f"{server_store.uri}/#/experiments/{run.info.experiment_id}/runs/"
              f"{run.info.run_id}/artifacts/metrics/confusion.json?workflowType=machine_learning")
    # MLflow's own table view of a logged table (not the JSON text): a grid with the
    # DataFrame's columns, the row labels first, and its cells.
    grid = page.get_by_role("table").filter(has_text="dog").last
    grid.wait_for()
    headers = [h.strip() for h in grid.get_by_role("columnheader").all_inner_texts()]
    assert headers[:3] == ["index", "cat", "dog"], headers
    cells = [c.strip() for c in grid.get_by_role("cell").all_inner_texts()]
    assert cells[:6] == ["cat", "5", "2", "dog", "1", "7"], cells
    assert page.get_by_text('"columns"').count() == 0  # not shown as raw JSON
    _save(page, tmp_path, "ui-run-dataframe-table.png")


def test_the_runs_table_shows_the_metrics_as_columns_first(server_store, browser_page, tmp_path):
    """The link each run prints opens the experiment's runs in the view the runs wrote: one
    column per metric, before MLflow's own (Workbench's history list had them first)."""
    server_store.run_script(SCRIPT, "0.01")
    proc = server_store.run_script(SCRIPT, "0.02", AZML_QUIET="0")
    (link,) = [word for line in proc.stderr.splitlines() if "all runs: " in line
               for word in line.split() if "viewStateShareKey=" in word]
    page = browser_page
    page.goto(link)
    page.get_by_text("train.py 0.02").first.wait_for()
    page.get_by_role("columnheader", name="accuracy _pct_").first.wait_for()
    headers = []
    for text in page.get_by_role("columnheader").all_inner_texts():
        if text.strip() and text.strip() not in headers:
            headers.append(text.strip())
    # Right after the run's name and start, sorted as the UI sorts; MLflow's Duration is
    # put before them or after (the view's column order is applied only when it arrives
    # before the grid is drawn), no other column is chosen.
    metrics = ["Loss curve", "a_b", "accuracy _pct_", "c_d_e_f_", "p_q", "top_at_5"]
    assert [h for h in headers if h not in ("Metrics", "Duration")] == [
        "Run Name", "Created", *metrics], headers
    # Each run's values in its row (both runs logged the same numbers).
    # (The grid draws a row in parts, the pinned name apart: the parts share the row's id.)
    row_id = page.get_by_role("row").filter(has_text="train.py 0.02").first.get_attribute(
        "row-id")
    cells = [c.strip() for c in page.locator(f'[role="row"][row-id="{row_id}"] '
                                             '[role="gridcell"]').all_inner_texts()]
    assert "93.5" in cells and "0.99" in cells, cells
    _save(page, tmp_path, "ui-experiment-runs-metrics.png")


def test_lists_and_dicts_are_readable_on_the_run_page(server_store, browser_page, tmp_path):
    server_store.run_script(SCRIPT, "0.01")
    run = server_store.only_run()
    page = browser_page
    page.set_viewport_size({"width": 1440, "height": 1400})
    page.goto(_run_page(server_store.uri, run))
    page.get_by_text("Workbench run of").first.wait_for()
    page.get_by_text("Show more").first.click()
    table = page.locator("table", has_text="Lists and dicts").or_(
        page.locator("table", has=page.get_by_role("columnheader", name="items")))
    table.first.wait_for()
    rows = {}
    for row in table.first.locator("tbody tr").all():
        name, items = (c.strip() for c in row.locator("td").all_inner_texts())
        rows[name] = items
    assert rows["labels (predicted)"] == "cat, dog, cat", rows
    assert rows["params"] == "lr: 0.01, layers: [64, 32]", rows
    # A long list: what fits, then where all of it is (never cut without saying so).
    assert rows["every label"].startswith("label 0, label 1, "), rows
    assert rows["every label"].endswith("more: all in artifact metrics/every label.json"), rows
    _save(page, tmp_path, "ui-run-logged-values.png")
