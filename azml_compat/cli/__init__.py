"""The ``azml`` command: Workbench's ``az ml`` run-history commands over any MLflow store."""
from __future__ import annotations

import errno
import logging
import os
import re
import sys
import time
import traceback
import warnings

import click

from .. import __version__
from .._redact import redact_text
from .._core.query import unreachable

from ._examples import EXAMPLES
from ._output import DEBUG, GLOBAL_OPTIONS, command_logging, restore_logging


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


USAGE_ERROR = 2  # az's (argparse's) exit status for a bad command line; other errors: 1
INTERRUPTED = 130  # Ctrl-C: the shell's 128 + SIGINT (az says 1; see docs/cli.md)


ERROR = "ERROR: "  # knack's prefix of an error line (its logger's level name)
log = logging.getLogger("azml")


class Azml(click.Group):
    """Turns every error into one line on stderr, ``ERROR: ...`` (az's), with az's exit
    statuses: 2 for a bad command line, 1 for anything else (``--debug``: the traceback)."""

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        # MLflow's own tqdm bar draws on stderr even when piped; ours (_progress) replaces it,
        # on a terminal only. The user's own setting wins. (The process is ours: a command.)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # A command says warnings and errors; --verbose/--debug (parsed below) lower it.
        saved = command_logging()
        started = time.monotonic()
        try:
            with warnings.catch_warnings():
                argv = list(sys.argv[1:] if args is None else args)
                code = super().main(argv, prog_name or "azml", standalone_mode=False,
                                    obj={"argv": argv}, **extra)
        except click.exceptions.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `azml`, `azml history`: the help
                click.echo(exc.ctx.get_help())
                sys.exit(0)
            where = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
            _error(f"{' '.join(exc.format_message().split())}{where}")
            code = USAGE_ERROR
        except click.exceptions.ClickException as exc:
            _error(exc.format_message())
            code = exc.exit_code
        except (click.exceptions.Abort, KeyboardInterrupt):
            code = INTERRUPTED
        finally:
            # az's --verbose line; shown only at INFO (--verbose, --debug)
            log.info("command ran in %.3f seconds", time.monotonic() - started)
            restore_logging(saved)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.exceptions.ClickException as exc:
            exc.message = redact_text(exc.message)  # printed by main: no credentials in it
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                return _failed(ctx, exc)
            # Handled here: Click's own handler would exit 1.
            raise click.exceptions.Exit(_broken_pipe()) from None
        except KeyboardInterrupt:
            raise click.exceptions.Exit(INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001
            return _failed(ctx, exc)


def _failed(ctx, exc: BaseException):
    if ctx.meta.get(DEBUG):
        # The traceback's messages hold what MLflow put there, request URLs included.
        click.echo(redact_text(traceback.format_exc()).rstrip("\n"), err=True)
    else:
        click.echo(redact_text(f"{ERROR}{describe(exc)}"), err=True)
    raise click.exceptions.Exit(1) from None


def _error(message: str) -> None:
    click.echo(redact_text(f"{ERROR}{' '.join(message.split())}"), err=True)


def _broken_pipe() -> int:
    """The reader went away (`azml history list | head`): end quietly with 0, as az does
    (knack ignores EPIPE). stdout goes to /dev/null so the interpreter's last flush of what is
    still buffered cannot complain either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real descriptor (an in-process test runner)
        pass
    return 0


@click.group(cls=Azml, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXAMPLES.get(""))
@click.version_option(__version__, prog_name="azml")
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
    _globalize(main, "azml")


def _globalize(command: click.Command, path: str) -> None:
    """az's global options on every group and command (as knack adds them to every parser),
    and each command's help ends with its examples."""
    names = {p.name for p in command.params}
    for name, option in GLOBAL_OPTIONS.items():
        if name not in names:
            option(command)  # click.option appends to an existing command's params
    if path in EXAMPLES and not command.epilog:
        command.epilog = EXAMPLES[path]
    for name, sub in getattr(command, "commands", {}).items():
        _globalize(sub, f"{path} {name}")


_register()
