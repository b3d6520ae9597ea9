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
        # Lambda roles (under /service-role/, beside other services' roles there) have sessions named
        # after the function.
        for arn, role in roles.items():
            trusted = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
            if role["Path"] == "/service-role/":
                assert set(trusted) == {"Service"}
            if trusted == {"Service": "lambda.amazonaws.com"}:
                assert role["Path"] == "/service-role/"
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

    # 9 days: the demo's first week only teaches, so findings (and incidents) come from the last two
    demo = run("demo", "--out", str(tmp_path / "demo"), "--days", "9", "--scale", "0.2", "--json")
    assert demo.returncode == 0, demo.stderr
    result = json.loads(demo.stdout)
    page = (tmp_path / "demo" / "report.html").read_text()
    assert result["events"] > 0 and len(result["scenarios"]) >= 4
    assert "<svg" in page and "Injected attacks" in page and "Routes to admin" in page
    assert not re.search(r"""(src|href)=["']?https?://""", page)  # self-contained
    for scenario in result["scenarios"]:
        assert scenario in page
    # findings.jsonl is written after correlation: each finding carries the incident it belongs to
    written = {f["id"]: f["incident_id"] for f in map(json.loads, (tmp_path / "demo" / "findings.jsonl").read_text()
                                                      .splitlines())}
    with Store(Path(result["store"]), read_only=True) as store:
        in_store = dict(store.con.execute("SELECT id, incident_id FROM findings").fetchall())
    assert any(in_store.values()), "the demo's attacks make incidents"
    assert written == in_store
    again = run("demo", "--out", str(tmp_path / "demo"), "--days", "9", "--scale", "0.2", "--json")
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


# -- the library of legitimate behaviour (simulate/legit.py) ---------------------------------------------

LEGIT_KINDS = {"lambda_log_stream", "lambda_env_decrypt", "release_new_apis", "cspm_onboarding",
               "service_linked_role_enabled", "cloudformation_iam_deploy", "dr_drill", "key_rotation_function",
               "dual_stack_instance", "ecs_task_execution", "ecs_task_definition_update", "ssm_inventory_patching",
               "athena_glue", "autoscaling_scale_out", "terraform_plan", "terraform_new_repository", "aws_backup",
               "stepfunctions_scheduler", "secrets_rotation", "vendor_monitoring", "codebuild_build", "eks_irsa",
               "new_ecs_service", "new_function"}


@pytest.fixture(scope="module")
def trail(sim):
    """Every record of the small simulation, in time order, and the labels' changes by kind."""
    out, _summary, labels = sim
    records = []
    for path in sorted((out / "cloudtrail").rglob("*.json.gz")):
        records.extend(json.loads(gzip.decompress(path.read_bytes()))["Records"])
    records.sort(key=lambda r: r["eventTime"])
    by_kind: dict[str, list[dict]] = {}
    for change in labels["changes"]:
        by_kind.setdefault(change["kind"], []).append(change)
    return records, {r["eventID"]: r for r in records}, by_kind


@pytest.fixture(scope="module")
def aws_ranges():
    """AWS's and GitHub's published ranges (the real files, not the simulator's compact copy)."""
    import ipaddress

    aws = json.loads((SHARED / "netranges" / "aws-ip-ranges.json").read_text())
    github = json.loads((SHARED / "netranges" / "github-ip-ranges.json").read_text())
    nets: dict[tuple[str, str], list] = {}
    for p in aws["prefixes"]:
        nets.setdefault((p["service"], p["region"]), []).append(ipaddress.ip_network(p["ip_prefix"]))
    for p in aws["ipv6_prefixes"]:
        nets.setdefault((p["service"], p["region"]), []).append(ipaddress.ip_network(p["ipv6_prefix"]))
    nets[("GITHUB", "actions")] = [ipaddress.ip_network(n) for n in github["actions"]]

    def within(address: str, service: str, region: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip.version == n.version and ip in n for n in nets.get((service, region), []))
    return within


SHARED = CLOUDTRAIL.parent


def _session(record: dict) -> str:
    return record["userIdentity"]["arn"].rsplit("/", 1)[-1]


