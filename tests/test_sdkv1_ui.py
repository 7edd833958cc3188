"""The real MLflow UI, in headless Chromium, shows an SDK v1 script's run: its child runs under
it, its chart, its table (MLflow's table view of a logged table) and its image. Screenshots as
in test_ui_browser.py (``AZML_SCREENSHOTS=DIR``: how docs/img/ is made)."""
from __future__ import annotations

import textwrap

from test_ui_browser import _save, browser_page  # noqa: F401 - the fixture

SCRIPT = textwrap.dedent("""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from azureml.core import Run
    run = Run.get_context()
    for epoch in range(20):
        run.log("loss", 1.0 / (epoch + 1))
    for alpha in (0.1, 0.5, 1.0):
        with run.child_run("alpha %.1f" % alpha) as child:
            child.log("mse", 3000 * (1 + alpha))
            run.log_row("mse by alpha", alpha=alpha, mse=3000 * (1 + alpha))
    fig, ax = plt.subplots()
    ax.plot([0.1, 0.5, 1.0], [3300, 4500, 6000], marker="o")
    run.log_image("mse_vs_alpha", plot=fig)
""")


def test_the_mlflow_ui_shows_an_sdkv1_run(server_store, browser_page, tmp_path):  # noqa: F811
    server_store.run_script(SCRIPT)
    runs = server_store.runs()
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    experiment, run_id = parent.info.experiment_id, parent.info.run_id
    url = server_store.uri
    page = browser_page

    # The experiment's runs: the parent, its three children nested under it once expanded.
    page.goto(f"{url}/#/experiments/{experiment}/runs?workflowType=machine_learning")
    page.get_by_text("train.py").first.wait_for()
    # The parent's row opens on its expander (the first button of the row's name cell).
    row = page.locator('[role="row"]').filter(has_text="train.py").first
    row.locator('[role="button"]').first.click()
    page.get_by_text("alpha 0.5").first.wait_for()
    _save(page, tmp_path, "ui-sdkv1-child-runs.png")

    # The table: MLflow's own view of a logged table, from the artifacts page.
    page.goto(f"{url}/#/experiments/{experiment}/runs/{run_id}/artifacts"
              "?workflowType=machine_learning")
    page.get_by_text("mse by alpha.json").first.click()
    page.get_by_text("6000").first.wait_for()
    _save(page, tmp_path, "ui-sdkv1-table.png")

    # The image.
    page.get_by_text("mse_vs_alpha.png").first.click()
    page.locator("img[src*='mse_vs_alpha']").first.wait_for()
    _save(page, tmp_path, "ui-sdkv1-image.png")

    # The chart, and the table's column charted as its own metric.
    page.goto(f"{url}/#/experiments/{experiment}/runs/{run_id}/model-metrics"
              "?workflowType=machine_learning")
    page.get_by_text("mse by alpha.mse").first.wait_for()
    page.locator(".js-plotly-plot path.js-line").first.wait_for()
    _save(page, tmp_path, "ui-sdkv1-charts.png")
