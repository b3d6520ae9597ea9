"""Every shape CloudTrail comes in, detected from the content, never the file name."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from conftest import event_row, ingest


def make_event(i: int, **overrides) -> dict:
    """A CloudTrail record shaped as AWS writes it (an EC2 instance role session)."""
    event = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLEROLEID:i-0abc123def4567890",
            "arn": "arn:aws:sts::123456789012:assumed-role/app-server/i-0abc123def4567890",
            "accountId": "123456789012",
            "accessKeyId": f"ASIAEXAMPLE{i:09d}",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEROLEID",
                                  "arn": "arn:aws:iam::123456789012:role/service/app-server",
                                  "accountId": "123456789012", "userName": "app-server"},
                "attributes": {"creationDate": "2026-03-01T09:00:00Z", "mfaAuthenticated": "false"},
                "ec2RoleDelivery": "2.0",
            },
        },
        "eventTime": f"2026-03-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.1.17",
        "userAgent": "[aws-sdk-java/1.12.500 Linux/5.10]",
        "requestParameters": {"bucketName": "app-data", "key": f"reports/2026/r{i}.csv"},
        "responseElements": None,
        "requestID": f"REQ{i:08d}",
        "eventID": f"00000000-0000-4000-8000-{i:012d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": "123456789012",
        "eventCategory": "Data",
    }
    event.update(overrides)
    return event


def s3_key(root: Path, account: str = "123456789012", region: str = "eu-west-1", org: str | None = None,
           kind: str = "CloudTrail", name: str = "x") -> Path:
    base = root / "AWSLogs"
    if org:
        base = base / org
    folder = base / account / kind / region / "2026" / "03" / "01"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{account}_{kind}_{region}_20260301T1000Z_{name}.json.gz"


def test_gzipped_s3_objects_in_the_real_key_layouts(store, tmp_path):
    plain = s3_key(tmp_path / "trail", name="a")
    plain.write_bytes(gzip.compress(json.dumps({"Records": [make_event(i) for i in range(3)]}).encode()))
    org = s3_key(tmp_path / "trail", org="o-a1b2c3d4e5", account="210987654321", name="b")
    org.write_bytes(gzip.compress(json.dumps({"Records": [
        make_event(i, recipientAccountId="210987654321") for i in range(3, 5)]}).encode()))
    digest = s3_key(tmp_path / "trail", kind="CloudTrail-Digest", name="digest")
    digest.write_bytes(gzip.compress(json.dumps({
        "awsAccountId": "123456789012", "digestStartTime": "2026-03-01T09:00:00Z",
        "digestEndTime": "2026-03-01T10:00:00Z", "digestS3Bucket": "trail-bucket", "logFiles": [],
        "previousDigestSignature": "ab"}).encode()))
    summary = ingest(store, tmp_path / "trail")
    assert (summary.files, summary.accepted, summary.files_skipped) == (3, 5, 1)
    assert summary.skipped_reasons == {"CloudTrail digest file": 1}
    by_path = {Path(f["path"]).name: f for f in summary.per_file}
    assert by_path[org.name]["s3_key"] == {"org": "o-a1b2c3d4e5", "account": "210987654321",
                                           "kind": "CloudTrail", "region": "eu-west-1"}
    assert by_path[plain.name]["format"] == "gzip-document:s3-object"
    row = event_row(store, "00000000-0000-4000-8000-000000000001")
    assert row["principal"] == "arn:aws:iam::123456789012:role/service/app-server"
    assert row["session"] == "i-0abc123def4567890"
    assert row["api"] == "s3:GetObject" and row["read_only"] is True and row["management_event"] is False
    assert row["resources"] == [{"type": "s3:bucket", "name": "app-data"},
                                {"type": "s3:key", "name": "reports/2026/r1.csv"},
                                {"type": "s3:prefix", "name": "reports/2026/"}]


def test_account_missing_from_the_record_is_taken_from_the_key(store, tmp_path):
    event = make_event(1)
    del event["recipientAccountId"]
    event["userIdentity"] = {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}
    path = s3_key(tmp_path, account="555555555555")
    path.write_bytes(gzip.compress(json.dumps({"Records": [event]}).encode()))
    ingest(store, path)
    row = event_row(store, event["eventID"])
    assert row["account_id"] == "555555555555" and "account_from_path" in row["quality"]


def test_arrays_lines_lookup_events_eventbridge_and_wrapped_strings(store, tmp_path):
    (tmp_path / "array.json").write_text(json.dumps([make_event(1), make_event(2)], indent=2))
    (tmp_path / "lines.log").write_text("\n".join(json.dumps(make_event(i)) for i in (3, 4)) + "\n")
    lookup = {"Events": [{"EventId": make_event(5)["eventID"], "EventName": "GetObject",
                          "EventTime": "2026-03-01 21:00:05+11:00",
                          "CloudTrailEvent": json.dumps(make_event(5))}], "NextToken": "abc"}
    (tmp_path / "lookup.txt").write_text(json.dumps(lookup))
    detail = make_event(6)
    del detail["recipientAccountId"]
    detail["userIdentity"] = {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}
    envelope = {"version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
                "account": "999988887777", "time": "2026-03-01T10:00:06Z", "region": "eu-west-1",
                "resources": [], "detail": detail}
    (tmp_path / "eventbridge").write_text(json.dumps(envelope) + "\n")
    (tmp_path / "wrapped.json").write_text(json.dumps([{"_raw": json.dumps(make_event(7)), "_time": 1}]))
    (tmp_path / "double.gz").write_bytes(gzip.compress(json.dumps({"message": json.dumps(
        {"Records": [make_event(8)]})}).encode()) + gzip.compress(b"\n"))
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"Records": [make_event(9)]}).encode())
    summary = ingest(store, tmp_path)
    formats = {Path(f["path"]).name: f["format"] for f in summary.per_file}
    assert formats == {
        "array.json": "json-document",
        "lines.log": "json-lines",
        "lookup.txt": "json-document:json-string+lookup-events",
        "eventbridge": "json-document:eventbridge",  # one value on one line: a document
        "wrapped.json": "json-document:json-string+wrapped:_raw",
        "double.gz": "gzip-document:json-string+s3-object+wrapped:message",
        "bom.json": "json-document:s3-object",
    }
    assert summary.accepted == 9 and summary.quarantined == 0
    eb = event_row(store, detail["eventID"])
    assert eb["account_id"] == "999988887777" and eb["principal"] == "s3.amazonaws.com"
    assert eb["source_locator"] == "$.detail"


def test_records_without_event_id_get_a_stable_content_id(store, tmp_path):
    event = make_event(1)
    del event["eventID"]
    (tmp_path / "a.json").write_text(json.dumps([event]))
    (tmp_path / "b.json").write_text(json.dumps({"Records": [event]}))
    summary = ingest(store, tmp_path)
    assert (summary.accepted, summary.duplicate) == (1, 1)
    event_id, quality = store.con.execute("SELECT event_id, quality FROM events").fetchone()
    assert event_id.startswith("nhiwatch:") and "synthetic_event_id" in quality


def test_reused_event_ids_from_other_callers_are_not_duplicates(store, tmp_path):
    """A replay that reuses an eventID for another caller keeps both; a true resend is one."""
    first = make_event(1)
    replayed = make_event(1, sourceIPAddress="198.51.100.7")
    resent = make_event(1)
    (tmp_path / "a.json").write_text(json.dumps([first, replayed, resent]))
    summary = ingest(store, tmp_path)
    assert (summary.accepted, summary.duplicate) == (2, 1)


def test_sts_calls_keep_the_target_role_and_issued_key(store, tmp_path):
    web = make_event(1, eventSource="sts.amazonaws.com", eventName="AssumeRoleWithWebIdentity",
                     userIdentity={
                         "type": "WebIdentityUser",
                         "principalId": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
                                        ":sts.amazonaws.com:repo:acme/deploy:ref:refs/heads/main",
                         "userName": "repo:acme/deploy:ref:refs/heads/main",
                         "identityProvider": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
                     requestParameters={"roleArn": "arn:aws:iam::123456789012:role/github-deploy",
                                        "roleSessionName": "GitHubActions-8412"},
                     responseElements={
                         "credentials": {"accessKeyId": "ASIAWEBIDENTITY0001", "expiration": "Mar 1, 2026, 11:00:00 AM"},
                         "subjectFromWebIdentityToken": "repo:acme/deploy:ref:refs/heads/main",
                         "audience": "sts.amazonaws.com",
                         "provider": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
                         "assumedRoleUser": {"arn": "arn:aws:sts::123456789012:assumed-role/github-deploy/GitHubActions-8412"}})
    used = make_event(2, userIdentity={
        "type": "AssumedRole", "principalId": "AROADEPLOY:GitHubActions-8412",
        "arn": "arn:aws:sts::123456789012:assumed-role/github-deploy/GitHubActions-8412",
        "accountId": "123456789012", "accessKeyId": "ASIAWEBIDENTITY0001",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123456789012:role/github-deploy",
                              "accountId": "123456789012", "userName": "github-deploy"},
            "webIdFederationData": {"federatedProvider":
                                    "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
                                    "attributes": {}},
            "attributes": {"creationDate": "2026-03-01T10:00:01Z", "mfaAuthenticated": "false"}}})
    key = make_event(3, eventSource="iam.amazonaws.com", eventName="CreateAccessKey",
                     requestParameters={"userName": "backup-bot"},
                     responseElements={"accessKey": {"accessKeyId": "AKIANEWKEY000000001", "status": "Active",
                                                     "userName": "backup-bot"}})
    (tmp_path / "sts.json").write_text(json.dumps([web, used, key]))
    ingest(store, tmp_path)
    row = event_row(store, web["eventID"])
    assert row["principal_type"] == "web_identity"
    assert row["principal"] == "token.actions.githubusercontent.com:repo:acme/deploy:ref:refs/heads/main"
    assert row["assumed_role_arn"] == "arn:aws:iam::123456789012:role/github-deploy"
    assert row["assumed_session_name"] == "GitHubActions-8412"
    assert row["issued_access_key_id"] == "ASIAWEBIDENTITY0001"
    assert (row["federation_subject"], row["federation_audience"]) == (
        "repo:acme/deploy:ref:refs/heads/main", "sts.amazonaws.com")
    # Later calls with the issued key link back to the AssumeRoleWithWebIdentity call.
    later = event_row(store, used["eventID"])
    assert later["access_key_id"] == row["issued_access_key_id"]
    assert later["principal"] == "arn:aws:iam::123456789012:role/github-deploy"
    assert later["web_identity_provider"].endswith("oidc-provider/token.actions.githubusercontent.com")
    created = event_row(store, key["eventID"])
    assert created["issued_access_key_id"] == "AKIANEWKEY000000001"
    assert {"type": "iam:user", "name": "backup-bot"} in created["resources"]


def test_ipv6_service_and_internal_addresses(store, tmp_path):
    events = [make_event(1, sourceIPAddress="2001:db8::7"), make_event(2, sourceIPAddress="lambda.amazonaws.com"),
              make_event(3, sourceIPAddress="AWS Internal"), make_event(4, sourceIPAddress="not-an-ip"),
              make_event(5, sourceIPAddress=None, awsRegion="mars-north-1")]
    (tmp_path / "ips.json").write_text(json.dumps(events))
    ingest(store, tmp_path)
    kinds = [r[0] for r in store.con.execute("SELECT source_ip_kind FROM events ORDER BY event_id").fetchall()]
    assert kinds == ["ipv6", "aws_service", "aws_internal", "invalid", "missing"]
    assert "invalid_region" in event_row(store, events[4]["eventID"])["quality"]
    assert "invalid_source_ip" in event_row(store, events[3]["eventID"])["quality"]
