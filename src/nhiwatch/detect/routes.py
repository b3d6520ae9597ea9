"""Escalation routes at run time: which principal a call acts on, and which hop of a route to admin the
call takes (the detector in detectors/escalation_route.py raises the finding).

The inventory's principal graph (inventory/graph.py) stores, per identity, its routes to admin: hops of
documented methods (inventory/methods.py), each on a concrete principal. A call takes a hop when it is the
hop's *targeting step* (the step that names the principal acted on: `iam:CreateAccessKey` for the user,
`lambda:CreateFunction` with the role passed, `sts:AssumeRole` into the role), made successfully on that
principal, after the method's earlier steps in the short window. `iam:PassRole` is never logged (it shows
as the role named in the create call) and data events (`lambda:InvokeFunction`) are off by default, so
neither is required. Hops on existing resources (replacing a function's code, commands on an instance)
name no principal in the event and are left to the other detectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple

import orjson

from nhiwatch.detect.features import account_of
from nhiwatch.inventory.methods import BY_ID, Method, Step

MAX_PARAMS = 200_000          # characters of request parameters read for the role a call names
DATA_EVENTS = frozenset({"lambda:InvokeFunction", "bedrock-agentcore:InvokeCodeInterpreter"})
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/([\w+=,.@/-]{1,512})")
PROFILE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):instance-profile/([\w+=,.@/-]{1,512})")
# Request keys that name the role a service will run as (ECS's executionRoleArn is the agent's, not the task's).
ROLE_KEYS = frozenset({"role", "rolearn", "rolename", "servicerole", "taskrolearn", "instancerolearn",
                       "administrationrolearn", "executionrolearn"})
NOT_THE_WORKLOAD = {"ecs": frozenset({"executionrolearn"})}
# Steps of pass methods that come before the call naming the role (a cluster, an empty pipeline).
NAME_NO_ROLE = frozenset({"ecs:CreateCluster", "datapipeline:CreatePipeline"})
# Lambda's CloudTrail event names carry the API version (CreateFunction20150331, AddPermission20150331v2).
VERSIONED = re.compile(r"^(lambda:[A-Za-z]+?)20\d{6}(v\d+)?$")
USER_PARAM, ROLE_PARAM, GROUP_PARAM = "userName", "roleName", "groupName"
MINTS = frozenset({"iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile"})


def _decisive(step: Step) -> bool:
    """A step the trail shows by default and that changes something: not PassRole, not a read."""
    verb = step.action.split(":", 1)[1]
    return step.action != "iam:PassRole" and step.action not in DATA_EVENTS and not verb.startswith(
        ("Describe", "Get", "List"))


# Hops on existing resources whose role the events tell (detect/runner.RUNS_AS_SQL): the call's resource
# parameter, and which kind of resource it is.
EXISTING_RESOURCES = {"lambda:UpdateFunctionCode": ("function", ("functionName",)),
                      "ssm:SendCommand": ("instance", ("instanceIds",)),
                      "ssm:StartSession": ("instance", ("target",)),
                      "ec2:ModifyInstanceAttribute": ("instance", ("instanceId",)),
                      "ec2-instance-connect:SendSSHPublicKey": ("instance", ("instanceId",))}


def targeting_step(method: Method) -> Step | None:
    """The step whose call names the principal acted on, or for a hop on an existing resource, the resource
    whose role the events tell (None for the other hops on existing resources)."""
    if method.edge == "existing":
        first = next((s for s in method.steps if _decisive(s)), None)
        return first if first is not None and first.action in EXISTING_RESOURCES else None
    for step in method.steps:
        if step.on in ("target", "group", "policy"):
            return step
    return next((s for s in method.steps if s.on not in ("target", "group", "policy", "role") and _decisive(s)
                 and s.action not in NAME_NO_ROLE), None)


def steps_before(method: Method, step: Step) -> tuple[str, ...]:
    """The decisive actions a method takes before its targeting step, in order."""
    out = []
    for s in method.steps:
        if s is step:
            break
        if _decisive(s):
            out.append(s.action)
    return tuple(out)


TARGETING: dict[str, tuple[Method, ...]] = {}
for _method in BY_ID.values():
    _step = targeting_step(_method)
    if _step is not None and _method.edge != "combo":  # combos are two hops, each its own method
        TARGETING[_step.action] = TARGETING.get(_step.action, ()) + (_method,)
WALK_APIS = frozenset(TARGETING)
# The API names as the trail has them, for loading their request parameters.
TRAIL_NAMES = WALK_APIS | {"lambda:CreateFunction20150331", "lambda:UpdateFunctionCode20150331v2"}


def canonical_api(api: str) -> str:
    """`lambda:CreateFunction20150331` -> `lambda:CreateFunction`; other names unchanged."""
    if api.startswith("lambda:"):
        match = VERSIONED.match(api)
        if match:
            return match.group(1)
    return api
PASS_APIS = frozenset(a for a, methods in TARGETING.items() if any(m.edge == "pass" for m in methods))
EXISTING_APIS = frozenset(EXISTING_RESOURCES)


# -- the principals a call may act on ------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """What detection knows of one IAM principal from the inventory."""
    arn: str
    kind: str                   # user, role, group
    account: str | None
    admin: bool
    route: dict | None          # its shortest route to admin (compact), if it has one and is not admin
    profiles: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def valuable(self) -> bool:
        """Admin, or one sure route away from it: acting as it is escalation for most callers."""
        return self.admin or (self.route is not None and not self.route.get("conditional"))


class PrincipalIndex:
    """The inventory's principals by ARN, by (account, kind, name) and by instance profile."""

    def __init__(self, principals: Iterable[Principal] = ()) -> None:
        self.by_arn: dict[str, Principal] = {}
        self.by_name: dict[tuple[str | None, str, str], Principal] = {}
        self.by_profile: dict[tuple[str | None, str], Principal] = {}
        # (account, 'function' or 'instance', name) -> the role it runs as, learned from the events
        self.runs_as: dict[tuple[str | None, str, str], str] = {}
        for p in principals:
            self.by_arn[p.arn] = p
            self.by_name[(p.account, p.kind, p.name)] = p
            for profile in p.profiles:
                self.by_profile[(p.account, profile.rsplit("/", 1)[-1])] = p

    def __len__(self) -> int:
        return len(self.by_arn)

    def named(self, kind: str, account: str | None, name: str) -> Principal | None:
        if name.startswith("arn:"):
            return self.by_arn.get(name)
        return self.by_name.get((account, kind, name))


