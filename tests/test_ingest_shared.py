"""Every real sample under ../shared/data/cloudtrail ingests, with exact counts and nothing lost."""

from __future__ import annotations

import json

import pytest

from conftest import event_row, ingest

# folder -> (records found, accepted, duplicate, quarantined, files, files skipped)
EXPECTED = {
    # 35 JSON arrays of Stratus detonations; SOURCE.txt is skipped as not JSON.
    "stratus-detonations": (310, 310, 0, 0, 36, 1),
    # 464 Panther test events: some reuse one event (same id, time, caller) -> duplicates;
    # 20 have no usable eventTime or eventSource -> quarantined.
    "panther-rule-tests": (464, 335, 109, 20, 3, 2),
    # Cribl captures and their unwrapped copies: 205 + 44 records twice; 50 Cribl bookkeeping
    # records carry no CloudTrail record -> quarantined.
    "cribl-benign": (548, 249, 249, 50, 6, 2),
    # 31 console sessions + the demo (which repeats sessions); 31 ExpectedSignals.json are not CloudTrail.
    "permiso-console": (9226, 8170, 1056, 0, 65, 33),
    # lookup-events lines (6), a genuine S3 object (2), AWS documentation examples (22, two repeated).
    "format-edge-cases": (30, 28, 2, 0, 8, 5),
}


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_each_folder_ingests_with_exact_counts(store, cloudtrail_dir, folder):
    summary = ingest(store, cloudtrail_dir / folder)
    records, accepted, duplicate, quarantined, files, skipped = EXPECTED[folder]
    assert (summary.records, summary.accepted, summary.duplicate, summary.quarantined) == (
        records, accepted, duplicate, quarantined)
    assert (summary.files, summary.files_skipped, summary.files_with_errors) == (files, skipped, 0)
    # Nothing silently dropped: every record found is stored, a duplicate, or quarantined.
    for per_file in summary.per_file:
        assert per_file["records"] == per_file["accepted"] + per_file["duplicate"] + per_file["quarantined"]
        assert per_file["records"] or per_file["skipped"], per_file
    assert store.con.execute("SELECT count(*) FROM events").fetchone()[0] == accepted
    assert store.con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == quarantined


def test_record_counts_match_an_independent_count(cloudtrail_dir):
    """The counts above are what the files hold, counted here without nhiwatch."""
    stratus = sum(len(json.loads(p.read_text())) for p in (cloudtrail_dir / "stratus-detonations").glob("*.json"))
    panther = len((cloudtrail_dir / "panther-rule-tests/DERIVED_panther_cloudtrail_tests.jsonl").read_text().splitlines())
    permiso = sum(len(json.loads(p.read_text())) for p in (cloudtrail_dir / "permiso-console").rglob("InputEvents.json"))
    cribl_raw = json.loads((cloudtrail_dir / "cribl-benign/zyNWSr.json").read_text())
    cribl_records = sum(len(item["_raw"]["Records"]) for item in cribl_raw if "_raw" in item)
    cribl_bookkeeping = sum(1 for item in cribl_raw if "_raw" not in item)
    assert (stratus, panther, permiso) == (310, 464, 9226)
    assert (cribl_records, cribl_bookkeeping) == (205, 50)
    assert EXPECTED["cribl-benign"][0] == 2 * (205 + 44) + 50


def test_whole_tree_once(store, cloudtrail_dir):
    summary = ingest(store, cloudtrail_dir)
    assert summary.records == sum(v[0] for v in EXPECTED.values())
    assert summary.quarantined == 70 and summary.files_with_errors == 0
    reasons = dict(store.con.execute(
        "SELECT regexp_replace(reason, '\\s*[:(].*$', ''), count(*) FROM quarantine GROUP BY 1").fetchall())
    assert reasons == {
        "JSON object without a CloudTrail record": 50,
        "eventTime is missing": 13,
        "eventSource is missing or not a string": 5,
        "eventTime not understood": 2,
    }
    # Quarantined records keep their raw text and where they were.
    for source_file, locator, raw in store.con.execute("SELECT source_file, locator, raw FROM quarantine").fetchall():
        assert source_file.startswith(str(cloudtrail_dir)) and locator and raw


