"""`nhiwatch analyze`: ingest, (optionally) load IAM, learn and detect in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from nhiwatch.core.finding import Finding
from nhiwatch.core.severity import is_alert
from nhiwatch.correlate.incidents import correlate
from nhiwatch.detect.findings_store import Suppression, apply_suppressions
from nhiwatch.detect.runner import RunSummary, run
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


def analyze(store: Store, paths: list[str], *, learn_until: datetime | None = None, iam: list[str] | None = None,
            suppressions: list[Suppression] | None = None, workers: int | None = None,
            on_file: Callable | None = None) -> AnalyzeResult:
    from nhiwatch.ingest.pipeline import Ingestor, expand_paths
    from nhiwatch.inventory.persist import rebuild, save_sources
    from nhiwatch.inventory.sources import SourceError, read_source

    problems: list[str] = []
    ingest = None
    if paths:
        summary = Ingestor(store, workers=workers, keep_all_files=False).run(paths, on_file=on_file)
        ingest = summary.as_dict()  # the files with problems in detail; every file's report is in the store
        problems += [f"{f['path']}: {f['error']}" for f in summary.per_file if f["error"]]
        del summary
        store.release_memory()
    inventory = None
    as_of = None
    if iam:
        sources = []
        for path in expand_paths(iam, exclude=store.home):
            try:
                source = read_source(Path(path))
            except SourceError as exc:
                problems.append(str(exc))
                continue
            problems += source.problems
            sources.append(source)
        save_sources(store, sources, ", ".join(iam))
        del sources  # stored now; parsed IAM exports of a big organisation are large
        newest = store.con.execute("SELECT strftime(max(event_time), '%Y-%m-%dT%H:%M:%SZ') FROM events").fetchone()[0]
        as_of = datetime.fromisoformat(newest.replace("Z", "+00:00")) if newest else None
        inventory = len(rebuild(store, as_of))
        store.release_memory()
    detect, findings = run(store, learn_until=learn_until)
    store.release_memory()
    loaded = bool(iam) or (store.has_table("iam_sources") and
                           store.con.execute("SELECT count(*) FROM iam_sources").fetchone()[0] > 0)
    if loaded and any(is_alert(f.severity) for f in findings):
        # Usage and the suggested policies (from IAM loaded now or by `inventory load` before) leave out
        # the events behind the findings just raised.
        rebuild(store, as_of)
        store.release_memory()
    suppressed = apply_suppressions(store, suppressions or [], [f.id for f in findings])
    correlation = correlate(store)
    incident_of = dict(store.con.execute("SELECT id, incident_id FROM findings WHERE incident_id IS NOT NULL "
                                         "AND id IN (SELECT unnest(?))", [[f.id for f in findings]]).fetchall())
    for finding in findings:
        finding.incident_id = incident_of.get(finding.id)
    return AnalyzeResult(ingest, inventory, detect, findings, suppressed, problems, correlation)
