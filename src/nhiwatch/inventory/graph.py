"""The principal graph: which principal can act as which, and which can become admin, by which route.

Nodes are the users, roles and groups of IAM exports (a group node is a hypothetical member holding only
the group's policies; for the verdict a group also stands for its members). An edge A -> B says "A can
act as B" by one method of inventory/methods.py, with every permission check it needs, each decided by
`evaluate.evaluate` on the concrete target (so grants scoped to the target's ARN count, policy variables
resolve, Deny, boundaries and conditions apply):

- act edges: sts:AssumeRole (the caller's permission and the role's trust policy), minting another
  user's credentials, rewriting a role's trust policy, passing a role to a service that runs as it
  (the role must trust the service), taking over an existing resource of a service (any role that
  trusts the service may be the one it runs as: existing resources are not in IAM exports);
- escalations at a node Z: Z writes the permissions of a principal Y it can act as (Y may be Z itself:
  its own, its groups' or its managed policies), or adds Y to a group that reaches admin; a write
  granted on every principal of a kind counts too (any foothold of that kind completes it: the route
  says so), as does SetDefaultPolicyVersion when the export lists another version or only defaults.

A node is admin when the evaluator allows it every probe action on `*`. A node reaches admin when an
act-edge route leads to an admin or to a node that can escalate; the route kept is the shortest (fewest
hops). An edge whose outcome depends on a condition the evaluation cannot decide is conditional: routes
through it are shown as conditional and do not make the start exploitable.

Requests are made as an attacker would: now (`as_of`), with fresh temporary credentials; MFA unknown for
users and for roles people may assume, absent for roles only services assume (whose session tags are
then known to be none); `sts:ExternalId` absent (a principal of the account does not hold a vendor's
secret); `iam:PassedToService` and `iam:PolicyARN` (AdministratorAccess) set to what the method uses.

To stay fast on large accounts (bench/graph_bench.py: 10,160 principals in about 10 s, 16 s in one
account) the build indexes roles by what their trust policies name; evaluates a method only for
principals that hold an Allow of each of its actions, and only on targets those Allows could name;
tries targets best first (admins, principals that make themselves admin, principals that can do
something) and stops a method at its first edge to an admin or a self-escalating principal, so a
principal's routes name each method once; sends act edges to principals that can do nothing only from
callers that can write that kind of principal; and looks for escalations only where write permissions
are held.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, Iterable, Iterator, Mapping

from nhiwatch.inventory.evaluate import (CompiledPolicy, Decision, IdentityPolicies, Organization, Principal,
                                         Request, Resource, compile_policy, evaluate)
from nhiwatch.inventory.methods import ACTIONS, ADMIN_POLICY_ARN, BY_ID, COMBOS, METHODS, Method, by_edge
from nhiwatch.inventory.principals import (Node, lists_only_default_versions, nodes_of, policy_versions,
                                           without_path)

# Actions whose being allowed on `*` makes a node admin: one no policy names (only `*` grants it) and the
# sensitive ones a NotAction or a Deny most often carves out.
ADMIN_PROBES = ("nhiwatch:anyaction", "iam:putrolepolicy", "iam:attachuserpolicy", "iam:createpolicyversion",
                "iam:passrole", "sts:assumerole", "organizations:leaveorganization", "ec2:runinstances",
                "s3:getobject", "kms:decrypt", "lambda:createfunction")
WRITE_METHODS = tuple(m for m in by_edge("write"))
# Who may write a user's or a role's permissions: an act edge to a principal that can do nothing itself
# still matters to them.
USER_WRITES = frozenset({"iam:putuserpolicy", "iam:attachuserpolicy", "iam:putgrouppolicy", "iam:attachgrouppolicy",
                         "iam:createpolicyversion", "iam:setdefaultpolicyversion", "iam:addusertogroup"})
ROLE_WRITES = frozenset({"iam:putrolepolicy", "iam:attachrolepolicy", "iam:createpolicyversion",
                         "iam:setdefaultpolicyversion"})
JOIN = BY_ID["iam-013"]
MINT_METHODS, PASS_METHODS, EXISTING_METHODS = by_edge("mint"), by_edge("pass"), by_edge("existing")
Context = tuple[tuple[str, str], ...]  # condition keys a request carries, hashable
ACTION_SET = frozenset(ACTIONS)
ADMIN_POLICY_CONTEXT: Context = (("iam:PolicyARN", ADMIN_POLICY_ARN),)  # writes attach AdministratorAccess
ASSUME = BY_ID["sts-001"]
AWS_MANAGED = "arn:aws:iam::aws:policy/"
SURE, POSSIBLE = "sure", "possible"  # routes through allowed edges only / through conditional ones too


@dataclass(frozen=True)
class Check:
    """One permission check of an edge: the request and what the evaluator said."""
    action: str
    resource: str
    verdict: str                    # allowed | conditional
    statements: tuple[str, ...] = ()
    undecided: tuple[str, ...] = ()
    principal: str = ""             # who is asked when it is not the edge's source (a service, for trust)

    @classmethod
    def of(cls, action: str, resource: str, decision: Decision, principal: str = "") -> "Check":
        return cls(action, resource, decision.verdict.value, decision.statements, tuple(sorted(decision.undecided)),
                   principal)

    @property
    def conditional(self) -> bool:
        return self.verdict != "allowed"

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"action": self.action, "resource": self.resource, "verdict": self.verdict,
                               "statements": list(self.statements)}
        if self.undecided:
            out["undecided"] = list(self.undecided)
        if self.principal:
            out["principal"] = self.principal
        return out


@dataclass(frozen=True)
class Edge:
    """`source` can act as `target` (act edges), or write `target`'s permissions (write), or add `subject`
    to the group `target` (join), by `method`."""
    source: str
    target: str
    method: str
    checks: tuple[Check, ...]
    note: str = ""
    subject: str = ""

    @cached_property
    def conditional(self) -> bool:
        return any(c.conditional for c in self.checks)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"from": self.source, "to": self.target, "method": self.method,
                               "title": BY_ID[self.method].title, "conditional": self.conditional,
                               "checks": [c.to_dict() for c in self.checks]}
        if self.note:
            out["note"] = self.note
        if self.subject:
            out["subject"] = self.subject
        return out


@dataclass(frozen=True)
class Escalation:
    """At a node: write Y's permissions (or add Y to an admin group), then act as Y along `reach`."""
    write: Edge
    reach: tuple[Edge, ...]
    foothold: bool = False           # the write reaches every principal of a kind: any one the holder has

    @property
    def conditional(self) -> bool:
        return self.write.conditional or any(e.conditional for e in self.reach)

    @property
    def length(self) -> int:
        # a route that needs a foothold elsewhere ranks after one that does not
        return 1 + len(self.reach) + self.foothold

    @property
    def end(self) -> str:
        """The principal made admin (for a join: the user added)."""
        if self.write.method == JOIN.id:
            return self.write.subject
        return self.reach[-1].target if self.reach else self.write.target


