"""`nhiwatch analyze`, `nhiwatch findings ...` and `nhiwatch baseline show`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nhiwatch.cli.common import (SEVERITY_STYLE, Exit, HomeOpt, JsonOpt, QuietOpt, console, emit_json, err, fail,
                                 open_store, time_option)

findings_app = typer.Typer(help="Behavioural findings: list, show, resolve.", no_args_is_help=True,
                           context_settings={"help_option_names": ["-h", "--help"]})
baseline_app = typer.Typer(help="Identity baselines (the learned normal).", no_args_is_help=True,
                           context_settings={"help_option_names": ["-h", "--help"]})
def analyze(
    paths: Annotated[Optional[list[str]], typer.Argument(
        help="CloudTrail files, folders or globs to ingest first (none: judge what the store holds).",
        show_default=False)] = None,
    learn_until: Annotated[Optional[str], typer.Option(
        help="A known-clean period: events before this time only teach (bootstrap from archived history).")] = None,
    iam: Annotated[Optional[list[str]], typer.Option(
        help="IAM exports (authorization details, credential reports) for posture-aware severities.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the new findings to this file.")] = None,
    format_: Annotated[str, typer.Option("--format", help="jsonl (the finding contract) or ocsf.")] = "jsonl",
    suppressions: Annotated[Optional[Path], typer.Option(help="TOML file of [[suppress]] rules.")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Ingest parser processes.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Ingest, learn and detect in one pass: every event is judged against its identity's baseline
    learned from everything before it, then folded into it. Re-running never repeats a finding."""
    from nhiwatch.detect.analyze import analyze as run_analyze
    from nhiwatch.detect.findings_store import SuppressionError, load_suppressions
    from nhiwatch.ingest.pipeline import InputError, expand_paths
    from nhiwatch.outputs.ocsf import to_ocsf
    from nhiwatch.store.db import resolve_home

    if format_ not in ("jsonl", "ocsf"):
        raise fail("--format must be jsonl or ocsf", Exit.USAGE, as_json)
    until = time_option(learn_until, "--learn-until", as_json)
    try:
        rules = load_suppressions(suppressions) if suppressions else []
        files = expand_paths(paths, exclude=resolve_home(home)) if paths else []
        if iam:
            expand_paths(iam)
    except (SuppressionError, InputError) as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    if paths and not files:
        raise fail("no files found in the given paths", Exit.USAGE, as_json)
    store = open_store(home, as_json)
    progress = Progress(TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=quiet or not err.is_terminal, transient=True)
    try:
        with progress:
            task = progress.add_task("ingest", total=len(files))
            result = run_analyze(store, paths or [], learn_until=until, iam=iam, suppressions=rules,
                                 workers=workers, on_file=lambda _p, _o: progress.advance(task))
        suppressed = {row[0] for row in store.con.execute(
            "SELECT id FROM findings WHERE status = 'suppressed' AND id IN (SELECT unnest(?))",
            [[f.id for f in result.findings]]).fetchall()}
    finally:
        store.close()
    emitted = [f.to_dict() for f in result.findings if f.id not in suppressed]
    if out is not None:
        with open(out, "wb") as handle:
            for finding in emitted:
                handle.write(orjson.dumps(to_ocsf(finding) if format_ == "ocsf" else finding) + b"\n")
    detect = result.detect
    report = {"ingest": result.ingest, "inventory_identities": result.inventory, "events_judged": detect.events,
              "identities": detect.identities, "findings": len(emitted), "suppressed": result.suppressed,
              "by_severity": detect.by_severity, "by_detector": detect.by_detector, "watermark": detect.watermark,
              "seconds": detect.seconds, "incidents": result.correlation, "out": str(out) if out else None,
              "problems": result.problems}
    if as_json:
        emit_json(report)
    elif not quiet:
        console.print(f"judged [bold]{detect.events:,}[/] events of {detect.identities:,} identities in "
                      f"{detect.seconds} s: {len(emitted)} new findings ("
                      + ", ".join(f"{detect.by_severity.get(s, 0)} {s}" for s in ("critical", "high", "medium", "low"))
                      + f"), {result.suppressed} suppressed" + (f" -> {out}" if out else ""), highlight=False)
        _print_findings([f for f in emitted if f["severity"] in ("medium", "high", "critical")][:25])
        if result.correlation.get("incidents"):
            console.print(f"{result.correlation['incidents']} incidents (nhiwatch incidents list)", highlight=False)
        for problem in result.problems[:20]:
            err.print(f"[yellow]problem:[/] {problem}", highlight=False)
    if result.problems:
        raise typer.Exit(int(Exit.PARTIAL))


def _print_findings(rows: list[dict]) -> None:
    if not rows:
        return
    table = Table("severity", "first seen", "detector", "identity", "what", "id")
    for f in rows:
        table.add_row(f"[{SEVERITY_STYLE[f['severity']]}]{f['severity']}[/]", f["first_seen"], f["detector"],
                      f["identity"]["arn"], f["explanation"][:160], f["id"])
    console.print(table)


