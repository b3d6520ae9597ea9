"""IAM policy documents: read them in every shape they come in, and answer "may this identity do
action X, on any resource or on itself?" with the statements that say so.

This is a static reading of identity policies, not a full evaluator: resource policies, SCPs and
session policies are out of scope, and conditions are not evaluated but reported, because a
condition can narrow a grant in ways only the request knows.
"""

from __future__ import annotations

import fnmatch
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable


class PolicyError(ValueError):
    """A policy document that cannot be read."""


def load_document(value: Any) -> dict:
    """A policy document from a dict, JSON text, or the URL-encoded JSON the raw IAM API returns."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise PolicyError(f"policy document is a {type(value).__name__}, not an object or JSON text")
    text = value.strip()
    if not text.startswith("{"):
        text = urllib.parse.unquote(text).strip()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy document is not JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(document, dict):
        raise PolicyError("policy document is not a JSON object")
    return document


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@lru_cache(maxsize=8192)
def _action_regex(pattern: str) -> re.Pattern:
    # IAM action names are case-insensitive; `*` and `?` are the only wildcards.
    return re.compile(fnmatch.translate(pattern.lower()))


@lru_cache(maxsize=8192)
def _resource_regex(pattern: str) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern))


def action_matches(pattern: str, action: str) -> bool:
    return bool(_action_regex(pattern).match(action.lower()))


# The resource part of an ARN that names "every resource of this kind": `*`, `role/*`, `user/*`...
_BROAD_RESOURCE_PART = re.compile(r"^(?:[A-Za-z0-9_-]+[/:])?\*$")


def is_broad_resource(pattern: str) -> bool:
    """True when a Resource entry covers every resource of a type (as `*` does), not named ones."""
    if pattern == "*":
        return True
    parts = pattern.split(":", 5)
    if len(parts) < 6:
        return False
    if parts[2] == "s3":  # S3 ARNs carry no type word: `bucket/*` names one bucket's objects
        return parts[5] in ("*", "*/*")
    return bool(_BROAD_RESOURCE_PART.match(parts[5]))


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: dict
    origin: str
    sid: str | None = None

    @property
    def conditional(self) -> bool:
        return bool(self.conditions)

    def matches_action(self, action: str) -> bool:
        hit = any(_action_regex(p).match(action.lower()) for p in self.actions)
        return hit != self.not_action

    def covers(self, resource: str | None) -> bool:
        """Whether the statement reaches `resource` (None: an arbitrary resource, so only broad grants)."""
        if self.not_resource:
            # "everything except these" is broad unless the exception names the target itself
            return resource is None or not any(_resource_regex(p).match(resource) for p in self.resources)
        if any(is_broad_resource(p) for p in self.resources):
            return True
        return resource is not None and any(_resource_regex(p).match(resource) for p in self.resources)

    def describe(self) -> str:
        verb = "NotAction" if self.not_action else "Action"
        return f"{self.origin}: {self.effect} {verb} {','.join(self.actions)}" + (" (with conditions)"
                                                                                 if self.conditional else "")


def statements_of(document: Any, origin: str) -> list[Statement]:
    """The statements of one policy document; raises PolicyError naming what is wrong."""
    doc = load_document(document)
    raw = doc.get("Statement")
    if raw is None:
        raise PolicyError("policy document has no Statement")
    out = []
    for index, item in enumerate(as_list(raw)):
        if not isinstance(item, dict):
            raise PolicyError(f"Statement[{index}] is not an object")
        effect = item.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"Statement[{index}] has Effect {effect!r}, expected Allow or Deny")
        not_action = "NotAction" in item
        actions = tuple(str(a) for a in as_list(item.get("NotAction" if not_action else "Action")))
        not_resource = "NotResource" in item
        resources = tuple(str(r) for r in as_list(item.get("NotResource" if not_resource else "Resource")))
        if not actions:
            raise PolicyError(f"Statement[{index}] has no Action or NotAction")
        conditions = item.get("Condition") or {}
        if not isinstance(conditions, dict):
            raise PolicyError(f"Statement[{index}] has a Condition that is not an object")
        out.append(Statement(effect, actions, not_action, resources or ("*",), not_resource, conditions,
                             origin, item.get("Sid")))
    return out


@dataclass(frozen=True)
class Grant:
    """An action an identity may perform: how (the statements) and how surely."""
    action: str
    conditional: bool
    via: tuple[str, ...]


@dataclass
class PermissionSet:
    """The identity policies of one principal, its permission boundary and the Deny statements."""
    statements: list[Statement]
    boundary: list[Statement] | None = None
    self_resources: tuple[str, ...] = ()
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def allows(self) -> list[Statement]:
        return [s for s in self.statements if s.effect == "Allow"]

    @staticmethod
    def allowing_statements(statements: Iterable[Statement], action: str, target: str | None) -> list[Statement]:
        return [s for s in statements if s.effect == "Allow" and s.matches_action(action) and s.covers(target)]

    @staticmethod
    def _denied(statements: Iterable[Statement], action: str, target: str | None) -> bool:
        # Only unconditional denies count: a conditional Deny may not apply to the request.
        return any(s.effect == "Deny" and not s.conditional and s.matches_action(action) and s.covers(target)
                   for s in statements)

    def grant_on(self, action: str, target: str | None) -> Grant | None:
        allowing = self.allowing_statements(self.statements, action, target)
        if not allowing or self._denied(self.statements, action, target):
            return None
        conditional = all(s.conditional for s in allowing)
        if self.boundary is not None:
            bounded = self.allowing_statements(self.boundary, action, target)
            if not bounded or self._denied(self.boundary, action, target):
                return None
            conditional = conditional or all(s.conditional for s in bounded)
        return Grant(action, conditional, tuple(dict.fromkeys(s.origin for s in allowing)))

    def grant(self, action: str, on_self: bool = False) -> Grant | None:
        """The grant of `action` on an arbitrary resource (or, with on_self, on one of the identity's
        own resources), honouring Deny statements and the permission boundary. Unconditional grants
        win over conditional ones."""
        key = (action.lower(), on_self)
        if key not in self._cache:
            targets: tuple = (None,) + (self.self_resources if on_self else ())
            grants = [g for g in (self.grant_on(action, t) for t in targets) if g is not None]
            grants.sort(key=lambda g: g.conditional)
            self._cache[key] = grants[0] if grants else None
        return self._cache[key]

    def allows_somewhere(self, action: str) -> bool:
        """Whether some Allow names the action on at least one resource (a scoped grant counts)."""
        def named(statements: Iterable[Statement]) -> bool:
            return any(s.effect == "Allow" and s.matches_action(action) for s in statements)
        return named(self.statements) and (self.boundary is None or named(self.boundary))

    def is_admin(self) -> Grant | None:
        """Full access: an unconditional Allow of every action on every resource, not cut down by a
        boundary or a Deny of everything."""
        full = [s for s in self.allows if not s.not_action and "*" in s.actions and not s.not_resource
                and "*" in s.resources and not s.conditional]
        if not full:
            return None
        if any(s.effect == "Deny" and not s.conditional and (s.not_action or "*" in s.actions)
               for s in self.statements):
            return None
        if self.boundary is not None and not any(
                s.effect == "Allow" and not s.not_action and "*" in s.actions and "*" in s.resources
                for s in self.boundary):
            return None
        return Grant("*", False, tuple(dict.fromkeys(s.origin for s in full)))

    def service_wildcards(self) -> dict[str, tuple[str, ...]]:
        """Services granted with `service:*` (or every action but a few, via NotAction) on all resources."""
        found: dict[str, list[str]] = {}
        for s in self.allows:
            if s.conditional or not s.covers(None):
                continue
            if s.not_action:
                found.setdefault("* except " + ",".join(s.actions), []).append(s.origin)
                continue
            for pattern in s.actions:
                if pattern.endswith(":*") and not pattern.startswith("*"):
                    service = pattern.split(":", 1)[0].lower()
                    # an arbitrary action of the service must survive the Denies and the boundary
                    if self.grant(f"{service}:anyaction") is not None:
                        found.setdefault(service, []).append(s.origin)
        return {k: tuple(dict.fromkeys(v)) for k, v in found.items()}

    def granted_patterns(self) -> list[tuple[str, str]]:
        """(action pattern, origin) pairs of every Allow, for used-versus-granted comparisons."""
        return [(("NOT " if s.not_action else "") + a, s.origin) for s in self.allows for a in s.actions]
