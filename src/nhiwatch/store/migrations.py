"""Numbered schema migrations. MIGRATIONS[n] takes a store from version n to n + 1.

Append only: a released migration never changes, a new one follows it.
"""

from __future__ import annotations

# Event model v1, frozen here as text: later model versions add migrations, never edit this.
_EVENTS_V1 = """CREATE TABLE events (
  "uid" BLOB NOT NULL,
  "event_id" VARCHAR NOT NULL,
  "event_time" TIMESTAMPTZ NOT NULL,
  "event_source" VARCHAR NOT NULL,
  "event_name" VARCHAR NOT NULL,
  "api" VARCHAR NOT NULL,
  "event_type" VARCHAR,
  "event_category" VARCHAR,
  "event_version" VARCHAR,
  "aws_region" VARCHAR,
  "account_id" VARCHAR,
  "read_only" BOOLEAN,
  "management_event" BOOLEAN,
  "error_code" VARCHAR,
  "error_message" VARCHAR,
  "source_ip" VARCHAR,
  "source_ip_kind" VARCHAR,
  "user_agent" VARCHAR,
  "vpc_endpoint_id" VARCHAR,
  "request_id" VARCHAR,
  "identity_type" VARCHAR,
  "principal" VARCHAR,
  "principal_type" VARCHAR,
  "principal_account" VARCHAR,
  "principal_name" VARCHAR,
  "arn" VARCHAR,
  "session" VARCHAR,
  "access_key_id" VARCHAR,
  "invoked_by" VARCHAR,
  "mfa_authenticated" BOOLEAN,
  "session_created_at" TIMESTAMPTZ,
  "source_identity" VARCHAR,
  "web_identity_provider" VARCHAR,
  "assumed_role_arn" VARCHAR,
  "assumed_session_name" VARCHAR,
  "issued_access_key_id" VARCHAR,
  "federation_subject" VARCHAR,
  "federation_audience" VARCHAR,
  "federation_provider" VARCHAR,
  "resources" STRUCT(type VARCHAR, name VARCHAR)[],
  "request_parameters" VARCHAR,
  "response_elements" VARCHAR,
  "additional_event_data" VARCHAR,
  "service_event_details" VARCHAR,
  "insight_details" VARCHAR,
  "quality" VARCHAR[],
  "source_file" VARCHAR,
  "source_locator" VARCHAR
)"""

MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        _EVENTS_V1,
        """CREATE TABLE quarantine (
             qid BLOB NOT NULL, first_seen TIMESTAMPTZ NOT NULL, run_id INTEGER,
             source_file VARCHAR, locator VARCHAR, reason VARCHAR NOT NULL, raw VARCHAR)""",
        """CREATE TABLE ingest_runs (
             run_id INTEGER NOT NULL, started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ,
             paths VARCHAR[], summary VARCHAR)""",
        """CREATE TABLE ingest_files (
             run_id INTEGER NOT NULL, path VARCHAR NOT NULL, format VARCHAR, records BIGINT,
             accepted BIGINT, duplicate BIGINT, quarantined BIGINT, skipped VARCHAR, error VARCHAR)""",
    ],
]

# v2: the IAM inventory. Raw exports are kept per account, so the inventory can be rebuilt
# (with newer rules, or once CloudTrail arrives) without asking AWS again.
MIGRATIONS.append([
    """CREATE TABLE iam_sources (
         account_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, origin VARCHAR, loaded_at TIMESTAMPTZ NOT NULL,
         payload VARCHAR NOT NULL, PRIMARY KEY (account_id, kind))""",
    """CREATE TABLE identities (
         arn VARCHAR PRIMARY KEY, account_id VARCHAR, kind VARCHAR, name VARCHAR, category VARCHAR,
         nhi_type VARCHAR, type_detail VARCHAR, owner VARCHAR, team VARCHAR, created_at VARCHAR,
         last_active VARCHAR, oldest_key_days INTEGER, risk_score INTEGER, risk_level VARCHAR,
         findings INTEGER, top_severity VARCHAR, record VARCHAR NOT NULL)""",
    """CREATE TABLE posture_findings (
         finding_id VARCHAR PRIMARY KEY, arn VARCHAR NOT NULL, account_id VARCHAR, check_id VARCHAR NOT NULL,
         title VARCHAR, severity VARCHAR, owasp VARCHAR[], nist VARCHAR[], detail VARCHAR, evidence VARCHAR)""",
])

