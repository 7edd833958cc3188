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


ASSISTANT_CLOSE = '[data-component-id="mlflow.assistant.chat_panel.close"]'


def _save(page, tmp_path, name: str) -> None:
    # MLflow 3.17 opens its chat assistant beside every page; the screenshots are of the run.
    if page.locator(ASSISTANT_CLOSE).count():
        page.locator(ASSISTANT_CLOSE).first.click()
        page.locator(ASSISTANT_CLOSE).first.wait_for(state="detached")
    path = tmp_path / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    target = os.environ.get("AZML_SCREENSHOTS")
    if target:
        shutil.copy(path, os.path.join(target, name))


def test_the_mlflow_ui_shows_a_workbench_run(server_store, browser_page, tmp_path):
    proc = server_store.run_script(SCRIPT, "0.01", AZML_QUIET="0")  # the line saying where
    run = server_store.only_run()
    _shows_the_run(browser_page, server_store.uri, run, proc, server_store.uri, tmp_path)


def test_the_mlflow_ui_shows_a_run_the_sqlite_default_wrote(sqlite_store, browser_page, tmp_path):
    """The embedded default is written with ``sqlite3`` alone: ``mlflow ui`` on that file
    shows the run as it shows one MLflow's store wrote."""
    from conftest import MlflowServer

    proc = sqlite_store.run_script(SCRIPT, "0.01", AZML_QUIET="0")
    run = sqlite_store.only_run()
    with MlflowServer(tmp_path / "ui", backend_uri=sqlite_store.uri) as server:
        _shows_the_run(browser_page, server.url, run, proc, "http://127.0.0.1:5000", tmp_path,
                       save=False)


def _shows_the_run(page, url: str, run, proc, printed: str, tmp_path, save: bool = True) -> None:
    """The experiment's runs, the run's overview and its charts, from the UI at ``url``;
    ``printed`` is the address the script's exit line gave for the UI."""
    experiment, run_id = run.info.experiment_id, run.info.run_id
    _save_page = _save if save else (lambda *args: None)

    # The link the docs give: the experiment's training runs, named after script and arguments.
    page.goto(f"{url}/#/experiments/{experiment}/runs?workflowType=machine_learning")
    page.get_by_text("train.py 0.01").first.wait_for()
    _save_page(page, tmp_path, "ui-experiment-runs.png")

    # The link printed at exit: the run's page with its description.
    (link,) = [word.replace(printed, url) for line in proc.stderr.splitlines()
               if "/#/experiments/" in line for word in line.split()
               if word.startswith(printed) and f"/runs/{run_id}" in word]
    page.set_viewport_size({"width": 1440, "height": 1500})  # the whole overview
    page.goto(link)
    page.get_by_text("Workbench run of").first.wait_for()
    page.get_by_text("Show more").first.click()  # the description, unfolded
    page.get_by_text("accuracy (%)").first.wait_for()  # the note's table of renamed names
    page.get_by_text("arg0").first.wait_for()  # the argument, a parameter
    assert page.get_by_text("Evaluation runs").count() == 0  # the training view, not GenAI's
    _save_page(page, tmp_path, "ui-run-overview.png")
    for bookkeeping in ("azml.script_name", "azml.run_key"):  # out of the tags list
        assert page.get_by_text(bookkeeping).count() == 0, bookkeeping

    # The charts: titled by MLflow key (the UI takes a chart's title from the key; the run's
    # description above gives the original name of a renamed one).
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{url}/#/experiments/{experiment}/runs/{run_id}/model-metrics"
              "?workflowType=machine_learning")
    page.get_by_text("Loss curve").first.wait_for()
    page.get_by_text("accuracy _pct_").first.wait_for()
    # Drawn, not still loading: plotly puts each series' line in a path.js-line.
    page.locator(".js-plotly-plot path.js-line").first.wait_for()
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3")
    _save_page(page, tmp_path, "ui-run-charts.png")


def test_the_bare_experiment_link_follows_the_browsers_choice_not_the_experiment(
        server_store, browser_page):
    """What docs/api.md says of MLflow 3.17: an experiment link without ``workflowType`` opens
    the GenAI view even on an experiment tagged for training (the tag is not read), and opens
    the training runs once the user has picked "Model training" in the sidebar's switch."""
    server_store.run_script(SCRIPT, "0.01")
    experiment = server_store.only_run().info.experiment_id
    assert server_store.client.get_experiment(experiment).tags["mlflow.experimentKind"]
    page = browser_page
    bare = f"{server_store.uri}/#/experiments/{experiment}"

    page.goto(bare)
    page.wait_for_url("**workflowType=genai**")
    assert "/runs" not in page.url

    # A first-visit popover over the GenAI overview takes clicks whenever it shows up.
    page.add_locator_handler(page.get_by_text("Got it"), lambda tip: tip.click())
    page.get_by_text("Model training").first.click()
    page.wait_for_url("**/runs?workflowType=machine_learning**")

    page.goto(f"{server_store.uri}/#/experiments")
    page.goto(bare)
    page.wait_for_url("**/runs?workflowType=machine_learning**")
    page.get_by_text("train.py 0.01").first.wait_for()
