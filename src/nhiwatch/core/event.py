"""The normalized event model: one CloudTrail record, whatever shape it arrived in.

The Arrow schema below is the contract between ingestion, the store and every later stage.
Each field carries its description in the schema metadata, so the documentation
(docs/event-model.md) is generated from this file and cannot drift from it.
Bump EVENT_MODEL_VERSION on any change and add a store migration.
"""

from __future__ import annotations

import pyarrow as pa

EVENT_MODEL_VERSION = 1

# principal_type values: what kind of stable identity made the call.
PRINCIPAL_TYPES = {
    "role": "IAM role; principal is the role ARN taken from the session issuer",
    "user": "IAM user; principal is the user ARN (also the issuer of a federated-user session)",
    "root": "the account's root user",
    "web_identity": "a web-identity (OIDC) user before it assumed a role: provider + subject",
    "saml": "a SAML user before it assumed a role: provider + subject",
    "service": "an AWS service acting on its own (AWSService identity, service events)",
    "aws_account": "another AWS account, identified by its account id and the caller's unique id",
    "identity_center": "an IAM Identity Center user",
    "unknown": "an identity CloudTrail could not or would not name",
    "none": "the record carries no identity at all (Insight events, reduced exports)",
}

# source_ip_kind values.
SOURCE_IP_KINDS = {
    "ipv4": "a valid IPv4 address",
    "ipv6": "a valid IPv6 address",
    "aws_service": "a service principal such as lambda.amazonaws.com (call made by the service)",
    "aws_internal": "'AWS Internal': the call came from inside AWS",
    "invalid": "present but neither an address nor a service name; kept as written",
    "missing": "no sourceIPAddress in the record",
}

# Flags on an accepted record whose content was odd but usable. The record is kept as
# written; the flag says what to distrust.
QUALITY_FLAGS = {
    "synthetic_event_id": "no eventID: an id was derived from the record's content",
    "invalid_region": "awsRegion is not a well-formed region name",
    "invalid_source_ip": "sourceIPAddress is neither an IP address nor a service name",
    "time_not_utc_z": "eventTime was not in CloudTrail's own YYYY-MM-DDTHH:MM:SSZ form",
    "time_in_future": "eventTime is more than a day after ingestion",
    "account_from_path": "no account in the record: taken from the S3 key or envelope",
    "no_user_identity": "the record has no userIdentity",
    "repaired_values": "values JSON cannot carry (NaN, Infinity, a lone UTF-16 surrogate) were stored as null / U+FFFD",
}

_RESOURCE = pa.struct([("type", pa.string()), ("name", pa.string())])


def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"doc": doc})