def _issuer(record: dict) -> str | None:
    return ((record.get("userIdentity") or {}).get("sessionContext") or {}).get("sessionIssuer", {}).get("arn")


def _of_kind(trail, kind: str) -> list[dict]:
    _records, by_id, by_kind = trail
    return [by_id[i] for c in by_kind.get(kind, []) for i in c["event_ids"]]


def _per_change(trail, kind: str) -> list[list[dict]]:
    """Each change's labelled events, in time order."""
    _records, by_id, by_kind = trail
    return [sorted((by_id[i] for i in c["event_ids"]), key=lambda r: r["eventTime"]) for c in by_kind.get(kind, [])]


def test_every_legitimate_kind_is_on_by_default_and_labelled(sim, trail):
    out, _summary, labels = sim
    _records, by_id, by_kind = trail
    assert LEGIT_KINDS <= set(by_kind), LEGIT_KINDS - set(by_kind)
    for kind in LEGIT_KINDS:
        ids = [i for c in by_kind[kind] for i in c["event_ids"]]
        assert ids, f"{kind}: no labelled events"
        assert all(i in by_id for i in ids), kind  # every labelled id is a record of the trail
        assert all(c["description"] and c["start"] for c in by_kind[kind])
    # Each account gets every kind (legit behaviour is not a per-organisation accident).
    for account in labels["accounts"]:
        kinds = {c["kind"] for c in labels["changes"] if c["account_id"] == account["id"] and c["event_ids"]}
        assert LEGIT_KINDS <= kinds, LEGIT_KINDS - kinds


def test_lambda_workers_and_runtime_use_the_functions_session(trail, aws_ranges):
    records, _by_id, _ = trail
    assumed = {}  # ASIA key -> (role, session) from Lambda's AssumeRole responses
    for r in records:
        if r["eventName"] == "AssumeRole" and r["userIdentity"].get("invokedBy") == "lambda.amazonaws.com":
            assumed[r["responseElements"]["credentials"]["accessKeyId"]] = (
                r["requestParameters"]["roleArn"], r["requestParameters"]["roleSessionName"])
    streams = [r for r in records if r["eventName"] == "CreateLogStream" and r["userAgent"].startswith("awslambda-worker")]
    assert len(streams) > 50
    for r in streams:
        assert r["userAgent"] == "awslambda-worker/1.0 rusoto/0.48.0 rust/1.87.0 linux"
        assert "invokedBy" not in r["userIdentity"]
        role, session = assumed[r["userIdentity"]["accessKeyId"]]  # the very key Lambda handed the function
        assert role == _issuer(r) and session == _session(r)
        assert r["requestParameters"]["logGroupName"] == f"/aws/lambda/{session}"
        assert aws_ranges(r["sourceIPAddress"], "EC2", r["awsRegion"])
    assert len({r["sourceIPAddress"] for r in streams}) >= 0.9 * len(streams)  # a new address almost every time
    # The function's own calls use the same key.
    keys = {r["userIdentity"]["accessKeyId"] for r in streams}
    own = [r for r in records if r["userIdentity"] and r["userIdentity"].get("accessKeyId") in keys
           and r["eventSource"] == "dynamodb.amazonaws.com"]
    assert own
    decrypts = [r for r in records if r["eventName"] == "Decrypt" and "aws:lambda:FunctionArn" in json.dumps(
        r["requestParameters"])]
    assert decrypts
    for r in decrypts:
        assert "aws-sdk-java" in r["userAgent"] and "invokedBy" not in r["userIdentity"]
        assert r["requestParameters"]["encryptionContext"]["aws:lambda:FunctionArn"].endswith(
            f":function:{_session(r)}")
        assert r["userIdentity"]["accessKeyId"] in assumed and aws_ranges(r["sourceIPAddress"], "EC2", r["awsRegion"])
    # A new function's first cold start creates its log group after being told it does not exist.
    groups = [r for r in records if r["eventName"] == "CreateLogGroup"]
    assert groups
    first = next(r for r in streams if r["requestParameters"]["logGroupName"] ==
                 groups[0]["requestParameters"]["logGroupName"])
    assert first.get("errorCode") == "ResourceNotFoundException"