@dataclass(frozen=True)
class Route:
    """A way from `start` to admin: every hop with its evidence; `methods` names it as the catalogue does
    (a write followed by one act on the same principal is the catalogue's combined path)."""
    start: str
    hops: tuple[Edge, ...]
    admin: str                       # the admin principal at the end (or the principal made admin)
    conditional: bool
    via_member: str = ""             # for a group: the member whose route it is
    foothold: bool = False           # ends by giving admin to any principal of a kind (`admin` is a pattern)

    @property
    def methods(self) -> tuple[str, ...]:
        names: list[str] = []
        hops = list(self.hops)
        i = 0
        while i < len(hops):
            hop = hops[i]
            following = hops[i + 1] if i + 1 < len(hops) else None
            combo = COMBOS.get((hop.method, following.method)) if following else None
            if combo and following is not None and following.source == hop.source and following.target in (
                    hop.target, hop.subject) and i + 2 == len(hops):
                names.append(combo)
                i += 2
                continue
            names.append(hop.method)
            i += 1
        return tuple(names)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"start": self.start, "admin": self.admin, "conditional": self.conditional,
                               "methods": list(self.methods), "hops": [h.to_dict() for h in self.hops]}
        if self.via_member:
            out["via_member"] = self.via_member
        if self.foothold:
            out["foothold"] = True
        return out


# -- the graph ---------------------------------------------------------------------------------------------

@dataclass
class _Index:
    """Roles by what their trust policies name, principals by account."""
    named: dict[str, list[str]] = field(default_factory=dict)        # principal ARN -> roles naming it
    accounts: dict[str, list[str]] = field(default_factory=dict)     # account -> roles trusting the account
    anyone: list[str] = field(default_factory=list)                  # roles trusting Principal "*"
    services: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (account, service) -> roles
    users: dict[str, list[str]] = field(default_factory=dict)        # account -> users
    roles: dict[str, list[str]] = field(default_factory=dict)        # account -> roles
    groups: dict[str, list[str]] = field(default_factory=dict)       # account -> groups
    holders: dict[str, list[str]] = field(default_factory=dict)      # managed policy ARN -> holders