EVENT_SCHEMA = pa.schema(
    [
        _f("uid", pa.binary(16), "dedupe key: hash of account, eventID, time, source, name, caller, access key, source address and requestID", False),
        _f("event_id", pa.string(), "eventID (or 'nhiwatch:<hash>' when the record has none)", False),
        _f("event_time", pa.timestamp("us", tz="UTC"), "eventTime in UTC", False),
        _f("event_source", pa.string(), "eventSource, e.g. iam.amazonaws.com", False),
        _f("event_name", pa.string(), "eventName, e.g. CreateUser", False),
        _f("api", pa.string(), "service:EventName, e.g. iam:CreateUser", False),
        _f("event_type", pa.string(), "eventType: AwsApiCall, AwsServiceEvent, AwsConsoleSignIn, AwsCloudTrailInsight ..."),
        _f("event_category", pa.string(), "eventCategory: Management, Data, Insight, NetworkActivity"),
        _f("event_version", pa.string(), "eventVersion"),
        _f("aws_region", pa.string(), "awsRegion as written (see quality flag invalid_region)"),
        _f("account_id", pa.string(), "account the event belongs to: recipientAccountId, else userIdentity.accountId, else the S3 key / envelope"),
        _f("read_only", pa.bool_(), "readOnly (null when the record does not say)"),
        _f("management_event", pa.bool_(), "managementEvent (null when the record does not say)"),
        _f("error_code", pa.string(), "errorCode, null on success"),
        _f("error_message", pa.string(), "errorMessage"),
        _f("source_ip", pa.string(), "sourceIPAddress as written: an address, a service name or 'AWS Internal'"),
        _f("source_ip_kind", pa.string(), "what source_ip is: " + ", ".join(SOURCE_IP_KINDS)),
        _f("user_agent", pa.string(), "userAgent"),
        _f("vpc_endpoint_id", pa.string(), "vpcEndpointId when the call came through a VPC endpoint"),
        _f("request_id", pa.string(), "requestID"),
        _f("identity_type", pa.string(), "userIdentity.type as written (AssumedRole, IAMUser, Root, AWSService ...)"),
        _f("principal", pa.string(), "the stable identity: role ARN (from the session issuer), user ARN, root ARN, "
           "'<provider>:<subject>' for web-identity and SAML users, the service name for AWS service calls"),
        _f("principal_type", pa.string(), "kind of principal: " + ", ".join(PRINCIPAL_TYPES)),
        _f("principal_account", pa.string(), "account that owns the principal (differs from account_id on cross-account calls)"),
        _f("principal_name", pa.string(), "short name: role name, user name, service or subject"),
        _f("arn", pa.string(), "userIdentity.arn as written (the session ARN for assumed roles)"),
        _f("session", pa.string(), "role session name (function name, instance id, CI job) or federated user name"),
        _f("access_key_id", pa.string(), "userIdentity.accessKeyId: AKIA... long-term, ASIA... temporary"),
        _f("invoked_by", pa.string(), "userIdentity.invokedBy: the service that made the call on the principal's behalf"),
        _f("mfa_authenticated", pa.bool_(), "sessionContext.attributes.mfaAuthenticated"),
        _f("session_created_at", pa.timestamp("us", tz="UTC"), "sessionContext.attributes.creationDate: when the credentials were issued"),
        _f("source_identity", pa.string(), "sessionContext.sourceIdentity"),
        _f("web_identity_provider", pa.string(), "OIDC/SAML provider of the session (webIdFederationData or identityProvider)"),
        _f("assumed_role_arn", pa.string(), "STS calls: the role asked for (requestParameters.roleArn)"),
        _f("assumed_session_name", pa.string(), "STS calls: roleSessionName asked for (or the federated user name)"),
        _f("issued_access_key_id", pa.string(), "STS / CreateAccessKey / sign-in: the access key id handed out, "
           "so later calls made with it can be linked back"),
        _f("federation_subject", pa.string(), "AssumeRoleWithWebIdentity/SAML: the token's subject (e.g. repo:org/repo:ref:refs/heads/main)"),
        _f("federation_audience", pa.string(), "AssumeRoleWithWebIdentity/SAML: the token's audience"),
        _f("federation_provider", pa.string(), "AssumeRoleWithWebIdentity/SAML: the identity provider"),
        _f("resources", pa.list_(_RESOURCE), "resources touched: CloudTrail resources[] (type = AWS::...) plus common "
           "request parameters (type = s3:bucket, s3:key, s3:prefix, iam:role, secretsmanager:secret, ssm:parameter, "
           "ec2:instance, ec2:snapshot, cloudtrail:trail, ...)"),
        _f("request_parameters", pa.string(), "requestParameters as JSON text"),
        _f("response_elements", pa.string(), "responseElements as JSON text"),
        _f("additional_event_data", pa.string(), "additionalEventData as JSON text"),
        _f("service_event_details", pa.string(), "serviceEventDetails as JSON text (service events)"),
        _f("insight_details", pa.string(), "insightDetails as JSON text (Insight events)"),
        _f("quality", pa.list_(pa.string()), "quality flags: " + ", ".join(QUALITY_FLAGS)),
        _f("source_file", pa.string(), "file the record was first ingested from"),
        _f("source_locator", pa.string(), "where in that file: record index, line number or JSON path"),
    ],
    metadata={"nhiwatch.event_model_version": str(EVENT_MODEL_VERSION)},
)

EVENT_COLUMNS = tuple(EVENT_SCHEMA.names)


def field_doc(field: pa.Field) -> str:
    return (field.metadata or {}).get(b"doc", b"").decode()


def event_model_markdown() -> str:
    """The event model as Markdown; docs/event-model.md is this text."""
    lines = [
        "# Normalized event model",
        "",
        f"Version {EVENT_MODEL_VERSION}. Generated from `src/nhiwatch/core/event.py` "
        "(`nhiwatch schema --markdown`); do not edit by hand.",
        "",
        "Every CloudTrail record, whatever shape it arrived in (S3 object, gzip, JSON lines, "
        "lookup-events output, EventBridge envelope, string-wrapped, a row of Security Lake's OCSF Parquet), "
        "becomes one row of this schema.",
        "",
        "| field | type | meaning |",
        "|---|---|---|",
    ]
    for fld in EVENT_SCHEMA:
        req = "" if fld.nullable else " (always set)"
        lines.append(f"| `{fld.name}` | `{fld.type}` | {field_doc(fld)}{req} |")
    for title, table in (
        ("principal_type", PRINCIPAL_TYPES),
        ("source_ip_kind", SOURCE_IP_KINDS),
        ("quality flags", QUALITY_FLAGS),
    ):
        lines += ["", f"## {title}", "", "| value | meaning |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in table.items()]
    return "\n".join(lines) + "\n"