def test_release_is_deployed_minutes_before_the_new_calls(trail):
    records, _by_id, by_kind = trail
    for change in by_kind["release_new_apis"]:
        events = [_by_id[i] for i in change["event_ids"]]
        deploys = [r for r in events if r["eventName"] == "UpdateFunctionCode20150331v2"]
        assert deploys and all(_issuer(r).split("/")[-1].startswith("github-deploy-") for r in deploys)
        fn = deploys[0]["requestParameters"]["functionName"]
        new = [r for r in records if r["eventName"] == "GetParameter" and _issuer(r) == change["principal"]]
        assert new, fn
        gap = (datetime.fromisoformat(new[0]["eventTime"][:-1]) - datetime.fromisoformat(
            deploys[0]["eventTime"][:-1])).total_seconds()
        assert 60 < gap < 900  # minutes
        assert not [r for r in records if _issuer(r) == change["principal"] and r["eventSource"] == "sqs.amazonaws.com"
                    and r["eventTime"] < deploys[0]["eventTime"]]


def test_cspm_vendor_is_onboarded_then_sweeps(trail, aws_ranges):
    vendors = set(re.findall(r"'(\d{12})'", (SHARED / "vendors" / "accounts.yaml").read_text()))
    for events in _per_change(trail, "cspm_onboarding"):
        _check_cspm(events, vendors, aws_ranges)


def _check_cspm(events, vendors, aws_ranges):
    create = [r for r in events if r["eventName"] == "CreateRole"]
    assert create and create[0]["eventTime"] > events[0]["eventTime"]  # after the admin's CreateStack
    assert events[0]["eventName"] == "CreateStack" and "invokedBy" not in events[0]["userIdentity"]
    for r in create:
        assert r["userIdentity"]["invokedBy"] == "cloudformation.amazonaws.com" == r["sourceIPAddress"]
        trust = json.loads(r["requestParameters"]["assumeRolePolicyDocument"])["Statement"][0]
        assert trust["Principal"]["AWS"].split(":")[4] in vendors and trust["Condition"]["StringEquals"]["sts:ExternalId"]
    attached = {r["requestParameters"]["policyArn"] for r in events if r["eventName"] == "AttachRolePolicy"}
    assert "arn:aws:iam::aws:policy/SecurityAudit" in attached
    logins = [r for r in events if r["eventName"] == "AssumeRole"]
    assert logins
    for r in logins:
        assert r["userIdentity"]["type"] == "AWSAccount" and r["userIdentity"]["accountId"] in vendors
        assert r["requestParameters"]["externalId"] and aws_ranges(r["sourceIPAddress"], "EC2", "us-east-1")
    sweep = [r for r in events if r["userIdentity"].get("type") == "AssumedRole" and r["eventName"] != "CreateRole"
             and "invokedBy" not in r["userIdentity"] and r["userAgent"] == logins[-1]["userAgent"]]
    assert len(sweep) >= 300
    assert len({r["eventSource"] for r in sweep}) >= 20 and len({r["awsRegion"] for r in sweep}) >= 15
    names = {(r["eventSource"], r["eventName"]) for r in sweep}
    assert ("iam.amazonaws.com", "GetAccountAuthorizationDetails") in names
    assert any(s == "s3.amazonaws.com" and n.startswith("GetBucket") for s, n in names)


def test_service_linked_roles_appear_and_sweep_with_their_service_host(sim, trail):
    out, _summary, labels = sim
    events = _of_kind(trail, "service_linked_role_enabled")
    created = [r for r in events if r["eventName"] == "CreateServiceLinkedRole"]
    assert created
    for r in created:
        service = r["requestParameters"]["aWSServiceName"]
        assert r["userIdentity"]["invokedBy"] == service == r["sourceIPAddress"]
        assert _issuer(r).split("/")[-1].startswith("AWSReservedSSO_AdministratorAccess")
        role = r["responseElements"]["role"]["arn"]
        assert f"/aws-service-role/{service}/" in role
        reads = [e for e in events if _issuer(e) == role and e["eventName"] != "AssumeRole"]
        assert len(reads) >= 20 and len({e["eventSource"] for e in reads}) >= 3
        assert all(e["userIdentity"]["invokedBy"] == e["sourceIPAddress"] == e["userAgent"] == service for e in reads)
        account = role.split(":")[4]
        details = json.loads((out / "iam" / account / "authorization-details.json").read_text())
        exported = next(x for x in details["RoleDetailList"] if x["Arn"] == role)
        assert exported["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": service}