class PrincipalGraph:
    """Build with `PrincipalGraph.build(exports, reports, as_of=...)`; ask `routes(arn)`, `is_admin(arn)`."""

    def __init__(self, nodes: dict[str, Node], *, as_of: datetime | None = None, org: Organization | None = None,
                 policy_versions: Mapping[str, int] | None = None, hidden_versions: bool = False,
                 resources: Mapping[str, Resource] | None = None):
        self.nodes = nodes
        self.as_of = as_of or datetime.now(timezone.utc)
        self.org = org
        # ARN -> resource with its resource policy: asked only by capability reachability (capabilities.py)
        self.resources = dict(resources or {})
        self.policy_versions = dict(policy_versions or {})
        self.hidden_versions = hidden_versions  # the export lists default versions only
        self.admin: dict[str, Check] = {}
        self.edges: dict[str, list[Edge]] = {arn: [] for arn in nodes}
        self.escalations: dict[str, dict[str, list[Escalation]]] = {SURE: {}, POSSIBLE: {}}
        self._index = _Index()
        self._cache: dict[tuple, Any] = {}
        self._next: dict[str, dict[str, tuple[int, Edge | Escalation | None]]] = {}
        self._build()

    @classmethod
    def build(cls, exports: Mapping[str, Mapping[str, Any]], reports: Mapping[str, Iterable[Mapping[str, Any]]] = {},
              *, known_policies: Mapping[str, Any] | None = None, as_of: datetime | None = None,
              org: Organization | None = None, resources: Mapping[str, Resource] | None = None) -> "PrincipalGraph":
        """exports: account -> authorization-details payload ('aws' entries skipped); reports: account ->
        credential-report rows; org: SCPs and RCPs; resources: ARN -> Resource with its policy."""
        nodes: dict[str, Node] = {}
        versions: dict[str, int] = {}
        hidden = False
        for account, payload in exports.items():
            if account == "aws":
                continue
            nodes.update(nodes_of(payload, reports.get(account, ()), known_policies, as_of))
            versions.update(policy_versions(payload))
            hidden = hidden or lists_only_default_versions(payload)
        return cls(nodes, as_of=as_of, org=org, policy_versions=versions, hidden_versions=hidden,
                   resources=resources)

    # -- evaluation helpers ------------------------------------------------------------------------------

    def _template(self, context: Context) -> Request:
        """A request carrying one context (and the time), normalized once and reused by `Request.again`."""
        key = ("context", context)
        if key not in self._cache:
            self._cache[key] = Request(Principal.anonymous(), "none:none", "*", dict(context),
                                       absent=("sts:externalid",), at=self.as_of)
        return self._cache[key]

    def _decide(self, node: Node, action: str, resource: Resource | str, context: Context = (),
                principal: Principal | None = None, policies: IdentityPolicies | None = None) -> Decision:
        request = self._template(context).again(principal or node.principal, action, resource)
        return evaluate(request, node.policies if policies is None else policies, self.org)

    def _checks(self, node: Node, actions: Iterable[str], resource: str,
                context: Context = ()) -> tuple[Check, ...] | None:
        """Every action allowed (or conditional) on `resource`; None as soon as one is not. Each check is
        made once: methods share steps (PassRole of one role to one service, the same slot...)."""
        out = []
        for action in actions:
            key = ("check", node.arn, action, resource, context)
            check = self._cache.get(key, False)
            if check is False:
                decision = self._decide(node, action, resource, context)
                check = self._cache[key] = Check.of(action, resource, decision) if decision.possible else None
            if check is None:
                return None
            out.append(check)
        return tuple(out)

    def _slot(self, node: Node, actions: tuple[str, ...], creates: str = "") -> tuple[Check, ...] | None:
        """The actions allowed together on one resource the caller picks: tried on `*` and on each
        resource the caller's Allow statements name (as written: a wildcard stands for any name). With
        `creates` (an existing resource is sought), a name pattern under which the caller may create such
        resources itself is passed over: what is there is taken to be its own."""
        key = ("slot", node.arn, actions, creates)
        if key in self._cache:
            return self._cache[key]
        candidates = ["*"]
        for action in actions:
            for statement in node.policies.identity_for(action.lower())[0]:
                if not statement.not_resource:
                    candidates += [r for r in statement.resources if r not in candidates]
        if creates:
            candidates = [r for r in candidates if r == "*" or "*" not in r and "?" not in r
                          or not self._decide(node, creates, r).possible]
        best: tuple[Check, ...] | None = None
        for resource in candidates:
            checks = self._checks(node, actions, resource)
            if checks is not None and not any(c.conditional for c in checks):
                best = checks
                break
            if checks is not None and best is None:
                best = checks
        self._cache[key] = best
        return best

    def _service_trusts(self, role: Node, service: str) -> Check | None:
        key = ("trust", role.arn, service)
        if key not in self._cache:
            request = self._template((("aws:SourceAccount", role.account),)).again(
                Principal.service(service), "sts:AssumeRole", role.trust or role.arn)
            decision = evaluate(request, None, self.org)
            self._cache[key] = Check.of("sts:AssumeRole", role.arn, decision, service) if decision.possible else None
        return self._cache[key]

    def _admits_admin(self, node: Node) -> bool:
        """A write of AdministratorAccess would make the node admin: its boundary (if any) allows it."""
        boundary = node.policies.boundary
        if boundary is None:
            return True
        key = ("boundary", id(boundary))
        if key not in self._cache:
            as_identity = IdentityPolicies([boundary])
            self._cache[key] = all(self._decide(node, probe, "*", policies=as_identity).allowed
                                   for probe in ADMIN_PROBES)
        return bool(self._cache[key])

    # -- building ----------------------------------------------------------------------------------------

    def _build(self) -> None:
        self._index_nodes()
        for node in self.nodes.values():
            node.held = self._held(node)
            node.methods = frozenset(m.id for m in METHODS if all(a in node.held for a in m.lowered))
            self._decide_admin(node)
        # principals that can do something: admins, holders of a method's action, principals a trust names
        # ...and principals that may hold a capability (secrets, data, kms): act edges to them make the
        # capability routes of capabilities.py
        from nhiwatch.inventory.capabilities import may_hold_capability

        may_hold = may_hold_capability(self)
        self._live = {arn for arn, node in self.nodes.items()
                      if arn in self.admin or node.held or arn in self._index.named
                      or without_path(arn) in self._index.named or may_hold(node)}
        self._writers = {arn for arn, node in self.nodes.items() if arn not in self.admin and any(
            node.holds_all(m) for m in (*WRITE_METHODS, JOIN))}
        self._user_writers = {a for a in self._writers if self.nodes[a].held & USER_WRITES}
        self._role_writers = {a for a in self._writers if self.nodes[a].held & ROLE_WRITES}
        self._rank = self._rank_targets()
        for node in self.nodes.values():
            if self._is_sure_admin(node.arn):
                continue  # an admin needs no route
            self.edges[node.arn] = list(self._act_edges(node))
        for mode in (SURE, POSSIBLE):
            self._settle(mode)

    def _index_nodes(self) -> None:
        index = self._index
        for node in self.nodes.values():
            by_kind = {"user": index.users, "role": index.roles, "group": index.groups}[node.kind]
            by_kind.setdefault(node.account, []).append(node.arn)
            for policy in node.managed:
                index.holders.setdefault(policy, []).append(node.arn)
            if node.kind != "role":
                continue
            for service in node.trusted_services:
                index.services.setdefault((node.account, service), []).append(node.arn)
        for node in self.nodes.values():
            if node.kind == "role" and node.trust is not None:
                self._index_trust(node)

    def _index_trust(self, role: Node) -> None:
        index = self._index
        for kind, value in role.trust_names:
            if kind.lower() != "aws":
                continue
            if value == "*":
                index.anyone.append(role.arn)
            elif value.isdigit() and len(value) == 12:
                index.accounts.setdefault(value, []).append(role.arn)
            elif value.endswith(":root"):
                index.accounts.setdefault(value.split(":")[4], []).append(role.arn)
            else:
                index.named.setdefault(value, []).append(role.arn)
                short = without_path(value)
                if short != value:
                    index.named.setdefault(short, []).append(role.arn)

    def _decide_admin(self, node: Node) -> None:
        verdict = "allowed"
        statements: list[str] = []
        undecided: set[str] = set()
        for probe in ADMIN_PROBES:
            decision = self._decide(node, probe, "*")
            if not decision.possible:
                return
            if decision.conditional:
                verdict = "conditional"
                undecided |= decision.undecided
            statements += [s for s in decision.statements if s not in statements]
        self.admin[node.arn] = Check("*", "*", verdict, tuple(statements), tuple(sorted(undecided)))

    def _is_sure_admin(self, arn: str) -> bool:
        check = self.admin.get(arn)
        return check is not None and not check.conditional

    def _held(self, node: Node) -> frozenset[str]:
        """The methods' actions named by an Allow of the node's identity policies (each policy read once)."""
        held: set[str] = set()
        for policy in node.policies.identity:
            key = ("held", id(policy))
            if key not in self._cache:
                self._cache[key] = (policy, policy.allowed_among(ACTION_SET))  # the policy kept: ids stay unique
            held |= self._cache[key][1]
        return frozenset(held)

    def _rank_targets(self) -> dict[str, int]:
        """How promising each principal is as the end of an act edge: 0 admin, 1 can make itself admin,
        2 can do something, 3 nothing (only a writer's combination can use it). Targets are tried in this
        order, and a method stops at its first edge to a 0 or 1: that edge already makes the caller
        escalate, and further ones would only repeat it."""
        rank = {}
        admin_groups = {a for a, n in self.nodes.items() if n.kind == "group" and self._is_sure_admin(a)}
        for arn, node in self.nodes.items():
            if self._is_sure_admin(arn):
                rank[arn] = 0
            elif arn in self._writers and self._escalates_alone(node, admin_groups):
                rank[arn] = 1
            else:
                rank[arn] = 2 if arn in self._live else 3
        return rank

    def _escalates_alone(self, node: Node, admin_groups: set[str]) -> bool:
        """The node can give itself admin without a condition: a write on itself, or joining an admin group."""
        for method in WRITE_METHODS:
            if node.holds_all(method) and self._admits_admin(node):
                edge = self._write_edge(node, node, method)
                if edge is not None and not edge.conditional:
                    return True
        if node.kind == "user" and node.holds("iam:addusertogroup") and admin_groups:
            edge = self._join_edge(node, node, admin_groups)
            return edge is not None and not edge.conditional
        return False

    def _escalates_alone_possibly(self, node: Node) -> bool:
        return any(node.holds_all(m) and self._write_edge(node, node, m) is not None for m in WRITE_METHODS)

    def _ranked(self, arns: Iterable[str]) -> list[str]:
        return sorted(arns, key=self._rank.__getitem__)

    def _enough(self, edge: Edge) -> bool:
        """An unconditional edge to an admin or a self-escalating principal: no other target of the same
        method needs trying."""
        return self._rank[edge.target] <= 1 and not edge.conditional

    def _blocked(self, node: Node, actions: Iterable[str], kind: str) -> bool:
        """No principal of that kind can be the target: a Deny covers every one of them, or the boundary
        never allows the action (asked once, on a pattern standing for all of them)."""
        boundary = node.policies.boundary
        pattern = f"arn:aws:iam::{node.account}:{kind}/*"
        return any((boundary is not None and not boundary.for_action(a.lower())[0])
                   or self._decide(node, a, pattern).denied for a in actions)

    def _targets(self, node: Node, actions: Iterable[str], pool: list[str]) -> list[str]:
        """The principals of `pool` some Allow of `actions` names, read loosely (a wildcard or a policy
        variable stands for anything): the evaluator then decides each. A NotResource keeps them all."""
        patterns: list[str] = []
        for action in actions:
            for statement in node.policies.identity_for(action.lower())[0]:
                if statement.not_resource or "*" in statement.resources:
                    return pool
                patterns += statement.resources
        loose = re.compile("|".join(_loose_pattern(p) for p in dict.fromkeys(patterns)))
        return [arn for arn in pool if loose.fullmatch(arn)]

    def _useful(self, source: Node, target: str) -> bool:
        """An act edge to `target` can matter: the target can do something, or the source could write its
        permissions first."""
        if target in self._live:
            return True
        kind = self.nodes[target].kind
        return source.arn in (self._user_writers if kind == "user" else self._role_writers)

    # -- act edges ---------------------------------------------------------------------------------------

    def _act_edges(self, node: Node) -> Iterator[Edge]:
        yield from self._assume_edges(node)
        yield from self._mint_edges(node)
        yield from self._trust_edges(node)
        for method in PASS_METHODS:
            yield from self._pass_edges(node, method)
        for method in EXISTING_METHODS:
            yield from self._existing_edges(node, method)

    def _assume_edges(self, node: Node) -> Iterator[Edge]:
        index = self._index
        candidates = list(index.named.get(node.arn, ()))
        if node.holds("sts:assumerole"):
            candidates += index.accounts.get(node.account, []) + index.anyone
        for arn in self._ranked(a for a in dict.fromkeys(candidates) if a in self.nodes):
            role = self.nodes[arn]
            if arn == node.arn or role.trust is None or not self._useful(node, arn):
                continue
            decision = self._decide(node, "sts:AssumeRole", role.trust)
            if decision.possible:
                edge = Edge(node.arn, arn, ASSUME.id, (Check.of("sts:AssumeRole", arn, decision),))
                yield edge
                if self._enough(edge):
                    return

    def _mint_edges(self, node: Node) -> Iterator[Edge]:
        methods = [m for m in MINT_METHODS if node.holds_all(m)]
        if not methods:
            return
        pool = self._index.users.get(node.account, [])
        linked: set[str] = set()  # one way into a principal that is not a goal is enough
        for method in methods:
            if self._blocked(node, method.actions, "user"):
                continue
            for arn in self._ranked(self._targets(node, method.actions, pool)):
                user = self.nodes[arn]
                if arn == node.arn or (arn in linked and self._rank[arn] > 1) or not _mint_applies(method, user) \
                        or not self._useful(node, arn):
                    continue
                checks = self._checks(node, method.actions, arn)
                if checks is not None:
                    edge = Edge(node.arn, arn, method.id, checks)
                    yield edge
                    linked.add(arn)
                    if self._enough(edge):
                        break

    def _trust_edges(self, node: Node) -> Iterator[Edge]:
        method = BY_ID["iam-012"]
        if not node.holds("iam:updateassumerolepolicy") or self._blocked(node, method.actions, "role"):
            return
        for arn in self._ranked(self._targets(node, method.actions, self._index.roles.get(node.account, []))):
            role = self.nodes[arn]
            if arn == node.arn or not self._useful(node, arn):
                continue
            checks = self._checks(node, method.actions, arn)
            if checks is None:
                continue
            assumed = self._assume_after_rewrite(node, role)
            if assumed is not None:
                edge = Edge(node.arn, arn, method.id, checks + (assumed,),
                            note="after the rewrite the trust policy names the caller")
                yield edge
                if self._enough(edge):
                    return

    def _assume_after_rewrite(self, node: Node, role: Node) -> Check | None:
        """sts:AssumeRole once the role's trust names the caller: the trust alone allows it, unless a Deny,
        the caller's boundary or an SCP says otherwise (then the evaluator decides)."""
        if self.org is None and node.policies.boundary is None \
                and not node.policies.identity_for("sts:assumerole")[1]:
            return Check("sts:AssumeRole", role.arn, "allowed", ("rewritten trust policy naming the caller",))
        decision = self._decide(node, "sts:AssumeRole", self._trust_naming(node, role))
        return Check.of("sts:AssumeRole", role.arn, decision) if decision.possible else None

    def _trust_naming(self, caller: Node, role: Node) -> Resource:
        key = ("trust-naming", caller.arn)
        if key not in self._cache:
            document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": caller.arn},
                                                                "Action": "sts:AssumeRole"}]}
            self._cache[key] = compile_policy(document, f"trust policy naming {caller.name}", resource_policy=True)
        policy: CompiledPolicy = self._cache[key]
        return Resource(role.arn, role.account, tags=role.trust.tags if role.trust else None, policy=policy)

    def _slots(self, node: Node, method: Method) -> tuple[Check, ...] | None:
        checks: list[Check] = []
        for actions in method.slots.values():
            found = self._slot(node, actions, method.creates if method.edge == "existing" else "")
            if found is None:
                return None
            checks += found
        return tuple(checks)

    def _service_roles(self, node: Node, method: Method) -> Iterator[tuple[Node, Check]]:
        """Roles of the caller's account that trust one of the method's services, with the trust check."""
        seen = set()
        for service in method.services:
            for arn in self._ranked(self._index.services.get((node.account, service), [])):
                role = self.nodes[arn]
                if arn in seen or arn == node.arn or (method.instance_profile and not role.instance_profile):
                    continue
                seen.add(arn)
                if not self._useful(node, arn):
                    continue
                trusted = self._service_trusts(role, service)
                if trusted is not None:
                    yield role, trusted

    def _pass_edges(self, node: Node, method: Method) -> Iterator[Edge]:
        if not node.holds_all(method):
            return
        slots = self._slots(node, method)
        if slots is None or self._blocked(node, method.on("role"), "role"):
            return
        context = (("iam:PassedToService", method.passed_to or ""),)
        for role, trusted in self._service_roles(node, method):
            passing = self._checks(node, method.on("role"), role.arn, context)
            if passing is not None:
                edge = Edge(node.arn, role.arn, method.id, passing + slots + (trusted,))
                yield edge
                if self._enough(edge):
                    return

    def _existing_edges(self, node: Node, method: Method) -> Iterator[Edge]:
        if not node.holds_all(method):
            return
        slots = self._slots(node, method)
        if slots is None:
            return
        kind = method.services[0].split(".")[0]
        for role, trusted in self._service_roles(node, method):
            edge = Edge(node.arn, role.arn, method.id, slots + (trusted,),
                        note=f"an existing {kind} resource the caller may act on may run as {role.name}")
            yield edge
            if self._enough(edge):
                return

    # -- escalations ---------------------------------------------------------------------------------------

    def _reach(self, start: str, mode: str) -> dict[str, tuple[Edge, ...]]:
        """Every node the start can act as (itself included), with the shortest act route to it."""
        routes: dict[str, tuple[Edge, ...]] = {start: ()}
        queue = deque([start])
        while queue:
            arn = queue.popleft()
            for edge in self.edges.get(arn, ()):
                if edge.target in routes or (mode == SURE and edge.conditional):
                    continue
                routes[edge.target] = routes[arn] + (edge,)
                queue.append(edge.target)
        return routes

    def _find_escalations(self, writer: Node, mode: str, admin_groups: set[str]) -> list[Escalation]:
        """The writer's escalations: for each write method (and joining an admin group), the nearest
        principal it can act as (itself first) whose permissions that method can raise to admin; where
        none, a grant on every principal of a kind (a foothold of that kind completes it)."""
        wanted = [m for m in WRITE_METHODS if writer.holds_all(m)]
        joins = writer.holds("iam:addusertogroup") and bool(admin_groups)
        found: list[Escalation] = []
        done: set[str] = set()
        # a principal that makes itself admin needs no other target: its own write is the shortest
        alone = self._rank[writer.arn] == 1 or (mode == POSSIBLE and self._escalates_alone_possibly(writer))
        reach = {writer.arn: ()} if alone else self._reach(writer.arn, mode)
        for arn, route in reach.items():
            target = self.nodes[arn]
            if arn in self.admin or not self._admits_admin(target):
                continue
            for method in wanted:
                if method.id not in done:
                    edge = self._write_edge(writer, target, method)
                    if edge is not None and (mode == POSSIBLE or not edge.conditional):
                        found.append(Escalation(edge, route))
                        done.add(method.id)
            if joins and JOIN.id not in done and target.kind == "user":
                edge = self._join_edge(writer, target, admin_groups)
                if edge is not None and (mode == POSSIBLE or not edge.conditional):
                    found.append(Escalation(edge, route))
                    done.add(JOIN.id)
            if len(done) == len(wanted) + joins:
                break
        for edge in self._any_writes(writer, admin_groups):
            if edge.method not in done and (mode == POSSIBLE or not edge.conditional):
                found.append(Escalation(edge, (), foothold=True))
        return found

    def _any_writes(self, writer: Node, admin_groups: set[str]) -> list[Edge]:
        """Writes granted on every principal of a kind (every user, role, group or customer-managed policy
        of the account): the holder can make any of them admin, so any foothold of that kind completes
        the path. Counted as escalation, as most tools count it, with the caveat in the route."""
        key = ("any", writer.arn, frozenset(admin_groups))
        if key in self._cache:
            return self._cache[key]
        edges: list[Edge] = []
        for method in WRITE_METHODS:
            kind = _written_kind(method) if method.on("target") else "group" if method.on("group") else "policy"
            if not writer.holds_all(method) or not self._has_target(writer, kind):
                continue
            pattern = f"arn:aws:iam::{writer.account}:{kind}/*"
            checks = self._checks(writer, method.actions, pattern, ADMIN_POLICY_CONTEXT)
            if checks is not None:
                what = kind if kind != "policy" else "holder of a customer-managed policy"
                edges.append(Edge(writer.arn, pattern, method.id, checks,
                                  note=f"gives AdministratorAccess to any {what} of the account: a foothold on one "
                                       "completes the path"))
        if writer.holds("iam:addusertogroup") and self._has_target(writer, "user"):
            for group in self._index.groups.get(writer.account, []):
                checks = self._checks(writer, JOIN.actions, group) if group in admin_groups else None
                if checks is not None:
                    edges.append(Edge(writer.arn, group, JOIN.id, checks, subject=f"arn:aws:iam::{writer.account}:user/*",
                                      note="adds any user of the account to the group: a foothold on one completes "
                                           "the path"))
                    break
        self._cache[key] = edges
        return edges

    def _has_target(self, writer: Node, kind: str) -> bool:
        """Some principal of that kind (or holding a customer-managed policy) other than the writer could be
        made admin."""
        key = ("targets", writer.account, kind)
        if key not in self._cache:
            if kind == "policy":
                pool = [h for p, holders in self._index.holders.items() if not p.startswith(AWS_MANAGED)
                        for h in holders if self.nodes[h].account == writer.account]
            else:
                pool = {"user": self._index.users, "role": self._index.roles,
                        "group": self._index.groups}[kind].get(writer.account, [])
            self._cache[key] = [a for a in dict.fromkeys(pool)
                                if a not in self.admin and self._admits_admin(self.nodes[a])][:2]
        return any(arn != writer.arn for arn in self._cache[key])

    def _write_edge(self, writer: Node, target: Node, method: Method) -> Edge | None:
        """How the writer gives `target` AdministratorAccess by `method`, if it can (the same in both modes)."""
        key = ("write", writer.arn, target.arn, method.id)
        if key not in self._cache:
            self._cache[key] = next(self._write_edges(writer, target, method), None)
        return self._cache[key]

    def _write_edges(self, writer: Node, target: Node, method: Method) -> Iterator[Edge]:
        if method.on("target"):
            if target.kind == _written_kind(method):
                checks = self._checks(writer, method.actions, target.arn, ADMIN_POLICY_CONTEXT)
                if checks is not None:
                    yield Edge(writer.arn, target.arn, method.id, checks)
        elif method.on("group"):
            for group in (target.arn,) if target.kind == "group" else target.groups:
                checks = self._checks(writer, method.actions, group, ADMIN_POLICY_CONTEXT)
                if checks is not None:
                    note = "" if group == target.arn else f"{target.name} is a member of {group.rsplit('/', 1)[-1]}"
                    yield Edge(writer.arn, target.arn, method.id, checks, note=note, subject=group)
        else:
            for policy in self._policies_of(target):
                if method.id == "SetExistingDefaultPolicyVersion" and not self._may_switch_version(policy):
                    continue
                checks = self._checks(writer, method.actions, policy, ADMIN_POLICY_CONTEXT)
                if checks is not None:
                    yield Edge(writer.arn, target.arn, method.id, checks,
                               note=f"{target.name} holds {policy.rsplit('/', 1)[-1]}", subject=policy)

    def _policies_of(self, target: Node) -> list[str]:
        """Customer-managed policies in force for the target (its own and its groups'): AWS-managed ones
        cannot be changed."""
        held = list(target.managed)
        for group in target.groups:
            held += self.nodes[group].managed if group in self.nodes else ()
        return [p for p in dict.fromkeys(held) if p and not p.startswith(AWS_MANAGED)]

    def _may_switch_version(self, policy: str) -> bool:
        """Another version can become the default: the export lists one, or leaves versions out."""
        return self.policy_versions.get(policy, 1) > 1 or self.hidden_versions

    def _join_edge(self, writer: Node, user: Node, admin_groups: set[str]) -> Edge | None:
        """The writer adds `user` to a group that reaches admin (one it is not in yet)."""
        for group in self._index.groups.get(user.account, []):
            if group not in admin_groups or group in user.groups:
                continue
            key = ("join", writer.arn, group)
            if key not in self._cache:
                self._cache[key] = self._checks(writer, JOIN.actions, group)
            checks = self._cache[key]
            if checks is not None:
                return Edge(writer.arn, group, JOIN.id, checks, note=f"adds {user.name} to the group", subject=user.arn)
        return None

    def _settle(self, mode: str) -> None:
        """Escalations and the shortest way to admin of every node, in one mode. Joining a group pays once
        the group is known to reach admin, so the two are found together until nothing changes (after the
        first round only the writers that may add users to groups are looked at again)."""
        escalations = self.escalations[mode]
        admin_groups: set[str] = set()
        writers = self._writers
        while True:
            for arn in writers:
                found = self._find_escalations(self.nodes[arn], mode, admin_groups)
                if found:
                    escalations[arn] = found
            self._next[mode] = self._distances(mode)
            reaching = {g for g in self._index_groups() if g in self._next[mode]}
            if reaching <= admin_groups:
                return
            admin_groups |= reaching
            writers = {a for a in self._writers if self.nodes[a].holds("iam:addusertogroup")}

    def _index_groups(self) -> Iterator[str]:
        for groups in self._index.groups.values():
            yield from groups

    def _distances(self, mode: str) -> dict[str, tuple[int, Edge | Escalation | None]]:
        """Fewest hops to admin from every node that can get there, with its first step (Dijkstra from
        the goals along reversed act edges)."""
        best: dict[str, tuple[int, Edge | Escalation | None]] = {}
        heap: list[tuple[int, str]] = []
        for arn, check in self.admin.items():
            if mode == POSSIBLE or not check.conditional:
                best[arn] = (0, None)
        for arn, found in self.escalations[mode].items():
            shortest = min(found, key=lambda e: e.length)
            if arn not in best or shortest.length < best[arn][0]:
                best[arn] = (shortest.length, shortest)
        return spread_back(best, self.edges, mode)

    # -- answers -----------------------------------------------------------------------------------------

    def is_admin(self, arn: str) -> bool:
        return self._is_sure_admin(arn)

    def admin_check(self, arn: str) -> Check | None:
        return self.admin.get(arn)

    def route(self, arn: str, mode: str = SURE) -> Route | None:
        """The shortest route from `arn` to admin (None when there is none, or it is admin itself)."""
        if arn in self.admin and (mode == POSSIBLE or not self.admin[arn].conditional):
            return None
        step = self._next[mode].get(arn)
        if step is None:
            return None
        return self._follow(arn, mode)

    def _follow(self, arn: str, mode: str) -> Route:
        hops: list[Edge] = []
        here = arn
        end = arn
        while True:
            cost, step = self._next[mode][here]
            if step is None:
                end = here
                break
            if isinstance(step, Escalation):
                hops += [step.write, *step.reach]
                return Route(arn, tuple(hops), step.end, any(h.conditional for h in hops), foothold=step.foothold)
            hops.append(step)
            here = step.target
        return Route(arn, tuple(hops), end, any(h.conditional for h in hops) or self._admin_conditional(end, hops))

    def _admin_conditional(self, end: str, hops: list[Edge]) -> bool:
        check = self.admin.get(end)
        return check is not None and check.conditional and not any(h.method in _WRITE_IDS for h in hops)

    def routes(self, arn: str, mode: str = SURE) -> list[Route]:
        """One route per first step that leads to admin (the node's own escalations, then its act edges),
        shortest first: the ways to close."""
        node = self.nodes.get(arn)
        if node is None or (arn in self.admin and (mode == POSSIBLE or not self.admin[arn].conditional)):
            return []
        found: dict[str, Route] = {}
        for escalation in self.escalations[mode].get(arn, []):
            route = Route(arn, (escalation.write, *escalation.reach), escalation.end, escalation.conditional,
                          foothold=escalation.foothold)
            _keep_shortest(found, route)
        reachable = self._next[mode]
        for edge in self.edges.get(arn, ()):
            if (mode == SURE and edge.conditional) or edge.target not in reachable:
                continue
            rest = self.route(edge.target, mode)
            hops = (edge,) + (rest.hops if rest else ())
            end = rest.admin if rest else edge.target
            route = Route(arn, hops, end, any(h.conditional for h in hops) or self._admin_conditional(end, list(hops)),
                          foothold=bool(rest and rest.foothold))
            _keep_shortest(found, route)
        return sorted(found.values(), key=_route_order)

    def member_routes(self, group: str, mode: str = SURE) -> list[Route]:
        """A group's members' routes (a group stands for its members)."""
        node = self.nodes.get(group)
        if node is None or node.kind != "group":
            return []
        out = []
        for member in node.members:
            for route in self.routes(member, mode):
                out.append(replace(route, start=group, via_member=member))
        return sorted(out, key=_route_order)

    @property
    def edge_count(self) -> int:
        return sum(len(edges) for edges in self.edges.values())


