"""The real MLflow UI, in headless Chromium, shows an SDK v1 script's run: its child runs under
it, its table (MLflow's table view of a logged table), its image and its charts. Screenshots as
in test_ui_browser.py (``AZML_SCREENSHOTS=DIR``: how docs/img/ is made)."""
from __future__ import annotations

import struct
import textwrap

from test_ui_browser import TIMEOUT_MS, _save, browser_page  # noqa: F401 - the fixture

SCRIPT = textwrap.dedent("""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from azureml.core import Run
    run = Run.get_context()
    for epoch in range(20):
        run.log("loss", 1.0 / (epoch + 1))
    for alpha in (0.1, 0.5, 1.0):
        mse = round(3000 * (1 + alpha), 1)
        with run.child_run("alpha %.1f" % alpha) as child:
            child.log("mse", mse)
            run.log_row("mse by alpha", alpha=alpha, mse=mse)
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

    # The experiment's runs: the parent with its expander ("4 matching runs"); opened, its
    # three children under it. The expander is the icon left of the run's name (no label).
    page.goto(f"{url}/#/experiments/{experiment}/runs?workflowType=machine_learning")
    name = page.get_by_role("link", name="train.py").first
    name.wait_for()
    page.get_by_text("4 matching runs").first.wait_for()
    box = name.bounding_box()
    page.mouse.click(box["x"] - 32, box["y"] + box["height"] / 2)
    page.get_by_text("alpha 0.5").first.wait_for()
    page.get_by_text("alpha 1.0").first.wait_for()
    _save(page, tmp_path, "ui-sdkv1-child-runs.png")

    # The table: MLflow's own view of a logged table, from the artifacts page.
    page.goto(f"{url}/#/experiments/{experiment}/runs/{run_id}/artifacts"
              "?workflowType=machine_learning")
    page.get_by_text("mse by alpha.json").first.click()
    page.get_by_text("6000").first.wait_for()
    _save(page, tmp_path, "ui-sdkv1-table.png")

    # The image: the artifact view draws the PNG (from a blob: URL of the bytes it fetched),
    # decoded at the size the PNG's header gives, so it is our image, loaded, not a broken one.
    from playwright.sync_api import expect

    png = server_store.artifact_bytes(run_id, "mse_vs_alpha.png")
    size = list(struct.unpack(">II", png[16:24]))  # the IHDR chunk: width, height
    page.get_by_text("mse_vs_alpha.png").first.click()
    image = page.locator("img[src^='blob:'] >> visible=true").first
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                           timeout=TIMEOUT_MS)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == size
    _save(page, tmp_path, "ui-sdkv1-image.png")

    # The charts: run.log("loss", ...) 20 times is one chart of 20 points, and the table's
    # numeric column is charted as its own metric (3 rows, 3 points).
    page.goto(f"{url}/#/experiments/{experiment}/runs/{run_id}/model-metrics"
              "?workflowType=machine_learning")

    def chart(title: str):
        return page.locator('[data-testid="experiment-view-compare-runs-card"]').filter(
            has=page.get_by_role("heading", name=title, exact=True))

    for title, points in (("loss", 20), ("mse by alpha.mse", 3)):
        chart(title).locator(".js-plotly-plot path.js-line").first.wait_for()
        expect(chart(title).locator(".js-plotly-plot path.point")).to_have_count(
            points, timeout=TIMEOUT_MS)
    _save(page, tmp_path, "ui-sdkv1-charts.png")
