"""``azml sync``: deliver what journals kept when the server was down or the process died
(like ``wandb sync``). The library does the work in ``azml_compat._core.replay``; this formats it."""
from __future__ import annotations

import logging
import os
import sys
import time
from collections import OrderedDict

import click

from .._redact import redact_text
from .._core.progress import shown
from .._core.query import unreachable
from .._core.replay import (DiscardError, describe, discard, find_journals, list_journals,
                            sync as sync_journals, to_new_run)

from ._output import Unfinished, cell as _cell, rendered

log = logging.getLogger("azml")


def _row(result) -> dict:
    state = ("skipped: " + result.skipped if result.skipped else
             "failed: " + _reason(result) if result.error else
             "would deliver" if result.delivered == 0 and result.pending else "delivered")
    return {
        "journal": os.path.basename(result.journal),
        "tracking_uri": result.tracking_uri,
        "run_id": result.run_id,
        "pending": sum(result.pending.values()),
        "delivered": result.delivered,
        "points": result.points,
        "rejected": result.rejected,
        "ended": result.ended,
        "state": state,
    }


def _reason(result) -> str:
    """Why a journal was not delivered, in one line, credentials hidden."""
    text = redact_text(result.error)
    if "Max retries exceeded" in text or "Failed to establish a new connection" in text:
        return unreachable(result.tracking_uri, text)  # not MLflow's request dump
    if "Read timed out" in text or "ConnectTimeout" in text:  # accepted, never answered
        return f"cannot reach the tracking server {result.tracking_uri}: no answer"
    return text


SYNC_COLUMNS = ("journal", "tracking_uri", "run_id", "pending", "delivered", "rejected", "state")


def _table(rows: list) -> list:
    if not rows:
        log.warning("no journals to sync")
    return [OrderedDict((k.capitalize(), _cell(row[k])) for k in SYNC_COLUMNS) for row in rows]


def _age(seconds) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _list_table(rows: list) -> list:
    if not rows:
        log.warning("no journals")
    return [OrderedDict([("Journal", os.path.basename(r["journal"])),
                         ("Run_id", _cell(r["run_id"])), ("Tracking_uri", r["tracking_uri"]),
                         ("Pending", _cell(r["pending"])), ("Rejected", _cell(r["rejected"])),
                         ("Age", _age(r["age_s"])), ("State", r["state"])]) for r in rows]


def _table_or_list(rows: list) -> list:
    return _list_table(rows) if rows and "age_s" in rows[0] else _table(rows)


# At 80 columns the store's URI goes first (every journal of a machine mostly has the same),
# then the counts a row can do without; the journal, run id and state stay.
_table_or_list.droppable = lambda headers: ["Tracking_uri", "Rejected", "Delivered", "Age"]


def _what(row: dict) -> str:
    run = f"run {row['run_id']}" if row["run_id"] else "a run not created yet"
    return (f"journal {os.path.basename(row['journal'])} ({run}, {row['pending'] or 0} pending "
            f"and {row['rejected'] or 0} rejected records)")


def _to_new_run(target: str, give_up_after: float) -> list:
    try:
        results = to_new_run(target, give_up_after=give_up_after)
    except DiscardError as exc:  # names no journal: the same line as --discard's
        raise click.ClickException(str(exc)) from None
    for result in results:
        if result.ok and result.run_id:
            click.echo(f"azml: sent {result.delivered} record(s) of journal "
                       f"{os.path.basename(result.journal)} to the new run {result.run_id}",
                       err=True)
    return results


def _discard(target: str, yes: bool) -> list:
    try:
        paths = find_journals(target)
    except DiscardError as exc:
        raise click.ClickException(str(exc)) from None
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException(f"not discarding '{target}' without --yes: there is no "
                                       "terminal to ask on")
        listed = "; ".join(_what(describe(p)) for p in paths)
        if not click.confirm(f"Discard {listed}? Their records are never delivered",
                             default=False, err=True):
            click.echo("azml: nothing discarded", err=True)
            return []
    rows = []
    for path in paths:
        try:
            row = discard(path)
        except DiscardError as exc:
            raise Unfinished(rows, str(exc)) from None
        click.echo(f"azml: discarded {_what(row)}", err=True)
        rows.append(row)
    return rows


