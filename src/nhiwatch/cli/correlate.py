"""`nhiwatch incidents ...`: findings joined along the identity graph."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from nhiwatch.cli.common import (SEVERITY_STYLE, Exit, HomeOpt, JsonOpt, console, emit_json, fail, open_store, plain,
                                 styled)

incidents_app = typer.Typer(help="Incidents: findings joined by real links between identities.",
                            no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


@incidents_app.command("list")
def list_incidents(
    min_severity: Annotated[str, typer.Option(help="info, low, medium, high or critical.")] = "medium",
    status: Annotated[str, typer.Option(help="open, resolved or all.")] = "open",
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Incidents, most severe first."""
    from nhiwatch.correlate.incidents import list_incidents as query
    from nhiwatch.core.severity import SEVERITIES

    if min_severity not in SEVERITIES:
        raise fail(f"--min-severity must be one of {', '.join(SEVERITIES)}", Exit.USAGE, as_json)
    if status not in ("open", "resolved", "all"):
        raise fail("--status must be open, resolved or all", Exit.USAGE, as_json)
    store = open_store(home, as_json, read_only=True)
    try:
        rows = query(store, min_severity=min_severity, status=None if status == "all" else status)
    finally:
        store.close()
    if as_json:
        emit_json({"total": len(rows), "incidents": rows})
        return
    console.print(f"{len(rows)} incidents at {min_severity} or above ({status})")
    print_incidents(rows)


def print_incidents(rows: list[dict]) -> None:
    if not rows:
        return
    table = Table("severity", "first seen", "identities", "tactics", "findings", "title", "id")
    for x in rows:  # a title names identities from the events: plain
        table.add_row(Text(x["severity"], style=SEVERITY_STYLE.get(x["severity"], "")), plain(x["first_seen"]),
                      str(len(x["identities"])), " -> ".join(plain(t) for t in x["tactics"]),
                      str(len(x["finding_ids"])), plain(x["title"], 110), plain(x["id"]))
    console.print(table)


@incidents_app.command("show")
def show_incident(incident_id: Annotated[str, typer.Argument(help="Incident id (inc-...).")], home: HomeOpt = None,
                  as_json: JsonOpt = False) -> None:
    """One incident: identities, links, timeline, blast radius, findings."""
    from nhiwatch.correlate.incidents import get_incident

    store = open_store(home, as_json, read_only=True)
    try:
        incident = get_incident(store, incident_id)
    finally:
        store.close()
    if incident is None:
        raise fail(f"no incident {incident_id} (nhiwatch incidents list)", Exit.USAGE, as_json)
    if as_json:
        emit_json(incident)
        return
    style = SEVERITY_STYLE.get(incident["severity"], "")
    console.print(styled((incident["severity"], style), " ", (plain(incident["title"]), "bold"),
                         f" (score {incident['score']}, {plain(incident['status'])})"))
    console.print(f"{incident['first_seen']} .. {incident['last_seen']} · "
                  + "; ".join(plain(r) for r in incident["severity_reasons"]))
    console.print("identities: " + ", ".join(plain(i) for i in incident["identities"])
                  + (f" (pivots: {', '.join(plain(i) for i in incident['pivots'])})" if incident["pivots"] else ""))
    if incident["addresses"]:
        console.print("from: " + ", ".join(plain(a) for a in incident["addresses"]))
    timeline = Table("time", "what", "identity", "detail")
    for entry in incident["timeline"]:
        what = (styled((entry["severity"], SEVERITY_STYLE.get(entry["severity"], "")), f" {plain(entry['tactic'])}")
                if entry["kind"] == "finding" else plain(entry["kind"]))
        timeline.add_row(plain(entry["time"]), what, plain(entry["identity"]), plain(entry["title"], 120))
    console.print(timeline)
    radius = incident["blast_radius"]
    if radius.get("known"):
        def names(values: list) -> str:
            return ", ".join(plain(v) for v in values)

        console.print("blast radius: "
                      + "; ".join(part for part in (
                          f"admin: {names(radius['admin'])}" if radius["admin"] else "",
                          f"can escalate: {names(radius['can_escalate'])}" if radius["can_escalate"] else "",
                          f"data: {names(radius['data_access'][:12])}" if radius["data_access"] else "")
                          if part) or "blast radius: no admin, escalation or data access in the inventory")
    else:
        console.print("blast radius: unknown (load the IAM inventory: nhiwatch inventory load)")
