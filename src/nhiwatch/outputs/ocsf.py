"""Findings as OCSF 1.3 Detection Finding events (class_uid 2004)."""

from __future__ import annotations

from datetime import datetime

from nhiwatch import __version__
from nhiwatch.core.severity import Severity

# OCSF severity_id: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, one above core's rank.
SEVERITY_IDS = {s.value: s.rank + 1 for s in Severity}
TACTIC_NAMES = {"initial-access": "Initial Access", "discovery": "Discovery", "credential-access": "Credential Access",
                "privilege-escalation": "Privilege Escalation", "persistence": "Persistence",
                "lateral-movement": "Lateral Movement", "defense-evasion": "Defense Evasion",
                "exfiltration": "Exfiltration", "impact": "Impact"}


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def to_ocsf(finding: dict) -> dict:
    """One nhiwatch finding (the JSON contract) as an OCSF Detection Finding."""
    identity = finding["identity"]
    return {
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create", "type_uid": 200401,
        "severity_id": SEVERITY_IDS[finding["severity"]], "severity": finding["severity"].title(),
        "status_id": 1, "status": "New",
        "time": _ms(finding["first_seen"]),
        "message": finding["explanation"],
        "metadata": {"version": "1.3.0", "product": {"name": "nhiwatch", "vendor_name": "nhiwatch",
                                                     "version": __version__},
                     "uid": finding["id"]},
        "finding_info": {
            "uid": finding["id"], "title": finding["title"], "desc": finding["explanation"],
            "first_seen_time": _ms(finding["first_seen"]), "last_seen_time": _ms(finding["last_seen"]),
            "analytic": {"uid": finding["detector"], "name": finding["title"], "type_id": 2, "type": "Behavioral"},
            "attacks": [{"technique": {"uid": t}, "tactic": {"name": TACTIC_NAMES.get(finding.get("tactic", ""), "")}}
                        for t in finding["mitre"]],
            "related_events": [{"uid": e, "product_uid": "cloudtrail"} for e in finding["event_ids"]],
        },
        "risk_score": finding["score"],
        "resources": [{"uid": identity["arn"], "type": identity["type"], "cloud_partition": "aws",
                       "owner": {"account": {"uid": identity["account_id"], "type": "AWS Account"}}}],
        "cloud": {"provider": "AWS", "account": {"uid": identity["account_id"], "type": "AWS Account"}},
        "evidences": [{"data": finding["evidence"]}],
        "unmapped": {"stratus": finding["stratus"], "session": finding["session"]},
    }