def test_stratus_quirks_are_flagged_not_dropped(store, cloudtrail_dir):
    ingest(store, cloudtrail_dir / "stratus-detonations")
    flags = dict(store.con.execute(
        "SELECT flag, count(*) FROM (SELECT unnest(quality) flag FROM events) GROUP BY 1").fetchall())
    # Anonymised fake regions ("apiso-centralnorth-2r") and addresses with leading zeros ("253.252.51.07").
    assert flags["invalid_region"] >= 300
    assert flags["invalid_source_ip"] == store.con.execute(
        "SELECT count(*) FROM events WHERE source_ip_kind = 'invalid'").fetchone()[0] > 0
    kept = store.con.execute(
        "SELECT count(*), any_value(source_ip_kind) FROM events WHERE source_ip = '253.252.51.07'").fetchone()
    assert kept == (56, "invalid")  # kept as written, flagged


def test_identity_resolution_on_real_records(store, cloudtrail_dir):
    ingest(store, cloudtrail_dir)

    # AssumedRole, Lambda execution role: principal is the issuer's role ARN, session the function.
    lam = event_row(store, "c518cf39-c947-4f76-a84c-78925262f738", source_file=str(
        cloudtrail_dir / "cribl-benign/DERIVED_zyNWSr_records.json"))
    assert lam["principal_type"] == "role"
    assert lam["principal"] == "arn:aws:iam::650992545562:role/aws-controltower-ForwardSnsNotificationRole"
    assert lam["session"] == "aws-controltower-NotificationForwarder"
    assert lam["arn"].startswith("arn:aws:sts::123456789122:assumed-role/")
    assert lam["access_key_id"] == "ASIAZPERN54NIRJRTDDU"

    # EC2 instance role: the session name is the instance id.
    ec2 = event_row(store, "b379479b-05c9-4c3c-af4b-cbd43acf29e1")
    assert ec2["principal"] == "arn:aws:iam::017622104382:role/stratus-red-team-ec2-steal-credentials-role"
    assert ec2["session"] == "i-786a3A8B5C0d92eF4"
    assert ec2["mfa_authenticated"] is False
    assert ec2["session_created_at"] == "2024-08-02T08:20:52Z"

    # Service-linked role keeps its path.
    slr = event_row(store, "98005890-9c2c-405e-87c5-5f7718caf0b9", source_file=str(
        cloudtrail_dir / "cribl-benign/DERIVED_zyNWSr_records.json"))
    assert slr["principal"].startswith("arn:aws:iam::650992545562:role/aws-service-role/securityhub.amazonaws.com/")

    # AWS service calling AssumeRole: principal is the service; STS fields filled.
    svc = event_row(store, "f50439e5-6cbc-4897-9d2a-d23f6cebe616", source_file=str(
        cloudtrail_dir / "cribl-benign/DERIVED_zyNWSr_records.json"))
    assert (svc["principal"], svc["principal_type"]) == ("config.amazonaws.com", "service")
    assert svc["source_ip_kind"] == "aws_service" and svc["source_ip"] == "config.amazonaws.com"
    assert svc["assumed_role_arn"] == "arn:aws:iam::123456789122:role/aws-controltower-ConfigRecorderRole"
    assert svc["assumed_session_name"] == "AWSConfig-Describe"
    assert svc["issued_access_key_id"] == "AUDKSPQUE12DKWDIWPIF"

    # SAML user before it assumes a role: provider + subject.
    saml = event_row(store, "ad229800-488c-4018-a8f6-2f517e78f219", source_file=str(
        cloudtrail_dir / "cribl-benign/DERIVED_zyNWSr_records.json"))
    assert saml["principal_type"] == "saml"
    assert saml["principal"] == "9EM8Wj5n2Y0b5+wz/37JlS1qlPA=:kamilo@cribl.io"
    assert saml["federation_provider"].startswith("https://portal.sso.us-west-2.amazonaws.com/saml/assertion/")
    assert saml["issued_access_key_id"] == "ASIAZPERN54NOWAQ3WS6"

    # Federated user: the stable identity is the IAM user that called GetFederationToken.
    fed = event_row(store, "91529247-c4c4-4793-afc8-d70bbcfe9d19")
    assert fed["identity_type"] == "FederatedUser"
    assert fed["principal"] == "arn:aws:iam::742491224508:user/stratus-red-team-user-federation-user"
    assert fed["session"] == "stratus_red_team"

    # Cross-account caller (AWSAccount): its account and the caller's unique id.
    acct = event_row(store, "044e210e-6c5e-3f3e-8f04-2311a826f287")
    assert acct["principal"] == "aws-account:111122223333/SAMPLE_PRINCIPAL_ID"
    assert acct["session"] == "lambda-name"

    # Service event with only {accountId, invokedBy}; source address kept as a service name.
    shared = store.con.execute(
        "SELECT principal, principal_type, source_ip_kind FROM events WHERE event_name = 'SharedSnapshotVolumeCreated'"
    ).fetchall()
    assert shared == [("ec2.amazonaws.com", "service", "aws_service")]

    # Root, and a service event invoked by "AWS Internal".
    root = store.con.execute(
        "SELECT DISTINCT principal FROM events WHERE identity_type = 'Root' AND account_id = '111122223333'").fetchall()
    assert root == [("arn:aws:iam::111122223333:root",)]
    kms = event_row(store, "234f004b-EXAMPLE", event_name="RotateKey")
    assert (kms["principal"], kms["source_ip_kind"]) == ("AWS Internal", "aws_internal")
    assert {"type": "AWS::KMS::Key", "name": "arn:aws:kms:us-east-2:123456789012:key/7944f0ec-EXAMPLE"} in kms["resources"]

    # Insight events have no identity; they name the API they are about.
    insight = event_row(store, "EXAMPLE8-9621-4d00-b913-beca2EXAMPLE")
    assert insight["principal_type"] == "none" and insight["principal"] is None
    assert insight["api"] == "insight:ssm:UpdateInstanceInformation"
    assert insight["event_category"] == "Insight"

    # Reduced console events without userIdentity or sourceIPAddress still ingest.
    console = event_row(store, "45e81da9-0c13-4d01-b818-eba1513be8b0")
    assert console["principal_type"] == "none" and console["source_ip_kind"] == "missing"
    assert "no_user_identity" in console["quality"]

    # lookup-events output: the record inside CloudTrailEvent; an IAM user.
    lookup = event_row(store, "0828c0d2-3589-4390-b954-c78b4a7df44b")
    assert lookup["principal"] == "arn:aws:iam::012345678901:user/fakeusername"
    assert lookup["principal_type"] == "user" and lookup["event_time"] == "2022-02-07T22:23:37.000000Z"
    assert {"type": "ec2:instance", "name": "i-01234567890123456"} in lookup["resources"]
    assert lookup["source_locator"] == "line 1.CloudTrailEvent"


def test_odd_timestamps_from_panther_are_normalised_to_utc(store, cloudtrail_dir):
    ingest(store, cloudtrail_dir / "panther-rule-tests")
    # "2022-11-21 18:06:52" (space, no zone) is read as UTC; nanoseconds are cut to microseconds.
    spaced = event_row(store, "0b51d284-19f7-42cf-a103-276602aeada5")
    assert spaced["event_time"] == "2022-11-21T18:06:52.000000Z"
    assert "time_not_utc_z" in spaced["quality"]
    nanos = event_row(store, "28773860-a4fd-47c7-a215-6f0e6e6e532f")
    assert nanos["event_time"] == "2025-01-21T17:49:47.000000Z"
    canonical = event_row(store, "044e210e-6c5e-3f3e-8f04-2311a826f287")
    assert "time_not_utc_z" in canonical["quality"]  # this one was written with nanoseconds too
