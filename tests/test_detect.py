"""Detection on real events: the simulator's attack library and every Stratus detonation, replayed
into a simulated organisation with its own legitimate change, scored as a person would see it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import CLOUDTRAIL, REPO
from nhiwatch.pipeline import analyze
from nhiwatch.detect.engine import Context, step
from nhiwatch.detect.detectors.base import IdentityInfo
from nhiwatch.core.finding import FINDING_SCHEMA
from nhiwatch.detect.profile import Ev, Profile
from nhiwatch.evaluation.scoring import score
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.simulate.scenarios import SCENARIOS, detonation_techniques
from nhiwatch.store.db import Store

START = "2026-03-01"


def _run(tmp: Path, config: SimConfig, learn_days: int | None) -> tuple[dict, list[dict], Path]:
    """Simulate and analyze; learn_days=None is a cold start (a new user's first run: no --learn-until)."""
    data, home = tmp / "data", tmp / "home"
    simulate(data, config)
    labels = json.loads((data / "labels.json").read_text())
    until = None if learn_days is None else (datetime.fromisoformat(START).replace(tzinfo=timezone.utc)
                                             + timedelta(days=learn_days))
    with Store(home) as store:
        result = analyze(store, [str(data / "cloudtrail")], iam=[str(data / "iam")], learn_until=until)
    return labels, [f.to_dict() for f in result.findings], home


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Every scenario of the library in a 3-account organisation over 30 days, with the simulator's
    legitimate behaviour library, from a cold start."""
    tmp = tmp_path_factory.mktemp("library")
    return _run(tmp, SimConfig(seed=11, accounts=3, days=30, scale=1.0, start=START), learn_days=None)


def test_every_library_attack_is_caught_without_false_alerts(library):
    labels, findings, _ = library
    report = score(labels, findings)
    missed = [s.id for s in report.scenarios if not s.detected]
    assert len(report.scenarios) == len(SCENARIOS) and not missed, f"missed {missed}"
    # ... and by a detector whose job it is, so a detector going silent fails here even when others cover for it
    named = {s.id: s.must_catch for s in SCENARIOS}
    elsewhere = {s.id: s.detectors for s in report.scenarios if not set(s.detectors) & set(named[s.id])}
    assert not elsewhere, f"caught only by detectors the scenario does not name: {elsewhere}"
    assert report.median_time_to_alert_seconds == 0  # the first malicious event raises it in batch mode
    assert report.false_alerts_per_1000_identity_days <= 1.0, report.false_alerts
    assert report.findings_below_medium > 0  # context exists, it just does not page anyone


def test_findings_follow_the_contract(library):
    jsonschema = pytest.importorskip("jsonschema")
    _, findings, _ = library
    validator = jsonschema.Draft202012Validator(FINDING_SCHEMA)
    for finding in findings:
        errors = list(validator.iter_errors(finding))
        assert not errors, (finding["id"], errors[0].message)
    assert (REPO / "docs" / "finding.schema.json").read_text() == json.dumps(FINDING_SCHEMA, indent=2) + "\n"
    explained = [f for f in findings if f["severity"] in ("medium", "high", "critical")]
    silent = [(f["detector"], f["explanation"]) for f in explained
              if not ("normally" in f["explanation"].lower() or "never" in f["explanation"]
                      or "before" in f["explanation"].lower())]
    assert not silent, f"every alert says what normal is: {silent[:3]}"


def test_rerun_gives_no_duplicates_and_state_is_bounded(library):
    _, findings, home = library
    with Store(home) as store:
        again = analyze(store, [])
        assert again.findings == [] and again.detect.events == 0
        stored = store.con.execute("SELECT count(*), count(DISTINCT id) FROM findings").fetchone()
        assert stored == (len(findings), len(findings))
        events, profiles, state_bytes = store.con.execute(
            "SELECT (SELECT count(*) FROM events), count(*), sum(length(state)) FROM profiles").fetchone()
    # state grows with identities x distinct values, not with events: well under a byte per event here
    assert state_bytes < events * 2, (state_bytes, events)
    assert profiles < 300


# The Stratus detonations replayed into an organisation: tests/test_detect_stratus.py (a module of its
# own, so that a parallel run can take it beside this module's library).


# -- single detectors on hand-built streams -------------------------------------------------------

def _ev(t_minutes: float, api: str, **kw) -> Ev:
    base = dict(identity="arn:aws:iam::111122223333:role/worker", inbound=False,
                t=int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp() * 1e6 + t_minutes * 60e6),
                uid=f"{t_minutes}-{api}", event_id=f"e-{t_minutes}-{api}", api=api, name=api.split(":", 1)[1],
                region="us-east-1", account="111122223333", ip="10.0.1.5", ip_kind="ipv4", vpce=None,
                agent="Boto3/1.34 md/Botocore#1.34 exec-env/AWS_ECS_FARGATE", error=None, read_only=True,
                session="task-1", key="ASIAEXAMPLE", caller="arn:aws:iam::111122223333:role/worker",
                caller_type="role", assumed_role=None, subject=None, params=None, resource=None)
    base.update(kw)
    return Ev(**base)


def _habit(days: int = 5) -> list[Ev]:
    """A task role that reads one table and one secret every 10 minutes for some days."""
    out = []
    for minute in range(0, days * 1440, 10):
        out.append(_ev(minute, "dynamodb:Query"))
        out.append(_ev(minute + 1, "secretsmanager:GetSecretValue", resource="arn:aws:secretsmanager:us-east-1:"
                       "111122223333:secret:db-AbCdEf"))
    return out


def _judge(events: list[Ev], learn_days: int = 5) -> list:
    profile = Profile()
    info = IdentityInfo("arn:aws:iam::111122223333:role/worker", "service-role", "non-human", 20, "low",
                        "111122223333")
    until = events[0].t + learn_days * 86400 * 1_000_000
    return step(profile, events, Context(info, learn_until_us=until))


def test_stolen_task_credentials_are_caught_by_runtime_and_context():
    later = 5 * 1440 + 30
    stolen = [_ev(later + i, api, ip="203.0.113.7", agent="aws-cli/2.15.0 Python/3.11", read_only=True)
              for i, api in enumerate(["sts:GetCallerIdentity", "iam:ListUsers", "s3:ListBuckets"])]
    findings = _judge(_habit() + stolen)
    by_detector = {f.detector: f for f in findings}
    runtime = by_detector["workload-credentials-outside-runtime"]
    assert runtime.severity == "high" and runtime.event_ids[0] == "e-7230-sts:GetCallerIdentity"
    assert "AWS_ECS" in runtime.explanation and "Normally it calls" in runtime.explanation
    assert by_detector["unfamiliar-context"].evidence["network"] == "203.0.113.0/24"


def test_bulk_secret_reads_and_a_quiet_habit():
    later = 5 * 1440 + 30
    burst = [_ev(later + i / 10, "secretsmanager:GetSecretValue",
                 resource=f"arn:aws:secretsmanager:us-east-1:111122223333:secret:s{i}-XyZabc") for i in range(8)]
    assert _judge(_habit() + [_ev(later, "dynamodb:Query")]) == []  # its own routine raises nothing
    findings = _judge(_habit() + burst)
    bulk = [f for f in findings if f.detector == "bulk-secret-access"]
    # from its usual network and client: worth a look; from a stranger's: high
    assert len(bulk) == 1 and bulk[0].severity == "medium" and len(bulk[0].event_ids) == 4  # from the 5th read on
    stolen = [e._replace(ip="203.0.113.7", agent="aws-cli/2.15.0 Python/3.11") for e in burst]
    bulk = [f for f in _judge(_habit() + stolen) if f.detector == "bulk-secret-access"]
    assert len(bulk) == 1 and bulk[0].severity == "high"


def test_snapshot_shared_outside_the_organisation():
    later = 5 * 1440 + 30
    params = json.dumps({"snapshotId": "snap-0abc", "createVolumePermission": {"add": {"items": [
        {"userId": "999988887777"}]}}})
    share = _ev(later, "ec2:ModifySnapshotAttribute", params=params, read_only=False)
    findings = {f.detector: f for f in _judge(_habit() + [share])}
    assert findings["resource-shared-externally"].evidence["granted_accounts"] == ["999988887777"]
    removal = _ev(later, "ec2:ModifySnapshotAttribute", read_only=False, params=json.dumps(
        {"createVolumePermission": {"remove": {"items": [{"userId": "999988887777"}]}}}))
    assert "resource-shared-externally" not in {f.detector for f in _judge(_habit() + [removal])}


def test_people_are_softened_on_behavioural_detectors():
    later = 5 * 1440 + 30
    events = _habit() + [_ev(later, "iam:CreateUser", ip="198.51.100.9", agent="aws-cli/2.15.0", read_only=False)]
    profile = Profile()
    human = IdentityInfo("arn:aws:iam::111122223333:role/AWSReservedSSO_Admin_0123", "saml-role", "human")
    findings = step(profile, events, Context(human, learn_until_us=events[0].t + 5 * 86400 * 1_000_000))
    assert not [f for f in findings if f.severity not in ("info", "low")]  # a person's admin work is context
    tool = [e._replace(agent="aws-cli/2.13.5 Python/3.11.4 Linux/6.3.0-kali1-amd64") for e in events[-1:]]
    findings = step(Profile(), _habit() + tool, Context(human, learn_until_us=events[0].t + 5 * 86400 * 1_000_000))
    assert [f.severity for f in findings if f.detector == "attack-tool-agent"] == ["high"]  # not behavioural


# -- the command line -------------------------------------------------------------------------------

def nhiwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nhiwatch", *args], capture_output=True, text=True)


def test_cli_analyze_findings_resolve_and_baseline(tmp_path):
    data, home = tmp_path / "data", str(tmp_path / "home")
    simulate(data, SimConfig(seed=3, accounts=1, days=16, scale=0.6, start=START,
                             scenarios=("ci-key-leak-escalation",)))
    out = tmp_path / "f.ocsf.jsonl"
    run = nhiwatch("analyze", str(data / "cloudtrail"), "--learn-until", "2026-03-06T00:00:00Z", "--out", str(out),
                   "--format", "ocsf", "--json", "--home", home)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["findings"] > 0 and report["ingest"]["accepted"] > 10_000
    ocsf = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(ocsf) == report["findings"] and {o["class_uid"] for o in ocsf} == {2004}
    listed = json.loads(nhiwatch("findings", "list", "--json", "--home", home).stdout)
    assert listed["total"] >= 1
    top = listed["findings"][0]
    shown = nhiwatch("findings", "show", top["id"], "--home", home)
    assert shown.returncode == 0 and top["identity"]["arn"] in shown.stdout
    baseline = json.loads(nhiwatch("baseline", "show", top["identity"]["arn"], "--json", "--home", home).stdout)
    assert baseline["events"] > 0 and len(baseline["heatmap"]) == 7
    resolved = json.loads(nhiwatch("findings", "resolve", top["id"], "--benign", "--reason", "test", "--json",
                                   "--home", home).stdout)
    assert resolved["status"] == "benign" and resolved["events_taught"] >= 1
    after = json.loads(nhiwatch("findings", "list", "--json", "--home", home).stdout)
    assert top["id"] not in {f["id"] for f in after["findings"]}
    bad = nhiwatch("analyze", "--learn-until", "yesterday", "--home", home)
    assert bad.returncode == 2 and "--learn-until" in bad.stderr
    again = json.loads(nhiwatch("analyze", "--json", "--home", home).stdout)
    assert again["findings"] == 0


def test_suppression_file(tmp_path):
    from nhiwatch.detect.findings_store import SuppressionError, load_suppressions

    rules = tmp_path / "s.toml"
    rules.write_text('[[suppress]]\ndetector = "novel-api"\nreason = "noisy here"\nexpires = 2099-01-01\n')
    assert load_suppressions(rules)[0].detector == "novel-api"
    rules.write_text('[[suppress]]\ndetector = "novel-api"\n')
    with pytest.raises(SuppressionError, match="reason is required"):
        load_suppressions(rules)


def test_detector_doc_is_generated_from_the_metadata():
    from nhiwatch.detect.docs import detectors_markdown

    assert (REPO / "docs" / "detectors.md").read_text() == detectors_markdown(), \
        "regenerate: nhiwatch findings detectors --markdown > docs/detectors.md"


def test_eval_simulate_runs_the_whole_pipeline(tmp_path):
    run = nhiwatch("eval", "--simulate", "--accounts", "1", "--days", "12", "--scale", "0.6", "--seed", "4",
                   "--out", str(tmp_path / "sim"), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    # A new user's evaluation: cold start, every library scenario and every Stratus replay.
    assert len(report["scenarios"]) == len(SCENARIOS) + len(detonation_techniques(CLOUDTRAIL / "stratus-detonations"))
    assert report["findings_total"] > 0 and report["recall"] > 0.5
    assert (tmp_path / "sim" / "store" / "nhiwatch.duckdb").is_file()
