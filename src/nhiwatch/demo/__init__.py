"""`nhiwatch demo`: simulate a small organisation and run every stage that exists on it."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

import orjson

from nhiwatch import pipeline
from nhiwatch.core.severity import SEVERITIES, Severity, is_alert, severity_rank
from nhiwatch.correlate.incidents import list_incidents
from nhiwatch.demo.report import escalation_summary, render
from nhiwatch.evaluation.scoring import score
from nhiwatch.ingest.pipeline import expand_paths
from nhiwatch.core.times import parse_time
from nhiwatch.respond.service import incident_proposals
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.store.db import Store

# A handful of attacks that show the range: stolen workload credentials, CI abuse, escalation,
# exfiltration, defence evasion, cross-account movement.
DEMO_SCENARIOS = ("lambda-creds-from-internet", "ec2-creds-off-instance", "ci-key-leak-escalation",
                  "oidc-foreign-repository", "role-chain-cross-account", "ebs-snapshot-shared", "cloudtrail-stopped",
                  "bulk-secret-retrieval", "ci-key-two-roles")
LEARN_DAYS = 7  # the demo treats its first week as known-clean history (analyze --learn-until)
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
        ingested, _ = pipeline.ingest(store, [str(out / "data" / "cloudtrail")], workers=workers)
        totals = {k: v for k, v in ingested.items() if k != "files_detail"}
        stages.append({"stage": "ingest", "result": f"{totals['accepted']:,} events stored, {totals['quarantined']} "
                                                    f"quarantined, in {time.perf_counter() - t:.1f} s"})
        say(stages[-1]["result"])
        stats = store.stats()
        per_day = store.con.execute(
            "SELECT strftime(event_time, '%Y-%m-%d') d, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall()
        top = store.con.execute(
            """SELECT principal, principal_type, count(*) n FROM events WHERE principal IS NOT NULL
               GROUP BY 1, 2 ORDER BY n DESC LIMIT 12""").fetchall()
        say("building the inventory ...")
        t = time.perf_counter()
        sources, _ = pipeline.read_iam(expand_paths([str(out / "data" / "iam")]))
        _, identities = pipeline.load_inventory(store, sources, str(out / "data" / "iam"), parse_time(labels["end"]))
        nhis = [i for i in identities if i.is_nhi]
        posture = [f for i in identities for f in i.findings]
        stages.append({"stage": "inventory", "result": (
            f"{len(identities)} identities ({len(nhis)} non-human) in {len(sources) // 2} accounts, "
            f"{sum(1 for i in identities if i.risk_level in ('critical', 'high'))} at high risk or above, "
            f"{len(posture)} posture findings, in {time.perf_counter() - t:.1f} s")})
        say(stages[-1]["result"])
        say("learning baselines and detecting ...")
        learn_until = parse_time(labels["start"]) + timedelta(days=LEARN_DAYS)
        detect, findings = pipeline.detect(store, learn_until=learn_until, as_of=parse_time(labels["end"]))
        stages.append({"stage": "baselines and detection", "result": (
            f"{detect.events:,} events of {detect.identities} identities judged in {detect.seconds:.1f} s "
            f"(first {LEARN_DAYS} days only teach): " + ", ".join(
                f"{detect.by_severity.get(s, 0)} {s}" for s in reversed(SEVERITIES) if s != Severity.INFO)
            + " findings")})
        say(stages[-1]["result"])
        say("correlating findings into incidents and planning the response ...")
        t = time.perf_counter()
        correlation = pipeline.link_incidents(store, findings)
        incidents = []
        for summary_row in list_incidents(store, min_severity="medium"):
            incident, proposals = incident_proposals(store, summary_row["id"], [])
            incidents.append({**{k: incident[k] for k in ("id", "title", "severity", "score", "identities", "tactics",
                                                         "first_seen", "finding_ids")},
                              "response": [p.to_dict() for p in proposals]})
        stages.append({"stage": "correlation", "result": (
            f"{correlation['incidents']} incidents from {correlation['findings']} findings ("
            + ", ".join(f"{n} {s}" for s, n in sorted(correlation["by_severity"].items(),
                                                      key=lambda kv: -severity_rank(kv[0])))
            + f"), {sum(1 for i in incidents if len(i['identities']) > 1)} joining several identities, "
              f"in {time.perf_counter() - t:.1f} s")})
        say(stages[-1]["result"])
        planned = [p for i in incidents for p in i["response"] if p.get("calls")]
        stages.append({"stage": "response (dry-run)", "result": (
            f"{len(planned)} actions planned: " + ", ".join(f"{n} {k}" for k, n in _count(
                p["action"] for p in planned).items()) + "; nothing changed (nhiwatch respond plan INCIDENT)")})
        say(stages[-1]["result"])
    inventory = {
        "by_type": _count(i.nhi_type for i in identities),
        "by_category": _count(i.category for i in identities),
        "by_owasp": _count(o for f in posture if is_alert(f.severity) for o in f.owasp),
        "riskiest": [{"arn": i.arn, "type": i.nhi_type, "category": i.category, "risk": i.risk_score,
                      "level": i.risk_level, "reasons": [r.text for r in i.risk_reasons if r.counted][:3],
                      "findings": [f"{f.severity}: {f.detail}" for f in i.findings[:3]]}
                     for i in nhis[:10]],
        "escalation": escalation_summary(identities),
    }
    with open(out / "findings.jsonl", "wb") as handle:
        for finding in findings:
            handle.write(orjson.dumps(finding.to_dict()) + b"\n")
    report = score(labels, [f.to_dict() for f in findings])
    evaluation = report.as_dict()
    alerts = [f.to_dict() for f in findings if is_alert(f.severity)]
    data = {
        "simulation": sim.__dict__, "ingest": totals, "stats": stats, "labels": labels,
        "stages": stages, "incidents": incidents, "evaluation": evaluation, "inventory": inventory, "findings": alerts,
        "events_per_day": [(d, n) for d, n in per_day],
        "top_identities": [{"principal": p, "principal_type": k, "events": n} for p, k, n in top],
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "report.html").write_text(render(data))
    (out / "summary.json").write_text(json.dumps({k: v for k, v in data.items() if k != "labels"}, indent=1,
                                                 default=str))
    return data


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