class ProgressLine:
    """Each journal's replay as one line redrawn on stderr: records, points, rate, and why
    it waits when it does. The one place sync draws progress (``progress_line``)."""

    EVERY = 0.2  # seconds between redraws of a moving line

    def __init__(self, stream) -> None:
        self.stream = stream
        self._journal = None
        self._drawn = 0.0

    def __call__(self, state) -> None:
        now = time.monotonic()
        moving = state.note is None and state.records_done < state.records
        if state.journal == self._journal and moving and now - self._drawn < self.EVERY:
            return
        if self._journal is not None and state.journal != self._journal:
            self.stream.write("\n")
        self._journal, self._drawn = state.journal, now
        line = (f"azml sync: {os.path.basename(state.journal)}: {state.records_done:,}/"
                f"{state.records:,} records, {state.points_done:,}/{state.points:,} points "
                f"({state.rate:,.0f} points/s)")
        if state.note:
            line += f"; {redact_text(state.note)}"
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()

    def close(self) -> None:
        if self._journal is not None:
            self.stream.write("\n")
            self.stream.flush()


def progress_line(stream=None) -> ProgressLine | None:
    """The progress display for a replay: a line on a terminal, nothing when piped or under
    ``--only-show-errors`` (the rule every bar follows: ``_core.progress.shown``)."""
    stream = stream or sys.stderr
    return ProgressLine(stream) if shown(stream) else None


@click.command()
@click.option("--list", "list_only", is_flag=True,
              help="Only show every journal: run, store, pending and rejected records, age.")
@click.option("--discard", metavar="JOURNAL_OR_RUN_ID",
              help="Delete a journal on purpose, undelivered records and all: a journal's "
                   "name from --list, or a run id (any unique prefix) for all of its journals.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask before --discard (required when not on a terminal).")
@click.option("--to-new-run", metavar="JOURNAL_OR_RUN_ID",
              help="Send a journal's records to a new run, made like the first (experiment, "
                   "tags, start time): for a run its store no longer has (deleted, or its "
                   "database wiped). A journal's name from --list, or a run id (any unique "
                   "prefix) for all of its journals.")
@click.option("--dry-run", is_flag=True, help="Only list what would be delivered.")
@click.option("--give-up-after", type=float, default=5.0, show_default=True,
              help="Seconds to keep retrying an unreachable store before moving on.")
@rendered(_table_or_list)
def sync(list_only, discard, yes, to_new_run, dry_run, give_up_after):
    """Deliver every record still in $AZML_HOME/journal (default ~/.azml/journal).

    Safe to run twice or at once: a journal in use is skipped. Runs that could not be created
    when their script ran are created now, with their original start time.
    """
    if discard is not None:
        if list_only or dry_run or to_new_run is not None:
            raise click.UsageError("--discard goes alone (not with --list, --dry-run or "
                                   "--to-new-run)")
        return _discard(discard, yes)
    if to_new_run is not None:
        if list_only or dry_run:
            raise click.UsageError("--to-new-run goes alone (not with --list or --dry-run)")
        results = _to_new_run(to_new_run, give_up_after)
    elif list_only:
        return list_journals()
    else:
        progress = None if dry_run else progress_line()
        try:
            results = sync_journals(dry_run=dry_run, give_up_after=give_up_after, progress=progress)
        finally:
            if progress is not None:
                progress.close()
    rows = [_row(r) for r in results]
    failed = [r for r in results if r.error]
    if failed:
        message = (f"{len(failed)} journal(s) not delivered: {_reason(failed[0])}; they are "
                   "kept, run `azml sync` again")
        # The rows say which journal got how far, as any other result (a script reading
        # `-o json` gets them too); then the one-line error.
        raise Unfinished(rows, message)
    return rows