def test_cloudformation_makes_iam_writes_with_the_deploy_roles_session(trail, aws_ranges):
    records, _by_id, _ = trail
    events = _of_kind(trail, "cloudformation_iam_deploy")
    writes = [r for r in events if r["eventSource"] == "iam.amazonaws.com"]
    assert {"CreateRole", "PutRolePolicy", "AttachRolePolicy", "TagRole"} <= {r["eventName"] for r in writes}
    for r in writes + [r for r in events if r["eventName"] == "CreateFunction20150331"]:
        assert r["userIdentity"]["invokedBy"] == r["sourceIPAddress"] == r["userAgent"] == "cloudformation.amazonaws.com"
        assert r["userIdentity"]["sessionContext"]["webIdFederationData"]["federatedProvider"].endswith(
            "token.actions.githubusercontent.com")
        executed = [e for e in events if e["eventName"] == "ExecuteChangeSet"
                    and e["userIdentity"]["accessKeyId"] == r["userIdentity"]["accessKeyId"]]
        assert executed and executed[0]["eventTime"] <= r["eventTime"]  # the same job's session, just before
        assert aws_ranges(executed[0]["sourceIPAddress"], "GITHUB", "actions")
    for r in writes:
        if r["eventName"] == "PutRolePolicy":
            document = json.loads(r["requestParameters"]["policyDocument"])
            assert all(s["Action"] != "*" for s in document["Statement"])
    assert any(r["eventName"] == "CreateFunction20150331" and r["requestParameters"]["role"].startswith("arn:aws:iam::")
               for r in events)


def test_dr_drill_runs_workloads_in_the_second_region(trail, aws_ranges):
    _records, _by_id, by_kind = trail
    events = _of_kind(trail, "dr_drill")
    west = [r for r in events if r["awsRegion"] == "us-west-2" and r["userIdentity"].get("type") == "AssumedRole"
            and not r["sourceIPAddress"].endswith("amazonaws.com")]
    assert len({_issuer(r) for r in west}) >= 2
    assert all(aws_ranges(r["sourceIPAddress"], "EC2", "us-west-2") for r in west)


def test_key_rotation_function_tests_the_new_key(sim, trail):
    out, _summary, labels = sim
    _records, by_id, by_kind = trail
    for change in by_kind["key_rotation_function"]:
        events = sorted((by_id[i] for i in change["event_ids"]), key=lambda r: r["eventTime"])
        create = next(r for r in events if r["eventName"] == "CreateAccessKey")
        assert create["userIdentity"]["type"] == "AssumedRole" and "/service-role/" in _issuer(create)
        new_key = create["responseElements"]["accessKey"]["accessKeyId"]
        user = create["requestParameters"]["userName"]
        assert change["principal"].endswith(f":user/{user}")
        tests = [r for r in events if r["userIdentity"].get("accessKeyId") == new_key]
        assert tests[0]["eventName"] == "GetCallerIdentity" and len(tests) >= 2
        assert tests[0]["sourceIPAddress"] == tests[1]["sourceIPAddress"] == create["sourceIPAddress"]
        assert "exec-env/AWS_Lambda_python3.12" in tests[0]["userAgent"]
        assert {r["userIdentity"]["userName"] for r in tests} == {user}
        later = [r["eventName"] for r in events if r["eventTime"] > create["eventTime"]
                 and r["eventSource"] == "iam.amazonaws.com"]
        assert later == ["UpdateAccessKey", "DeleteAccessKey"]  # next day inactive, the day after deleted
        with open(out / "iam" / change["account_id"] / "credential-report.csv") as fh:
            row = next(r for r in csv.DictReader(fh) if r["user"] == user)
        assert row["access_key_1_active"] == "true" and row["access_key_2_active"] == "false"


