"""The `nhiwatch` command: a thin layer over the stage packages.

Exit codes (stable, for scripts):
  0  success
  1  fatal error (store unusable, unexpected failure)
  2  usage error (bad option, path that matches nothing, unknown id)
  3  finished, but some input could not be read (or, with --strict, some records were quarantined)
  4  the store is in use by another nhiwatch process
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from nhiwatch import __version__
from nhiwatch.cli.common import (Exit, HomeOpt, JsonOpt, QuietOpt, console, emit_json, err, fail, json_emitted,
                                 open_store, plain, styled)


app = typer.Typer(
    name="nhiwatch",
    help="Watch AWS non-human identities in CloudTrail: ingest, inventory, baselines, detection, response.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    epilog="Exit codes: 0 ok, 1 fatal error, 2 usage error (also an unknown id), 3 partial (unreadable input), "
           "4 store busy. With --json, an error is also a JSON object on stdout: {\"error\": ..., \"exit_code\": N}.",
)

def _version(value: bool) -> None:
    if value:
        console.print(f"nhiwatch {__version__}")
        raise typer.Exit(0)


from nhiwatch.cli.inventory import inventory_app, posture  # noqa: E402  (registered on the app below)

from nhiwatch.cli.detect import analyze, baseline_app, findings_app  # noqa: E402
from nhiwatch.cli.correlate import incidents_app  # noqa: E402
from nhiwatch.cli.respond import respond_app  # noqa: E402
from nhiwatch.cli.watch import config_app, watch  # noqa: E402
from nhiwatch.cli.serve import serve  # noqa: E402
from nhiwatch.cli.spark import spark_app  # noqa: E402
from nhiwatch.cli.ranges import ranges_app  # noqa: E402

app.add_typer(inventory_app, name="inventory")
app.command()(posture)
app.command()(analyze)
app.add_typer(findings_app, name="findings")
app.add_typer(baseline_app, name="baseline")
app.add_typer(incidents_app, name="incidents")
app.add_typer(respond_app, name="respond")
app.command()(watch)
app.add_typer(config_app, name="config")
app.command()(serve)
app.add_typer(spark_app, name="spark")
app.add_typer(ranges_app, name="ranges")


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
    for row in rows:  # the file name, the locator and the reason may all quote hostile text
        console.print(styled((plain(row["source_file"]), "bold"), " ", plain(row["locator"]), ": ",
                             plain(row["reason"])))
        if raw:
            console.print(row["raw"][:2000])  # its own lines kept; controls escaped by the console


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
    console.print(table)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write cloudtrail/, iam/ and labels.json into.")],
    seed: Annotated[int, typer.Option(help="Same seed, same output.")] = 1,
    accounts: Annotated[int, typer.Option(min=1, max=500, help="Accounts in the organisation.")] = 2,
    days: Annotated[int, typer.Option(min=1, max=400, help="Days of CloudTrail.")] = 30,
    scale: Annotated[float, typer.Option(min=0.05, max=100.0, help="Identities per account (1.0 = about 55).")] = 1.0,
    start: Annotated[str, typer.Option(help="First day (UTC), YYYY-MM-DD.")] = "2026-03-01",
    scenario: Annotated[Optional[list[str]], typer.Option(
        "--scenario", help="Attack scenario id (repeatable); default all. 'none' for benign traffic only; "
                           "'replay:<Stratus technique>' replays one detonation file as it is.")] = None,
    detonations: Annotated[Optional[Path], typer.Option(
        help="Stratus detonation logs to build attacks from (default ../shared/data/cloudtrail/stratus-detonations).")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Generator processes.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate an AWS organisation: weeks of non-human traffic, legitimate change and labelled attacks.

    Writes CloudTrail S3 objects as AWS does (gzip, org-trail key layout, 5-minute files per account
    and region), one get-account-authorization-details JSON and credential report per account, and
    labels.json (every attack's techniques, compromised identity and event ids).
    """
    from nhiwatch.simulate.runner import SimConfig, simulate as run_simulation
    from nhiwatch.simulate.scenarios import REPLAY_PREFIX, SCENARIOS, detonation_techniques

    try:
        day = datetime.date.fromisoformat(start)
    except ValueError:
        raise fail(f"--start must be YYYY-MM-DD, not {start!r}", Exit.USAGE, as_json) from None
    if scenario and "none" in scenario and len(scenario) > 1:
        raise fail("--scenario none cannot be combined with scenario ids", Exit.USAGE, as_json)
    known = {s.id for s in SCENARIOS} | {f"{REPLAY_PREFIX}{t}" for t in detonation_techniques(detonations)}
    chosen = None
    if scenario:
        chosen = tuple(s for s in scenario if s != "none")
        unknown = sorted(set(chosen) - known)
        if unknown:
            raise fail(f"unknown scenario {', '.join(unknown)}; known: {', '.join(sorted(known))}", Exit.USAGE, as_json)
    if detonations is not None and not detonations.is_dir():
        raise fail(f"no such folder: {detonations}", Exit.USAGE, as_json)
    config = SimConfig(seed=seed, accounts=accounts, days=days, scale=scale, start=day.isoformat(), scenarios=chosen,
                       detonations=str(detonations) if detonations else None)
    progress = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("account-days"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                        disable=quiet or not err.is_terminal, transient=True)
    with progress:
        task = progress.add_task("simulating", total=accounts * days)
        summary = run_simulation(out, config, workers=workers,
                                 on_progress=lambda done, _total: progress.update(task, completed=done))
    if as_json:
        emit_json(summary.__dict__)
    elif not quiet:
        console.print(styled((f"{summary.events:,}", "bold"),
                             f" events, {summary.files:,} files, {summary.accounts} accounts, "
                             f"{summary.nhis} non-human identities, {summary.scenarios} attacks in {summary.seconds} s "
                             f"({summary.events_per_second:,} events/s) -> {plain(out)}"))


