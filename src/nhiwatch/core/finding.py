"""The finding contract (docs/finding.schema.json): stable, one JSON object per line. Detection makes
findings, correlation, response, the sinks and the dashboard read them; the severity scale is
core.severity's."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields

from nhiwatch.core.severity import SEVERITIES

SCHEMA_VERSION = 1


@dataclass
class Finding:
    id: str
    detector: str
    title: str
    severity: str                  # a name on core.severity's scale (SEVERITIES), kept a plain str for JSON
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
    # Where the finding stands in the store (open, suppressed, benign, resolved): set when it is read
    # back from the store, not part of what detection emits, so to_dict leaves it out while it is None.
    status: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        if data["status"] is None:
            del data["status"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Finding":
        """A finding from its JSON form (the contract, as the store keeps it); unknown keys are ignored."""
        return cls(**{name: data[name] for name in _FIELDS if name in data})


_FIELDS = tuple(f.name for f in fields(Finding))


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
        "evidence": {"type": "object", "description": "the baseline facts behind the finding", "properties": {
            "events": {"type": "integer", "description": "how many events raised it"},
            "trigger": {"type": "object", "description": (
                "the call that gave the finding its severity, as the engine saw it (texts cut at 256 "
                "characters): event_id, time, api, region, source_ip, source_ip_kind, vpc_endpoint_id, "
                "user_agent, access_key_id, session, invoked_by, error_code, resource; for a role assumed "
                "by someone else also caller, caller_type, assumed_role, subject"),
                        "required": ["event_id", "time", "api"]}}},
        "schema_version": {"const": SCHEMA_VERSION},
    },
}
