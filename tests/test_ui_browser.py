"""The real MLflow UI, in headless Chromium, shows a legacy script's run as a Workbench user
expects: its name in the runs table, its description, its metrics charted. Saves screenshots
(``AZML_SCREENSHOTS=DIR`` copies them there: how docs/img/ is made).

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it) and is driven
by Playwright with that executable: Playwright's own browser download is not needed. Without
either the test skips, unless ``AZML_REQUIRE_CHROMIUM=1`` (set by ``.ci/run``) makes it fail.
"""
from __future__ import annotations

import os
import shutil
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("Regularization Rate", 0.01)
    logger.log("accuracy (%)", 93.5)
    logger.log("Model", "logistic regression")
    logger.log("Loss curve", [1.0 / (i + 1) for i in range(20)])
    open("outputs/model.pkl", "wb").write(b"model")
""")
TIMEOUT_MS = 120_000  # the UI's bundle is ~10 MB of JavaScript: slow on a loaded 2-core machine


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    reason = None if found else "no chromium on PATH (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = reason or "playwright is not installed (pip install -e '.[test]')"
    if reason:
        from conftest import REQUIRE_CHROMIUM

        if REQUIRE_CHROMIUM:
            pytest.fail(f"AZML_REQUIRE_CHROMIUM=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture
def browser_page(tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True,
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def _save(page, tmp_path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    target = os.environ.get("AZML_SCREENSHOTS")
    if target:
        shutil.copy(path, os.path.join(target, name))


def test_the_mlflow_ui_shows_a_workbench_run(server_store, browser_page, tmp_path):
    proc = server_store.run_script(SCRIPT, "0.01", AZML_QUIET="0")  # the line saying where
    run = server_store.only_run()
    experiment, run_id = run.info.experiment_id, run.info.run_id
    url = server_store.uri
    page = browser_page

    # The link the docs give: the experiment's training runs, named after script and arguments.
    page.goto(f"{url}/#/experiments/{experiment}/runs?workflowType=machine_learning")
    page.get_by_text("train.py 0.01").first.wait_for()
    _save(page, tmp_path, "ui-experiment-runs.png")

    # The link printed at exit: the run's page with its description.
    (link,) = [word for line in proc.stderr.splitlines() if "/#/experiments/" in line
               for word in line.split() if word.startswith(url)]
    page.set_viewport_size({"width": 1440, "height": 1500})  # the whole overview
    page.goto(link)
    page.get_by_text("Workbench run of").first.wait_for()
    page.get_by_text("Show more").first.click()  # the description, unfolded
    page.get_by_text("accuracy (%)").first.wait_for()  # the note's table of renamed names
    page.get_by_text("arg0").first.wait_for()  # the argument, a parameter
    assert page.get_by_text("Evaluation runs").count() == 0  # the training view, not GenAI's
    _save(page, tmp_path, "ui-run-overview.png")
    tags_shown = page.get_by_text("azml.script_name").count()
    assert tags_shown == 0  # bookkeeping stays out of the tags list

    # The charts: titled by MLflow key (the UI takes a chart's title from the key; the run's
    # description above gives the original name of a renamed one).
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{url}/#/experiments/{experiment}/runs/{run_id}/model-metrics"
              "?workflowType=machine_learning")
    page.get_by_text("Loss curve").first.wait_for()
    page.get_by_text("accuracy ___").first.wait_for()
    _save(page, tmp_path, "ui-run-charts.png")
