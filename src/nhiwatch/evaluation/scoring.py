"""Score detector findings against the simulator's labels.

An attack scenario counts as caught only by a finding of severity medium or above on the
compromised identity itself: a low-severity hint, or an alert on the wrong principal,
would not have led a responder to the right place.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.table import Table

from nhiwatch.ingest.timestamps import BadTimestamp, parse_event_time

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

SEVERITY_ORDER: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

# Findings that trail the scenario's last event still count: detectors may batch or lag.
MATCH_GRACE = timedelta(hours=1)


def _norm_severity(sev: object) -> str:
    return str(sev).strip().lower() if sev is not None else ""


def severity_at_least(sev: str, floor: str = "medium") -> bool:
    """True when `sev` ranks at or above `floor`; unknown severities never qualify."""
    floor_rank = SEVERITY_ORDER[_norm_severity(floor)]  # a bad floor is a caller bug: raise
    rank = SEVERITY_ORDER.get(_norm_severity(sev))
    return rank is not None and rank >= floor_rank


def _parse_time(value: object) -> datetime | None:
    """Times as ingestion reads them (ISO with Z or an offset, bare = UTC); None when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        micros, _ = parse_event_time(value)
    except BadTimestamp:
        return None
    return _EPOCH + timedelta(microseconds=micros)


def _id_set(value: object) -> set[str]:
    # Tolerate a missing list, or a single id written as a bare string.
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    return {str(v) for v in value}


@dataclass
class ScenarioResult:
    id: str
    title: str
    principal: str
    detected: bool
    findings: int
    detectors: list[str]
    time_to_first_alert_seconds: float | None
    max_severity: str | None


@dataclass
class EvalReport:
    scenarios: list[ScenarioResult]
    recall: float | None
    precision: float | None
    findings_total: int
    findings_counted: int
    findings_below_medium: int
    true_positive_findings: int
    false_alerts: int
    wrong_identity: int
    false_alerts_on_change: int
    identity_days: int | None
    false_alerts_per_1000_identity_days: float | None
    mean_time_to_alert_seconds: float | None
    median_time_to_alert_seconds: float | None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        # asdict keeps field declaration order, so the JSON layout is stable.
        return asdict(self)


@dataclass
class _Scenario:
    """A labelled scenario with its times parsed once."""
    id: str
    title: str
    principal: str | None
    start: datetime | None
    end: datetime | None
    event_ids: set[str]


def _load_scenarios(labels: dict, problems: list[str]) -> list[_Scenario]:
    scenarios = []
    for i, raw in enumerate(labels.get("scenarios") or []):
        sid = str(raw.get("id", f"#{i}"))
        start, end = _parse_time(raw.get("start")), _parse_time(raw.get("end"))
        if start is None or end is None:
            problems.append(f"scenario {sid}: bad or missing start/end, only event ids can match it")
        if not raw.get("principal"):
            problems.append(f"scenario {sid}: no principal, nothing can detect it")
        scenarios.append(_Scenario(sid, str(raw.get("title", "")), raw.get("principal"),
                                   start, end, _id_set(raw.get("event_ids"))))
    return scenarios


def _matches(scenario: _Scenario, principal: object, when: datetime | None, ids: set[str]) -> bool:
    if not scenario.principal or principal != scenario.principal:
        return False
    if ids & scenario.event_ids:
        return True
    if when is None or scenario.start is None or scenario.end is None:
        return False
    return scenario.start <= when <= scenario.end + MATCH_GRACE


