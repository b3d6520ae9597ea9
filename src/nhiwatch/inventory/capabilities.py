"""Reachability to a capability (read secrets, read data, use KMS keys) through the principal graph.

A principal *holds* a capability when the evaluator allows it one of the capability's actions on some
resource: on `*` or on a resource its identity policies name (resources without a resource policy), or
on a resource whose resource policy (file or live: inventory/resource_policies.py) grants it, within
an account (identity OR resource policy) or across accounts (both), Deny, boundary, SCPs and RCPs
applied. A principal *reaches* a capability when it holds it, or can act as one that does along the
graph's act edges, or can escalate: once it has written AdministratorAccess onto a principal (or added
one to an admin group) that principal is asked again, with its boundary, the SCPs and RCPs still in
force. The route kept is the shortest, as for admin.

Computed lazily, per capability and mode, in one pass over the reversed act edges (a multi-source
shortest path from every holder), so asking every principal costs one pass, not one search each; the
graph's own build does none of this work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from nhiwatch.inventory.evaluate import CompiledPolicy, IdentityPolicies, Resource, compile_policy
from nhiwatch.inventory.graph import JOIN, POSSIBLE, SURE, Check, Edge, Escalation, PrincipalGraph, spread_back
from nhiwatch.inventory.principals import without_path


@dataclass(frozen=True)
class Capability:
    name: str
    title: str
    actions: tuple[str, ...]

    @property
    def lowered(self) -> frozenset[str]:
        return frozenset(a.lower() for a in self.actions)

    @property
    def in_order(self) -> tuple[str, ...]:
        """The actions lowercased, in the order asked (a set's order would change from run to run, and with
        it which grant a route shows)."""
        return tuple(a.lower() for a in self.actions)


CAPABILITIES = {
    "secrets": Capability("secrets", "read secret values",
                          ("secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters",
                           "ssm:GetParametersByPath")),
    "data": Capability("data", "read stored data",
                       ("s3:GetObject", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                        "dynamodb:Scan")),
    "kms": Capability("kms", "decrypt with, or grant use of, KMS keys", ("kms:Decrypt", "kms:CreateGrant")),
}
ADMIN = "admin"
TARGETS = (ADMIN, *CAPABILITIES)  # what `posture paths --to` accepts

_ADMINISTRATOR = compile_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                                         "Resource": "*"}]},
                                "AdministratorAccess (written by the escalation)")
_ANY_RESOURCE_NOTE = {
    "kms": "on any key whose key policy lets the account's IAM policies grant use (the default key policy does)",
}


@dataclass(frozen=True)
class Grant:
    """The evaluator's answer that `principal` may do `check.action` on `check.resource`."""
    principal: str
    check: Check
    note: str = ""
    escalated: bool = False          # asked after an escalation wrote AdministratorAccess onto the principal

    @property
    def conditional(self) -> bool:
        return self.check.conditional

    def to_dict(self) -> dict:
        out = {"principal": self.principal, **self.check.to_dict()}
        if self.note:
            out["note"] = self.note
        if self.escalated:
            out["escalated"] = True
        return out


@dataclass(frozen=True)
class CapabilityRoute:
    start: str
    capability: str
    hops: tuple[Edge, ...]
    grant: Grant

    @property
    def conditional(self) -> bool:
        return self.grant.conditional or any(h.conditional for h in self.hops)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(h.method for h in self.hops)

    def to_dict(self) -> dict:
        return {"start": self.start, "capability": self.capability, "holder": self.grant.principal,
                "conditional": self.conditional, "methods": list(self.methods),
                "hops": [h.to_dict() for h in self.hops], "grant": self.grant.to_dict()}


CAPABILITY_ACTIONS = frozenset(a for c in CAPABILITIES.values() for a in c.lowered)


def resources_naming(resources: Mapping[str, Resource]) -> dict[str, list[Resource]]:
    """Principal ARN, account id or "*" -> the resources whose policy has an Allow naming it: where a
    grant may come from without any identity policy."""
    named: dict[str, list[Resource]] = {}
    for resource in resources.values():
        if resource.policy is None:
            continue
        for statement in resource.policy.statements:
            if not statement.allow or statement.principals is None:
                continue
            names = statement.principals
            keys = {"*"} if names.everyone or statement.not_principal else names.accounts | names.arns
            for key in keys:
                bucket = named.setdefault(key, [])
                if resource not in bucket:
                    bucket.append(resource)
    return named


