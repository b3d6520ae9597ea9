"""OCSF output (outputs/ocsf.py), one finding at a time: what a record says (actor, api, source,
account, ATT&CK tactic per technique, partition, labels) and that it validates strictly against the
official schema (tests/ocsf_strict.py). test_ocsf_records.py validates the records of every detector
from real events: the detectors' cases and the golden corpora."""

from __future__ import annotations

import copy

import orjson
import pytest

from ocsf_strict import json_schema, open_objects, strict_errors
from nhiwatch.outputs.ocsf import MAX_EVIDENCES, MAX_TEXT, OCSF_VERSION, PROFILES, to_ocsf

ROLE = "arn:aws:iam::111122223333:role/ci-deploy"


def _finding(**changes) -> dict:
    finding = {
        "id": "nw-0123456789abcdef0123", "detector": "cloud-identity-used-off-cloud", "title": "Off cloud",
        "severity": "high", "score": 80, "identity": {"arn": ROLE, "type": "oidc-role", "account_id": "111122223333"},
        "session": "run-42", "first_seen": "2026-03-05T10:00:00Z", "last_seen": "2026-03-05T10:05:00Z",
        "event_ids": ["e-1", "e-2"], "mitre": ["T1078.004", "T1552"], "stratus": [], "explanation": "it did",
        "evidence": {"network": "203.0.113.0/24", "events": 2, "trigger": {
            "event_id": "e-1", "time": "2026-03-05T10:00:00Z", "api": "s3:ListBuckets", "region": "eu-west-1",
            "source_ip": "203.0.113.7", "source_ip_kind": "ipv4", "user_agent": "aws-cli/2.15.30",
            "access_key_id": "ASIAEXAMPLE000000001", "session": "run-42"}},
        "tactic": "initial-access", "schema_version": 1}
    for key, value in changes.items():
        finding[key] = value
    return finding


def test_the_schema_is_strict():
    # Unknown attributes fail only if the schema closes its objects: all but OCSF's free-form `object`.
    assert open_objects(json_schema(OCSF_VERSION, "detection_finding", tuple(sorted(PROFILES)))) == ["object"]
    record = to_ocsf(_finding())
    assert strict_errors(record) == []
    for wrong in (dict(record, src_endpoint={"ip": "1.2.3.4"}),            # not a Detection Finding attribute
                  dict(record, metadata=dict(record["metadata"], profiles=["cloud"])),  # actor needs `host`
                  dict(record, severity="Info"),                           # not the caption of severity_id 1
                  dict(record, cloud={"provider": "AWS", "account": {"uid": None}})):
        assert strict_errors(wrong), wrong


def test_a_finding_alone_names_actor_api_source_and_account():
    record = to_ocsf(_finding())
    assert record["metadata"]["profiles"] == ["cloud", "host"]
    assert record["actor"] == {
        "user": {"uid": ROLE, "name": "ci-deploy", "type_id": 3, "type": "System",
                 "account": {"uid": "111122223333", "type": "AWS Account", "type_id": 10}},
        "session": {"uid": "arn:aws:sts::111122223333:assumed-role/ci-deploy/run-42", "issuer": ROLE,
                    "credential_uid": "ASIAEXAMPLE000000001"}}
    assert record["api"] == {"operation": "ListBuckets", "service": {"name": "s3.amazonaws.com"}}
    assert record["evidences"][0]["src_endpoint"] == {"ip": "203.0.113.7", "zone": "203.0.113.0/24"}
    assert record["cloud"] == {"provider": "AWS", "region": "eu-west-1",
                               "account": {"uid": "111122223333", "type": "AWS Account", "type_id": 10}}
    assert [(a["sub_technique"]["uid"], a["tactic"]["name"]) for a in record["finding_info"]["attacks"]
            if "sub_technique" in a] == [("T1078.004", "Initial Access")]
    assert record["unmapped"]["evidence"] == {"network": "203.0.113.0/24", "events": 2}


def test_the_network_model_names_an_address_provider():
    trigger = dict(_finding()["evidence"]["trigger"], source_ip="3.209.238.232")  # a NAT gateway in us-east-1
    record = to_ocsf(_finding(evidence={"trigger": trigger}))
    assert record["evidences"][0]["src_endpoint"] == {"ip": "3.209.238.232", "svc_name": "EC2",
                                                      "zone": "aws:EC2:us-east-1"}
    service = dict(trigger, source_ip="lambda.amazonaws.com", source_ip_kind="aws_service")
    endpoint = to_ocsf(_finding(evidence={"trigger": service}))["evidences"][0]["src_endpoint"]
    assert endpoint == {"svc_name": "lambda.amazonaws.com", "zone": "service:lambda.amazonaws.com"}