_WRITE_IDS = frozenset(m.id for m in (*WRITE_METHODS, JOIN))


_LOOSE_SPECIALS = re.compile(r"(\*|\?|\$\{[^}]*\})")


def spread_back(best: dict[str, tuple[int, Any]], edges: Mapping[str, Iterable[Edge]], mode: str) -> dict:
    """Grow `best` (principal -> (hops, how)) backwards along act edges: whoever can act as a principal
    with a way to the goal has one, a hop longer (Dijkstra on unit costs, shortest kept). In place."""
    reverse: dict[str, list[Edge]] = {}
    for out in edges.values():
        for edge in out:
            if mode == POSSIBLE or not edge.conditional:
                reverse.setdefault(edge.target, []).append(edge)
    heap = [(cost, arn) for arn, (cost, _) in best.items()]
    heapq.heapify(heap)
    while heap:
        cost, arn = heapq.heappop(heap)
        if best[arn][0] < cost:
            continue
        for edge in reverse.get(arn, ()):
            if edge.source not in best or cost + 1 < best[edge.source][0]:
                best[edge.source] = (cost + 1, edge)
                heapq.heappush(heap, (cost + 1, edge.source))
    return best


def _loose_pattern(pattern: str) -> str:
    """A Resource pattern as a regex that matches at least what IAM would: `*` and variables match
    anything, `?` one character."""
    return "".join(".*" if part == "*" or part.startswith("${") else "." if part == "?" else re.escape(part)
                   for part in _LOOSE_SPECIALS.split(pattern) if part)