def may_hold_capability(graph: PrincipalGraph) -> Callable[[Any], bool]:
    """A cheap test, for the graph's build, of whether a node may hold some capability: an identity Allow
    names one of the actions, or a resource policy names the node, its account or anyone."""
    named = resources_naming(graph.resources)
    held: dict[int, bool] = {}

    def test(node: Any) -> bool:
        for policy in node.policies.identity:
            if id(policy) not in held:
                held[id(policy)] = bool(policy.allowed_among(CAPABILITY_ACTIONS))
            if held[id(policy)]:
                return True
        return bool(named) and any(k in named for k in (node.arn, without_path(node.arn), node.account, "*"))

    return test


class CapabilityReach:
    """Capability routes of one graph (made once per graph by `capability_reach(graph)`)."""

    def __init__(self, graph: PrincipalGraph, resources: dict[str, Resource]):
        self.graph = graph
        self.resources = resources
        self._named = resources_naming(resources)
        # the request's resource for each known resource (S3: its objects), so a grant an identity policy
        # names is asked with that resource's policy in force
        self._known = {_as_target(r, "s3:getobject").arn: _as_target(r, "s3:getobject") for r in resources.values()}
        self._by_account: dict[str | None, list[Resource]] = {}
        for resource in resources.values():
            self._by_account.setdefault(resource.account, []).append(resource)
        self._held: dict[tuple[str, int], frozenset[str]] = {}
        self._grants: dict[tuple[str, str], Grant | None] = {}
        self._next: dict[tuple[str, str], dict[str, tuple[int, Any]]] = {}

    # -- holding -------------------------------------------------------------------------------------------

    def _held_actions(self, policies: IdentityPolicies, capability: Capability) -> frozenset[str]:
        held: set[str] = set()
        for policy in policies.identity:
            key = (capability.name, id(policy))
            if key not in self._held:
                self._held[key] = policy.allowed_among(capability.lowered)
            held |= self._held[key]
        return frozenset(held)

    def _naming(self, arn: str, account: str) -> list[Resource]:
        found: list[Resource] = []
        for key in dict.fromkeys((arn, without_path(arn), account, "*")):
            found += [r for r in self._named.get(key, ()) if r not in found]
        return found

    def _candidates(self, node: Any, policies: IdentityPolicies, capability: Capability
                    ) -> Iterator[tuple[str, Resource | str, str]]:
        """(action, resource, note) worth asking, cheapest first: `*` and the identity Allows' own
        resources, then resources whose policy names the principal, then same-account resources with a
        policy (a Deny there, or a key policy, may decide)."""
        held = self._held_actions(policies, capability)
        for action in capability.in_order:
            if action not in held:
                continue
            service = action.split(":", 1)[0]
            yield action, "*", _ANY_RESOURCE_NOTE.get(service, f"on any {service} resource without a resource "
                                                               "policy that denies it")
            for statement in policies.identity_for(action)[0]:
                if not statement.not_resource:
                    for pattern in statement.resources:
                        if pattern != "*":
                            yield action, pattern, ""
        for resource in self._naming(node.arn, node.account):
            for action in _actions_on(resource, capability):
                yield action, _as_target(resource, action), "granted by the resource policy"
        if held:
            for resource in [*self._by_account.get(node.account, ()), *self._by_account.get(None, ())]:
                for action in _actions_on(resource, capability):
                    if action in held:
                        yield action, _as_target(resource, action), ""

    def grant(self, arn: str, name: str, policies: IdentityPolicies | None = None,
              escalated: bool = False) -> Grant | None:
        """Whether the principal holds the capability itself: the first allowed request, else the first
        conditional one; None when none is possible."""
        key = (arn, name) if policies is None else None
        if key is not None and key in self._grants:
            return self._grants[key]
        graph = self.graph
        node = graph.nodes[arn]
        policies = policies or node.policies
        capability = CAPABILITIES[name]
        best: Grant | None = None
        seen: set[tuple[str, str]] = set()
        for action, resource, note in self._candidates(node, policies, capability):
            if isinstance(resource, str):
                resource = self._known.get(resource, resource)
            target = resource.arn if isinstance(resource, Resource) else resource
            if (action, target) in seen:
                continue
            seen.add((action, target))
            decision = graph._decide(node, action, resource, policies=policies)
            if not decision.possible:
                continue
            found = Grant(arn, Check.of(action, target, decision), note, escalated)
            if not found.conditional:
                best = found
                break
            best = best or found
        if key is not None:
            self._grants[key] = best
        return best

    def _escalated_grant(self, escalation: Escalation, name: str) -> Grant | None:
        """The capability of the principal an escalation makes admin, with what was written added."""
        if escalation.foothold:
            return None  # "any principal of a kind": no one principal to ask
        graph = self.graph
        end = graph.nodes.get(escalation.end)
        if end is None:
            return None
        added: tuple[CompiledPolicy, ...] = (_ADMINISTRATOR,)
        if escalation.write.method == JOIN.id and escalation.write.target in graph.nodes:
            added = graph.nodes[escalation.write.target].policies.identity
        policies = IdentityPolicies([*end.policies.identity, *added], end.policies.boundary, end.policies.session)
        return self.grant(end.arn, name, policies, escalated=True)

    # -- routes --------------------------------------------------------------------------------------------

    def _distances(self, name: str, mode: str) -> dict[str, tuple[int, Any]]:
        key = (name, mode)
        if key in self._next:
            return self._next[key]
        graph = self.graph
        best: dict[str, tuple[int, Any]] = {}
        for arn in graph.nodes:
            held = self.grant(arn, name)
            if held is not None and (mode == POSSIBLE or not held.conditional):
                best[arn] = (0, held)
        for arn, found in graph.escalations[mode].items():
            for escalation in sorted(found, key=lambda e: e.length):
                if arn in best and best[arn][0] <= escalation.length:
                    break
                held = self._escalated_grant(escalation, name)
                if held is not None and (mode == POSSIBLE or not held.conditional):
                    best[arn] = (escalation.length, (escalation, held))
                    break
        self._next[key] = spread_back(best, graph.edges, mode)
        return best

    def route(self, arn: str, name: str, mode: str = SURE) -> CapabilityRoute | None:
        """The shortest way from `arn` to the capability (zero hops when it holds it), or None."""
        steps = self._distances(name, mode)
        if arn not in steps:
            return None
        hops: list[Edge] = []
        here = arn
        while True:
            _, step = steps[here]
            if isinstance(step, Grant):
                return CapabilityRoute(arn, name, tuple(hops), step)
            if isinstance(step, tuple):
                escalation, held = step
                hops += [escalation.write, *escalation.reach]
                return CapabilityRoute(arn, name, tuple(hops), held)
            hops.append(step)
            here = step.target