@findings_app.command("list")
def list_findings(
    min_severity: Annotated[str, typer.Option(help="info, low, medium, high or critical.")] = "medium",
    detector: Annotated[Optional[str], typer.Option(help="Only this detector id.")] = None,
    identity: Annotated[Optional[str], typer.Option(help="Only identities whose ARN contains this.")] = None,
    status: Annotated[str, typer.Option(help="open, benign, resolved, suppressed or all.")] = "open",
    since: Annotated[Optional[str], typer.Option(help="Only findings first seen at or after this time.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many (0: all).")] = 100,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Findings, most severe first."""
    from nhiwatch.detect.detectors import DETECTORS
    from nhiwatch.detect.finding import SEVERITIES
    from nhiwatch.detect.findings_store import list_findings as query

    if min_severity not in SEVERITIES:
        raise fail(f"--min-severity must be one of {', '.join(SEVERITIES)}", Exit.USAGE, as_json)
    if detector and detector not in {d.id for d in DETECTORS}:
        raise fail(f"unknown detector {detector!r} (nhiwatch findings detectors lists them)", Exit.USAGE, as_json)
    if status not in ("open", "benign", "resolved", "suppressed", "all"):
        raise fail("--status must be open, benign, resolved, suppressed or all", Exit.USAGE, as_json)
    store = open_store(home, as_json, read_only=True)
    try:
        total, rows = query(store, min_severity=min_severity, detector=detector, identity=identity,
                            status=None if status == "all" else status, since=since, limit=limit or None)
    finally:
        store.close()
    if as_json:
        emit_json({"total": total, "findings": rows})
        return
    console.print(f"{len(rows)} of {total} findings at {min_severity} or above ({status})")
    _print_findings(rows)


@findings_app.command("show")
def show_finding(finding_id: Annotated[str, typer.Argument(help="Finding id (nw-...).")], home: HomeOpt = None,
                 as_json: JsonOpt = False) -> None:
    """One finding in full: explanation, baseline evidence, events."""
    from nhiwatch.detect.findings_store import get_finding

    store = open_store(home, as_json, read_only=True)
    try:
        finding = get_finding(store, finding_id)
    finally:
        store.close()
    if finding is None:
        raise fail(f"no finding {finding_id}", Exit.USAGE, as_json)
    if as_json:
        emit_json(finding)
        return
    console.print(f"[{SEVERITY_STYLE[finding['severity']]}]{finding['severity']}[/] [bold]{finding['title']}[/] "
                  f"({finding['detector']}, score {finding['score']}, {finding['status']})")
    console.print(f"identity {finding['identity']['arn']} ({finding['identity']['type']}) session "
                  f"{finding['session']}", highlight=False)
    console.print(f"{finding['first_seen']} .. {finding['last_seen']} · ATT&CK {', '.join(finding['mitre'])}"
                  + (f" · Stratus {', '.join(finding['stratus'])}" if finding["stratus"] else ""), highlight=False)
    console.print(finding["explanation"], highlight=False)
    console.print(orjson.dumps(finding["evidence"], option=orjson.OPT_INDENT_2).decode(), highlight=False)
    console.print(f"{len(finding['event_ids'])} events: " + ", ".join(finding["event_ids"][:10]), highlight=False)


@findings_app.command("resolve")
def resolve_finding(
    finding_id: Annotated[str, typer.Argument(help="Finding id (nw-...).")],
    benign: Annotated[bool, typer.Option("--benign", help="It was legitimate: teach the baseline what it saw.")] = False,
    reason: Annotated[Optional[str], typer.Option(help="Why, for the record.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a finding; with --benign its APIs, networks, clients and regions join the identity's normal."""
    from nhiwatch.detect.findings_store import resolve

    store = open_store(home, as_json)
    try:
        result = resolve(store, finding_id, benign=benign, reason=reason)
    except LookupError as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    if as_json:
        emit_json(result)
    else:
        console.print(f"{finding_id}: {result['status']}" + (
            f", {result['events_taught']} events taught to the baseline" if benign else ""))


@findings_app.command("detectors")
def detectors(as_json: JsonOpt = False, markdown: Annotated[bool, typer.Option(
        "--markdown", help="Print docs/detectors.md.")] = False) -> None:
    """The detectors: id, tactic, ATT&CK, Stratus techniques, GuardDuty finding types covered."""
    from nhiwatch.detect.docs import detector_rows, detectors_markdown

    if markdown:
        sys.stdout.write(detectors_markdown())
        return
    rows = detector_rows()
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "tactic", "ATT&CK", "what", title=f"{len(rows)} detectors")
    for r in rows:
        table.add_row(r["id"], r["tactic"], ", ".join(r["mitre"]), r["description"])
    console.print(table)


@baseline_app.command("show")
def show_baseline(reference: Annotated[str, typer.Argument(help="Identity ARN (or a unique part of it).")],
                  home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """An identity's learned normal, in words and numbers."""
    from nhiwatch.detect.baseline import describe, find_profile

    store = open_store(home, as_json, read_only=True)
    try:
        found = find_profile(store, reference)
    except LookupError as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    identity, profile = found
    data = describe(identity, profile)
    if as_json:
        emit_json(data)
        return
    console.print(f"[bold]{identity}[/]", highlight=False)
    console.print(data["summary"], highlight=False)
    for facet, values in data["top"].items():
        if values:
            console.print(f"  {facet}: " + ", ".join(f"{v['value']} ({v['count']:,}, since {v['first_seen'][:10]})"
                                                     for v in values), highlight=False)
    console.print("  hour x weekday (UTC, calls):")
    for day, row in zip(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), data["heatmap"]):
        console.print(f"    {day} " + "".join(" .:-=+*#%@"[min(9, (c * 9 + data['heat_max'] - 1) // data['heat_max'])]
                                              if data["heat_max"] else " " for c in row), highlight=False)
