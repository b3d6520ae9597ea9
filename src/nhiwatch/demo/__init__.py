"""`nhiwatch demo`: simulate a small organisation and run every stage that exists on it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from nhiwatch.demo.report import render
from nhiwatch.ingest.pipeline import Ingestor
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.store.db import Store

# A handful of attacks that show the range: stolen workload credentials, CI abuse, escalation,
# exfiltration, defence evasion, cross-account movement.
DEMO_SCENARIOS = ("lambda-creds-from-internet", "ec2-creds-off-instance", "ci-key-leak-escalation",
                  "oidc-foreign-repository", "role-chain-cross-account", "ebs-snapshot-shared", "cloudtrail-stopped",
                  "bulk-secret-retrieval")
DEMO_CONFIG = SimConfig(seed=7, accounts=2, days=30, scale=1.4, scenarios=DEMO_SCENARIOS)

Say = Callable[[str], None]


def run(out: Path, home: Path, config: SimConfig = DEMO_CONFIG, say: Say = lambda _m: None,
        workers: int | None = None) -> dict:
    """Simulate, ingest and summarise; returns the report data and writes report.html and summary.json."""
    stages = []
    started = time.perf_counter()
    say(f"simulating {config.accounts} accounts for {config.days} days ...")
    sim = simulate(out / "data", config, workers=workers)
    stages.append({"stage": "simulate", "result": f"{sim.events:,} events, {sim.nhis} NHIs, {sim.scenarios} "
                                                   f"attacks in {sim.seconds:.1f} s ({sim.events_per_second:,} events/s)"})
    say(stages[-1]["result"])
    labels = json.loads((out / "data" / "labels.json").read_text())

    say("ingesting ...")
    with Store(home) as store:
        t = time.perf_counter()
        summary = Ingestor(store, workers=workers).run([str(out / "data" / "cloudtrail")])
        stages.append({"stage": "ingest", "result": f"{summary.accepted:,} events stored, {summary.quarantined} "
                                                    f"quarantined, in {time.perf_counter() - t:.1f} s"})
        say(stages[-1]["result"])
        stats = store.stats()
        per_day = store.con.execute(
            "SELECT strftime(event_time, '%Y-%m-%d') d, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
        top = store.con.execute(
            """SELECT principal, principal_type, count(*) n FROM events WHERE principal IS NOT NULL
               GROUP BY 1, 2 ORDER BY n DESC LIMIT 12""").fetchall()
    for later in ("inventory", "baselines and detection", "correlation", "response"):
        stages.append({"stage": later, "result": "not in this version yet"})
    data = {
        "simulation": sim.__dict__, "ingest": summary.totals(), "stats": stats, "labels": labels,
        "stages": stages, "incidents": [], "evaluation": None,
        "events_per_day": [(d, n) for d, n in per_day],
        "top_identities": [{"principal": p, "principal_type": k, "events": n} for p, k, n in top],
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "report.html").write_text(render(data))
    (out / "summary.json").write_text(json.dumps({k: v for k, v in data.items() if k != "labels"}, indent=1,
                                                 default=str))
    return data