@pytest.mark.parametrize(("severity", "severity_id", "label"), [
    ("info", 1, "Informational"), ("low", 2, "Low"), ("medium", 3, "Medium"), ("high", 4, "High"),
    ("critical", 5, "Critical")])
def test_severity_labels_match_their_ids(severity, severity_id, label):
    record = to_ocsf(_finding(severity=severity))
    assert (record["severity_id"], record["severity"]) == (severity_id, label) and strict_errors(record) == []


@pytest.mark.parametrize(("status", "status_id", "label"), [
    (None, 1, "New"), ("open", 1, "New"), ("suppressed", 3, "Suppressed"), ("benign", 3, "Suppressed"),
    ("resolved", 4, "Resolved")])
def test_status_follows_the_store(status, status_id, label):
    record = to_ocsf(_finding(status=status))
    assert (record["status_id"], record["status"]) == (status_id, label)


def test_no_null_account_no_empty_tactic():
    finding = _finding(identity={"arn": "arn:aws:iam::111122223333:role/x", "type": "unknown", "account_id": None},
                       tactic="", mitre=["T9999"])
    record = to_ocsf(finding)
    assert "account" not in record["cloud"] and "owner" not in record["resources"][0]
    assert record["finding_info"]["attacks"] == [{"version": "16.1", "technique": {"uid": "T9999"}}]
    assert strict_errors(record) == [] and b"null" not in orjson.dumps(record)


@pytest.mark.parametrize(("arn", "partition"), [
    ("arn:aws-us-gov:iam::111122223333:role/ci-deploy", "aws-us-gov"),
    ("arn:aws-cn:iam::111122223333:role/ci-deploy", "aws-cn"), (ROLE, "aws")])
def test_the_partition_comes_from_the_arn(arn, partition):
    record = to_ocsf(_finding(identity={"arn": arn, "type": "oidc-role", "account_id": "111122223333"}))
    assert record["resources"][0]["cloud_partition"] == partition
    assert record["actor"]["session"]["uid"].startswith(f"arn:{partition}:sts::111122223333:assumed-role/")


def test_a_finding_stored_before_triggers_were_kept_still_validates():
    finding = _finding(evidence={"network": "203.0.113.0/24"})
    record = to_ocsf(finding)
    assert record["actor"]["user"]["uid"] == ROLE and "api" not in record and "evidences" not in record
    assert strict_errors(record) == []


def test_a_web_identity_caller_is_the_actor_with_its_provider():
    subject = "repo:acme/payments:ref:refs/heads/main"
    trigger = {"event_id": "e-1", "time": "2026-03-05T10:00:00Z", "api": "sts:AssumeRoleWithWebIdentity",
               "region": "us-east-1", "source_ip": "4.148.0.1", "source_ip_kind": "ipv4",
               "caller": f"token.actions.githubusercontent.com:{subject}", "caller_type": "web_identity",
               "assumed_role": ROLE, "subject": subject}
    record = to_ocsf(_finding(evidence={"trigger": trigger}))
    assert record["actor"] == {"user": {"uid": trigger["caller"], "name": subject, "type_id": 3, "type": "System"},
                               "idp": {"name": "token.actions.githubusercontent.com"}}
    assert record["evidences"][0]["src_endpoint"]["zone"] == "github-actions"
    assert strict_errors(record) == []


def test_attacker_text_is_bounded():
    trigger = dict(_finding()["evidence"]["trigger"], user_agent="A" * 10_000, source_ip="not an address " * 50,
                   source_ip_kind="invalid", session="s" * 5000)
    event = {"event_id": "e-1", "event_time": "2026-03-05T10:00:00Z", "event_source": "s3.amazonaws.com",
             "event_name": "GetObject", "principal": ROLE, "user_agent": "B" * 10_000,
             "error_code": "AccessDenied", "error_message": "m" * 10_000, "request_id": "r" * 5000,
             "resources": [{"type": "s3:key", "name": f"k{n}" * 300} for n in range(100)]}
    events = [dict(event, event_id=f"e-{n}") for n in range(50)]
    for record in (to_ocsf(_finding(evidence={"trigger": trigger})), to_ocsf(_finding(), events)):
        assert strict_errors(record) == []
        assert len(record["evidences"]) <= MAX_EVIDENCES and len(record["resources"]) <= 11
        texts = [v for e in record["evidences"] for v in _strings(e)]
        assert texts and max(len(t) for t in texts if not t.startswith("arn:")) <= MAX_TEXT


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_the_finding_is_not_changed():
    finding = _finding()
    before = copy.deepcopy(finding)
    to_ocsf(finding)
    assert finding == before
