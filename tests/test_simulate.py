"""The simulator, checked through the same ingestion path users use."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import CLOUDTRAIL, ingest
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.simulate.scenarios import SCENARIOS
from nhiwatch.store.db import Store

KEY = re.compile(r"^AWSLogs/(o-[a-z0-9]{10})/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/"
                 r"\2_CloudTrail_\3_(\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$")
SMALL = SimConfig(seed=11, accounts=2, days=3, scale=0.4, detonations=str(CLOUDTRAIL / "stratus-detonations"))


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = simulate(out, SMALL, workers=1)
    return out, summary, json.loads((out / "labels.json").read_text())


@pytest.fixture(scope="module")
def sim_store(sim, tmp_path_factory):
    out, _summary, _labels = sim
    with Store(tmp_path_factory.mktemp("home")) as store:
        result = ingest(store, out / "cloudtrail")
        yield store, result


def test_every_file_is_an_s3_object_in_the_org_trail_layout(sim):
    out, summary, labels = sim
    files = sorted((out / "cloudtrail").rglob("*"))
    objects = [f for f in files if f.is_file()]
    assert len(objects) == summary.files > 0
    accounts = {a["id"] for a in labels["accounts"]}
    for path in objects[:400]:
        match = KEY.match(path.relative_to(out / "cloudtrail").as_posix())
        assert match, path
        org, account, region, delivered = match[1], match[2], match[3], match[7]
        assert org == labels["org_id"] and account in accounts
        records = json.loads(gzip.decompress(path.read_bytes()))["Records"]
        end = datetime.strptime(delivered, "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc).timestamp()
        for record in records:
            assert record["recipientAccountId"] == account and record["awsRegion"] == region
            t = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
            assert end - 300 <= t < end  # each file holds the 5 minutes before its delivery time


def test_ingests_cleanly_through_the_user_path(sim, sim_store):
    _out, summary, labels = sim
    store, result = sim_store
    assert (result.accepted, result.duplicate, result.quarantined, result.files_with_errors) == (summary.events, 0, 0, 0)
    flags = store.stats()["quality_flags"]
    assert flags == {}  # valid regions, addresses, times, ids everywhere
    types = store.stats()["identities_by_type"]
    assert {"role", "user", "web_identity", "saml", "service", "aws_account"} <= set(types)


def test_iam_files_agree_with_the_traffic(sim, sim_store):
    out, _summary, labels = sim
    store, _ = sim_store
    for account in labels["accounts"]:
        details = json.loads((out / "iam" / account["id"] / "authorization-details.json").read_text())
        roles = {r["Arn"]: r for r in details["RoleDetailList"]}
        users = {u["Arn"]: u for u in details["UserDetailList"]}
        active = {p for (p,) in store.con.execute(
            "SELECT DISTINCT principal FROM events WHERE principal_type IN ('role', 'user') AND principal_account = ?",
            [account["id"]]).fetchall()}
        attack_made = {s["principal"] for s in labels["scenarios"]} | {
            p for s in labels["scenarios"] for p in s["related_principals"]}
        assert active - attack_made <= set(roles) | set(users), active - set(roles) - set(users)
        # Lambda roles trust Lambda and their sessions are the function's name.
        for arn, role in roles.items():
            trusted = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
            if role["Path"] == "/service-role/":
                assert trusted == {"Service": "lambda.amazonaws.com"}
                sessions = {s for (s,) in store.con.execute(
                    "SELECT DISTINCT session FROM events WHERE principal = ? AND event_source != 'sts.amazonaws.com'",
                    [arn]).fetchall()}
                assert sessions <= {role["RoleName"].removesuffix("-role")}, sessions
            if role["RoleName"].startswith("github-deploy-"):
                condition = role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
                assert condition["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
            used = role["RoleLastUsed"]
            if used:
                last = store.con.execute(
                    "SELECT strftime(max(event_time), '%Y-%m-%dT%H:%M:%S+00:00') FROM events WHERE principal = ?",
                    [arn]).fetchone()[0]
                assert used["LastUsedDate"] == last
        # Vendor roles require an ExternalId, and the vendors' AssumeRole calls send it.
        for role in roles.values():
            condition = role["AssumeRolePolicyDocument"]["Statement"][0].get("Condition", {})
            external_id = condition.get("StringEquals", {}).get("sts:ExternalId")
            if external_id:
                sent = {json.loads(r)["externalId"] for (r,) in store.con.execute(
                    "SELECT request_parameters FROM events WHERE assumed_role_arn = ? AND event_name = 'AssumeRole'",
                    [role["Arn"]]).fetchall()}
                assert sent == {external_id}
        # The credential report lists the IAM users, with the keys the traffic used.
        with open(out / "iam" / account["id"] / "credential-report.csv") as fh:
            report = list(csv.DictReader(fh))
        assert report[0]["user"] == "<root_account>"
        assert {r["arn"] for r in report[1:]} == set(users)
        for row in report[1:]:
            if row["access_key_1_last_used_date"] != "N/A":
                day = row["access_key_1_last_used_date"][:10]
                seen = store.con.execute(
                    "SELECT count(*) FROM events WHERE principal = ? AND strftime(event_time, '%Y-%m-%d') = ?",
                    [row["arn"], day]).fetchone()[0]
                assert seen > 0


def test_labels_name_real_injected_events_on_the_compromised_identity(sim, sim_store):
    _out, _summary, labels = sim
    store, _ = sim_store
    assert len(labels["scenarios"]) == len(SCENARIOS) >= 20
    stratus = {p.stem for p in (CLOUDTRAIL / "stratus-detonations").glob("aws.*.json")} | {
        "aws.exfiltration.s3-backdoor-bucket-policy"}
    for scenario in labels["scenarios"]:
        assert set(scenario["stratus"]) <= stratus and scenario["mitre"]
        rows = store.con.execute(
            "SELECT principal, user_agent, aws_region, account_id FROM events WHERE list_contains(?, event_id)",
            [scenario["event_ids"]]).fetchall()
        assert len(rows) == len(scenario["event_ids"]) > 0, scenario["id"]
        principals = {r[0] for r in rows}
        assert scenario["principal"] in principals or scenario["id"] == "oidc-foreign-repository"
        assert principals <= {scenario["principal"], *scenario["related_principals"],
                              *(p for p in principals if p.startswith("token.actions"))}
        assert not any("stratus" in (r[1] or "").lower() for r in rows)
        assert {r[3] for r in rows} <= {a["id"] for a in labels["accounts"]}


def test_stolen_credentials_are_the_victims_own_session(sim, sim_store):
    _out, _summary, labels = sim
    store, _ = sim_store
    scenario = next(s for s in labels["scenarios"] if s["id"] == "ec2-creds-off-instance")
    stolen = store.con.execute(
        "SELECT DISTINCT access_key_id, session, source_ip FROM events WHERE list_contains(?, event_id)",
        [scenario["event_ids"]]).fetchall()
    assert len(stolen) == 1
    key, session, ip = stolen[0]
    assert session.startswith("i-0")
    benign = store.con.execute(
        "SELECT DISTINCT source_ip FROM events WHERE access_key_id = ? AND NOT list_contains(?, event_id)",
        [key, scenario["event_ids"]]).fetchall()
    assert benign and ip not in {b[0] for b in benign}  # same key, used from somewhere new


def test_legitimate_changes_happen_in_the_traffic(sim, sim_store):
    _out, _summary, labels = sim
    store, _ = sim_store
    kinds = {c["kind"] for c in labels["changes"]}
    assert {"new_function", "release_new_apis", "region_rollout", "nat_change", "key_rotation", "new_repository",
            "incident_response"} <= kinds
    for change in labels["changes"]:
        if change["kind"] == "region_rollout" and change["event_ids"]:
            regions = {r for (r,) in store.con.execute(
                "SELECT DISTINCT aws_region FROM events WHERE principal = ? AND event_time >= ?::TIMESTAMPTZ",
                [change["principal"], change["start"]]).fetchall()}
            assert "eu-west-1" in regions
        if change["kind"] == "key_rotation" and change["event_ids"]:
            created = store.con.execute(
                "SELECT issued_access_key_id FROM events WHERE event_name = 'CreateAccessKey' AND "
                "list_contains(?, event_id)", [change["event_ids"]]).fetchall()
            assert created and created[0][0].startswith("AKIA")


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    config = SimConfig(seed=3, accounts=2, days=2, scale=0.2, scenarios=("cloudtrail-stopped", "s3-bulk-download"))

    def digest(folder: Path) -> str:
        h = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
        return h.hexdigest()

    simulate(tmp_path / "a", config, workers=1)
    simulate(tmp_path / "b", config, workers=2)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    simulate(tmp_path / "c", SimConfig(**{**config.__dict__, "seed": 4}), workers=1)
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


# -- command line ---------------------------------------------------------------------------------

def test_simulate_eval_and_demo_commands(tmp_path):
    from test_store_and_cli import run

    sim = run("simulate", "--out", str(tmp_path / "sim"), "--accounts", "1", "--days", "2", "--scale", "0.2",
              "--scenario", "cloudtrail-stopped", "--scenario", "ebs-snapshot-shared", "--json")
    assert sim.returncode == 0, sim.stderr
    summary = json.loads(sim.stdout)
    assert summary["scenarios"] == 2 and summary["events"] > 1000
    labels = json.loads((tmp_path / "sim" / "labels.json").read_text())

    # A finding on each scenario's compromised identity: recall 1.0; one more on benign events: a false alert.
    findings = [{"finding_id": s["id"], "detector": "handmade", "severity": "high", "principal": s["principal"],
                 "time": s["start"], "event_ids": s["event_ids"][:1]} for s in labels["scenarios"]]
    findings.append({"finding_id": "noise", "detector": "handmade", "severity": "medium",
                     "principal": "arn:aws:iam::000000000000:role/nobody", "time": labels["start"], "event_ids": []})
    (tmp_path / "findings.jsonl").write_text("\n".join(json.dumps(f) for f in findings))
    scored = run("eval", "--labels", str(tmp_path / "sim" / "labels.json"), "--findings",
                 str(tmp_path / "findings.jsonl"), "--json")
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["recall"] == 1.0 and report["false_alerts"] == 1 and report["precision"] == 2 / 3
    assert all(s["time_to_first_alert_seconds"] == 0 for s in report["scenarios"])
    table = run("eval", "--labels", str(tmp_path / "sim" / "labels.json"), "--findings", str(tmp_path / "findings.jsonl"))
    assert "cloudtrail-stopped" in table.stdout and "recall" in table.stdout.lower()

    assert run("simulate", "--out", str(tmp_path / "x"), "--scenario", "no-such-attack").returncode == 2
    assert run("eval", "--labels", str(tmp_path / "nope.json"), "--findings", str(tmp_path / "findings.jsonl")
               ).returncode == 2

    demo = run("demo", "--out", str(tmp_path / "demo"), "--days", "2", "--scale", "0.2", "--json")
    assert demo.returncode == 0, demo.stderr
    result = json.loads(demo.stdout)
    page = (tmp_path / "demo" / "report.html").read_text()
    assert result["events"] > 0 and len(result["scenarios"]) >= 4
    assert "<svg" in page and "Injected attacks" in page
    assert not re.search(r"""(src|href)=["']?https?://""", page)  # self-contained
    for scenario in result["scenarios"]:
        assert scenario in page
    again = run("demo", "--out", str(tmp_path / "demo"), "--days", "2", "--scale", "0.2", "--json")
    assert again.returncode == 0, again.stderr  # a previous demo's output is replaced
    assert json.loads(again.stdout)["events"] == result["events"]
    (tmp_path / "other" / "data").mkdir(parents=True)
    (tmp_path / "other" / "data" / "precious.txt").write_text("not ours")
    assert run("demo", "--out", str(tmp_path / "other"), "--days", "1", "--scale", "0.1").returncode == 2


def test_scenario_doc_is_generated_from_the_library():
    from conftest import REPO
    from nhiwatch.simulate.scenarios import scenarios_markdown

    assert (REPO / "docs" / "scenarios.md").read_text() == scenarios_markdown()
    ids = [s.id for s in SCENARIOS]
    assert len(ids) == len(set(ids)) >= 20
