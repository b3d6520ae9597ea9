"""Every detector's own cases (detect/cases.py): each positive stream raises that detector's finding on
the right identity, each negative stream (a legitimate behaviour) raises nothing from it. The records
go through ingestion and detection as any CloudTrail file would, so a detector whose logic is gone
fails its positive case."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nhiwatch.detect.cases import Case
from nhiwatch.detect.catalog import CATALOG, TACTIC_ORDER
from nhiwatch.detect.detectors import DETECTORS
from nhiwatch.detect.detectors.base import Detector, DetectorMetadataError, validate_detectors
from nhiwatch.core.finding import Finding
from nhiwatch.core.severity import severity_rank
from nhiwatch.detect.runner import DetectSession
from nhiwatch.pipeline import load_inventory, read_iam
from nhiwatch.ingest.pipeline import Ingestor
from nhiwatch.simulate.scenarios import SCENARIOS
from nhiwatch.store.db import Store

CASES = [(detector, case) for detector in DETECTORS for case in detector.cases]


def run_case(case: Case, home: Path) -> list[Finding]:
    """Ingest the case's history and events, learn the history, judge the events."""
    history, events = case.history_records(), case.event_records
    assert max((r["eventTime"] for r in history), default="") < min(e["eventTime"] for e in events), \
        f"{case.name}: the history must end before the judged events start"
    path = home.parent / f"{home.name}.json"
    path.write_text(json.dumps({"Records": history + events}))
    with Store(home) as store:
        summary = Ingestor(store, workers=1).run([str(path)])
        assert summary.accepted == len(history) + len(events), f"{case.name}: records were rejected"
        if case.iam is not None:  # the case's account as IAM describes it: the inventory detection reads
            export = home.parent / f"{home.name}-iam.json"
            export.write_text(json.dumps(case.iam))
            sources, problems = read_iam([export])
            assert not problems, f"{case.name}: its IAM export has problems: {problems}"
            load_inventory(store, sources, "case", None)
        _, findings = DetectSession(store).process(learn_until=case.judged_from)
    return findings


def _params(pairs):
    return [pytest.param(d, c, id=f"{d.id}/{c.name}", marks=[pytest.mark.xfail(reason=c.xfail, strict=True)]
                         if c.xfail else []) for d, c in pairs]


@pytest.mark.parametrize(("detector", "case"), _params(CASES))
def test_detector_case(detector: Detector, case: Case, tmp_path: Path):
    findings = run_case(case, tmp_path / "home")
    floor = severity_rank(case.severity)
    mine = [f for f in findings if f.detector == detector.id and severity_rank(f.severity) >= floor]
    seen = sorted((f.detector, f.severity, f.identity["arn"]) for f in findings)
    if case.positive:
        on_target = [f for f in mine if f.identity["arn"] == case.target]
        assert on_target, f"{case.about}: expected {detector.id} at {case.severity}+ on {case.target}; got {seen}"
    else:
        assert not mine, f"{case.about}: {detector.id} should stay below {case.severity}; got {seen}"


def test_every_detector_has_positive_and_negative_cases():
    missing = [d.id for d in DETECTORS
               if not (any(c.positive for c in d.cases) and any(not c.positive for c in d.cases))]
    assert not missing, f"detectors without a positive and a negative case: {missing}"
    for detector in DETECTORS:
        names = [c.name for c in detector.cases]
        assert len(names) == len(set(names)), detector.id
        for case in detector.cases:
            assert case.about.strip() and case.events, (detector.id, case.name)
            assert case.kind in ("positive", "negative") and case.severity in ("low", "medium", "high", "critical")


def test_detector_metadata_is_checked_when_loaded():
    validate_detectors(DETECTORS)

    class Bad(Detector):
        id = "bad detector"
        title = ""
        tactic = "exfiltratoin"
        mitre = ("T1530", "T15300", "1078.004")
        description = "x"

        def check(self, look):
            return ()

    with pytest.raises(DetectorMetadataError) as error:
        validate_detectors((*DETECTORS, Bad(), DETECTORS[0]))
    text = str(error.value)
    for part in ("'bad detector'", "exfiltratoin", "T15300", "1078.004", "title", f"{DETECTORS[0].id!r} twice"):
        assert part in text, (part, text)


def test_catalogue_techniques_are_attack_ids():
    assert all(entry.tactic in TACTIC_ORDER and all(re.fullmatch(r"T\d{4}(\.\d{3})?", m) for m in entry.mitre)
               for entry in CATALOG.values())


def test_every_scenario_names_known_detectors_that_must_catch_it():
    ids = {d.id for d in DETECTORS}
    for scenario in SCENARIOS:
        assert scenario.must_catch, f"{scenario.id} names no detector that must catch it"
        assert set(scenario.must_catch) <= ids, (scenario.id, set(scenario.must_catch) - ids)
