"""`nhiwatch eval`: findings scored against labelled attacks."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from nhiwatch.cli.common import (Exit, JsonOpt, console, emit_json, err, fail, open_store, styled)


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
