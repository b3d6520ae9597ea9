"""`nhiwatch analyze`, `nhiwatch findings ...` and `nhiwatch baseline show`."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from nhiwatch.cli.common import (SEVERITY_STYLE, Exit, HomeOpt, JsonOpt, QuietOpt, check_time, console, emit_json,
                                 err, fail, open_store, plain, styled, time_option)
from nhiwatch.core.severity import SEVERITIES, Severity, is_alert, severity_rank

findings_app = typer.Typer(help="Behavioural findings: list, show, resolve.", no_args_is_help=True,
                           context_settings={"help_option_names": ["-h", "--help"]})
baseline_app = typer.Typer(help="Identity baselines (the learned normal).", no_args_is_help=True,
                           context_settings={"help_option_names": ["-h", "--help"]})
def analyze(
    paths: Annotated[Optional[list[str]], typer.Argument(
        help="CloudTrail files, folders or globs to ingest first (none: judge what the store holds).",
        show_default=False)] = None,
    learn_until: Annotated[Optional[str], typer.Option(
        callback=check_time,
        help="A known-clean period: events before this time only teach (bootstrap from archived history); "
             "ISO-8601.")] = None,
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
    from nhiwatch.pipeline import analyze as run_analyze
    from nhiwatch.detect.findings_store import SuppressionError, load_suppressions
    from nhiwatch.ingest.pipeline import InputError, expand_paths
    from nhiwatch.outputs.ocsf import finding_events, to_ocsf
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
        emitted = [f.to_dict() for f in result.findings if f.id not in suppressed]
        summary = summarize(store, new=len(emitted), home=resolve_home(home)) if as_json or not quiet else None
        # OCSF records show each finding's events as evidences: read them while the store is open.
        written = ([to_ocsf(f, events) for f, events in zip(emitted, finding_events(store, emitted))]
                   if format_ == "ocsf" and out else emitted)
    finally:
        store.close()
    if out is not None:
        with open(out, "wb") as handle:
            for record in written:
                handle.write(orjson.dumps(record) + b"\n")
    detect = result.detect
    report = {"ingest": result.ingest, "inventory_identities": result.inventory, "events_judged": detect.events,
              "identities": detect.identities, "findings": len(emitted), "suppressed": result.suppressed,
              "by_severity": detect.by_severity, "by_detector": detect.by_detector, "watermark": detect.watermark,
              "seconds": detect.seconds, "incidents": result.correlation, "out": str(out) if out else None,
              "problems": result.problems, "summary": summary}
    if as_json:
        emit_json(report)
    elif not quiet:
        console.print(styled("judged ", (f"{detect.events:,}", "bold"),
                             f" events of {detect.identities:,} identities in {detect.seconds} s: {len(emitted)} new "
                             "findings (" + ", ".join(f"{detect.by_severity.get(s, 0)} {s}"
                                                      for s in reversed(SEVERITIES) if s != Severity.INFO)
                             + f"), {result.suppressed} suppressed" + (f" -> {plain(out)}" if out else "")))
        for problem in result.problems[:20]:
            err.print(styled(("problem:", "yellow"), " ", plain(problem)))
        print_summary(summary)
    if result.problems:
        raise typer.Exit(int(Exit.PARTIAL))


def _print_findings(rows: list[dict]) -> None:
    if not rows:
        return
    table = Table("severity", "first seen", "detector", "identity", "what", "id")
    for f in rows:  # Text cells: an ARN or explanation from the events is never read as markup
        table.add_row(Text(plain(f["severity"]), style=SEVERITY_STYLE.get(f["severity"], "")), plain(f["first_seen"]),
                      plain(f["detector"]), _plain(f["identity"]["arn"]), _plain(f["explanation"], 160), plain(f["id"]))
    console.print(table)


# -- the summary `analyze` ends with -----------------------------------------------------------

ALERTING = tuple(s for s in reversed(SEVERITIES) if is_alert(s))  # most severe first
TOP_DETECTORS, TOP_INCIDENTS, TOP_FINDINGS, EXPLANATION_CHARS = 10, 5, 10, 200


def _plain(text: object, limit: int | None = None) -> str:
    """Text from the events for one line: runs of spaces, tabs and line breaks as one space, every other
    control character shown escaped, cut at `limit` characters."""
    return plain(" ".join(re.split(r"[ \t\n]+", str(text or ""))).strip(), limit)


def summarize(store, *, new: int, home: Path) -> dict:
    """What is open in the store after a run, for a person: counts by severity and detector, incidents,
    and the most severe findings. Every count comes from the findings table (status open)."""
    from nhiwatch.correlate.incidents import list_incidents

    con = store.con
    by_severity = {s: 0 for s in reversed(SEVERITIES)}
    by_detector: dict[str, dict[str, int]] = {}
    for detector, severity, count in con.execute(
            "SELECT detector, severity, count(*) FROM findings WHERE status = 'open' GROUP BY ALL").fetchall():
        by_severity[severity] = by_severity.get(severity, 0) + count
        by_detector.setdefault(detector, {})[severity] = count
    alerting = sorted(((d, sum(c for s, c in counts.items() if s in ALERTING), counts)
                       for d, counts in by_detector.items()), key=lambda x: (-x[1], x[0]))
    alerting = [(d, n, counts) for d, n, counts in alerting if n]
    top_detectors = [{"detector": d, "count": n, "by_severity": {s: counts[s] for s in ALERTING if counts.get(s)}}
                     for d, n, counts in alerting[:TOP_DETECTORS]]
    rest = alerting[TOP_DETECTORS:]
    rows = con.execute(f"""
        SELECT finding, incident_id FROM findings
        WHERE status = 'open' AND severity IN ({', '.join('?' * len(ALERTING))})
        ORDER BY list_position(?, severity) DESC, score DESC NULLS LAST, first_seen, id LIMIT {TOP_FINDINGS}""",
                       [*ALERTING, list(SEVERITIES)]).fetchall()
    top_findings = []
    for text, incident in rows:
        f = orjson.loads(text)
        top_findings.append({"id": f["id"], "severity": f["severity"], "score": f["score"], "detector": f["detector"],
                             "identity": f["identity"]["arn"], "first_seen": f["first_seen"],
                             "last_seen": f["last_seen"], "title": f["title"], "explanation": f["explanation"],
                             "incident_id": incident})
    incidents = list_incidents(store, status="open")
    incident_counts = {s: 0 for s in reversed(SEVERITIES)}
    for incident in incidents:
        incident_counts[incident["severity"]] += 1
    home_arg = shlex.quote(str(home))
    return {
        "scope": "open findings in the store",
        "open_findings": sum(by_severity.values()),
        "new_findings": new,
        "by_severity": by_severity,
        "by_detector": top_detectors,
        "other_detectors": {"detectors": len(rest), "findings": sum(n for _, n, _ in rest)},
        "low_and_info": by_severity.get("low", 0) + by_severity.get("info", 0),
        "by_detector_all": {d: dict(sorted(c.items(), key=lambda x: -severity_rank(x[0])))
                            for d, c in sorted(by_detector.items())},
        "incidents": {"open": len(incidents), "by_severity": incident_counts,
                      "top": [{"id": i["id"], "severity": i["severity"], "score": i["score"], "title": i["title"],
                               "identities": i["identities"], "tactics": i["tactics"],
                               "findings": len(i["finding_ids"]), "first_seen": i["first_seen"]}
                              for i in incidents[:TOP_INCIDENTS]]},
        "top_findings": top_findings,
        "see_all": {"findings": f"nhiwatch findings list --home {home_arg} --min-severity info --limit 0",
                    "incidents": f"nhiwatch incidents list --home {home_arg}"},
    }


def _without_identity(explanation: str, arn: str) -> str:
    """An explanation that opens with the identity's ARN (printed just above) opens with its name instead."""
    if arn and explanation.startswith(arn):
        return arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1] + explanation[len(arn):]
    return explanation