def test_dual_stack_instance_calls_from_ipv6_and_ipv4(trail, aws_ranges):
    events = _of_kind(trail, "dual_stack_instance")
    by_key: dict[str, set[str]] = {}
    for r in events:
        assert _session(r).startswith("i-0") and r["userIdentity"]["sessionContext"]["ec2RoleDelivery"] == "2.0"
        by_key.setdefault(r["userIdentity"]["accessKeyId"], set()).add(r["sourceIPAddress"])
    both = [ips for ips in by_key.values() if any(":" in ip for ip in ips) and any("." in ip for ip in ips)]
    assert both  # one session, both address families
    for ip in set().union(*both):
        assert aws_ranges(ip, "EC2", "us-east-1"), ip


def test_ecs_task_execution_role_and_task_definition_update(trail, aws_ranges):
    records, by_id, by_kind = trail
    events = _of_kind(trail, "ecs_task_execution")
    names = {r["eventName"] for r in events}
    assert {"AssumeRole", "GetAuthorizationToken", "BatchGetImage", "GetDownloadUrlForLayer", "CreateLogStream"} <= names
    for r in events:
        if r["eventName"] == "AssumeRole":
            assert r["userIdentity"]["invokedBy"] == "ecs-tasks.amazonaws.com"
        else:
            assert r["userAgent"].startswith("Amazon ECS Agent - v1.") and _issuer(r).endswith("/ecsTaskExecutionRole")
            assert aws_ranges(r["sourceIPAddress"], "EC2", "us-east-1") or aws_ranges(r["sourceIPAddress"], "EC2",
                                                                                      r["awsRegion"])
    for change in by_kind["ecs_task_definition_update"]:
        updates = [by_id[i] for i in change["event_ids"] if by_id[i]["eventName"] == "RegisterTaskDefinition"]
        assert updates and updates[0]["requestParameters"]["taskRoleArn"] == change["principal"]
        new = [r for r in records if _issuer(r) == change["principal"] and r["eventName"] in (
            "GetQueueUrl", "GetParametersByPath")]
        assert new and min(r["eventTime"] for r in new) > updates[0]["eventTime"]


def test_instances_report_inventory_and_patches(trail):
    for events in _per_change(trail, "ssm_inventory_patching"):
        names = {r["eventName"] for r in events}
        assert {"CreateAssociation", "ListInstanceAssociations", "PutInventory", "GetDeployablePatchSnapshotForInstance",
                "GetMessages"} <= names
        agent = [r for r in events if r["eventName"] != "CreateAssociation"]
        assert all(_session(r).startswith("i-0") and "amazon-ssm-agent" in r["userAgent"] for r in agent)
        assert all(r.get("vpcEndpointId") for r in agent)  # the agent talks through the VPC endpoint
        first = min(r["eventTime"] for r in events if r["eventName"] == "CreateAssociation")
        assert min(r["eventTime"] for r in agent) > first


def test_athena_reads_glue_and_s3_with_the_callers_session(trail):
    events = _of_kind(trail, "athena_glue")
    starts = {r["userIdentity"]["accessKeyId"] for r in events if r["eventName"] == "StartQueryExecution"}
    glue = [r for r in events if r["eventSource"] == "glue.amazonaws.com"]
    assert starts and {"GetTable", "GetPartitions"} <= {r["eventName"] for r in glue}
    for r in glue + [r for r in events if r["eventSource"] == "s3.amazonaws.com"]:
        assert r["userIdentity"]["invokedBy"] == r["sourceIPAddress"] == r["userAgent"] == "athena.amazonaws.com"
        assert r["userIdentity"]["accessKeyId"] in starts


