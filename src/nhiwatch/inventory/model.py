"""The inventory's records: one Identity per IAM user, role or account root, with what it is,
what it can do, how it is used, and why it is risky."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from nhiwatch.core.times import iso_z


CATEGORIES = ("non-human", "human", "human-use-of-nhi", "unknown")
NHI_TYPES = ("service-role", "service-linked-role", "instance-profile-role", "cross-account-role", "oidc-role",
             "saml-role", "internal-role", "user-with-keys", "console-user", "user", "root", "group")


def iso(value: datetime | None) -> str | None:
    """A date as the store writes times (core.times.iso_z), None for no date."""
    return iso_z(value) if value else None


def days_between(earlier: datetime | None, later: datetime) -> int | None:
    return None if earlier is None else int((later - earlier).total_seconds() // 86400)


@dataclass
class AccessKey:
    slot: int
    active: bool
    created: str | None
    last_used: str | None
    last_used_service: str | None = None
    last_used_region: str | None = None
    key_id: str | None = None


@dataclass
class PolicyRef:
    name: str
    kind: str                  # inline, managed, group-inline, group-managed
    arn: str | None = None
    via: str | None = None     # the group it comes through
    readable: bool = True


@dataclass
class PostureFinding:
    check: str
    title: str
    severity: str
    owasp: list[str]
    nist: list[str]
    detail: str
    evidence: dict = field(default_factory=dict)


@dataclass
class Reason:
    factor: str     # exposure, privilege, trust, activity
    points: int     # the reason's weight
    text: str
    counted: int = 0  # what it adds to the score after halving and the factor's cap


@dataclass
class Identity:
    arn: str
    account_id: str
    kind: str                  # user, role, group, root
    name: str
    path: str = "/"
    unique_id: str | None = None
    created: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    category: str = "unknown"
    nhi_type: str = "user"
    type_detail: str = ""
    evidence: list[str] = field(default_factory=list)
    policies: list[PolicyRef] = field(default_factory=list)
    boundary: str | None = None
    trust: dict | None = None
    trust_summary: dict = field(default_factory=dict)
    instance_profiles: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)  # a group's users (names)
    has_credential_report: bool = False
    password_enabled: bool | None = None
    password_last_used: str | None = None
    mfa_active: bool | None = None
    keys: list[AccessKey] = field(default_factory=list)
    role_last_used: str | None = None
    role_last_used_region: str | None = None
    last_active: str | None = None
    last_active_source: str | None = None
    owner: str | None = None
    team: str | None = None
    origin: dict | None = None
    capabilities: dict = field(default_factory=dict)
    findings: list[PostureFinding] = field(default_factory=list)
    risk_score: int = 0
    risk_level: str = "low"
    risk_reasons: list[Reason] = field(default_factory=list)
    usage: dict | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def is_nhi(self) -> bool:
        return self.category in ("non-human", "human-use-of-nhi")

    def active_keys(self) -> list[AccessKey]:
        return [k for k in self.keys if k.active]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Identity":
        data = dict(data)
        data["keys"] = [AccessKey(**k) for k in data.get("keys", [])]
        data["policies"] = [PolicyRef(**p) for p in data.get("policies", [])]
        data["findings"] = [PostureFinding(**f) for f in data.get("findings", [])]
        data["risk_reasons"] = [Reason(**r) for r in data.get("risk_reasons", [])]
        return cls(**data)
