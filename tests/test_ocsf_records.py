"""Every OCSF record nhiwatch writes, for findings of every detector from real events, validates strictly
against the official OCSF schema (tests/ocsf_strict.py) on the version it declares, and says who
called what from where.

The findings: each detector's positive cases (detect/cases.py), through ingestion and detection; and
the golden corpora (tests/golden_findings.py: a simulated organisation and every shared sample), as
`nhiwatch analyze --format ocsf` writes them (each finding with its events) and as the OCSF sink writes
them (the finding alone, as the outbox hands it over)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from golden_findings import LEARN_UNTIL, SHARED, SIM
from ocsf_strict import VERSIONS, strict_errors
from test_detector_cases import run_case
from nhiwatch.detect.detectors import DETECTORS
from nhiwatch.outputs.ocsf import MAX_EVIDENCES, OCSF_VERSION, finding_events, to_ocsf
from nhiwatch.outputs.sinks import OcsfSink
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.store.db import Store

POSITIVE_CASES = [(d, c) for d in DETECTORS for c in d.cases if c.positive and not c.xfail]


@pytest.fixture(scope="module")
def case_records(tmp_path_factory) -> list[tuple[dict, dict]]:
    """(finding, OCSF record) for every finding of every detector's positive cases: each finding as a
    sink writes it (the finding alone) and as `analyze` does (with its events from the store)."""
    pairs = []
    sink = OcsfSink("ocsf", path=Path("unused"))
    for n, (_, case) in enumerate(POSITIVE_CASES):
        home = tmp_path_factory.mktemp("cases") / f"home{n}"
        findings = [f.to_dict() for f in run_case(case, home)]
        with Store(home, read_only=True) as store:
            events = finding_events(store, findings)
        for finding, its_events in zip(findings, events):
            pairs.append((finding, orjson.loads(sink.line(finding))))
            pairs.append((finding, to_ocsf(finding, its_events)))
    return pairs


def test_records_of_every_detector_validate_strictly(case_records):
    errors = {f"{finding['detector']} {finding['id']}": found for finding, record in case_records
              if (found := strict_errors(record))}
    assert not errors, errors
    assert {finding["detector"] for finding, _ in case_records} == {d.id for d in DETECTORS}


def test_every_record_says_who_called_what_from_where(case_records):
    for finding, record in case_records:
        trigger = finding["evidence"]["trigger"]
        assert trigger["event_id"] in finding["event_ids"]
        assert record["actor"]["user"]["uid"] and record["api"]["operation"] == trigger["api"].split(":", 1)[1]
        lead = record["evidences"][0]
        assert lead["data"]["event_uid"] == trigger["event_id"]
        assert record["cloud"]["region"] == trigger["region"]
        pivots = {(o["type_id"], o["value"]) for o in record["observables"]}
        assert (21, record["actor"]["user"]["uid"]) in pivots and (10, finding["identity"]["arn"]) in pivots
        if trigger.get("source_ip_kind") in ("ipv4", "ipv6"):
            assert lead["src_endpoint"]["ip"] == trigger["source_ip"] and (2, trigger["source_ip"]) in pivots
        if trigger.get("access_key_id"):
            assert (19, trigger["access_key_id"]) in pivots
        assert len(record["evidences"]) <= MAX_EVIDENCES


def test_events_add_what_only_the_event_says(case_records):
    with_events = [r for _, r in case_records if "request" in r["evidences"][0]["api"]]
    assert len(with_events) == len(case_records) // 2
    sessions = [r["actor"]["session"] for r in with_events if "session" in r["actor"]]
    assert any("created_time" in s and "is_mfa" in s and s["uid"].startswith("arn:aws:sts::") for s in sessions)


def _analyze(home: Path, out: Path, *args: str) -> list[dict]:
    """What `nhiwatch analyze --format ocsf` writes."""
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "analyze", *args, "--out", str(out), "--format", "ocsf",
                          "--workers", "1", "--quiet", "--home", str(home)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def _sink_records(home: Path) -> list[tuple[dict, dict]]:
    """Every stored finding as the OCSF sink writes it: the outbox hands it the stored finding alone."""
    sink = OcsfSink("ocsf", path=Path("unused"))
    with Store(home, read_only=True) as store:
        rows = store.con.execute("SELECT finding FROM findings ORDER BY id").fetchall()
    findings = [orjson.loads(row[0]) for row in rows]
    return [(finding, orjson.loads(sink.line(finding))) for finding in findings]


@pytest.fixture(scope="module")
def corpus_records(tmp_path_factory) -> dict[str, list[dict]]:
    if not SHARED.is_dir():
        pytest.fail(f"the shared samples are missing: expected {SHARED}")
    root = tmp_path_factory.mktemp("corpora")
    simulate(root / "sim", SimConfig(**SIM), workers=1)
    records: dict[str, list[dict]] = {}
    for corpus, args in (("simulated", [str(root / "sim" / "cloudtrail"), "--learn-until", LEARN_UNTIL.isoformat()]),
                         ("shared", [str(SHARED)])):
        home = root / corpus
        written = _analyze(home, root / f"{corpus}.ocsf.jsonl", *args)
        sunk = [record for _, record in _sink_records(home)]
        assert written and len(written) == len(sunk), corpus
        records[f"{corpus} (analyze)"], records[f"{corpus} (sink)"] = written, sunk
    return records


def test_records_of_the_golden_corpora_validate_strictly(corpus_records):
    golden = json.loads((Path(__file__).parent / "golden" / "findings.json").read_text())
    for source, records in corpus_records.items():
        errors = {r["finding_info"]["uid"]: found for r in records if (found := strict_errors(r))}
        assert not errors, (source, dict(list(errors.items())[:5]))
        corpus = source.split(" ")[0]
        assert {r["finding_info"]["analytic"]["uid"] for r in records} == {row[1] for row in golden[corpus]}, source
    with_events = [r for r in corpus_records["simulated (analyze)"] if "request" in r["evidences"][0]["api"]]
    assert len(with_events) == len(corpus_records["simulated (analyze)"])  # `analyze` shows the events


def test_every_detector_appears_among_validated_records(case_records, corpus_records):
    seen = {f["detector"] for f, _ in case_records} | {
        r["finding_info"]["analytic"]["uid"] for records in corpus_records.values() for r in records}
    assert seen == {d.id for d in DETECTORS}


def test_records_on_other_ocsf_versions(case_records, corpus_records):
    """1.3 to 1.5 accept the records as they are; 1.6 to 1.8 too, with one attribute deprecated (a
    long-term access key as `user.credential_uid`); 1.1 and 1.2 lack two observable types (HTTP
    User-Agent, User Credential ID) and 1.1 `actor.app_name`, which came later."""
    records = [r for _, r in case_records] + [r for rs in corpus_records.values() for r in rs]
    later_than_declared = re.compile(r"observables\W+\d+\W+type_id\W+(16|19)\b|app_name")
    for version in VERSIONS:
        found = [e for record in records for e in strict_errors(record, version, deprecated=version > OCSF_VERSION)]
        if version >= OCSF_VERSION:
            assert found == [], (version, found[:5])
        else:
            unexplained = [e for e in found if not later_than_declared.search(e)]
            assert found and not unexplained, (version, unexplained[:5])