def test_auto_scaling_launches_instances_that_then_call(trail, aws_ranges):
    events = _of_kind(trail, "autoscaling_scale_out")
    runs = [r for r in events if r["eventName"] == "RunInstances"]
    assert runs
    launched = set()
    for r in runs:
        assert r["userIdentity"]["invokedBy"] == r["sourceIPAddress"] == "autoscaling.amazonaws.com"
        assert _issuer(r).endswith("/AWSServiceRoleForAutoScaling")
        launched |= {i["instanceId"] for i in r["responseElements"]["instancesSet"]["items"]}
    sessions = [r for r in events if r["userIdentity"].get("type") == "AssumedRole" and _session(r) in launched]
    assert {_session(r) for r in sessions} == launched
    public = [r for r in sessions if "vpcEndpointId" not in r]
    assert public and all(aws_ranges(r["sourceIPAddress"], "EC2", "us-east-1") for r in public)


def test_terraform_plan_reads_many_services_from_github_runners(trail, aws_ranges):
    events = _of_kind(trail, "terraform_plan") + _of_kind(trail, "terraform_new_repository")
    by_key: dict[str, list[dict]] = {}
    for r in events:
        if r["userAgent"].startswith("APN/1.0 HashiCorp/1.0 Terraform/1.9.5"):
            by_key.setdefault(r["userIdentity"]["accessKeyId"], []).append(r)
    assert by_key
    for run in by_key.values():
        times = [datetime.fromisoformat(r["eventTime"][:-1]) for r in run]
        assert len(run) >= 60 and (max(times) - min(times)).total_seconds() < 300
        assert len({r["eventSource"] for r in run}) >= 10
        assert all(aws_ranges(r["sourceIPAddress"], "GITHUB", "actions") for r in run)
    for first in _per_change(trail, "terraform_new_repository"):
        trust = [r for r in first if r["eventName"] == "UpdateAssumeRolePolicy"]
        login = [r for r in first if r["eventName"] == "AssumeRoleWithWebIdentity"]
        assert trust and login and trust[0]["eventTime"] < login[0]["eventTime"]
        assert "acme/data-infra" in login[0]["userIdentity"]["userName"]
        assert "repo:acme/data-infra:pull_request" in trust[0]["requestParameters"]["policyDocument"]


