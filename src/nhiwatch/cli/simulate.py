"""`nhiwatch simulate` and `scenarios`: a synthetic organisation's CloudTrail and IAM, and the attack library."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nhiwatch.cli.common import (Exit, JsonOpt, QuietOpt, console, emit_json, err, fail, plain, styled)


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