def _route_order(route: Route) -> tuple:
    return (route.foothold, len(route.hops), route.methods)


def _keep_shortest(found: dict[str, Route], route: Route) -> None:
    name = route.methods[0]
    if name not in found or _route_order(route) < _route_order(found[name]):
        found[name] = route


def _written_kind(method: Method) -> str:
    """user for Put/AttachUserPolicy, role for Put/AttachRolePolicy."""
    return "user" if "User" in method.steps[0].action else "role"


def _mint_applies(method: Method, user: Node) -> bool:
    """What the credential report says of the user's keys and password, where it says it."""
    if method.id == "iam-002":
        return user.access_keys is None or user.access_keys < 2
    if method.id == "iam-003":
        return user.access_keys == 2
    if method.id == "iam-004":
        return user.password is not True
    if method.id == "iam-006":
        return user.password is not False
    return True


# -- what the inventory records ------------------------------------------------------------------------------

_LABEL_SUFFIX = re.compile(r" (?:\([^()]*\)|\[statement \d+\])$")


def origin_of(label: str) -> str:
    """`managed X (Sid)` or `managed X [statement 0]` -> `managed X`: the policy a statement is in."""
    return _LABEL_SUFFIX.sub("", label)


def _compact(route: Route) -> dict:
    out: dict[str, Any] = {"methods": list(route.methods), "admin": route.admin, "conditional": route.conditional,
                           "hops": [{"from": h.source, "to": h.target, "method": h.method} for h in route.hops]}
    if route.via_member:
        out["via_member"] = route.via_member
    if route.foothold:
        out["foothold"] = True
    return out