def _counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"


def print_summary(summary: dict) -> None:
    """The summary as lines of Text: nothing from the events is ever read as markup."""
    def line(*parts: str | tuple[str, str]) -> None:
        console.print(styled(*parts), soft_wrap=True)

    def sev(severity: str) -> tuple[str, str]:
        return f"{severity:<8}", SEVERITY_STYLE.get(severity, "")

    line()
    line(("Summary", "bold"), f": {summary['open_findings']:,} open findings in the store "
                              f"({summary['new_findings']:,} new in this run)")
    counts = [(f"{n} {s}", SEVERITY_STYLE[s] if n else "dim") for s, n in summary["by_severity"].items()]
    line("  by severity: ", *[part for i, c in enumerate(counts) for part in ((" · ",) if i else ()) + (c,)])
    if summary["by_detector"]:
        line("  by detector, medium and above:")
        width = max(len(d["detector"]) for d in summary["by_detector"])
        for d in summary["by_detector"]:
            line(f"    {_plain(d['detector']):<{width}}  {d['count']:>6,}  ({_counts(d['by_severity'])})")
    other = summary["other_detectors"]
    tail = [f"{other['findings']:,} more in {other['detectors']} other detectors"] if other["detectors"] else []
    line("  " + "; ".join(tail + [f"{summary['low_and_info']:,} low/info findings (leads, not alerts)"]))
    incidents = summary["incidents"]
    line(("  incidents", "bold"), f": {incidents['open']} open" +
         (f" ({_counts(incidents['by_severity'])})" if incidents["open"] else ""))
    for n, incident in enumerate(incidents["top"], 1):
        line(f"    {n}. ", sev(incident["severity"]), f" {incident['id']}  {_plain(incident['title'], 120)}")
        names = [_plain(i, 80) for i in incident["identities"][:4]]
        more = f" (+{len(incident['identities']) - 4} more)" if len(incident["identities"]) > 4 else ""
        line(f"       identities: {', '.join(names)}{more} · tactics: "
             f"{_plain(' -> '.join(incident['tactics']), 160) or 'none'} · {incident['findings']} findings")
    if summary["top_findings"]:
        line(("  top findings", "bold"), ", medium and above, by severity then score:")
    for n, f in enumerate(summary["top_findings"], 1):
        line(f"    {n:>2}. ", sev(f["severity"]), f" {_plain(f['detector'])}  {_plain(f['identity'])}  "
             f"{f['first_seen']}  score {f['score']}  {f['id']}")
        line(f"        {_plain(_without_identity(f['explanation'], f['identity']), EXPLANATION_CHARS)}")
    line("  all findings: ", (summary["see_all"]["findings"], "bold"))
    if incidents["open"]:
        line("  incidents:    ", (summary["see_all"]["incidents"], "bold"))


