"""The finding contract (docs/finding.schema.json): stable, one JSON object per line."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

SEVERITIES = ("info", "low", "medium", "high", "critical")
SCHEMA_VERSION = 1


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass
class Finding:
    id: str
    detector: str
    title: str
    severity: str
    score: int
    identity: dict                 # arn, type, account_id
    session: str | None
    first_seen: str
    last_seen: str
    event_ids: list[str]
    mitre: list[str]
    stratus: list[str]
    explanation: str
    evidence: dict = field(default_factory=dict)
    tactic: str = ""
    incident_id: str | None = None  # set by correlation
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self)


def finding_id(detector: str, identity: str, first_uid: str) -> str:
    """Stable across re-runs: the detector, the identity and the first event that raised it."""
    digest = hashlib.blake2b(f"{detector}|{identity}|{first_uid}".encode(), digest_size=10).hexdigest()
    return f"nw-{digest}"


FINDING_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://nhiwatch.dev/schema/finding-v1.json",
    "title": "nhiwatch finding",
    "type": "object",
    "required": ["id", "detector", "title", "severity", "score", "identity", "first_seen", "last_seen", "event_ids",
                 "mitre", "stratus", "explanation", "evidence", "schema_version"],
    "properties": {
        "id": {"type": "string", "pattern": "^nw-[0-9a-f]{20}$",
               "description": "stable: the same detector, identity and first event always give the same id"},
        "detector": {"type": "string", "description": "detector id (docs/detectors.md)"},
        "title": {"type": "string"},
        "severity": {"enum": list(SEVERITIES)},
        "score": {"type": "integer", "minimum": 0, "maximum": 100,
                  "description": "anomaly strength weighted by the identity's posture risk"},
        "identity": {"type": "object", "required": ["arn", "type", "account_id"], "properties": {
            "arn": {"type": "string"}, "type": {"type": "string"}, "account_id": {"type": ["string", "null"]}}},
        "session": {"type": ["string", "null"]},
        "first_seen": {"type": "string", "format": "date-time"},
        "last_seen": {"type": "string", "format": "date-time"},
        "event_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                      "description": "CloudTrail eventID of every event that contributed"},
        "mitre": {"type": "array", "items": {"type": "string", "pattern": "^T[0-9]{4}(\\.[0-9]{3})?$"}},
        "stratus": {"type": "array", "items": {"type": "string"}},
        "tactic": {"type": "string"},
        "incident_id": {"type": ["string", "null"], "pattern": "^inc-[0-9a-f]{16}$",
                        "description": "the incident correlation put the finding in (nhiwatch incidents show)"},
        "explanation": {"type": "string", "description": "what happened and what normal is"},
        "evidence": {"type": "object", "description": "the baseline facts behind the finding"},
        "schema_version": {"const": SCHEMA_VERSION},
    },
}
