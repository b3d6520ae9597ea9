"""Score detector findings against the simulator's labels.

An attack scenario counts as caught only by a finding of severity medium or above on the
compromised identity itself: a low-severity hint, or an alert on the wrong principal,
would not have led a responder to the right place.

Noise is measured per 1,000 NHI-days (one non-human identity active on one UTC day): that is
what a team watching workloads pays for. Labels carry every principal's active days, not the
NHIs' alone, so the NHI-days come from the store (`nhi_days_by_day`) and are passed to `score`.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from rich.table import Table

from nhiwatch.core.severity import Severity, severity_rank
from nhiwatch.core.times import iso_z
from nhiwatch.ingest.timestamps import BadTimestamp, parse_event_time

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Findings that trail the scenario's last event still count: detectors may batch or lag.
MATCH_GRACE = timedelta(hours=1)

REPLAY_PREFIX = "replay:"  # scenario ids of Stratus detonations replayed as they are
# Inventory types that are people whatever their category says (nhiwatch.inventory.classify).
HUMAN_NHI_TYPES = ("root", "console-user", "saml-role")
TOP_IDENTITIES = 10
FALSE_ALERT_SAMPLES = 20


def _norm_severity(sev: object) -> str:
    """The severity's name on core's scale however it is written ("High", " medium "); other text is
    kept, lowered, so a problem can name it."""
    if sev is None:
        return ""
    try:
        return Severity.of(sev).value
    except ValueError:
        return str(sev).strip().lower()


def _rank(sev: object) -> int | None:
    """The rank of `sev` on core's scale (info 0 .. critical 4), however it is written; None when it is
    not a severity (labels and imported findings are not trusted to use the scale)."""
    try:
        return severity_rank(sev)  # type: ignore[arg-type]
    except ValueError:
        return None


def severity_at_least(sev: str, floor: str = "medium") -> bool:
    """True when `sev` ranks at or above `floor`; unknown severities never qualify."""
    floor_rank = severity_rank(floor)  # a bad floor is a caller bug: raise
    rank = _rank(sev)
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
    kind: str = "library"  # "library" (scenarios.py SCENARIOS) or "replay" (a Stratus detonation as it is)
    best_severity: str | None = None  # highest severity of any finding that matched, low and info included


@dataclass
class DetectorNoise:
    detector: str
    false_alerts: int
    day_one: int
    per_1000_nhi_days: float | None


@dataclass
class ChangeKindNoise:
    """What the detectors made of one kind of legitimate change (findings sharing its events)."""
    kind: str
    changes: int
    events: int
    findings_medium_plus: int
    findings_below_medium: int
    false_alerts: int
    explained: int  # findings (any severity) whose evidence carries expected_change


@dataclass
class IdentityNoise:
    identity: str
    false_alerts: int
    detectors: list[str]


@dataclass
class FalseAlert:
    id: str
    detector: str
    severity: str
    identity: str
    time: str | None
    day_one: bool
    change_kinds: list[str]
    explanation: str


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
    # Recall by origin: the library's scenarios and the replayed Stratus detonations.
    recall_library: float | None = None
    recall_replays: float | None = None
    scenarios_library: int = 0
    scenarios_replays: int = 0
    missed: list[dict] = field(default_factory=list)  # id, kind, best_severity of what did fire
    # Noise per non-human identity active per UTC day (None when the NHI-days were not given).
    nhi_days: int | None = None
    false_alerts_per_1000_nhi_days: float | None = None
    first_day: str | None = None
    day_one_nhis: int | None = None
    day_one_false_alerts: int = 0
    day_one_false_alerts_per_1000_nhi_days: float | None = None
    after_day_one_false_alerts: int = 0
    after_day_one_false_alerts_per_1000_nhi_days: float | None = None
    false_alerts_by_detector: list[DetectorNoise] = field(default_factory=list)
    false_alerts_by_change_kind: list[ChangeKindNoise] = field(default_factory=list)
    false_alerts_by_identity: list[IdentityNoise] = field(default_factory=list)  # the top 10
    false_alert_samples: list[FalseAlert] = field(default_factory=list)  # the most severe first
    low_noise_findings: int = 0  # below medium and not on an attack
    low_noise_per_1000_nhi_days: float | None = None
    change_findings: int = 0  # any severity, not on an attack, sharing events with a legitimate change
    change_findings_explained: int = 0
    explained_share: float | None = None

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


def nhi_days_by_day(con) -> dict[str, int]:
    """Non-human identities active on each UTC day ('YYYY-MM-DD' -> count) in a store's DuckDB connection.

    Distinct (principal, day) over the events whose principal is a non-human identity of the inventory
    table `identities`: category 'non-human', or a type that is not a person's (root, console user, SAML
    role) unless the category says human. Principals missing from the inventory are not counted.
    """
    human_types = ", ".join(f"'{t}'" for t in HUMAN_NHI_TYPES)
    rows = con.execute(f"""
        SELECT strftime(timezone('UTC', e.event_time), '%Y-%m-%d') AS day, count(DISTINCT e.principal)
        FROM events e JOIN identities i ON i.arn = e.principal
        WHERE i.category = 'non-human'
           OR (coalesce(i.category, '') <> 'human' AND i.nhi_type IS NOT NULL AND i.nhi_type NOT IN ({human_types}))
        GROUP BY day ORDER BY day""").fetchall()
    return {str(day): int(count) for day, count in rows}


def _per_1000(count: int, days: int | None) -> float | None:
    return count * 1000 / days if days else None


def _utc_day(when: datetime) -> str:
    return when.astimezone(timezone.utc).date().isoformat()


def _first_day(labels: dict, nhi_days: Mapping[str, int] | None) -> str | None:
    """The first UTC day of the data: the labels' start, else the first day with NHI activity."""
    start = _parse_time(labels.get("start"))
    if start is not None:
        return _utc_day(start)
    return min(nhi_days) if nhi_days else None