def node_routes(graph: PrincipalGraph, arn: str, mode: str = SURE) -> list[Route]:
    """A principal's routes to admin; a group with none of its own stands for its members."""
    routes = graph.routes(arn, mode)
    node = graph.nodes.get(arn)
    if not routes and node is not None and node.kind == "group":
        routes = graph.member_routes(arn, mode)
    return routes


def escalation_capabilities(graph: PrincipalGraph, arn: str) -> dict:
    """The inventory's view of one principal: admin (with the policies that make it so) or the methods
    of its routes to admin, those that hold for sure first and those resting on a condition apart, with
    every route (compact) and the shortest one in full."""
    admin = graph.admin_check(arn)
    if admin is not None and not admin.conditional:
        origins = list(dict.fromkeys(origin_of(s) for s in admin.statements if not s.startswith("account root")))
        return {"admin": origins or ["all actions on all resources"], "privesc": [], "privesc_conditional": [],
                "privesc_via": {}, "privesc_routes": [], "privesc_route": None}
    sure = node_routes(graph, arn, SURE)
    possible = [r for r in node_routes(graph, arn, POSSIBLE) if r.conditional]
    methods = list(dict.fromkeys(r.methods[0] for r in sure))
    conditional = [m for m in dict.fromkeys(r.methods[0] for r in possible) if m not in methods]
    via: dict[str, list[str]] = {}
    for route in sure + possible:
        name = route.methods[0]
        if name not in via:
            via[name] = sorted({origin_of(s) for hop in route.hops for c in hop.checks if not c.principal
                                for s in c.statements})
    best = (sure + possible)[0] if sure or possible else None
    return {"admin": [], "privesc": methods, "privesc_conditional": conditional, "privesc_via": via,
            "privesc_routes": [_compact(r) for r in sure] + [_compact(r) for r in possible
                                                              if r.methods[0] in conditional],
            "privesc_route": best.to_dict() if best else None}
