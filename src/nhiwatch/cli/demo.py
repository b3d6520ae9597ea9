"""`nhiwatch demo`: the one-command demonstration on the embedded default."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from nhiwatch.cli.common import (Exit, HomeOpt, JsonOpt, QuietOpt, console, emit_json, err, fail, plain,
                                 styled)


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