class Target(NamedTuple):
    """What a call acts on: `kind` user/role/group/policy, `ref` an ARN or a name, `principal` when known."""
    kind: str
    ref: str
    principal: Principal | None


def _load(params: str | None) -> dict:
    if not params or len(params) > MAX_PARAMS:
        return {}
    try:
        loaded = orjson.loads(params)
    except orjson.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def roles_named(api: str, params: dict, account: str | None, index: PrincipalIndex) -> list[Target]:
    """The roles a create or update call hands to a service: role ARNs or names under role keys, and
    instance profiles (by ARN or name), anywhere in the request."""
    found: dict[str, Target] = {}
    skip = NOT_THE_WORKLOAD.get(api.split(":", 1)[0], frozenset())

    def add_role(ref: str) -> None:
        match = ROLE_ARN.fullmatch(ref)
        arn = ref if match else None
        principal = index.by_arn.get(arn) if arn else index.named("role", account, ref)
        key = principal.arn if principal else ref
        found.setdefault(key, Target("role", key, principal))

    def add_profile(ref: str) -> None:
        match = PROFILE_ARN.fullmatch(ref)
        profile_account, name = (match.group(1), match.group(2).rsplit("/", 1)[-1]) if match else (account, ref)
        principal = index.by_profile.get((profile_account, name))
        key = principal.arn if principal else f"instance-profile/{name}"
        found.setdefault(key, Target("role", key, principal))

    def walk(value: object, key: str, depth: int) -> None:
        if depth > 8 or len(found) > 20:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                lowered = str(k).lower()
                if "iaminstanceprofile" in lowered and isinstance(v, dict):
                    ref = _text(v.get("arn") or v.get("Arn")) or _text(v.get("name") or v.get("Name"))
                    if ref:
                        add_profile(ref)
                elif "iaminstanceprofile" in lowered and _text(v):
                    add_profile(str(v))
                else:
                    walk(v, lowered, depth + 1)
        elif isinstance(value, list):
            for item in value[:100]:
                walk(item, key, depth + 1)
        elif isinstance(value, str) and key not in skip:
            if ROLE_ARN.fullmatch(value):
                add_role(value)
            elif key in ROLE_KEYS and "/" not in value and ":" not in value and len(value) <= 64:
                add_role(value)  # a role's name (Glue jobs, Data Pipeline objects)

    walk(params, "", 0)
    return list(found.values())


def _function_name(value: str) -> str:
    """A function's name from its name, partial ARN or ARN (with a version or alias or not)."""
    return value.split("function:", 1)[1].split(":", 1)[0] if "function:" in value else value.split(":", 1)[0]


def roles_running(api: str, params: dict, account: str | None, index: PrincipalIndex) -> list[Target]:
    """The roles of the existing functions or instances a call takes over (their code, commands, user
    data, SSH keys), as far as the events tell which role each runs as."""
    if api == "ec2:ModifyInstanceAttribute" and "userData" not in params:
        return []  # an instance type or a security group changes nothing about who runs there
    kind, keys = EXISTING_RESOURCES[api]
    names: list[str] = []
    for key in keys:
        value = params.get(key)
        names += [v for v in (value if isinstance(value, list) else [value])[:50] if isinstance(v, str) and v]
    found: dict[str, Target] = {}
    for name in names:
        role = index.runs_as.get((account, kind, _function_name(name) if kind == "function" else name))
        if role and role not in found:
            found[role] = Target("role", role, index.by_arn.get(role))
    return list(found.values())