def test_aws_backup_snapshots_with_its_service_role(sim, trail):
    out, _summary, _labels = sim
    events = _of_kind(trail, "aws_backup")
    assume = [r for r in events if r["eventName"] == "AssumeRole"]
    assert assume and all(r["userIdentity"] == {"type": "AWSService", "invokedBy": "backup.amazonaws.com"} for r in assume)
    snaps = [r for r in events if r["eventName"] == "CreateSnapshot"]
    assert snaps and all(r["userIdentity"]["invokedBy"] == "backup.amazonaws.com" and
                         _session(r) == "AWSBackup-AWSBackupDefaultServiceRole" for r in snaps)
    role = _issuer(snaps[0])
    assert ":role/service-role/AWSBackupDefaultServiceRole" in role
    details = json.loads((out / "iam" / role.split(":")[4] / "authorization-details.json").read_text())
    exported = next(x for x in details["RoleDetailList"] if x["Arn"] == role)
    assert exported["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "backup.amazonaws.com"}


def test_step_functions_and_scheduler_act_with_their_roles(trail):
    events = _of_kind(trail, "stepfunctions_scheduler")
    starts = [r for r in events if r["eventName"] == "StartExecution"]
    invokes = [r for r in events if r["eventName"] == "Invoke"]
    assert starts and invokes
    assert all(r["userIdentity"]["invokedBy"] == r["sourceIPAddress"] == "scheduler.amazonaws.com" for r in starts)
    assert all(r["userIdentity"]["invokedBy"] == "states.amazonaws.com" and r["eventCategory"] == "Data"
               for r in invokes)


def test_secrets_manager_rotation(trail):
    events = _of_kind(trail, "secrets_rotation")
    names = [r["eventName"] for r in events]
    assert {"RotateSecret", "RotationStarted", "RotationSucceeded", "PutSecretValue", "UpdateSecretVersionStage",
            "DescribeSecret"} <= set(names)
    service_events = [r for r in events if r["eventType"] == "AwsServiceEvent"]
    assert {r["eventName"] for r in service_events} == {"RotationStarted", "RotationSucceeded"}
    writes = [r for r in events if r["eventName"] in ("PutSecretValue", "UpdateSecretVersionStage")]
    assert all(_session(r) + "-role" == _issuer(r).rsplit("/", 1)[-1] for r in writes)  # the rotation function


def test_monitoring_vendor_polls_around_the_clock_from_many_addresses(trail, aws_ranges):
    events = _of_kind(trail, "vendor_monitoring")
    logins = [r for r in events if r["eventName"] == "AssumeRole"]
    assert logins and {r["userIdentity"]["accountId"] for r in logins} == {"464622532012"}
    polls = [r for r in events if r["eventName"] == "GetMetricData"]
    hours = {r["eventTime"][11:13] for r in polls}
    assert len(hours) == 24 and len(polls) >= 200
    ips = {r["sourceIPAddress"] for r in polls}
    assert len(ips) >= 0.8 * len(polls) and all(aws_ranges(ip, "EC2", "us-east-1") for ip in ips)


def test_codebuild_builds_from_codebuild_addresses(trail, aws_ranges):
    events = _of_kind(trail, "codebuild_build")
    assumes = [r for r in events if r["eventName"] == "AssumeRole"]
    assert assumes and all(r["requestParameters"]["roleSessionName"].startswith("AWSCodeBuild-") for r in assumes)
    container = [r for r in events if r["userIdentity"].get("type") == "AssumedRole"
                 and "invokedBy" not in r["userIdentity"]]
    assert container and all(aws_ranges(r["sourceIPAddress"], "CODEBUILD", "us-east-1") for r in container)
    assert all("exec-env/AWS_ECS_EC2" in r["userAgent"] for r in container if r["userAgent"].startswith("aws-cli"))


def test_eks_pods_log_in_with_their_service_account(trail, aws_ranges):
    events = _of_kind(trail, "eks_irsa")
    logins = [r for r in events if r["eventName"] == "AssumeRoleWithWebIdentity"]
    assert logins
    for r in logins:
        assert "oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/" in r["userIdentity"]["identityProvider"]
        assert r["userIdentity"]["userName"].startswith("system:serviceaccount:")
        assert r["responseElements"]["subjectFromWebIdentityToken"] == r["userIdentity"]["userName"]
        assert aws_ranges(r["sourceIPAddress"], "EC2", "us-east-1")  # the nodes' NAT gateway
    keys = {r["responseElements"]["credentials"]["accessKeyId"]: r["sourceIPAddress"] for r in logins}
    calls = [r for r in events if r["userIdentity"].get("accessKeyId") in keys]
    assert calls and all(r["userIdentity"]["sessionContext"]["webIdFederationData"] for r in calls)


def test_new_identities_are_exported_with_realistic_trust(sim):
    out, _summary, labels = sim
    vendors = set(re.findall(r"'(\d{12})'", (SHARED / "vendors" / "accounts.yaml").read_text()))
    for account in labels["accounts"]:
        details = json.loads((out / "iam" / account["id"] / "authorization-details.json").read_text())
        roles = {r["RoleName"]: r for r in details["RoleDetailList"]}
        principal = {n: r["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] for n, r in roles.items()}
        assert principal["ecsTaskExecutionRole"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert roles["AWSBackupDefaultServiceRole"]["Path"] == "/service-role/"
        assert roles["AWSServiceRoleForAutoScaling"]["Path"] == "/aws-service-role/autoscaling.amazonaws.com/"
        cross = [r for r in roles.values() if "AWS" in r["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
                 and r["AssumeRolePolicyDocument"]["Statement"][0].get("Condition")]
        assert any(r["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"].split(":")[4] in vendors
                   for r in cross)
        eks = [n for n, p in principal.items() if "oidc.eks." in str(p.get("Federated"))]
        assert eks and all(roles[n]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"] for n in eks)
        assert {"Service": "codebuild.amazonaws.com"} in principal.values()
        assert {"Service": "states.amazonaws.com"} in principal.values()
        assert {"Service": "scheduler.amazonaws.com"} in principal.values()
