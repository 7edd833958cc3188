"""The ``azml`` command: Workbench's ``az ml`` run-history commands over any MLflow store."""
from __future__ import annotations

import click

from azml_compat import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="azml")
def main() -> None:
    """Azure ML Workbench's command line, on MLflow.

    Reads MLFLOW_TRACKING_URI, else the embedded default (sqlite:///mlflow.db here).
    """


if __name__ == "__main__":
    main()