def score(labels: dict, findings: list[dict]) -> EvalReport:
    """Match findings (medium and above) to labelled scenarios and compute the metrics."""
    problems: list[str] = []
    scenarios = _load_scenarios(labels, problems)
    attack_ids = set().union(*(s.event_ids for s in scenarios))
    change_ids = set().union(*(_id_set(c.get("event_ids")) for c in labels.get("changes") or []))

    matched: dict[str, list[tuple[dict, datetime | None]]] = {s.id: [] for s in scenarios}
    total = counted = below = true_pos = false_alerts = wrong_identity = on_change = 0

    for n, finding in enumerate(findings):
        if not isinstance(finding, dict):
            problems.append(f"finding #{n}: not an object, ignored")
            continue
        total += 1
        fid = str(finding.get("finding_id") or finding.get("id") or f"#{n}")
        sev = _norm_severity(finding.get("severity"))
        if sev not in SEVERITY_ORDER:
            problems.append(f"finding {fid}: unknown severity {finding.get('severity')!r}, treated as below medium")
        if not severity_at_least(sev):
            below += 1  # low/info are context, not alerts: they never count for or against
            continue
        counted += 1
        when = _parse_time(finding.get("time") or finding.get("first_seen"))
        if when is None:
            problems.append(f"finding {fid}: bad or missing time, only event ids can match it")
        ids = _id_set(finding.get("event_ids"))

        principal = finding.get("principal") or (finding.get("identity") or {}).get("arn")
        hits = [s for s in scenarios if _matches(s, principal, when, ids)]
        for s in hits:
            matched[s.id].append((finding, when))
        if hits:
            true_pos += 1
        elif ids & attack_ids:
            wrong_identity += 1  # saw the attack's events but blamed another identity
        else:
            false_alerts += 1
            if ids & change_ids:
                on_change += 1

    results = [_scenario_result(s, matched[s.id]) for s in scenarios]
    delays = [r.time_to_first_alert_seconds for r in results if r.time_to_first_alert_seconds is not None]
    identity_days = labels.get("identity_days") or None
    return EvalReport(
        scenarios=results,
        recall=sum(r.detected for r in results) / len(results) if results else None,
        precision=true_pos / counted if counted else None,
        findings_total=total,
        findings_counted=counted,
        findings_below_medium=below,
        true_positive_findings=true_pos,
        false_alerts=false_alerts,
        wrong_identity=wrong_identity,
        false_alerts_on_change=on_change,
        identity_days=identity_days,
        false_alerts_per_1000_identity_days=false_alerts * 1000 / identity_days if identity_days else None,
        mean_time_to_alert_seconds=statistics.fmean(delays) if delays else None,
        median_time_to_alert_seconds=statistics.median(delays) if delays else None,
        problems=problems,
    )


def _scenario_result(s: _Scenario, hits: list[tuple[dict, datetime | None]]) -> ScenarioResult:
    times = [when for _, when in hits if when is not None]
    delay = None
    if times and s.start is not None:
        # Floored at 0: a finding may carry an earlier timestamp yet share the attack's events.
        delay = max(0.0, (min(times) - s.start).total_seconds())
    severities = [_norm_severity(f.get("severity")) for f, _ in hits]
    return ScenarioResult(
        id=s.id,
        title=s.title,
        principal=s.principal or "",
        detected=bool(hits),
        findings=len(hits),
        detectors=sorted({str(f.get("detector", "?")) for f, _ in hits}),
        time_to_first_alert_seconds=delay,
        max_severity=max(severities, key=SEVERITY_ORDER.__getitem__) if severities else None,
    )


def load_findings(path: str | Path) -> tuple[list[dict], list[str]]:
    """Read findings from JSON lines or a JSON array; bad records become problems, not crashes."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    problems: list[str] = []
    records: list[tuple[str, object]] = []  # (where, parsed record) so problems can point at it
    if text.lstrip().startswith("["):
        try:
            array = json.loads(text)
        except json.JSONDecodeError as exc:
            return [], [f"{path}: not valid JSON: {exc}"]
        records = [(f"item {n}", item) for n, item in enumerate(array, 1)]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((f"line {n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(f"{path}: line {n}: malformed JSON: {exc}")
    findings = []
    for where, record in records:
        if isinstance(record, dict):
            findings.append(record)
        else:
            problems.append(f"{path}: {where}: not a JSON object")
    return findings, problems


def format_duration(seconds: float | None) -> str:
    """Human time to alert: "45s", "3m 12s", "2h 5m"; an em dash when not detected."""
    if seconds is None:
        return "—"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def render_table(report: EvalReport) -> Table:
    table = Table(title="Detection by scenario")
    table.add_column("Scenario")
    table.add_column("Detected")
    table.add_column("Findings", justify="right")
    table.add_column("First alert", justify="right")
    table.add_column("Detectors")
    for r in report.scenarios:
        table.add_row(r.id, "[green]yes[/]" if r.detected else "[red]no[/]", str(r.findings),
                      format_duration(r.time_to_first_alert_seconds), ", ".join(r.detectors) or "—")
    return table


def summary_lines(report: EvalReport) -> list[str]:
    detected = sum(r.detected for r in report.scenarios)
    recall = "n/a (no scenarios)" if report.recall is None else f"{report.recall:.1%}"
    precision = "n/a (no findings >= medium)" if report.precision is None else f"{report.precision:.1%}"
    rate = report.false_alerts_per_1000_identity_days
    rate_text = "n/a (identity-days unknown)" if rate is None else f"{rate:.2f}"
    mean, median = report.mean_time_to_alert_seconds, report.median_time_to_alert_seconds
    return [
        f"Recall: {recall} ({detected}/{len(report.scenarios)} scenarios detected)",
        f"Precision: {precision} ({report.true_positive_findings}/{report.findings_counted} findings >= medium"
        f" matched an attack; {report.wrong_identity} on the wrong identity)",
        f"False alerts per 1,000 identity-days: {rate_text} ({report.false_alerts} false alerts,"
        f" {report.false_alerts_on_change} on legitimate changes)",
        f"Mean time to alert: {format_duration(mean)} (median {format_duration(median)})",
    ]
