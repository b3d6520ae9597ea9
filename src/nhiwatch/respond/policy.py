"""The automatic-response policy: which detectors and severities may trigger which actions on which
identities, and which identities are never touched.

    protected = ["arn:aws:iam::*:role/break-glass-*"]
    allow_organization_access_role = false   # true: OrganizationAccountAccessRole may be acted on

    [[allow]]
    actions = ["deactivate-key", "revoke-session", "revoke-sessions"]
    min_severity = "high"                    # the incident's severity
    detectors = ["*"]                        # a finding on the identity from one of these (globs)
    identities = ["arn:aws:iam::*:user/svc-*", "arn:aws:iam::*:role/service-role/*"]   # globs; default: all

Nothing is allowed unless a rule says so. AWS-managed roles (service-linked, AWSReservedSSO_*, Control
Tower, StackSets) are never acted on, whatever the rules say.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from nhiwatch.core.severity import SEVERITIES, severity_rank
from nhiwatch.respond.actions import ACTIONS


class PolicyError(ValueError):
    """A response policy file that cannot be used."""


@dataclass(frozen=True)
class Rule:
    actions: tuple[str, ...]
    min_severity: str = "high"
    detectors: tuple[str, ...] = ("*",)
    identities: tuple[str, ...] = ("*",)

    def allows(self, action: str, severity: str, identity: str, detectors: set[str]) -> bool:
        return (action in self.actions and severity_rank(severity) >= severity_rank(self.min_severity)
                and any(fnmatch.fnmatchcase(identity, p) for p in self.identities)
                and any(fnmatch.fnmatchcase(d, p) for d in detectors or {""} for p in self.detectors))


@dataclass
class ResponsePolicy:
    rules: list[Rule] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)
    allow_organization_access_role: bool = False

    def allowed(self, action: str, severity: str, identity: str, detectors: set[str]) -> Rule | None:
        return next((r for r in self.rules if r.allows(action, severity, identity, detectors)), None)


def load_policy(path: Path) -> ResponsePolicy:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: {exc}") from None
    unknown = set(data) - {"protected", "allow", "allow_organization_access_role"}
    if unknown:
        raise PolicyError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (expected protected, "
                          "allow_organization_access_role, [[allow]])")
    allow_org_access = data.get("allow_organization_access_role", False)
    if not isinstance(allow_org_access, bool):
        raise PolicyError(f"{path}: allow_organization_access_role must be true or false")
    protected = data.get("protected", [])
    if not isinstance(protected, list) or not all(isinstance(p, str) for p in protected):
        raise PolicyError(f"{path}: protected must be a list of ARN patterns or names")
    rules = []
    for n, item in enumerate(data.get("allow", []), 1):
        where = f"{path}: allow #{n}"
        if not isinstance(item, dict):
            raise PolicyError(f"{where}: must be a table")
        unknown = set(item) - {"actions", "min_severity", "detectors", "identities"}
        if unknown:
            raise PolicyError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        actions = item.get("actions")
        if not actions or not isinstance(actions, list):
            raise PolicyError(f"{where}: actions must list at least one action")
        bad = [a for a in actions if a not in ACTIONS]
        if bad:
            raise PolicyError(f"{where}: unknown action(s) {', '.join(bad)}; known: {', '.join(ACTIONS)}")
        severity = item.get("min_severity", "high")
        if severity not in SEVERITIES:
            raise PolicyError(f"{where}: min_severity must be one of {', '.join(SEVERITIES)}")
        for key in ("detectors", "identities"):
            value = item.get(key, ["*"])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
                raise PolicyError(f"{where}: {key} must be a non-empty list of patterns")
        rules.append(Rule(tuple(actions), severity, tuple(item.get("detectors", ["*"])),
                          tuple(item.get("identities", ["*"]))))
    return ResponsePolicy(rules, protected, allow_org_access)
