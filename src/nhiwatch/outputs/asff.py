"""Findings in the AWS Security Finding Format, for Security Hub's BatchImportFindings.

Security Hub keys a finding by (ProductArn, Id): importing the same Id again updates it, so
re-sending after a crash never makes a second finding.

With the default product, AWS accepts a finding only from the account it belongs to: the calling
account, `AwsAccountId` and the account in `ProductArn` must be one. So a finding is always written
for its own account's default product, and the sink calls from (or on behalf of) that account.
Severity and types go in `FindingProviderFields`, the fields a finding provider owns (the top-level
ones belong to the customer once they edit them, and `Severity.Normalized` is deprecated).
"""

from __future__ import annotations

from datetime import datetime, timezone

from nhiwatch import __version__
from nhiwatch.core.arn import account_of, partition_of
from nhiwatch.core.severity import Severity

# ASFF severity labels (keyed by core's Severity, a str: looked up with the finding's severity name).
SEVERITY_LABELS = {Severity.INFO: "INFORMATIONAL", Severity.LOW: "LOW", Severity.MEDIUM: "MEDIUM",
                   Severity.HIGH: "HIGH", Severity.CRITICAL: "CRITICAL"}
# ASFF finding types: namespace/category/classifier. TTPs are named after ATT&CK tactics.
TACTIC_TYPES = {
    "initial-access": "TTPs/Initial Access", "discovery": "TTPs/Discovery",
    "credential-access": "TTPs/Credential Access", "privilege-escalation": "TTPs/Privilege Escalation",
    "persistence": "TTPs/Persistence", "lateral-movement": "TTPs/Lateral Movement",
    "defense-evasion": "TTPs/Defense Evasion", "exfiltration": "Effects/Data Exfiltration",
    "impact": "Effects/Resource Consumption",
}
RESOURCE_TYPES = {"role": "AwsIamRole", "user": "AwsIamUser"}


def _iso(value: str) -> str:
    """The contract's times (second precision, Z) in the RFC 3339 form ASFF asks for."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _resource_type(arn: str) -> str:
    kind = arn.split(":", 5)[-1].split("/", 1)[0] if arn.count(":") >= 5 else ""
    return RESOURCE_TYPES.get(kind, "Other")


def finding_account(finding: dict) -> str | None:
    """The account a finding belongs to: its identity's account (from the record, else its ARN)."""
    identity = finding["identity"]
    return identity.get("account_id") or account_of(identity.get("arn"))


def product_arn(partition: str, region: str, account_id: str) -> str:
    """The default product of an account: the only product it may import its own findings into."""
    return f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"


def to_asff(finding: dict, region: str, account_id: str, updated_at: str | None = None) -> dict:
    """One nhiwatch finding (the JSON contract) as an ASFF finding of its own account's default product;
    `account_id` is used only for a finding that names no account (it is then imported there)."""
    identity = finding["identity"]
    owner = finding_account(finding) or account_id
    partition = partition_of(identity["arn"])
    tactic = finding.get("tactic") or ""
    types = [f"{TACTIC_TYPES[tactic]}/{finding['detector']}"] if tactic in TACTIC_TYPES else [
        f"Unusual Behaviors/User/{finding['detector']}"]
    now = updated_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    resource = {"Type": _resource_type(identity["arn"]), "Id": identity["arn"], "Partition": partition,
                "Region": region}
    if identity.get("account_id"):
        resource["Details"] = {"Other": {"AccountId": identity["account_id"]}}
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding["id"],
        "ProductArn": product_arn(partition, region, owner),
        "GeneratorId": f"nhiwatch/{finding['detector']}",
        "AwsAccountId": owner,
        "FirstObservedAt": _iso(finding["first_seen"]),
        "LastObservedAt": _iso(finding["last_seen"]),
        "CreatedAt": _iso(finding["first_seen"]),
        "UpdatedAt": now,
        "FindingProviderFields": {
            "Severity": {"Label": SEVERITY_LABELS[finding["severity"]], "Original": finding["severity"]},
            "Types": types,
        },
        "Title": finding["title"][:256],
        "Description": finding["explanation"][:1024],
        "ProductFields": {"nhiwatch/version": __version__, "nhiwatch/detector": finding["detector"],
                          "nhiwatch/score": str(finding["score"]),
                          "nhiwatch/mitre": ",".join(finding["mitre"])[:1024],
                          "nhiwatch/events": str(len(finding["event_ids"]))},
        "Resources": [resource],
        "RecordState": "ACTIVE",  # Workflow is the customer's: Security Hub starts a new finding at NEW
    }
