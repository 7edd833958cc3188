"""``azml asset download``: fetch a promoted model (Workbench's ``az ml asset download``)."""
from __future__ import annotations

import click

from .._core.query import History
from .._azml.registry import download_asset, read_link

from ._output import rendered


@click.group()
def asset() -> None:
    """Assets promoted from runs (MLflow registered model versions)."""


@asset.command()
@click.option("-l", "--link-file", type=click.Path(dir_okay=False), help="assets/NAME.link from promote.")
@click.option("-n", "--name", help="Registered model name (instead of -l).")
@click.option("-v", "--version", help="Model version (default: the latest).")
@click.option("-d", "--directory", required=True, type=click.Path(file_okay=False), help="Target folder.")
@click.option("--overwrite", is_flag=True, help="Replace files that exist.")
@rendered()
def download(link_file, name, version, directory, overwrite):
    """Download an asset's files into DIRECTORY/<artifact name>."""
    if (link_file is None) == (name is None):
        raise click.UsageError("give either -l/--link-file or -n/--name")
    if link_file is not None:
        name, linked = read_link(link_file)
        version = version or linked
    return download_asset(History(), name, version, directory, overwrite)
