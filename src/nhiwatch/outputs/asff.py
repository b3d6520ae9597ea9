"""Findings in the AWS Security Finding Format, for Security Hub's BatchImportFindings.

Security Hub keys a finding by (ProductArn, Id): importing the same Id again updates it, so
re-sending after a crash never makes a second finding.
"""

from __future__ import annotations

from datetime import datetime, timezone

from nhiwatch import __version__
from nhiwatch.core.severity import Severity

# ASFF severity labels and the normalized score Security Hub expects with them (keyed by core's
# Severity, a str: looked up with the finding's severity name).
SEVERITY = {Severity.INFO: ("INFORMATIONAL", 0), Severity.LOW: ("LOW", 30), Severity.MEDIUM: ("MEDIUM", 50),
            Severity.HIGH: ("HIGH", 70), Severity.CRITICAL: ("CRITICAL", 90)}
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


def to_asff(finding: dict, region: str, account_id: str, updated_at: str | None = None) -> dict:
    """One nhiwatch finding (the JSON contract) as an ASFF finding of the account's default product."""
    identity = finding["identity"]
    label, normalized = SEVERITY[finding["severity"]]
    tactic = finding.get("tactic") or ""
    types = [f"{TACTIC_TYPES[tactic]}/{finding['detector']}"] if tactic in TACTIC_TYPES else [
        f"Unusual Behaviors/User/{finding['detector']}"]
    now = updated_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    resource = {"Type": _resource_type(identity["arn"]), "Id": identity["arn"], "Partition": "aws",
                "Region": region}
    if identity.get("account_id"):
        resource["Details"] = {"Other": {"AccountId": identity["account_id"]}}
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding["id"],
        "ProductArn": f"arn:aws:securityhub:{region}:{account_id}:product/{account_id}/default",
        "GeneratorId": f"nhiwatch/{finding['detector']}",
        "AwsAccountId": identity.get("account_id") or account_id,
        "Types": types,
        "FirstObservedAt": _iso(finding["first_seen"]),
        "LastObservedAt": _iso(finding["last_seen"]),
        "CreatedAt": _iso(finding["first_seen"]),
        "UpdatedAt": now,
        "Severity": {"Label": label, "Normalized": normalized, "Original": finding["severity"]},
        "Title": finding["title"][:256],
        "Description": finding["explanation"][:1024],
        "ProductFields": {"nhiwatch/version": __version__, "nhiwatch/detector": finding["detector"],
                          "nhiwatch/score": str(finding["score"]),
                          "nhiwatch/mitre": ",".join(finding["mitre"])[:1024],
                          "nhiwatch/events": str(len(finding["event_ids"]))},
        "Resources": [resource],
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    }
