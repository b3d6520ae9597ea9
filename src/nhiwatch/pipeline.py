"""The pipeline, wired once: ingest → inventory → learn and detect → correlate. `analyze`, `demo`,
`eval --simulate` and `inventory load` run these steps; no stage calls a later one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from nhiwatch.core.finding import Finding
from nhiwatch.core.severity import is_alert
from nhiwatch.correlate.incidents import correlate
from nhiwatch.detect.findings_store import Suppression, apply_suppressions
from nhiwatch.detect.runner import RunSummary, run as run_detection
from nhiwatch.ingest.pipeline import Ingestor, expand_paths
from nhiwatch.inventory.persist import rebuild, save_sources
from nhiwatch.inventory.sources import SourceFile, SourceError, read_source
from nhiwatch.store.db import Store


@dataclass
class AnalyzeResult:
    ingest: dict | None
    inventory: int | None
    detect: RunSummary
    findings: list[Finding]
    suppressed: int = 0
    problems: list[str] = field(default_factory=list)
    correlation: dict = field(default_factory=dict)


def ingest(store: Store, paths: list[str], *, workers: int | None = None,
           on_file: Callable | None = None) -> tuple[dict, list[str]]:
    """Ingest CloudTrail files into the store: (summary, one problem line per damaged file)."""
    summary = Ingestor(store, workers=workers, keep_all_files=False).run(paths, on_file=on_file)
    report = summary.as_dict()  # the files with problems in detail; every file's report is in the store
    problems = [f"{f['path']}: {f['error']}" for f in summary.per_file if f["error"]]
    del summary
    store.release_memory()
    return report, problems


def read_iam(paths: Iterable[str | Path]) -> tuple[list[SourceFile], list[str]]:
    """Parse IAM exports (authorization details, credential reports): (sources, problems)."""
    sources: list[SourceFile] = []
    problems: list[str] = []
    for path in paths:
        try:
            source = read_source(Path(path))
        except SourceError as exc:
            problems.append(str(exc))
            continue
        problems += source.problems
        sources.append(source)
    return sources, problems


def load_inventory(store: Store, sources: list[SourceFile], origin: str, as_of: datetime | None) -> tuple[int, list]:
    """Store IAM exports and rebuild the inventory from them and the events: (exports stored, identities)."""
    stored = save_sources(store, sources, origin)
    identities = rebuild(store, as_of)
    store.release_memory()
    return stored, identities


def newest_event(store: Store) -> datetime | None:
    newest = store.con.execute("SELECT strftime(max(event_time), '%Y-%m-%dT%H:%M:%SZ') FROM events").fetchone()[0]
    return datetime.fromisoformat(newest.replace("Z", "+00:00")) if newest else None


def iam_loaded(store: Store) -> bool:
    return store.has_table("iam_sources") and store.con.execute("SELECT count(*) FROM iam_sources").fetchone()[0] > 0


def detect(store: Store, *, learn_until: datetime | None = None, as_of: datetime | None = None,
           iam: bool = False) -> tuple[RunSummary, list[Finding]]:
    """Learn and judge every identity's new events; then, when IAM is loaded, rebuild usage and the
    suggested policies without the events behind the alerts just raised."""
    summary, findings = run_detection(store, learn_until=learn_until)
    store.release_memory()
    if (iam or iam_loaded(store)) and any(is_alert(f.severity) for f in findings):
        rebuild(store, as_of)
        store.release_memory()
    return summary, findings


def link_incidents(store: Store, findings: list[Finding]) -> dict:
    """Correlate the store's findings into incidents and note each new finding's incident."""
    correlation = correlate(store)
    incident_of = dict(store.con.execute("SELECT id, incident_id FROM findings WHERE incident_id IS NOT NULL "
                                         "AND id IN (SELECT unnest(?))", [[f.id for f in findings]]).fetchall())
    for finding in findings:
        finding.incident_id = incident_of.get(finding.id)
    return correlation


def analyze(store: Store, paths: list[str], *, learn_until: datetime | None = None, iam: list[str] | None = None,
            suppressions: list[Suppression] | None = None, workers: int | None = None,
            on_file: Callable | None = None) -> AnalyzeResult:
    """The whole pipeline over new files (and IAM exports): what `nhiwatch analyze` runs."""
    problems: list[str] = []
    ingested = None
    if paths:
        ingested, problems = ingest(store, paths, workers=workers, on_file=on_file)
    inventory = None
    as_of = None
    if iam:
        sources, iam_problems = read_iam(expand_paths(iam, exclude=store.home))
        problems += iam_problems
        as_of = newest_event(store)
        _, identities = load_inventory(store, sources, ", ".join(iam), as_of)
        del sources  # stored now; parsed IAM exports of a big organisation are large
        inventory = len(identities)
    summary, findings = detect(store, learn_until=learn_until, as_of=as_of, iam=bool(iam))
    suppressed = apply_suppressions(store, suppressions or [], [f.id for f in findings])
    correlation = link_incidents(store, findings)
    return AnalyzeResult(ingested, inventory, summary, findings, suppressed, problems, correlation)
