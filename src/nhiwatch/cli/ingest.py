"""`nhiwatch ingest`, `stats`, `quarantine`, `schema`: CloudTrail into the store, and what is in it."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nhiwatch.cli.common import (Exit, HomeOpt, JsonOpt, QuietOpt, console, emit_json, err, fail, open_store,
                                 plain, styled)


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
    lookup-events output, EventBridge envelopes, records wrapped as strings, and Security Lake's
    CloudTrail (OCSF in Parquet). Digest files are recognised and skipped.
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
        print_ingest(summary)
    if summary.files_with_errors or (strict and summary.quarantined):
        raise typer.Exit(int(Exit.PARTIAL))


def print_ingest(summary) -> None:
    totals = summary.totals()
    console.print(styled((str(totals["files"]), "bold"), " files: ", (f"{totals['accepted']} accepted", "green"),
                         f", {totals['duplicate']} duplicate, ", (f"{totals['quarantined']} quarantined", "yellow"),
                         f", {totals['files_skipped']} files skipped, ",
                         (f"{totals['files_with_errors']} with errors", "red")))
    problems = [f for f in summary.per_file if f["error"] or f["quarantined"]]
    if problems:
        table = Table("file", "format", "records", "quarantined", "problem", title="files needing attention")
        for f in problems[:30]:  # a path or a parser's message may quote anything: plain text
            table.add_row(plain(f["path"]), plain(f["format"]), str(f["records"]), str(f["quarantined"]),
                          plain(f["error"] or ""))
        console.print(table)
        if len(problems) > 30:
            console.print(f"... and {len(problems) - 30} more (see --json)")
    if totals["skipped_reasons"]:
        console.print("skipped: " + ", ".join(f"{plain(k)} ({v})" for k, v in totals["skipped_reasons"].items()))
    if totals["quarantined"]:
        console.print("see the quarantined records with: nhiwatch quarantine")


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
    console.print(styled((str(data["events"]), "bold"), f" events from {data['first_event']} to {data['last_event']} "
                         f"in {data['accounts']} accounts, {data['regions']} regions, {data['source_files']} files"))
    table = Table("identity type", "identities", title=f"{data['identities']} identities")
    for kind, count in data["identities_by_type"].items():
        table.add_row(plain(kind), str(count))
    console.print(table)
    table = Table("event source", "events", title="top event sources")
    for row in data["top_event_sources"]:  # eventSource is the caller's text
        table.add_row(plain(row["event_source"]), str(row["events"]))
    console.print(table)
    if data["quality_flags"]:
        console.print("quality flags: " + ", ".join(f"{plain(k)} ({v})" for k, v in data["quality_flags"].items()))
    console.print(f"quarantined records: {data['quarantined']}")
    for row in data["quarantine_reasons"]:
        console.print(f"  {row['records']:>6}  {plain(row['reason'])}")


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
    for row in rows:  # the file name, the locator and the reason may all quote hostile text
        console.print(styled((plain(row["source_file"]), "bold"), " ", plain(row["locator"]), ": ",
                             plain(row["reason"])))
        if raw:
            console.print(row["raw"][:2000])  # its own lines kept; controls escaped by the console


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
    console.print(table)
