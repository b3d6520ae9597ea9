"""Detection on real CloudTrail and on records shaped exactly like public incident data, from a cold
start (no --learn-until, no history): what AWS itself does with an identity stays quiet, stolen
credentials are caught at high, and the attacker never becomes the baseline."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from nhiwatch.pipeline import analyze
from nhiwatch.detect.baseline import find_profile
from nhiwatch.detect.findings_store import resolve
from nhiwatch.store.db import Store

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cloudtrail"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the checkout")
ALERT = ("medium", "high", "critical")

# The flaws2.cloud incident (Scott Piper's public CloudTrail, account 653711331788), rebuilt record by
# record from its published shape: the dataset itself is not in ../shared. The Lambda service assumes
# `level1` and writes its logs with it (awslambda-worker, from Lambda's fleet in us-east-1); ECS hands
# `level3` to a task; then the attacker uses both roles' credentials from a non-AWS address.
FLAWS2 = "653711331788"
LAMBDA_FLEET = "34.234.236.212"      # AWS EC2 us-east-1, as in the published records
ATTACKER = "104.102.221.250"         # an Akamai address, in no cloud provider's published ranges
ATTACKER_CLI = "aws-cli/1.16.19 Python/2.7.10 Darwin/17.7.0 botocore/1.12.9"


def _record(t: str, source: str, name: str, identity: dict, ip: str, agent: str, request: dict | None = None,
            response: dict | None = None, error: str | None = None, resources: list | None = None) -> dict:
    record = {"eventVersion": "1.05", "userIdentity": identity, "eventTime": t, "eventSource": source,
              "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": agent,
              "requestParameters": request, "responseElements": response, "requestID": str(uuid.uuid4()),
              "eventID": str(uuid.uuid4()), "eventType": "AwsApiCall", "recipientAccountId": FLAWS2}
    if error:
        record["errorCode"], record["errorMessage"] = error, f"{error}: not authorized"
    if resources:
        record["resources"] = resources
    return record


def _service_assume(t: str, service: str, role: str, session: str, key: str) -> dict:
    arn = f"arn:aws:iam::{FLAWS2}:role/{role}"
    return _record(t, "sts.amazonaws.com", "AssumeRole", {"type": "AWSService", "invokedBy": service}, service, service,
                   {"roleSessionName": session, "roleArn": arn},
                   {"credentials": {"accessKeyId": key, "expiration": "Nov 29, 2018 4:31:59 AM"}},
                   resources=[{"ARN": arn, "accountId": FLAWS2, "type": "AWS::IAM::Role"}])


def _session(role: str, role_id: str, session: str, key: str, created: str) -> dict:
    return {"type": "AssumedRole", "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{FLAWS2}:assumed-role/{role}/{session}", "accountId": FLAWS2, "accessKeyId": key,
            "sessionContext": {"attributes": {"mfaAuthenticated": "false", "creationDate": created},
                               "sessionIssuer": {"type": "Role", "principalId": role_id, "accountId": FLAWS2,
                                                 "arn": f"arn:aws:iam::{FLAWS2}:role/{role}", "userName": role}}}


def flaws2_records() -> list[dict]:
    level1 = _session("level1", "AROAIBATWWYQXZTTALNCE", "level1", "ASIAZQNB3KHGIGYQXVVG", "2018-11-28T23:03:12Z")
    level3 = _session("level3", "AROAJQMBDNUMIKLZKMF64", "d190d14a-2404-45d6-9113-4eda22d7f2c7",
                      "ASIAZQNB3KHGNXWXBSJS", "2018-11-28T22:31:59Z")
    records = [_service_assume("2018-11-28T22:31:59Z", "ecs-tasks.amazonaws.com", "level3",
                               "d190d14a-2404-45d6-9113-4eda22d7f2c7", "ASIAZQNB3KHGNXWXBSJS"),
               _service_assume("2018-11-28T23:03:12Z", "lambda.amazonaws.com", "level1", "level1",
                               "ASIAZQNB3KHGIGYQXVVG")]
    # The Lambda worker's own log writes with the execution role: one per cold start, some denied
    # (the role lacked logs permissions in the published data).
    for n, t in enumerate(("23:03:12", "23:03:13", "23:03:20", "23:03:35", "23:03:50", "23:04:31", "23:05:02")):
        records.append(_record(f"2018-11-28T{t}Z", "logs.amazonaws.com", "CreateLogStream", level1, LAMBDA_FLEET,
                               "awslambda-worker", {"logGroupName": "/aws/lambda/level1",
                                                    "logStreamName": f"2018/11/28/[$LATEST]{uuid.uuid4().hex}"},
                               error="AccessDenied" if n % 2 else None))
    # The attacker with level1's credentials (read from the function's environment): ECR.
    for t, name, request in (("23:05:53", "ListImages", {"repositoryName": "level2", "registryId": FLAWS2}),
                             ("23:06:17", "BatchGetImage", {"repositoryName": "level2", "registryId": FLAWS2,
                                                            "imageIds": [{"imageTag": "latest"}]}),
                             ("23:06:33", "GetDownloadUrlForLayer", {"repositoryName": "level2",
                                                                     "registryId": FLAWS2,
                                                                     "layerDigest": "sha256:2d73de35"})):
        records.append(_record(f"2018-11-28T{t}Z", "ecr.amazonaws.com", name, level1, ATTACKER, ATTACKER_CLI,
                               request))
    # ... and with level3's (read from the container's credential endpoint): S3.
    records.append(_record("2018-11-28T23:09:28Z", "s3.amazonaws.com", "ListBuckets", level3, ATTACKER,
                           f"[{ATTACKER_CLI}]"))
    records.append(_record("2018-11-28T23:09:36Z", "s3.amazonaws.com", "GetObject", level3, ATTACKER,
                           f"[{ATTACKER_CLI}]", {"bucketName": "the-end-962b72bjahfm5b4wcktm8t9z4sapemjb.flaws2.cloud",
                                                 "key": "index.html"}))
    return records


def _analyze(tmp_path: Path, records: list[dict], name: str = "trail.json") -> tuple[Store, list]:
    path = tmp_path / name
    path.write_text(json.dumps({"Records": records}))
    store = Store(tmp_path / "home")
    result = analyze(store, [str(path)])
    return store, result.findings


def test_flaws2_stolen_workload_credentials_are_high_and_the_lambda_worker_is_quiet(tmp_path):
    store, findings = _analyze(tmp_path, flaws2_records())
    with store:
        alerts = [f for f in findings if f.severity in ALERT]
        by_role = {f.identity["arn"].rsplit("/", 1)[-1]: f for f in alerts}
        assert set(by_role) == {"level1", "level3"}, [(f.detector, f.identity["arn"]) for f in alerts]
        for role in ("level1", "level3"):
            finding = by_role[role]
            assert finding.severity == "high" and finding.detector == "workload-credentials-outside-runtime"
            assert "outside AWS" in finding.explanation and ATTACKER in finding.explanation
        # Nothing at all, not even a low finding, names a Lambda worker call.
        worker_ids = {r["eventID"] for r in flaws2_records() if r["userAgent"] == "awslambda-worker"}
        ids = {e for (e,) in store.con.execute("SELECT event_id FROM events WHERE user_agent = 'awslambda-worker'")
               .fetchall()}
        assert len(ids) == 7 and len(worker_ids) == 7
        assert not any(set(f.event_ids) & ids for f in findings)


@needs_shared
def test_real_control_tower_account_raises_no_alert(tmp_path):
    """A real Control Tower member account: Config, CloudTrail, Security Hub, a Lambda role, SSO."""
    records = json.loads((SHARED / "cribl-benign" / "DERIVED_zyNWSr_records.json").read_text())["Records"]
    store, findings = _analyze(tmp_path, records)
    store.close()
    assert len(records) == 205
    assert [f for f in findings if f.severity in ALERT] == []


KEY = "AKIAQXZ4EXAMPLE7KEY1"
VICTIM = f"arn:aws:iam::{FLAWS2}:user/svc-backup"
PROBE_IP = "185.220.101.47"


def self_escalation_records() -> list[dict]:
    """A stolen static key, as real captures show it: a few denied probes, IAM enumeration, an inline
    admin policy on itself, a new access key for itself. The user has no history at all."""
    user = {"type": "IAMUser", "principalId": "AIDAQXZ4EXAMPLEUSER1", "arn": VICTIM, "accountId": FLAWS2,
            "accessKeyId": KEY, "userName": "svc-backup"}
    agent = "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#6.5.0 lang/python#3.11.5 Botocore/1.31.57"
    out, minute = [], 0

    def call(source, name, request=None, error=None, second=0):
        out.append(_record(f"2026-04-10T03:{minute:02d}:{second:02d}Z", source, name, user, PROBE_IP, agent, request,
                           error=error))

    call("sts.amazonaws.com", "GetCallerIdentity")
    for second, (source, name) in enumerate((("ec2.amazonaws.com", "DescribeInstances"),
                                             ("s3.amazonaws.com", "ListBuckets"),
                                             ("lambda.amazonaws.com", "ListFunctions20150331"),
                                             ("secretsmanager.amazonaws.com", "ListSecrets"))):
        call(source, name, error="AccessDenied", second=10 + second)
    minute = 2
    for second, name in enumerate(("ListUsers", "ListRoles", "ListPolicies", "ListGroups", "GetAccountSummary",
                                   "ListAttachedUserPolicies", "ListUserPolicies", "GetUser", "ListAccessKeys",
                                   "ListGroupsForUser", "GetAccountAuthorizationDetails", "ListInstanceProfiles")):
        call("iam.amazonaws.com", name, {"userName": "svc-backup"} if "User" in name else None, second=second * 3)
    call("organizations.amazonaws.com", "DescribeOrganization", second=50)
    call("sts.amazonaws.com", "GetSessionToken", second=55)
    minute = 5
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    call("iam.amazonaws.com", "PutUserPolicy", {"userName": "svc-backup", "policyName": "maintenance",
                                                "policyDocument": json.dumps(admin)})
    minute = 6
    call("iam.amazonaws.com", "CreateAccessKey", {"userName": "svc-backup"})
    return out


def test_self_escalating_stolen_key_is_high_within_ten_minutes_without_history(tmp_path):
    records = self_escalation_records()
    store, findings = _analyze(tmp_path, records)
    store.close()
    mine = [f for f in findings if f.identity["arn"] == VICTIM and f.severity in ("high", "critical")]
    start = records[0]["eventTime"]
    assert mine and min(f.first_seen for f in mine) <= "2026-04-10T03:10:00Z" and start <= min(f.first_seen for f in mine)
    detectors = {f.detector: f for f in mine}
    # The admin policy on itself is high by what it grants; the whole walk is one attack sequence.
    assert "iam-permission-change" in detectors
    assert "full admin" in detectors["iam-permission-change"].explanation
    assert detectors["iam-permission-change"].evidence["dangerous"] is True
    sequence = detectors["attack-sequence"]
    assert {"discovery", "privilege-escalation"} <= set(sequence.evidence["tactics"])


def test_an_attacker_never_enters_the_baseline_while_its_finding_is_open(tmp_path):
    """Ten days of a quiet automation user, then its key used from a new place: the attacker's network,
    client and secrets stay out of the baseline until the finding is resolved as benign."""
    user = {"type": "IAMUser", "principalId": "AIDAQXZ4EXAMPLEUSER2", "arn": f"arn:aws:iam::{FLAWS2}:user/svc-report",
            "accountId": FLAWS2, "accessKeyId": "AKIAQXZ4EXAMPLE7KEY2", "userName": "svc-report"}
    office, tool = "198.51.100.23", "aws-cli/2.15.30 Python/3.11.8 Linux/5.15.0 exe/x86_64.ubuntu.22"
    records = []
    for day in range(1, 11):
        for hour in (6, 7):
            records.append(_record(f"2026-04-{day:02d}T{hour:02d}:05:00Z", "s3.amazonaws.com", "PutObject", user,
                                   office, tool, {"bucketName": "acme-reports", "key": f"daily/{day}-{hour}.csv"}))
            records.append(_record(f"2026-04-{day:02d}T{hour:02d}:06:00Z", "ce.amazonaws.com", "GetCostAndUsage",
                                   user, office, tool))
    thief = "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#6.5.0 lang/python#3.11.5 Botocore/1.31.57"
    for n in range(12):
        records.append(_record(f"2026-04-11T03:{10 + n:02d}:00Z", "secretsmanager.amazonaws.com", "GetSecretValue",
                               user, PROBE_IP, thief, {"secretId": f"prod/db-{n}"}))
    store, findings = _analyze(tmp_path, records)
    with store:
        alerts = [f for f in findings if f.severity in ALERT]
        assert alerts, [(f.detector, f.severity) for f in findings]
        _, profile = find_profile(store, user["arn"])
        for facet in ("net", "wide_net"):
            assert not any(v.startswith("185.220.") for v in profile.facets[facet]), profile.facets[facet]
        assert "boto3" not in profile.facets["agent"]
        assert not any(v.startswith("prod/db-") or ":secret:prod/db" in v for v in profile.facets["resource"])
        assert "secretsmanager:GetSecretValue" not in profile.facets["api"]
        assert profile.held  # the attacker's context is held out
        for finding in alerts:
            resolve(store, finding.id, benign=True, reason="a new reporting job")
        _, profile = find_profile(store, user["arn"])
        assert "boto3" in profile.facets["agent"] and not profile.held