@findings_app.command("list")
def list_findings(
    min_severity: Annotated[str, typer.Option(help="info, low, medium, high or critical.")] = "medium",
    detector: Annotated[Optional[str], typer.Option(help="Only this detector id.")] = None,
    identity: Annotated[Optional[str], typer.Option(help="Only identities whose ARN contains this.")] = None,
    status: Annotated[str, typer.Option(help="open, benign, resolved, suppressed or all.")] = "open",
    since: Annotated[Optional[str], typer.Option(callback=check_time, help="Only findings first seen at or after "
                                                 "this time (ISO-8601, e.g. 2026-03-08 or 2026-03-08T12:00:00Z).")
                     ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many (0: all).")] = 100,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Findings, most severe first."""
    from nhiwatch.core.times import iso_z
    from nhiwatch.detect.detectors import DETECTORS
    from nhiwatch.detect.findings_store import list_findings as query

    if min_severity not in SEVERITIES:
        raise fail(f"--min-severity must be one of {', '.join(SEVERITIES)}", Exit.USAGE, as_json)
    if detector and detector not in {d.id for d in DETECTORS}:
        raise fail(f"unknown detector {detector!r} (nhiwatch findings detectors lists them)", Exit.USAGE, as_json)
    if status not in ("open", "benign", "resolved", "suppressed", "all"):
        raise fail("--status must be open, benign, resolved, suppressed or all", Exit.USAGE, as_json)
    # first_seen is stored as ISO text: compare with the same form, whatever form was given
    since_at = time_option(since, "--since", as_json)
    store = open_store(home, as_json, read_only=True)
    try:
        total, rows = query(store, min_severity=min_severity, detector=detector, identity=identity,
                            status=None if status == "all" else status, since=iso_z(since_at) if since_at else None,
                            limit=limit or None)
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
        emit_json(finding.to_dict())
        return
    console.print(styled((plain(finding.severity), SEVERITY_STYLE.get(finding.severity, "")), " ",
                         (plain(finding.title), "bold"),
                         f" ({plain(finding.detector)}, score {finding.score}, {plain(finding.status)})"))
    console.print(f"identity {plain(finding.identity['arn'])} ({plain(finding.identity['type'])}) session "
                  f"{plain(finding.session or 'none')}")
    console.print(f"{finding.first_seen} .. {finding.last_seen} · ATT&CK {', '.join(finding.mitre)}"
                  + (f" · Stratus {', '.join(finding.stratus)}" if finding.stratus else ""))
    console.print(plain(finding.explanation))
    # JSON escapes control characters; the console escapes the invisible ones JSON leaves (bidi, ...)
    console.print(orjson.dumps(finding.evidence, option=orjson.OPT_INDENT_2).decode())
    console.print(f"{len(finding.event_ids)} events: " + ", ".join(plain(e) for e in finding.event_ids[:10]))


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
        console.print(f"{plain(finding_id)}: {result['status']}" + (
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
        table.add_row(r["id"], r["tactic"], ", ".join(r["mitre"]), r["description"])  # our own text
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
    console.print(styled((plain(identity), "bold")))
    console.print(plain(data["summary"]))
    for facet, values in data["top"].items():  # user agents, buckets, keys, networks: the caller's text
        if values:
            console.print(f"  {facet}: " + ", ".join(f"{plain(v['value'])} ({v['count']:,}, since "
                                                     f"{plain(v['first_seen'][:10])})" for v in values))
    console.print("  hour x weekday (UTC, calls):")
    for day, row in zip(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), data["heatmap"]):
        console.print(f"    {day} " + "".join(" .:-=+*#%@"[min(9, (c * 9 + data['heat_max'] - 1) // data['heat_max'])]
                                              if data["heat_max"] else " " for c in row))