def targets_of(api: str, params_text: str | None, assumed_role: str | None, caller: str,
               account: str | None, index: PrincipalIndex) -> list[Target]:
    """The principals (or the managed policy) a call of WALK_APIS acts on."""
    if api == "sts:AssumeRole":
        return [Target("role", assumed_role, index.by_arn.get(assumed_role))] if assumed_role else []
    params = _load(params_text)
    if api in PASS_APIS:
        return roles_named(api, params, account, index)
    if api in EXISTING_RESOURCES:
        return roles_running(api, params, account, index)
    out = []
    for kind, key in (("user", USER_PARAM), ("role", ROLE_PARAM), ("group", GROUP_PARAM)):
        name = _text(params.get(key))
        if name:
            principal = index.named(kind, account, name)
            out.append(Target(kind, principal.arn if principal else name, principal))
    policy = _text(params.get("policyArn"))
    if policy and api in ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"):
        out.append(Target("policy", policy, None))
    if not out and api in MINTS and ":user/" in caller:
        out.append(Target("user", caller, index.by_arn.get(caller)))  # no userName: the caller's own
    return out


def habit_key(api: str, target: Target) -> str:
    """How a call on a principal is remembered once it proves routine."""
    return f"{api}|{target.ref}"[:600]


# -- routes ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hop:
    index: int                  # its place in the route
    method: Method
    to: str                     # the principal acted on (an ARN, or a pattern such as arn:...:role/*)
    subject: str                # the group, policy or user the hop names besides (write on a group, join)
    step: Step                  # its targeting step
    before: tuple[str, ...]     # decisive actions before the targeting step
    # Any principal of the hop's kind and account will do: the graph keeps one route per method, naming one
    # of the principals that serve equally (any role whose function the caller may update, once the caller
    # made it admin); true for a write followed by an act on the same principal, and for the hops after it.
    loose: bool = False


@dataclass(frozen=True)
class Walk:
    """A route of the identity's, as the hops it makes itself (the leading ones)."""
    route: dict
    hops: tuple[Hop, ...]
    whole: bool                 # every hop of the route is the identity's own

    @property
    def length(self) -> int:
        return len(self.route.get("hops") or ())


def compile_walks(arn: str, routes: Iterable[Mapping]) -> tuple[Walk, ...]:
    """The identity's routes, keeping the hops it makes itself (a later hop is another principal's: its own
    routes cover it)."""
    out = []
    for route in routes:
        hops_raw = route.get("hops") or []
        if not isinstance(hops_raw, list) or route.get("via_member") not in (None, arn):
            continue
        hops: list[Hop] = []
        for i, raw in enumerate(hops_raw):
            if not isinstance(raw, Mapping) or raw.get("from") != arn:
                break
            method = BY_ID.get(str(raw.get("method")))
            step = targeting_step(method) if method else None
            if method is None or step is None:
                break
            following = hops_raw[i + 1] if i + 1 < len(hops_raw) else None
            combined = (method.edge == "write" and isinstance(following, Mapping)
                        and following.get("from") == arn and following.get("to") == raw.get("to"))
            hops.append(Hop(i, method, str(raw.get("to") or ""), str(raw.get("subject") or ""), step,
                            steps_before(method, step), loose=combined or bool(hops and hops[-1].loose)))
        if hops and hops[0].index == 0:
            out.append(Walk(dict(route), tuple(hops), len(hops) == len(hops_raw)))
    return tuple(out)


def _pattern_matches(pattern: str, target: Target, caller: str) -> bool:
    """A foothold hop's `arn:aws:iam::ACCOUNT:KIND/*`: any principal of that kind but the caller."""
    head = pattern[:-1]
    ref = target.principal.arn if target.principal else target.ref
    return ref.startswith(head) and ref != caller


def hop_matches(hop: Hop, api: str, target: Target, caller: str) -> bool:
    """The call is this hop's targeting step on the hop's principal (or group, policy)."""
    if api != hop.step.action:
        return False
    on = hop.step.on
    if on == "group":
        group = hop.to if hop.method.edge == "join" else hop.subject  # a join's hop lands on the group itself
        return target.kind == "group" and target.ref.rsplit("/", 1)[-1] == group.rsplit("/", 1)[-1]
    if on == "policy":
        return target.kind == "policy" and target.ref == hop.subject
    if hop.to.endswith("/*"):
        return _pattern_matches(hop.to, target, caller)
    if hop.loose:
        return _same_kind_and_account(hop.to, target, caller)
    return target.ref == hop.to


def _same_kind_and_account(arn: str, target: Target, caller: str) -> bool:
    ref = target.principal.arn if target.principal else target.ref
    kind = "role" if ":role/" in arn else "user" if ":user/" in arn else None
    return kind is not None and f":{kind}/" in ref and account_of(ref) == account_of(arn) and ref != caller


def route_text(route: Mapping, short: bool = True) -> str:
    """`iam-002 -> admin-bob (admin)`: each hop's method and where it lands."""
    name = (lambda arn: str(arn).rsplit("/", 1)[-1]) if short else str
    hops = route.get("hops") or []
    text = " -> ".join(f"{h.get('method')} -> {name(h.get('to'))}" for h in hops if isinstance(h, Mapping))
    return f"{text} (admin: {name(route.get('admin', ''))})"