def _scenario_kind(sid: str) -> str:
    return "replay" if sid.startswith(REPLAY_PREFIX) else "library"


def _best(severities: list[str]) -> str | None:
    known = [s for s in severities if _rank(s) is not None]
    return max(known, key=severity_rank) if known else None


def _recall(results: list[ScenarioResult]) -> float | None:
    return sum(r.detected for r in results) / len(results) if results else None


def score(labels: dict, findings: list[dict], *, nhi_days: Mapping[str, int] | None = None) -> EvalReport:
    """Match findings (medium and above) to labelled scenarios and compute the metrics.

    `nhi_days` maps each UTC day ('YYYY-MM-DD') to the non-human identities active on it (see
    `nhi_days_by_day`); without it the per-NHI-day rates are None.
    """
    problems: list[str] = []
    scenarios = _load_scenarios(labels, problems)
    attack_ids = set().union(*(s.event_ids for s in scenarios))
    kinds_of_event: dict[str, set[str]] = {}
    kind_events: dict[str, set[str]] = {}
    kind_changes: Counter[str] = Counter()
    for change in labels.get("changes") or []:
        kind = str(change.get("kind") or "unknown")
        kind_changes[kind] += 1
        for eid in _id_set(change.get("event_ids")):
            kinds_of_event.setdefault(eid, set()).add(kind)
            kind_events.setdefault(kind, set()).add(eid)
    change_ids = set(kinds_of_event)
    first_day = _first_day(labels, nhi_days)

    matched: dict[str, list[tuple[dict, datetime | None]]] = {s.id: [] for s in scenarios}
    any_severity: dict[str, list[str]] = {s.id: [] for s in scenarios}  # what fired on it, low and info included
    total = counted = below = true_pos = false_alerts = wrong_identity = on_change = 0
    low_noise = change_findings = explained = 0
    kind_medium: Counter[str] = Counter()
    kind_below: Counter[str] = Counter()
    kind_false: Counter[str] = Counter()
    kind_explained: Counter[str] = Counter()
    false_list: list[tuple[dict, str, datetime | None, str, list[str]]] = []

    for n, finding in enumerate(findings):
        if not isinstance(finding, dict):
            problems.append(f"finding #{n}: not an object, ignored")
            continue
        total += 1
        fid = str(finding.get("finding_id") or finding.get("id") or f"#{n}")
        sev = _norm_severity(finding.get("severity"))
        if _rank(sev) is None:
            problems.append(f"finding {fid}: unknown severity {finding.get('severity')!r}, treated as below medium")
        alert = severity_at_least(sev)
        when = _parse_time(finding.get("time") or finding.get("first_seen"))
        ids = _id_set(finding.get("event_ids"))
        principal = finding.get("principal") or (finding.get("identity") or {}).get("arn")
        hits = [s for s in scenarios if _matches(s, principal, when, ids)]
        for s in hits:
            any_severity[s.id].append(sev)
        on_attack = bool(hits) or bool(ids & attack_ids)
        kinds = sorted(set().union(*(kinds_of_event[i] for i in ids & change_ids))) if ids & change_ids else []
        if kinds and not on_attack:
            evidence = finding.get("evidence")
            is_explained = isinstance(evidence, dict) and bool(evidence.get("expected_change"))
            change_findings += 1
            explained += is_explained
            for kind in kinds:
                (kind_medium if alert else kind_below)[kind] += 1
                kind_explained[kind] += is_explained

        if not alert:
            below += 1  # low/info are context, not alerts: they never count for or against recall
            low_noise += not on_attack
            continue
        counted += 1
        if when is None:
            problems.append(f"finding {fid}: bad or missing time, only event ids can match it")
        for s in hits:
            matched[s.id].append((finding, when))
        if hits:
            true_pos += 1
        elif ids & attack_ids:
            wrong_identity += 1  # saw the attack's events but blamed another identity
        else:
            false_alerts += 1
            false_list.append((finding, str(principal or "?"), when, sev, kinds))
            if kinds:
                on_change += 1
                for kind in kinds:
                    kind_false[kind] += 1

    results = [_scenario_result(s, matched[s.id], any_severity[s.id]) for s in scenarios]
    delays = [r.time_to_first_alert_seconds for r in results if r.time_to_first_alert_seconds is not None]
    identity_days = labels.get("identity_days") or None
    library = [r for r in results if r.kind == "library"]
    replays = [r for r in results if r.kind == "replay"]

    total_nhi_days = sum(nhi_days.values()) if nhi_days is not None else None
    day_one_nhis = nhi_days.get(first_day, 0) if nhi_days is not None and first_day else None
    after_nhi_days = total_nhi_days - day_one_nhis if total_nhi_days is not None and day_one_nhis is not None else None
    on_day_one = [first_day is not None and when is not None and _utc_day(when) == first_day
                  for _, _, when, _, _ in false_list]
    day_one = sum(on_day_one)

    by_detector: Counter[str] = Counter(str(f.get("detector", "?")) for f, *_ in false_list)
    by_detector_day_one: Counter[str] = Counter(
        str(f.get("detector", "?")) for (f, *_), first in zip(false_list, on_day_one) if first)
    by_identity: Counter[str] = Counter(principal for _, principal, *_ in false_list)
    detectors_of: dict[str, set[str]] = {}
    for f, principal, *_ in false_list:
        detectors_of.setdefault(principal, set()).add(str(f.get("detector", "?")))
    ranked = sorted(zip(false_list, on_day_one), key=lambda item: (
        -(_rank(item[0][3]) or 0), -(item[0][0].get("score") or 0), item[0][2] or _EPOCH))

    return EvalReport(
        scenarios=results,
        recall=_recall(results),
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
        recall_library=_recall(library),
        recall_replays=_recall(replays),
        scenarios_library=len(library),
        scenarios_replays=len(replays),
        missed=[{"id": r.id, "kind": r.kind, "principal": r.principal, "best_severity": r.best_severity}
                for r in results if not r.detected],
        nhi_days=total_nhi_days,
        false_alerts_per_1000_nhi_days=_per_1000(false_alerts, total_nhi_days),
        first_day=first_day,
        day_one_nhis=day_one_nhis,
        day_one_false_alerts=day_one,
        day_one_false_alerts_per_1000_nhi_days=_per_1000(day_one, day_one_nhis),
        after_day_one_false_alerts=false_alerts - day_one,
        after_day_one_false_alerts_per_1000_nhi_days=_per_1000(false_alerts - day_one, after_nhi_days),
        false_alerts_by_detector=[
            DetectorNoise(d, n, by_detector_day_one[d], _per_1000(n, total_nhi_days))
            for d, n in sorted(by_detector.items(), key=lambda kv: (-kv[1], kv[0]))],
        false_alerts_by_change_kind=[
            ChangeKindNoise(k, kind_changes[k], len(kind_events.get(k, ())), kind_medium[k], kind_below[k],
                            kind_false[k], kind_explained[k])
            for k in sorted(kind_changes, key=lambda k: (-kind_false[k], -kind_medium[k], -kind_below[k], k))],
        false_alerts_by_identity=[
            IdentityNoise(i, n, sorted(detectors_of[i]))
            for i, n in sorted(by_identity.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_IDENTITIES]],
        false_alert_samples=[
            FalseAlert(str(f.get("finding_id") or f.get("id") or "?"), str(f.get("detector", "?")), sev, principal,
                       iso_z(when) if when else None, first, kinds,
                       str(f.get("explanation") or "")[:200])
            for (f, principal, when, sev, kinds), first in ranked[:FALSE_ALERT_SAMPLES]],
        low_noise_findings=low_noise,
        low_noise_per_1000_nhi_days=_per_1000(low_noise, total_nhi_days),
        change_findings=change_findings,
        change_findings_explained=explained,
        explained_share=explained / change_findings if change_findings else None,
    )


