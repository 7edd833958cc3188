"""The ``azml`` command: Workbench's ``az ml`` run-history commands over any MLflow store."""
from __future__ import annotations

import re
import traceback

import click

from azml_compat import __version__
from azml_compat._redact import redact_text
from azml_compat._query import unreachable

from ._output import DEBUG, debug_option


def describe(exc: BaseException) -> str:
    """One line naming what went wrong, without MLflow's request dump."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if "Max retries exceeded" in text or "Failed to establish a new connection" in text:
        url = re.search(r"API request to (\S+?)/api/", text)
        return unreachable(url.group(1) if url else "", text)
    line = redact_text(text.strip().splitlines()[0]) if text.strip() else type(exc).__name__
    known = isinstance(exc, (ValueError, OSError)) or type(exc).__module__.startswith(
        ("azml_compat", "mlflow"))
    return line if known else f"{type(exc).__name__}: {line}"


class Azml(click.Group):
    """Turns every error into one line on stderr and exit status 1 (``--debug``: traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.ClickException as exc:
            exc.message = redact_text(exc.message)  # Click prints it: no credentials in it
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except Exception as exc:  # noqa: BLE001
            if ctx.meta.get(DEBUG):
                # The traceback's messages hold what MLflow put there, request URLs included.
                click.echo(redact_text(traceback.format_exc()).rstrip("\n"), err=True)
            else:
                click.echo(redact_text(f"azml: error: {describe(exc)}"), err=True)
            raise click.exceptions.Exit(1) from None


@click.group(cls=Azml, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="azml")
@debug_option
def main() -> None:
    """Azure ML Workbench's command line, on MLflow.

    Reads MLFLOW_TRACKING_URI, else the embedded default (sqlite:///mlflow.db here).
    `azml ml ...` is accepted too, so `alias az=azml` runs Workbench command lines.
    """


def _register() -> None:
    from .asset import asset
    from .history import history
    from .submit import experiment, submit
    from .sync import sync

    ml = click.Group("ml", help="Workbench's `az ml` prefix: `azml ml history list` and so on.")
    for command in (history, asset, experiment):
        ml.add_command(command)
    for command in (history, asset, submit, sync, ml):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