# v3: behavioural detection. Profiles are the per-identity state of the online engine; findings
# follow docs/finding.schema.json; the watermark (in meta) and both tables commit together.
MIGRATIONS.append([
    """CREATE TABLE profiles (
         identity VARCHAR PRIMARY KEY, updated_at TIMESTAMPTZ NOT NULL, last_event_us BIGINT, events BIGINT,
         mature BOOLEAN, state VARCHAR NOT NULL)""",
    """CREATE TABLE findings (
         id VARCHAR PRIMARY KEY, detector VARCHAR NOT NULL, severity VARCHAR NOT NULL, score INTEGER,
         identity VARCHAR NOT NULL, account_id VARCHAR, first_seen VARCHAR, last_seen VARCHAR, status VARCHAR,
         finding VARCHAR NOT NULL)""",
])

# v4: correlation and response. Incidents join findings along the identity graph; every response
# action is recorded with the state it found, so it can be undone.
MIGRATIONS.append([
    "ALTER TABLE findings ADD COLUMN incident_id VARCHAR",
    """CREATE TABLE incidents (
         id VARCHAR PRIMARY KEY, severity VARCHAR NOT NULL, score INTEGER, status VARCHAR NOT NULL,
         first_seen VARCHAR, last_seen VARCHAR, identities VARCHAR[], finding_ids VARCHAR[],
         incident VARCHAR NOT NULL)""",
    """CREATE TABLE actions (
         id VARCHAR PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL, identity VARCHAR NOT NULL,
         account_id VARCHAR, incident_id VARCHAR, status VARCHAR NOT NULL, actor VARCHAR, reason VARCHAR,
         action VARCHAR NOT NULL)""",
])

# v5: continuous monitoring. Events carry the number of the insert that stored them, so detection
# takes what arrived since it last ran (late files included), not only what is newer in event time. Objects
# read from S3 and the per-sink outbox commit with the events and findings they produced.
MIGRATIONS.append([
    "ALTER TABLE events ADD COLUMN ingest_batch BIGINT",
    # Events the old time watermark had not passed yet stay pending (batch 1); the rest are judged (0).
    """UPDATE events SET ingest_batch = CASE WHEN epoch_us(event_time) > coalesce(
         (SELECT max(value::BIGINT) FROM meta WHERE key = 'detect_watermark_us'), -1) THEN 1 ELSE 0 END""",
    "INSERT OR REPLACE INTO meta VALUES ('detect_judged_batch', '0')",
    """CREATE TABLE watch_objects (
         source VARCHAR NOT NULL, key VARCHAR NOT NULL, etag VARCHAR, size BIGINT, done_at TIMESTAMPTZ NOT NULL,
         events BIGINT, quarantined BIGINT, error VARCHAR, PRIMARY KEY (source, key))""",
    """CREATE TABLE watch_checkpoints (
         source VARCHAR PRIMARY KEY, value VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE outbox (
         sink VARCHAR NOT NULL, finding_id VARCHAR NOT NULL, seq BIGINT NOT NULL, state VARCHAR NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0, batch BIGINT, last_error VARCHAR, updated_at TIMESTAMPTZ NOT NULL,
         PRIMARY KEY (sink, finding_id))""",
    """CREATE TABLE sink_state (
         sink VARCHAR PRIMARY KEY, batch BIGINT, file_offset BIGINT, updated_at TIMESTAMPTZ NOT NULL)""",
])