def _scenario_result(s: _Scenario, hits: list[tuple[dict, datetime | None]],
                     any_severity: list[str] | None = None) -> ScenarioResult:
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
        max_severity=max(severities, key=severity_rank) if severities else None,
        kind=_scenario_kind(s.id),
        best_severity=_best(severities + list(any_severity or [])),
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
    table.add_column("Best severity")
    for r in report.scenarios:
        table.add_row(r.id, "[green]yes[/]" if r.detected else "[red]no[/]", str(r.findings),
                      format_duration(r.time_to_first_alert_seconds), ", ".join(r.detectors) or "—",
                      r.best_severity or "—")
    return table


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def render_noise_tables(report: EvalReport) -> list[Table]:
    """False alerts by detector, by legitimate-change kind and by identity (only the non-empty ones)."""
    tables = []
    if report.false_alerts_by_detector:
        table = Table("detector", "false alerts", "on day one", "per 1,000 NHI-days", title="False alerts by detector")
        for d in report.false_alerts_by_detector:
            table.add_row(d.detector, str(d.false_alerts), str(d.day_one), _rate(d.per_1000_nhi_days))
        tables.append(table)
    if report.false_alerts_by_change_kind:
        table = Table("change kind", "changes", "events", "false alerts", "medium+", "low/info", "explained",
                      title="Legitimate change: findings on its events")
        for k in report.false_alerts_by_change_kind:
            table.add_row(k.kind, str(k.changes), str(k.events), str(k.false_alerts), str(k.findings_medium_plus),
                          str(k.findings_below_medium), str(k.explained))
        tables.append(table)
    if report.false_alerts_by_identity:
        table = Table("identity", "false alerts", "detectors", title="Identities with the most false alerts")
        for i in report.false_alerts_by_identity:
            table.add_row(i.identity, str(i.false_alerts), ", ".join(i.detectors))
        tables.append(table)
    return tables