@app.command()
def scenarios(
    as_json: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the library as Markdown.")] = False,
) -> None:
    """List the attack scenarios the simulator can inject (ids for simulate --scenario)."""
    from nhiwatch.simulate.scenarios import SCENARIOS, scenarios_markdown

    if markdown:
        sys.stdout.write(scenarios_markdown())
        return
    rows = [{"id": s.id, "title": s.title, "stratus": s.stratus, "mitre": s.mitre, "victim": s.victim,
             "network": s.network, "must_catch": list(s.must_catch)} for s in SCENARIOS]
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "what happens", "victim", "Stratus", "ATT&CK", title=f"{len(rows)} attack scenarios")
    for r in rows:
        table.add_row(r["id"], r["title"], r["victim"], "\n".join(r["stratus"]), ", ".join(r["mitre"]))
    console.print(table)


@app.command("eval")
def evaluate(
    labels: Annotated[Optional[Path], typer.Option(help="labels.json written by nhiwatch simulate.")] = None,
    findings: Annotated[Optional[Path], typer.Option(help="Findings as JSON lines (or a JSON array).")] = None,
    simulate_first: Annotated[bool, typer.Option(
        "--simulate", help="One shot: simulate (seed/accounts/days/scenarios below), analyze, score.")] = False,
    cold_start: Annotated[bool, typer.Option(
        "--cold-start/--learn-first", help="With --simulate: judge from the first event, as a new user runs it "
                                           "(default), or let the first quarter of the days (at most 7) only teach.")
    ] = True,
    seed: Annotated[int, typer.Option(help="With --simulate.")] = 1,
    accounts: Annotated[int, typer.Option(min=1, help="With --simulate.")] = 3,
    days: Annotated[int, typer.Option(min=1, help="With --simulate.")] = 30,
    scale: Annotated[float, typer.Option(min=0.05, help="With --simulate.")] = 1.0,
    scenario: Annotated[Optional[list[str]], typer.Option(
        "--scenario", help="With --simulate: attack scenario id (repeatable), 'replay:<Stratus technique>' or "
                           "'none'; default every library scenario and every detonation replay.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="With --simulate: where to write the data (default a temp dir).")] = None,
    home: Annotated[Optional[Path], typer.Option(
        "--home", help="With --labels/--findings: the store the findings came from, to count NHI-days.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score findings against labelled attacks: detected or not, time to first alert, false alerts, precision.

    An attack counts as caught only by a finding of medium severity or above on the compromised identity.
    Noise is counted per 1,000 NHI-days (a non-human identity active on a UTC day), day one apart, by
    detector, by kind of legitimate change and by identity.
    """
    import tempfile

    from nhiwatch.evaluation.scoring import (load_findings, nhi_days_by_day, render_noise_tables, render_table,
                                             score, summary_lines)

    problems: list[str] = []
    nhi_days = None
    if simulate_first:
        from nhiwatch.simulate.runner import SimConfig, simulate as run_simulation
        from nhiwatch.simulate.scenarios import REPLAY_PREFIX, SCENARIOS, detonation_techniques

        from nhiwatch.pipeline import analyze as run_analyze
        from nhiwatch.store.db import Store

        everything = [s.id for s in SCENARIOS] + [f"{REPLAY_PREFIX}{t}" for t in detonation_techniques()]
        if scenario and "none" in scenario and len(scenario) > 1:
            raise fail("--scenario none cannot be combined with scenario ids", Exit.USAGE, as_json)
        chosen = tuple(s for s in scenario if s != "none") if scenario else tuple(everything)
        unknown = sorted(set(chosen) - set(everything))
        if unknown:
            raise fail(f"unknown scenario {', '.join(unknown)}; known: {', '.join(sorted(everything))}", Exit.USAGE,
                       as_json)
        folder = out or Path(tempfile.mkdtemp(prefix="nhiwatch-eval-"))
        run_simulation(folder, SimConfig(seed=seed, accounts=accounts, days=days, scale=scale, scenarios=chosen))
        labels = folder / "labels.json"
        learn_until = None
        if not cold_start:
            start = json.loads(labels.read_text())["start"]
            learn_days = max(1, min(7, days // 4))
            learn_until = datetime.datetime.fromisoformat(start.replace("Z", "+00:00")) + datetime.timedelta(
                days=learn_days)
        with Store(folder / "store") as store:
            result = run_analyze(store, [str(folder / "cloudtrail")], iam=[str(folder / "iam")],
                                 learn_until=learn_until)
            nhi_days = nhi_days_by_day(store.con)
        found = [f.to_dict() for f in result.findings]
        problems.append(f"simulated in {folder}; " + (
            "cold start: judged from the first event" if cold_start else
            f"the first {learn_days} days only teach (their findings are not raised)"))
    else:
        if labels is None or findings is None:
            raise fail("give --labels and --findings, or --simulate", Exit.USAGE, as_json)
        for path in (labels, findings):
            if not path.is_file():
                raise fail(f"no such file: {path}", Exit.USAGE, as_json)
        found, problems = load_findings(findings)
        if home is not None:
            store = open_store(home, as_json, read_only=True)
            try:
                nhi_days = nhi_days_by_day(store.con)
            finally:
                store.close()
        else:
            problems.append("no --home: false alerts per NHI-day need the store the findings came from")
    try:
        label_data = json.loads(labels.read_text())
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read labels {labels}: {exc}", Exit.USAGE, as_json) from None
    report = score(label_data, found, nhi_days=nhi_days)
    report.problems = problems + report.problems
    if as_json:
        emit_json(report.as_dict())
        return
    console.print(_own_markup(render_table(report)))
    for table in render_noise_tables(report):
        console.print(table)
    for line in summary_lines(report):
        console.print(line)
    for problem in report.problems:
        err.print(styled(("note:", "yellow"), " ", problem))


_OWN_MARKUP = {"[green]yes[/]": Text("yes", style="green"), "[red]no[/]": Text("no", style="red")}


def _own_markup(table: Table) -> Table:
    """The scoring table marks "detected" with markup of its own; the console prints strings as text,
    so those cells (and only those: the others hold identities from the events) become styled Text."""
    for column in table.columns:
        column._cells = [_OWN_MARKUP.get(c, c) if isinstance(c, str) else c for c in column._cells]
    return table


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the simulated data, report.html and summary.json.")] = Path(
        "nhiwatch-demo"),
    home: HomeOpt = None,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
    days: Annotated[int, typer.Option(min=1, max=400, help="Days to simulate.")] = 30,
    scale: Annotated[float, typer.Option(min=0.05, max=100.0, help="Identities per account (1.4 = ~75).")] = 1.4,
    serve_after: Annotated[Optional[bool], typer.Option(
        "--serve/--no-serve", help="Start the dashboard on the demo's data when done (default: ask, on a terminal).",
        show_default=False)] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a small organisation (2 accounts, ~150 NHIs, 30 days, a handful of attacks), run every
    stage that exists on it, print what was found and write a self-contained HTML report, then offer
    the dashboard (`nhiwatch serve`) on its data."""
    from dataclasses import replace

    from nhiwatch.demo import DEMO_CONFIG, run as run_demo
    from nhiwatch.store.db import StoreBusy

    store_home = home or out / ".nhiwatch"
    data_dir = out / "data"
    if data_dir.exists() and any(data_dir.iterdir()):
        # A previous demo's output (its labels.json says so) is replaced; anything else is left alone.
        if not (data_dir / "labels.json").is_file():
            raise fail(f"{data_dir} holds data that is not a previous demo: choose another --out", Exit.USAGE,
                       as_json)
        shutil.rmtree(data_dir)
        if home is None:
            shutil.rmtree(store_home, ignore_errors=True)
    config = replace(DEMO_CONFIG, seed=seed, days=days, scale=scale)
    say = (lambda message: None) if (quiet or as_json) else (lambda message: err.print(styled((message, "dim"))))
    try:
        data = run_demo(out, store_home, config=config, say=say)
    except StoreBusy as exc:
        raise fail(str(exc), Exit.BUSY, as_json) from None
    if as_json:
        emit_json({"report": str(out / "report.html"), "store": str(store_home), "stages": data["stages"],
                   "events": data["stats"]["events"], "scenarios": [s["id"] for s in data["labels"]["scenarios"]],
                   "seconds": data["seconds"]})
        return
    if quiet:
        return
    table = Table("attack", "compromised identity", "start (UTC)", title="attacks injected")
    for s in data["labels"]["scenarios"]:
        table.add_row(plain(s["id"]), plain(s["principal"]), plain(s["start"]))
    console.print(table)
    inventory = data["inventory"]
    table = Table("risk", "type", "non-human identity", "why", title="riskiest non-human identities")
    for r in inventory["riskiest"][:6]:
        table.add_row(f"{r['risk']} {r['level']}", plain(r["type"]), plain(r["arn"]),
                      "; ".join(plain(x) for x in r["reasons"][:2]))
    console.print(table)
    evaluation = data["evaluation"]
    table = Table("attack", "detected", "first alert after", "detectors", title="detection on the injected attacks")
    for s in evaluation["scenarios"]:
        delay = s["time_to_first_alert_seconds"]
        table.add_row(plain(s["id"]), Text("yes", style="green") if s["detected"] else Text("no", style="red"),
                      "—" if delay is None else f"{delay:.0f} s", ", ".join(plain(d) for d in s["detectors"]))
    console.print(table)
    table = Table("severity", "incident", "identities", "tactics", "response it would take (dry-run)",
                  title="incidents: findings joined along the identity graph")
    for i in data["incidents"][:10]:  # one value per line in a cell; each value is plain
        table.add_row(plain(i["severity"]), f"{plain(i['id'])}\n{plain(i['title'], 70)}",
                      "\n".join(plain(x) for x in i["identities"]), " -> ".join(plain(x) for x in i["tactics"]),
                      "\n".join(f"{plain(p['action'])} on {plain(p['identity'].rsplit('/', 1)[-1])}"
                                for p in i["response"]))
    console.print(table)
    per_1000 = evaluation["false_alerts_per_1000_identity_days"]
    console.print(f"{sum(s['detected'] for s in evaluation['scenarios'])}/{len(evaluation['scenarios'])} attacks "
                  f"caught at medium or above; {evaluation['false_alerts']} false alerts "
                  f"({per_1000:.2f} per 1,000 identity-days); findings: {out / 'findings.jsonl'}")
    console.print(f"report: {out / 'report.html'}   store: {store_home}   ({data['seconds']} s)")
    console.print(f"explore it: nhiwatch incidents list --home {store_home}; nhiwatch respond plan INCIDENT --home "
                  f"{store_home}; nhiwatch findings list --home {store_home}; nhiwatch inventory list --home "
                  f"{store_home}; nhiwatch posture --home {store_home}; nhiwatch baseline show ARN --home {store_home}")
    console.print(f"dashboard: nhiwatch serve --home {store_home}")
    if serve_after is None:
        serve_after = sys.stdin.isatty() and sys.stdout.isatty() and typer.confirm(
            "start the dashboard on this data now?", default=False)
    if serve_after:
        from nhiwatch.cli.serve import serve

        serve(home=store_home)


# Typer's usage errors (it carries its own copy of click): the base class of its BadParameter.
_UsageErrors = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for --json (options end at "--")."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def _json_error(message: str, code: int) -> None:
    """With --json, a failure is a JSON object on stdout too (unless a document was already written there)."""
    if not json_emitted():
        emit_json({"error": message, "exit_code": int(code)})


def main() -> None:
    as_json = _wants_json(sys.argv[1:])
    try:
        # Not standalone: click's usage errors come back here, so --json can carry them as well.
        code = app(prog_name="nhiwatch", standalone_mode=False)
    except _UsageErrors as exc:  # a usage error (bad option value, missing argument): exit 2
        if as_json and type(exc).__name__ != "NoArgsIsHelpError":
            _json_error(exc.format_message(), exc.exit_code)
        try:
            from typer import rich_utils

            rich_utils.rich_format_error(exc)  # as typer prints it when standalone
        except ImportError:
            exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("Aborted!")
        sys.exit(int(Exit.FATAL))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug or an environment problem: one clear line, not a stack trace
        message = f"{type(exc).__name__}: {exc}"
        if as_json:
            _json_error(message, Exit.FATAL)
        err.print(styled(("fatal:", "bold red"), " ", message))  # the message may quote an event or a path
        if os.environ.get("NHIWATCH_DEBUG"):
            raise
        sys.exit(int(Exit.FATAL))
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)