def _actions_on(resource: Resource, capability: Capability) -> list[str]:
    """The capability's actions that act on this kind of resource (by the ARN's service)."""
    service = resource.arn.split(":", 3)[2] if resource.arn.count(":") >= 3 else ""
    return [a for a in capability.in_order if a.split(":", 1)[0] == service]


def _as_target(resource: Resource, action: str) -> Resource:
    """The request's resource: for S3 object reads, the bucket's objects under the bucket's policy."""
    if action.startswith("s3:") and ":::" in resource.arn and "/" not in resource.arn:
        return Resource(f"{resource.arn}/*", resource.account, resource.tags, resource.policy)
    return resource


def capability_reach(graph: PrincipalGraph) -> CapabilityReach:
    """The graph's capability reachability, made on first use and kept on the graph."""
    reach = graph._cache.get(("capability-reach",))
    if reach is None:
        reach = graph._cache[("capability-reach",)] = CapabilityReach(graph, graph.resources)
    return reach


def capability_routes(graph: PrincipalGraph, arn: str) -> dict[str, dict | None]:
    """The inventory's view: per capability, the shortest route (sure, else conditional), or None."""
    reach = capability_reach(graph)
    out: dict[str, dict | None] = {}
    for name in CAPABILITIES:
        route = reach.route(arn, name, SURE) or reach.route(arn, name, POSSIBLE)
        out[name] = route.to_dict() if route is not None else None
    return out


