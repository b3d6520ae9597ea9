"""The `nhiwatch` command: a thin layer over the stage packages.

Exit codes (stable, for scripts):
  0  success
  1  fatal error (store unusable, unexpected failure)
  2  usage error (bad option, path that matches nothing)
  3  finished, but some input could not be read (or, with --strict, some records were quarantined)
  4  the store is in use by another nhiwatch process
"""

from __future__ import annotations

import os
import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nhiwatch import __version__


class Exit(IntEnum):
    OK = 0
    FATAL = 1
    USAGE = 2
    PARTIAL = 3
    BUSY = 4


app = typer.Typer(
    name="nhiwatch",
    help="Watch AWS non-human identities in CloudTrail: ingest, inventory, baselines, detection, response.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    epilog="Exit codes: 0 ok, 1 fatal error, 2 usage error, 3 partial (unreadable input), 4 store busy.",
)

out = Console(soft_wrap=True)
err = Console(stderr=True)

HomeOpt = Annotated[Optional[Path], typer.Option(
    "--home", envvar="NHIWATCH_HOME", help="Store folder (default ./.nhiwatch, or $NHIWATCH_HOME).",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary on the terminal.")]


def emit_json(data: object) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def fail(message: str, code: Exit, as_json: bool = False) -> typer.Exit:
    if as_json:
        emit_json({"error": message, "exit_code": int(code)})
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(int(code))


def open_store(home: Optional[Path], as_json: bool, read_only: bool = False):
    from nhiwatch.store.db import Store, StoreBusy, StoreError

    try:
        return Store(home, read_only=read_only)
    except StoreBusy as exc:
        raise fail(str(exc), Exit.BUSY, as_json) from None
    except StoreError as exc:
        raise fail(str(exc), Exit.FATAL, as_json) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"nhiwatch {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Watch AWS non-human identities in CloudTrail."""


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders (read recursively) or glob patterns.",
                                               show_default=False)],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    workers: Annotated[Optional[int], typer.Option(
        min=1, help="Parser processes (default: 2 or the number of cores, whichever is smaller).")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 3 when any record was quarantined, not only on unreadable files.")] = False,
) -> None:
    """Read CloudTrail in any shape into the store; duplicates are skipped, bad records quarantined.

    Formats are detected from the content: S3 objects (plain or gzip), JSON arrays, JSON lines,
    lookup-events output, EventBridge envelopes and records wrapped as strings. Digest files are
    recognised and skipped.
    """
    from nhiwatch.ingest.pipeline import Ingestor, InputError, expand_paths

    from nhiwatch.store.db import resolve_home

    try:
        files = expand_paths(paths, exclude=resolve_home(home))
    except InputError as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    if not files:
        raise fail("no files found in the given paths", Exit.USAGE, as_json)

    store = open_store(home, as_json)
    show_progress = not quiet and err.is_terminal
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("files"), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                        disable=not show_progress, transient=True)
    try:
        with progress:
            task = progress.add_task("ingesting", total=len(files))
            summary = Ingestor(store, workers=workers).run(
                paths, files=files, on_file=lambda _path, _outcome: progress.advance(task))
    finally:
        store.close()

    report = summary.as_dict()
    if as_json:
        emit_json(report)
    elif not quiet:
        _print_ingest(summary)
    if summary.files_with_errors or (strict and summary.quarantined):
        raise typer.Exit(int(Exit.PARTIAL))


def _print_ingest(summary) -> None:
    totals = summary.totals()
    line = (f"[bold]{totals['files']}[/] files: [green]{totals['accepted']} accepted[/], "
            f"{totals['duplicate']} duplicate, [yellow]{totals['quarantined']} quarantined[/], "
            f"{totals['files_skipped']} files skipped, [red]{totals['files_with_errors']} with errors[/]")
    out.print(line)
    problems = [f for f in summary.per_file if f["error"] or f["quarantined"]]
    if problems:
        table = Table("file", "format", "records", "quarantined", "problem", title="files needing attention")
        for f in problems[:30]:
            table.add_row(f["path"], f["format"], str(f["records"]), str(f["quarantined"]), f["error"] or "")
        out.print(table)
        if len(problems) > 30:
            out.print(f"... and {len(problems) - 30} more (see --json)")
    if totals["skipped_reasons"]:
        out.print("skipped: " + ", ".join(f"{k} ({v})" for k, v in totals["skipped_reasons"].items()))
    if totals["quarantined"]:
        out.print("see the quarantined records with: nhiwatch quarantine")


@app.command()
def stats(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Summarise the store: events, identities by type, time span, sources, quarantine."""
    store = open_store(home, as_json, read_only=True)
    try:
        data = store.stats()
    finally:
        store.close()
    if as_json:
        emit_json(data)
        return
    out.print(f"[bold]{data['events']}[/] events from {data['first_event']} to {data['last_event']} "
              f"in {data['accounts']} accounts, {data['regions']} regions, {data['source_files']} files")
    table = Table("identity type", "identities", title=f"{data['identities']} identities")
    for kind, count in data["identities_by_type"].items():
        table.add_row(kind, str(count))
    out.print(table)
    table = Table("event source", "events", title="top event sources")
    for row in data["top_event_sources"]:
        table.add_row(row["event_source"], str(row["events"]))
    out.print(table)
    if data["quality_flags"]:
        out.print("quality flags: " + ", ".join(f"{k} ({v})" for k, v in data["quality_flags"].items()))
    out.print(f"quarantined records: {data['quarantined']}")
    for row in data["quarantine_reasons"]:
        out.print(f"  {row['records']:>6}  {row['reason']}", highlight=False)


@app.command()
def quarantine(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many records.")] = 50,
    reason: Annotated[Optional[str], typer.Option(help="Only reasons containing this text.")] = None,
    raw: Annotated[bool, typer.Option(help="Show the raw text of each record.")] = False,
) -> None:
    """List quarantined records: where each came from and why it was not accepted."""
    store = open_store(home, as_json, read_only=True)
    try:
        rows = store.quarantine(limit=limit, reason=reason)
    finally:
        store.close()
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        out.print(f"[bold]{row['source_file']}[/] {row['locator']}: {row['reason']}", highlight=False)
        if raw:
            out.print(row["raw"][:2000], highlight=False, markup=False)


@app.command()
def schema(
    as_json: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the event model as Markdown.")] = False,
) -> None:
    """Print the normalized event model (the columns every ingested event has)."""
    from nhiwatch.core.event import EVENT_MODEL_VERSION, EVENT_SCHEMA, event_model_markdown, field_doc

    if markdown:
        sys.stdout.write(event_model_markdown())
        return
    fields = [{"name": f.name, "type": str(f.type), "nullable": f.nullable, "doc": field_doc(f)} for f in EVENT_SCHEMA]
    if as_json:
        emit_json({"version": EVENT_MODEL_VERSION, "fields": fields})
        return
    table = Table("field", "type", "meaning", title=f"event model v{EVENT_MODEL_VERSION}")
    for f in fields:
        table.add_row(f["name"], f["type"], f["doc"])
    out.print(table)


def main() -> None:
    try:
        app(prog_name="nhiwatch")
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug or an environment problem: one clear line, not a stack trace
        err.print(f"[bold red]fatal:[/] {type(exc).__name__}: {exc}", highlight=False)
        if os.environ.get("NHIWATCH_DEBUG"):
            raise
        sys.exit(int(Exit.FATAL))