def summary_lines(report: EvalReport) -> list[str]:
    detected = sum(r.detected for r in report.scenarios)
    recall = "n/a (no scenarios)" if report.recall is None else f"{report.recall:.1%}"
    precision = "n/a (no findings >= medium)" if report.precision is None else f"{report.precision:.1%}"
    rate = report.false_alerts_per_1000_identity_days
    rate_text = "n/a (identity-days unknown)" if rate is None else f"{rate:.2f}"
    mean, median = report.mean_time_to_alert_seconds, report.median_time_to_alert_seconds
    lines = [
        f"Recall: {recall} ({detected}/{len(report.scenarios)} scenarios detected)",
    ]
    if report.scenarios_replays:
        library_hits = sum(r.detected for r in report.scenarios if r.kind == "library")
        replay_hits = sum(r.detected for r in report.scenarios if r.kind == "replay")
        lines.append(f"Recall by origin: library {_share(report.recall_library)} ({library_hits}/"
                     f"{report.scenarios_library}), Stratus replays {_share(report.recall_replays)} "
                     f"({replay_hits}/{report.scenarios_replays})")
    if report.missed:
        lines.append("Missed: " + ", ".join(f"{m['id']} (best {m['best_severity'] or 'nothing'})"
                                            for m in report.missed))
    lines += [
        f"Precision: {precision} ({report.true_positive_findings}/{report.findings_counted} findings >= medium"
        f" matched an attack; {report.wrong_identity} on the wrong identity)",
        f"False alerts per 1,000 identity-days: {rate_text} ({report.false_alerts} false alerts,"
        f" {report.false_alerts_on_change} on legitimate changes)",
    ]
    if report.nhi_days is not None:
        lines += [
            f"False alerts per 1,000 NHI-days: {_rate(report.false_alerts_per_1000_nhi_days)} "
            f"({report.false_alerts} over {report.nhi_days:,} NHI-days); day one ({report.first_day}): "
            f"{_rate(report.day_one_false_alerts_per_1000_nhi_days)} ({report.day_one_false_alerts} over "
            f"{report.day_one_nhis} active NHIs); after day one: "
            f"{_rate(report.after_day_one_false_alerts_per_1000_nhi_days)} ({report.after_day_one_false_alerts})",
            f"Low-severity noise per 1,000 NHI-days: {_rate(report.low_noise_per_1000_nhi_days)} "
            f"({report.low_noise_findings} findings below medium not on an attack)",
        ]
    lines += [
        f"Explained share: {_share(report.explained_share)} ({report.change_findings_explained}/"
        f"{report.change_findings} findings on legitimate-change events carry expected_change)",
        f"Mean time to alert: {format_duration(mean)} (median {format_duration(median)})",
    ]
    return lines
