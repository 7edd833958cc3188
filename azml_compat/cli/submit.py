"""``azml submit script.py [args...]``: Workbench's ``az ml experiment submit -c local``."""
from __future__ import annotations

import click

from .._core.query import History
from .._azml.submit import submit as run_script

from ._output import emit, output_options
from .history import run_table


def _local_only(ctx, param, value):
    if value not in (None, "local"):
        raise click.BadParameter(f"only the local target is supported, not {value!r}")
    return value


def _command(name: str, *extra):
    """The submit command; ``extra`` options are accepted and checked only."""

    @click.pass_context
    def command(ctx, script, args, output, query, **_):
        """Run SCRIPT with ARGS as a new run and exit with its exit code.

        stdout and stderr are the script's own; with -o or --query the finished run is printed
        after them, in the shape of `azml history info`. The exit code is always the script's,
        even when the store could not take the end of the run (see `azml sync`).
        """
        run_id, code, delivered = run_script(script, args)
        if query is not None or ctx.get_parameter_source("output").name != "DEFAULT":
            from . import ERROR, describe

            if not delivered:  # the store did not answer: asking it again would only hang
                click.echo(f"{ERROR}cannot show run {run_id}: the store has not got all "
                           "of it (see above)", err=True)
            else:
                try:
                    emit(History().info(run_id), output, query, run_table)
                except Exception as exc:  # noqa: BLE001 - the exit code stays the script's
                    click.echo(f"{ERROR}cannot show run {run_id}: {describe(exc)}",
                               err=True)
        ctx.exit(code)

    decorators = [
        click.command(name, context_settings={"ignore_unknown_options": True,
                                              "allow_interspersed_args": False}),
        click.argument("script", type=click.Path(dir_okay=False)),
        click.argument("args", nargs=-1, type=click.UNPROCESSED),
        *extra,
        output_options,
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


submit = _command("submit")


@click.group()
def experiment() -> None:
    """Workbench's `az ml experiment`: `submit -c local` only."""


experiment.add_command(_command("submit", click.option(
    "-c", "--run-configuration", callback=_local_only, help="Workbench run configuration: local.")))
