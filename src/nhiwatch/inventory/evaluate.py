"""An IAM authorization evaluator: "may this principal perform this action on this resource?", answered
the way AWS's documented policy evaluation logic answers it, with a third answer for what cannot be known.

The model (everything a caller builds once and reuses):

- `compile_policy(document, origin)` -> `CompiledPolicy`: a policy document parsed once into statements
  whose actions are lowercased sets and regexes, whose resources are ARN-aware regexes (policy variables
  kept as templates), and whose conditions are ready-made matchers. Statements matching an action are
  cached per policy, resource matches per statement.
- `Principal`: who asks (IAM user, role session, federated user, root, AWS service, anonymous, or a
  group's hypothetical member), with what is known of it: account, tags, session tags, MFA, credentials.
- `IdentityPolicies`: the policies in force for a principal: identity-based (user + groups, or role),
  permissions boundary, session policies.
- `Resource`: the target ARN, its account and tags, and its resource-based policy (bucket policy, key
  policy, role trust policy...).
- `Organization`: SCPs and RCPs per account as levels (root, OUs, account), management account, org id.
- `Request`: principal, action, resource and a context of condition keys. A key absent from the context
  is *unknown* unless the caller lists it in `absent` or sets `closed` (every key not given is absent).

`evaluate(request, policies, org)` returns a `Decision`: allowed, denied (an explicit Deny applies),
conditional (the outcome depends on condition keys the evaluation cannot know: `undecided` names them),
or implicit-deny, with the statements that decided it and a one-line reason.

Rules implemented (AWS IAM User Guide: policy evaluation logic, cross-account evaluation, JSON policy
elements, condition operators, policy variables): explicit Deny in any policy wins; RCPs and SCPs must
allow at every level (not for the management account nor for service-linked roles; RCPs only for the
services they cover); within an account, identity-based OR resource-based Allow, where a resource policy
naming the user or the session itself is not limited by implicit denies elsewhere, one naming the role
is limited by the boundary and the session policy, and one naming the account delegates to the identity
policies; across accounts both sides must allow; role trust policies and KMS key policies must allow
whatever the identity policies say; permissions boundary and session policies intersect; a session
principal without a session policy is a role session (allowed) or a federated user (denied).

Not modelled: VPC endpoint policies, S3 ACLs and Block Public Access, KMS grants, RAM shares, the
service-specific twists of some resource policies (S3 object ownership, Lambda URL auth), per-service
context keys that AWS fills in (callers put them in the context), and which actions support
resource-level permissions (callers pass `*` as the resource for those that do not).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from functools import cached_property, lru_cache
from typing import Any, Callable, Iterable, Mapping, Sequence

from nhiwatch.core.arn import account_of
from nhiwatch.inventory.policy import PolicyError, as_list, load_document

Tri = bool | None  # True, False, or None: undecided (a condition key the evaluation cannot know)

VARIABLES_VERSION = "2012-10-17"

# Organizations RCPs cover only these services (the rest are never restricted by an RCP).
RCP_SERVICES = frozenset({"s3", "sts", "kms", "sqs", "secretsmanager", "logs", "dynamodb", "ecr", "aoss",
                          "cognito-identity"})
# Actions authorized by a role's trust policy: the trust policy must allow them.
TRUST_ACTIONS = frozenset({"sts:assumerole", "sts:assumerolewithsaml", "sts:assumerolewithwebidentity",
                           "sts:tagsession", "sts:setsourceidentity", "sts:setcontext"})


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


ABSENT = _Marker("ABSENT")    # the key is known not to be in the request
UNKNOWN = _Marker("UNKNOWN")  # the evaluation cannot know whether, or with what value, the key is there


def _and(a: Tri, b: Tri) -> Tri:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: Tri, b: Tri) -> Tri:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


# -- wildcards --------------------------------------------------------------------------------------

_GLOB_SPECIALS = re.compile(r"([*?])")
_RESOURCE_SPECIALS = re.compile(r"[:*?]")


def _glob_fragment(text: str, star: str = ".*", one: str = ".") -> str:
    # literal runs escaped in one call: policies are compiled by the thousand
    return "".join(star if p == "*" else one if p == "?" else re.escape(p) for p in _GLOB_SPECIALS.split(text) if p)


def _resource_fragment(text: str, segment: int) -> tuple[str, int]:
    """Regex for part of a Resource-element ARN pattern starting in ARN segment `segment` (0 = "arn").

    AWS: wildcards work within each colon-separated segment; a `*` that ends a segment may expand past
    the colons; the resource segment (after the fifth colon) is one segment whose `*` matches anything,
    `/` and `:` included."""
    out = []
    at = 0
    for m in _RESOURCE_SPECIALS.finditer(text):
        i, c = m.start(), m.group()
        if i > at:
            out.append(re.escape(text[at:i]))
        if c == ":":
            segment += 1
            out.append(":")
        elif c == "*":
            last = i + 1 == len(text) or text[i + 1] == ":"
            out.append(".*" if segment >= 5 or last else "[^:]*")
        else:
            out.append("." if segment >= 5 else "[^:]")
        at = i + 1
    if at < len(text):
        out.append(re.escape(text[at:]))
    return "".join(out), segment


def _arn_condition_fragment(text: str) -> str:
    """Regex for an ArnLike/ArnEquals value: each of the six components matched on its own."""
    parts = text.split(":", 5)
    if len(parts) < 6:
        return _resource_fragment(text, 0)[0]
    return ":".join(_glob_fragment(p, ".*", ".") if i == 5 else _glob_fragment(p, "[^:]*", "[^:]")
                    for i, p in enumerate(parts))


@lru_cache(maxsize=65536)
def _regex(source: str, flags: int = 0) -> re.Pattern:
    return re.compile(source, flags | re.DOTALL)


# -- policy variables ---------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True)
class _Var:
    key: str                 # lowercased context key
    default: str | None      # the `, 'default'` value
    name: str = ""           # the key as the policy spells it


def _split_variables(text: str, enabled: bool) -> list[str | _Var] | None:
    """Literal text and variables of a policy string; None when it has no variable at all.
    `${*}`, `${?}` and `${$}` are literal characters, wrapped so they are not read as wildcards."""
    if not enabled or "${" not in text:
        return None
    parts: list[str | _Var] = []
    at = 0
    for m in _VARIABLE.finditer(text):
        if m.start() > at:
            parts.append(text[at:m.start()])
        inner = m.group(1).strip()
        if inner in _SPECIAL:
            parts.append(_Var("", _SPECIAL[inner]))  # a literal: no key, always its "default"
        else:
            key, _, default = inner.partition(",")
            default = default.strip()
            value = None
            if len(default) >= 2 and default[0] == default[-1] == "'":
                value = default[1:-1].replace("''", "'")
            parts.append(_Var(key.strip().lower(), value, key.strip()))
        at = m.end()
    if at < len(text):
        parts.append(text[at:])
    return parts


def _resolve(var: _Var, ctx: "_Context") -> str | _Marker:
    if not var.key:
        return var.default or ""
    value = ctx.get(var.key)
    if value is ABSENT or (isinstance(value, tuple)):  # multivalued keys cannot be variables
        return var.default if var.default is not None else ABSENT
    if value is UNKNOWN:
        return UNKNOWN
    return str(value)


class _Template:
    """A policy string holding variables, matched after they are resolved from the request. A variable
    the evaluation cannot know becomes a wildcard: a match is then undecided, a miss still a miss."""
    __slots__ = ("fragments", "flags")

    def __init__(self, fragments: list[str | _Var], flags: int = 0):
        self.fragments = fragments
        self.flags = flags

    def match(self, value: str, ctx: "_Context", undecided: list[str]) -> Tri:
        pieces = []
        exact = True
        missing: list[str] = []
        for f in self.fragments:
            if isinstance(f, str):
                pieces.append(f)
                continue
            resolved = _resolve(f, ctx)
            if isinstance(resolved, str):
                pieces.append(re.escape(resolved))
            elif resolved is ABSENT:
                return False  # AWS: a variable that cannot be resolved makes the match fail
            else:
                exact = False
                missing.append(f.name or f.key)
                pieces.append(".*")
        if _regex("".join(pieces), self.flags).fullmatch(value) is None:
            return False
        if exact:
            return True
        undecided.extend(missing)
        return None


def _template(text: str, enabled: bool, translate: Callable[[str], str], flags: int = 0) -> _Template | None:
    parts = _split_variables(text, enabled)
    if parts is None:
        return None
    fragments: list[str | _Var] = []
    for p in parts:
        if isinstance(p, _Var) and not p.key:
            fragments.append(re.escape(p.default or ""))
        elif isinstance(p, _Var):
            fragments.append(p)
        else:
            fragments.append(translate(p))
    return _Template(fragments, flags)


def _resource_template(text: str, enabled: bool) -> _Template | None:
    parts = _split_variables(text, enabled)
    if parts is None:
        return None
    fragments: list[str | _Var] = []
    segment = 0
    for p in parts:
        if isinstance(p, _Var) and not p.key:
            fragments.append(re.escape(p.default or ""))
        elif isinstance(p, _Var):
            fragments.append(p)
        else:
            fragment, segment = _resource_fragment(p, segment)
            fragments.append(fragment)
    return _Template(fragments)


# -- conditions ---------------------------------------------------------------------------------------

# operator (lowercased) -> (family, negated)
_OPERATORS: dict[str, tuple[str, bool]] = {
    "stringequals": ("str", False), "stringnotequals": ("str", True),
    "stringequalsignorecase": ("stri", False), "stringnotequalsignorecase": ("stri", True),
    "stringlike": ("like", False), "stringnotlike": ("like", True),
    "numericequals": ("num=", False), "numericnotequals": ("num=", True),
    "numericlessthan": ("num<", False), "numericlessthanequals": ("num<=", False),
    "numericgreaterthan": ("num>", False), "numericgreaterthanequals": ("num>=", False),
    "dateequals": ("date=", False), "datenotequals": ("date=", True),
    "datelessthan": ("date<", False), "datelessthanequals": ("date<=", False),
    "dategreaterthan": ("date>", False), "dategreaterthanequals": ("date>=", False),
    "bool": ("bool", False), "binaryequals": ("bin", False),
    "ipaddress": ("ip", False), "notipaddress": ("ip", True),
    "arnequals": ("arn", False), "arnlike": ("arn", False), "arnnotequals": ("arn", True),
    "arnnotlike": ("arn", True),
    "null": ("null", False),
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_EPOCH = re.compile(r"^-?\d+(?:\.\d+)?$")


@lru_cache(maxsize=8192)
def _timestamp(text: str) -> float | None:
    text = text.strip()
    if _EPOCH.match(text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=8192)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        try:  # a request value given as a one-address network
            network = ipaddress.ip_network(text.strip(), strict=False)
            return network.network_address if network.num_addresses == 1 else None
        except ValueError:
            return None


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def _ordered_test(values: Iterable[str], parse: Callable[[str], Any],
                  compare: Callable[[Any, Any], bool]) -> Callable[[str], bool]:
    """A numeric or date condition: the request's value, parsed, compared with each policy value;
    a value either side that does not parse never matches."""
    bounds = [b for b in (parse(v) for v in values) if b is not None]

    def test(x: str) -> bool:
        parsed = parse(x)
        return parsed is not None and any(compare(parsed, b) for b in bounds)
    return test

def _static_matcher(family: str, values: list[str]) -> Callable[[str], bool]:
    """A function telling whether one request value matches any of the policy values."""
    if family == "str":
        exact = frozenset(values)
        return exact.__contains__
    if family == "stri":
        folded = frozenset(v.casefold() for v in values)
        return lambda x: x.casefold() in folded
    if family == "bool":
        lowered = frozenset(v.lower() for v in values)
        return lambda x: x.lower() in lowered
    if family == "bin":
        exact = frozenset(values)
        return exact.__contains__
    if family in ("like", "arn"):
        if family == "like" and not any("*" in v or "?" in v for v in values):
            exact = frozenset(values)
            return exact.__contains__
        translate = _glob_fragment if family == "like" else _arn_condition_fragment
        rx = _regex("|".join(f"(?:{translate(v)})" for v in values))
        return lambda x: rx.fullmatch(x) is not None
    if family.startswith("num"):
        return _ordered_test(values, _number, _COMPARE[family[3:]])
    if family.startswith("date"):
        return _ordered_test(values, _timestamp, _COMPARE[family[4:]])
    if family == "ip":
        networks = []
        for v in values:
            try:
                networks.append(ipaddress.ip_network(v.strip(), strict=False))
            except ValueError:
                continue

        def ip(x: str) -> bool:
            address = _address(x)
            return address is not None and any(address.version == n.version and address in n for n in networks)
        return ip
    raise AssertionError(family)


_TEMPLATE_TRANSLATE: dict[str, tuple[Callable[[str], str], int]] = {
    "str": (re.escape, 0), "stri": (re.escape, re.IGNORECASE), "bool": (re.escape, re.IGNORECASE),
    "like": (_glob_fragment, 0), "arn": (_arn_condition_fragment, 0),
}


class _Clause:
    """One condition key under one operator: `"StringEquals": {"aws:PrincipalTag/team": ["a", "b"]}`."""
    __slots__ = ("family", "negated", "if_exists", "set_op", "key", "name", "match", "templates",
                 "null_values", "unsupported")

    def __init__(self, operator: str, key: str, raw_values: list[Any], variables: bool):
        self.name = key
        self.key = key.lower()
        self.unsupported = False
        op = operator.strip()
        lowered = op.lower()
        self.set_op: str | None = None
        for prefix, name in (("forallvalues:", "all"), ("foranyvalue:", "any")):
            if lowered.startswith(prefix):
                self.set_op, lowered = name, lowered[len(prefix):]
        self.if_exists = lowered.endswith("ifexists") and lowered != "ifexists"
        if self.if_exists:
            lowered = lowered[: -len("ifexists")]
        family, self.negated = _OPERATORS.get(lowered, ("", False))
        self.family = family
        if not family or (family == "null" and (self.if_exists or self.set_op)):
            self.unsupported = True
            self.name = f"{operator} (unsupported operator) on {key}"
        values = [_value_text(v) for v in raw_values]
        self.null_values = frozenset(v.lower() for v in values) if family == "null" else frozenset()
        self.templates: list[_Template] = []
        statics = values
        if family in _TEMPLATE_TRANSLATE and variables:
            translate, flags = _TEMPLATE_TRANSLATE[family]
            statics = []
            for v in values:
                t = _template(v, True, translate, flags)
                if t is None:
                    statics.append(v)
                else:
                    self.templates.append(t)
        self.match: Callable[[str], bool] | None = (
            _static_matcher(family, statics) if family and family != "null" and not self.unsupported else None)

    def _positive(self, x: str, ctx: "_Context", undecided: list[str]) -> Tri:
        """Whether one request value matches one of the policy values."""
        if self.match is not None and self.match(x):
            return True
        result: Tri = False
        for t in self.templates:
            result = _or(result, t.match(x, ctx, undecided))
            if result is True:
                return True
        return result

    def evaluate(self, ctx: "_Context", undecided: list[str]) -> Tri:
        if self.unsupported:
            undecided.append(self.name)
            return None
        value = ctx.get(self.key)
        if value is UNKNOWN:
            undecided.append(self.name)
            return None
        if self.family == "null":
            present = value is not ABSENT
            return ("true" in self.null_values and not present) or ("false" in self.null_values and present)
        if value is ABSENT:
            if self.if_exists or self.set_op == "all":
                return True
            return False if self.set_op == "any" else self.negated
        if self.templates and any(_resolve(v, ctx) is ABSENT
                                  for t in self.templates for v in t.fragments if isinstance(v, _Var)):
            return False  # AWS: a variable it cannot resolve makes the statement invalid
        values: tuple[str, ...] = value if isinstance(value, tuple) else (value,)
        if self.set_op is not None:
            values = tuple(v for v in values if v != "")  # an empty string is an empty set
            if not values:
                return self.set_op == "all"
            result: Tri = self.set_op == "all"
            for v in values:
                one = self._positive(v, ctx, undecided)
                if self.negated and one is not None:
                    one = not one
                result = _and(result, one) if self.set_op == "all" else _or(result, one)
                if result is (self.set_op != "all"):
                    break
            return result
        hit: Tri = False
        for v in values:  # several values without a set operator: any of them
            hit = _or(hit, self._positive(v, ctx, undecided))
            if hit is True:
                break
        if hit is None:
            return None
        return hit != self.negated


def _compile_conditions(block: Any, index: int, variables: bool) -> tuple[_Clause, ...]:
    if block is None:
        return ()
    if not isinstance(block, dict):
        raise PolicyError(f"Statement[{index}] has a Condition that is not an object")
    clauses = []
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            raise PolicyError(f"Statement[{index}] condition {operator} is not an object of keys")
        for key, values in keys.items():
            clauses.append(_Clause(str(operator), str(key), as_list(values), variables))
    return tuple(clauses)


def _conditions(clauses: tuple[_Clause, ...], ctx: "_Context", undecided: list[str]) -> Tri:
    """Every key and operator must hold (AND); False wins over undecided."""
    result: Tri = True
    for clause in clauses:
        one = clause.evaluate(ctx, undecided)
        if one is False:
            return False
        if one is None:
            result = None
    return result


# -- principals in resource policies ------------------------------------------------------------------

DIRECT, ROLE, ACCOUNT = "direct", "role", "account"  # how a resource policy names the requester
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROOT_ARN = re.compile(r"^arn:[a-z-]+:iam::(\d{12}):root$")


def _strip_path(arn: str) -> str:
    """`arn:aws:iam::1:role/path/name` -> `arn:aws:iam::1:role/name` (trust policies may omit paths)."""
    head, _, rest = arn.partition(":role/")
    if not rest:
        head, _, rest = arn.partition(":user/")
        return f"{head}:user/{rest.rsplit('/', 1)[-1]}" if rest else arn
    return f"{head}:role/{rest.rsplit('/', 1)[-1]}"


class _PrincipalSet:
    """The principals one Principal or NotPrincipal element names."""
    __slots__ = ("everyone", "accounts", "arns", "services", "federated", "canonical")

    def __init__(self, element: Any):
        self.everyone = False
        self.accounts: set[str] = set()
        self.arns: set[str] = set()
        self.services: set[str] = set()
        self.federated: set[str] = set()
        self.canonical: set[str] = set()
        if element == "*":
            self.everyone = True
            return
        if not isinstance(element, dict):
            raise PolicyError("Principal is neither \"*\" nor an object")
        for kind, values in element.items():
            for value in (str(v).strip() for v in as_list(values)):
                kind_l = str(kind).lower()
                if kind_l == "aws":
                    root = _ROOT_ARN.match(value)
                    if value == "*":
                        self.everyone = True
                    elif _ACCOUNT_ID.match(value):
                        self.accounts.add(value)
                    elif root:
                        self.accounts.add(root.group(1))
                    else:
                        self.arns.add(value)
                        self.arns.add(_strip_path(value))
                elif kind_l == "service":
                    self.services.add(value.lower())
                elif kind_l == "federated":
                    self.federated.add(value)
                elif kind_l == "canonicaluser":
                    self.canonical.add(value)

    def names(self, p: "Principal") -> tuple[str | None, Tri]:
        """(how the requester is named: DIRECT / ROLE / ACCOUNT / None, and whether surely)."""
        if self.everyone:
            return DIRECT, True
        kind = p.kind
        if kind == "service":
            return (DIRECT, True) if p.arn.lower() in self.services else (None, False)
        if kind == "anonymous":
            return None, False
        if kind == "web-identity" and p.provider in self.federated:
            return DIRECT, True
        if p.canonical_id and p.canonical_id in self.canonical:
            return DIRECT, True
        best: str | None = None
        sure: Tri = False
        if kind == "assumed-role":
            if p.session_name is not None:
                if p.arn in self.arns:
                    return DIRECT, True
            elif any(a.startswith(p.session_prefix) for a in self.arns):
                best, sure = DIRECT, None  # names one session of this role: which one is not known
            if p.role_arn and (p.role_arn in self.arns or _strip_path(p.role_arn) in self.arns):
                return ROLE, True
        elif kind == "federated-user":
            if p.arn in self.arns:
                return DIRECT, True
            if p.role_arn and p.role_arn in self.arns:
                return ROLE, True
        elif p.arn in self.arns or (kind == "user" and _strip_path(p.arn) in self.arns):
            return DIRECT, True
        if p.account and p.account in self.accounts:
            return (best, sure) if best else (ACCOUNT, True)
        return best, sure

    def excludes(self, p: "Principal", deny: bool, bounded: bool) -> Tri:
        """NotPrincipal: whether the requester is one of the exceptions. With Deny, AWS may check the
        account, the role and the session in turn, so all of them must be listed; a principal with a
        permissions boundary is never excepted (IAM User Guide)."""
        if self.everyone:
            return True
        if deny and bounded:
            return False
        if p.kind == "service":
            return p.arn.lower() in self.services
        chain: list[str | None] = [p.arn]
        if p.kind == "assumed-role":
            chain = [p.arn if p.session_name is not None else None, p.role_arn]
        listed = [c is not None and (c in self.arns or _strip_path(c) in self.arns) for c in chain]
        account_listed = bool(p.account and p.account in self.accounts)
        if deny:
            if p.kind == "root":
                return account_listed
            if p.kind == "assumed-role" and p.session_name is None and p.role_arn in self.arns and account_listed:
                return None  # excepted only if the unknown session is the one listed
            return all(listed) and account_listed
        return any(listed) or account_listed


# -- statements and policies ----------------------------------------------------------------------------

class CompiledStatement:
    """One statement, ready to be matched: actions, resources, principals and conditions precompiled."""
    __slots__ = ("allow", "label", "origin", "sid", "not_action", "_all_actions", "_exact", "_action_rx",
                 "not_resource", "resources", "_any_resource", "_resource_rx", "_templates", "_rcache", "principals",
                 "not_principal", "conditions")

    def __init__(self, item: dict, index: int, origin: str, variables: bool, resource_policy: bool):
        effect = item.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"Statement[{index}] has Effect {effect!r}, expected Allow or Deny")
        self.allow = effect == "Allow"
        self.origin = origin
        sid = item.get("Sid")
        self.sid = str(sid) if sid else None
        self.label = f"{origin} ({self.sid})" if self.sid else f"{origin} [statement {index}]"
        self.not_action = "NotAction" in item
        actions = [str(a).lower() for a in as_list(item.get("NotAction" if self.not_action else "Action"))]
        if not actions:
            raise PolicyError(f"Statement[{index}] has no Action or NotAction")
        self._all_actions = "*" in actions
        self._exact = frozenset(a for a in actions if "*" not in a and "?" not in a)
        wild = [a for a in actions if a not in self._exact and a != "*"]
        self._action_rx = _regex("|".join(f"(?:{_glob_fragment(a)})" for a in wild)) if wild else None
        self.not_resource = "NotResource" in item
        resources = [str(r) for r in as_list(item.get("NotResource" if self.not_resource else "Resource"))]
        if not resources:
            resources = ["*"]  # a resource policy's statements apply to the resource they are attached to
        self.resources = tuple(resources)  # as written: callers pick example ARNs from them
        self._any_resource = "*" in resources
        self._templates: tuple[_Template, ...] = ()
        static: list[str] = []
        templates = []
        for r in resources:
            t = _resource_template(r, variables)
            if t is None:
                static.append(r)
            else:
                templates.append(t)
        self._templates = tuple(templates)
        self._resource_rx = (_regex("|".join(f"(?:{_resource_fragment(r, 0)[0]})" for r in static))
                             if static and not self._any_resource else None)
        self._rcache: dict[str, bool] = {}
        self.not_principal = "NotPrincipal" in item
        element = item.get("NotPrincipal" if self.not_principal else "Principal")
        self.principals: _PrincipalSet | None = None
        if resource_policy and element is not None:
            try:
                self.principals = _PrincipalSet(element)
            except PolicyError as exc:
                raise PolicyError(f"Statement[{index}]: {exc}") from None
        self.conditions = _compile_conditions(item.get("Condition"), index, variables)

    def matches_action(self, action: str) -> bool:
        """`action` lowercased."""
        hit = self._all_actions or action in self._exact or (
            self._action_rx is not None and self._action_rx.fullmatch(action) is not None)
        return hit != self.not_action

    def actions_among(self, actions: frozenset[str]) -> frozenset[str]:
        """Which of `actions` (lowercased) the statement's Action or NotAction covers."""
        if self._all_actions:
            return frozenset() if self.not_action else actions
        hit = actions & self._exact
        if self._action_rx is not None:
            rx = self._action_rx
            hit = hit | {a for a in actions - hit if rx.fullmatch(a)}
        return actions - hit if self.not_action else hit

    def matches_resource(self, arn: str, ctx: "_Context", undecided: list[str]) -> Tri:
        if self._any_resource:
            hit: Tri = True
        else:
            cached = self._rcache.get(arn)
            if cached is None:
                cached = self._resource_rx is not None and self._resource_rx.fullmatch(arn) is not None
                if len(self._rcache) >= 4096:
                    self._rcache.clear()
                self._rcache[arn] = cached
            hit = cached
            if not hit and self._templates:
                for t in self._templates:
                    hit = _or(hit, t.match(arn, ctx, undecided))
                    if hit is True:
                        break
        if self.not_resource:
            return None if hit is None else not hit
        return hit

    def applies(self, arn: str, ctx: "_Context", undecided: list[str]) -> Tri:
        """Resource and conditions (the action already matched). Undecided keys are added only when
        the statement itself is undecided."""
        if not self._templates and not self.conditions:
            return self.matches_resource(arn, ctx, undecided)
        local: list[str] = []
        result = self.matches_resource(arn, ctx, local)
        if result is not False and self.conditions:
            result = _and(result, _conditions(self.conditions, ctx, local))
        if result is None:
            undecided.extend(local)
        return result

    def names(self, p: "Principal", bounded: bool) -> tuple[str | None, Tri]:
        """How a resource-policy statement names the requester (an identity policy names everyone)."""
        if self.principals is None:
            return DIRECT, True
        if self.not_principal:
            excluded = self.principals.excludes(p, not self.allow, bounded)
            if excluded is None:
                return DIRECT, None
            return (None, False) if excluded else (DIRECT, True)
        return self.principals.names(p)

    def __repr__(self) -> str:
        return f"<{'Allow' if self.allow else 'Deny'} {self.label}>"


_NO_STATEMENTS: tuple[tuple[CompiledStatement, ...], tuple[CompiledStatement, ...]] = ((), ())


class CompiledPolicy:
    """A policy document compiled once; `for_action` answers from a cache after the first call."""
    __slots__ = ("origin", "statements", "_by_action")

    def __init__(self, statements: Sequence[CompiledStatement], origin: str):
        self.origin = origin
        self.statements = tuple(statements)
        self._by_action: dict[str, tuple[tuple[CompiledStatement, ...], tuple[CompiledStatement, ...]]] = {}

    def for_action(self, action: str) -> tuple[tuple[CompiledStatement, ...], tuple[CompiledStatement, ...]]:
        """(Allow statements, Deny statements) whose Action/NotAction covers `action` (lowercased)."""
        hit = self._by_action.get(action)
        if hit is None:
            matching = [s for s in self.statements if s.matches_action(action)]
            hit = ((tuple(s for s in matching if s.allow), tuple(s for s in matching if not s.allow))
                   if matching else _NO_STATEMENTS)
            if len(self._by_action) >= 4096:
                self._by_action.clear()
            self._by_action[action] = hit
        return hit

    def allowed_among(self, actions: frozenset[str]) -> frozenset[str]:
        """Which of `actions` (lowercased) some Allow statement names, whatever its resources and conditions."""
        found: frozenset[str] = frozenset()
        for s in self.statements:
            if s.allow:
                found = found | s.actions_among(actions)
        return found

    def __repr__(self) -> str:
        return f"<CompiledPolicy {self.origin}: {len(self.statements)} statements>"


def compile_policy(document: Any, origin: str, *, resource_policy: bool = False) -> CompiledPolicy:
    """A policy document (dict, JSON or URL-encoded JSON) compiled; raises PolicyError naming what is
    wrong. `resource_policy`: read Principal/NotPrincipal (resource, trust, key policies, RCPs)."""
    doc = load_document(document)
    raw = doc.get("Statement")
    if raw is None:
        raise PolicyError("policy document has no Statement")
    variables = str(doc.get("Version", "")) == VARIABLES_VERSION
    statements = []
    for index, item in enumerate(as_list(raw)):
        if not isinstance(item, dict):
            raise PolicyError(f"Statement[{index}] is not an object")
        statements.append(CompiledStatement(item, index, origin, variables, resource_policy))
    return CompiledPolicy(statements, origin)


PolicyInput = Any  # a CompiledPolicy, a document, or an (origin, document) pair


def _policy(value: PolicyInput, origin: str, resource_policy: bool = False) -> CompiledPolicy:
    if isinstance(value, CompiledPolicy):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return compile_policy(value[1], value[0], resource_policy=resource_policy)
    return compile_policy(value, origin, resource_policy=resource_policy)


# -- principals, policies, resources, organizations ------------------------------------------------------

_ARN_PARTS = re.compile(r"^arn:([a-z-]+):([a-z0-9-]*):[^:]*:(\d{12})?:(.*)$")


def _lower_keys(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (mapping or {}).items():
        out[str(k).lower()] = tuple(_value_text(x) for x in v) if isinstance(v, (list, tuple, set, frozenset)) \
            else _value_text(v)
    return out


@dataclass(frozen=True, eq=False)
class Principal:
    """Who makes the request. Use the constructors: `user`, `role`, `federated_user`, `root`, `service`,
    `web_identity`, `anonymous`, `group_member`. Unknown facts stay None: keys that depend on them are
    undecided rather than guessed."""
    arn: str                                   # user ARN, role session ARN, root ARN, service name...
    kind: str                                  # user | assumed-role | federated-user | root | service |
    #                                            web-identity | anonymous
    account: str | None = None
    name: str | None = None                    # user name, role name
    role_arn: str | None = None                # a session's role (or a federated user's IAM user)
    unique_id: str | None = None               # AIDA... / AROA...
    session_name: str | None = None
    tags: Mapping[str, str] | None = None      # the user's or role's tags; None: not known
    session_tags: Mapping[str, str] | None = None
    mfa: bool | None = None                    # MFA used to get the credentials
    credentials: str | None = None             # "long-term" | "temporary" | None (either)
    token_issue_time: datetime | None = None
    source_ip: str | None = None
    service_linked: bool = False               # SCPs and RCPs do not apply
    provider: str | None = None                # web-identity / SAML provider
    canonical_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)  # further keys known of every request

    @classmethod
    def user(cls, arn: str, *, unique_id: str | None = None, tags: Mapping[str, str] | None = None,
             mfa: bool | None = None, credentials: str | None = None, **facts: Any) -> "Principal":
        return cls(arn, "user", account_of(arn), arn.rsplit("/", 1)[-1], unique_id=unique_id, tags=tags,
                   mfa=mfa, credentials=credentials, **facts)

    @classmethod
    def group_member(cls, group_arn: str, **facts: Any) -> "Principal":
        """A hypothetical member of a group holding only the group's policies: its name is unknown."""
        return cls(group_arn, "user", account_of(group_arn), None, **facts)

    @classmethod
    def role(cls, role_arn: str, *, session_name: str | None = None, unique_id: str | None = None,
             tags: Mapping[str, str] | None = None, session_tags: Mapping[str, str] | None = None,
             mfa: bool | None = None, **facts: Any) -> "Principal":
        """A session of the role (what makes requests when a role acts). `session_name` None: any session."""
        m = _ARN_PARTS.match(role_arn)
        partition = m.group(1) if m else "aws"
        account = account_of(role_arn)
        name = role_arn.rsplit("/", 1)[-1]
        arn = f"arn:{partition}:sts::{account}:assumed-role/{name}/{session_name or '*'}"
        return cls(arn, "assumed-role", account, name, role_arn, unique_id, session_name, tags, session_tags,
                   mfa, "temporary", service_linked=":role/aws-service-role/" in role_arn, **facts)

    @classmethod
    def federated_user(cls, user_arn: str, session_name: str, **facts: Any) -> "Principal":
        m = _ARN_PARTS.match(user_arn)
        partition = m.group(1) if m else "aws"
        account = account_of(user_arn)
        arn = f"arn:{partition}:sts::{account}:federated-user/{session_name}"
        return cls(arn, "federated-user", account, session_name, user_arn, session_name=session_name,
                   credentials="temporary", **facts)

    @classmethod
    def root(cls, account: str, partition: str = "aws", **facts: Any) -> "Principal":
        return cls(f"arn:{partition}:iam::{account}:root", "root", account, **facts)

    @classmethod
    def service(cls, name: str, **facts: Any) -> "Principal":
        """An AWS service principal such as `lambda.amazonaws.com` calling on its own behalf."""
        return cls(name, "service", None, name, **facts)

    @classmethod
    def web_identity(cls, provider: str, **facts: Any) -> "Principal":
        """An identity of a SAML or OIDC provider calling AssumeRoleWith* (the trust policy's Federated)."""
        return cls(provider, "web-identity", account_of(provider), provider=provider, **facts)

    @classmethod
    def anonymous(cls) -> "Principal":
        return cls("*", "anonymous")

    @property
    def session_prefix(self) -> str:
        return self.arn[: self.arn.rfind("/") + 1] if self.kind == "assumed-role" else self.arn

    @cached_property
    def _context(self) -> tuple[dict[str, Any], frozenset[str], tuple[str, ...]]:
        """(known keys, keys known absent, key prefixes whose every key not listed is absent)."""
        known: dict[str, Any] = {}
        absent: set[str] = set()
        closed: list[str] = []
        kind = self.kind
        if kind in ("service", "anonymous", "web-identity"):
            known["aws:principalisawsservice"] = "true" if kind == "service" else "false"
            if kind == "service":
                known["aws:principalservicename"] = self.arn
                absent.update({"aws:principalarn", "aws:principalaccount", "aws:username", "aws:userid",
                               "aws:tokenissuetime", "aws:multifactorauthpresent"})
                closed.append("aws:principaltag/")
            if kind == "anonymous":
                known["aws:principaltype"] = "Anonymous"
                absent.update({"aws:principalarn", "aws:principalaccount", "aws:username", "aws:userid"})
            known.update(_lower_keys(self.context))
            return known, frozenset(absent), tuple(closed)
        known["aws:principalisawsservice"] = "false"
        if self.account:
            known["aws:principalaccount"] = self.account
        known["aws:principalarn"] = self.role_arn if kind in ("assumed-role",) and self.role_arn else self.arn
        if kind == "user":
            known["aws:principaltype"] = "User"
            if self.name:
                known["aws:username"] = self.name
            if self.unique_id:
                known["aws:userid"] = self.unique_id
        elif kind == "assumed-role":
            known["aws:principaltype"] = "AssumedRole"
            absent.add("aws:username")
            if self.unique_id and self.session_name is not None:
                known["aws:userid"] = f"{self.unique_id}:{self.session_name}"
        elif kind == "federated-user":
            known["aws:principaltype"] = "FederatedUser"
            absent.add("aws:username")
            if self.account and self.session_name:
                known["aws:userid"] = f"{self.account}:{self.session_name}"
        elif kind == "root":
            known["aws:principaltype"] = "Account"
            absent.add("aws:username")
            if self.account:
                known["aws:userid"] = self.account
        if self.tags is not None or self.session_tags is not None:
            tags = {k.lower(): v for k, v in (self.tags or {}).items()}
            tags.update({k.lower(): v for k, v in (self.session_tags or {}).items()})
            for k, v in tags.items():
                known[f"aws:principaltag/{k}"] = str(v)
            # every tag is known once the user's or role's are, and (a session) its session tags too
            if self.tags is not None and (self.session_tags is not None
                                          or kind not in ("assumed-role", "federated-user")):
                closed.append("aws:principaltag/")
        credentials = self.credentials or ("temporary" if kind in ("assumed-role", "federated-user") else None)
        if credentials == "long-term":
            absent.update({"aws:tokenissuetime", "aws:multifactorauthpresent", "aws:multifactorauthage"})
        elif credentials == "temporary":
            if self.mfa is not None:
                known["aws:multifactorauthpresent"] = "true" if self.mfa else "false"
                if not self.mfa:
                    absent.add("aws:multifactorauthage")
            if self.token_issue_time is not None:
                known["aws:tokenissuetime"] = _value_text(self.token_issue_time)
        if self.source_ip:
            known["aws:sourceip"] = self.source_ip
        known.update(_lower_keys(self.context))
        return known, frozenset(absent), tuple(closed)


_EMPTY_POLICIES: tuple[CompiledPolicy, ...] = ()


class IdentityPolicies:
    """The policies in force for one principal: identity-based (a user's own and its groups', or a
    role's), the permissions boundary, and the session policies of a session (None: no session policy)."""
    __slots__ = ("identity", "boundary", "session", "_cache")

    def __init__(self, identity: Iterable[PolicyInput] = (), boundary: PolicyInput | None = None,
                 session: Iterable[PolicyInput] | None = None):
        self.identity = tuple(_policy(p, f"identity policy {n}") for n, p in enumerate(identity))
        self.boundary = _policy(boundary, "permissions boundary") if boundary is not None else None
        self.session = (tuple(_policy(p, f"session policy {n}") for n, p in enumerate(session))
                        if session is not None else None)
        self._cache: dict[str, tuple[tuple[CompiledStatement, ...], tuple[CompiledStatement, ...]]] = {}

    def identity_for(self, action: str) -> tuple[tuple[CompiledStatement, ...], tuple[CompiledStatement, ...]]:
        hit = self._cache.get(action)
        if hit is None:
            if len(self.identity) == 1:
                hit = self.identity[0].for_action(action)
            else:
                allows: list[CompiledStatement] = []
                denies: list[CompiledStatement] = []
                for policy in self.identity:
                    a, d = policy.for_action(action)
                    allows += a
                    denies += d
                hit = (tuple(allows), tuple(denies)) if allows or denies else _NO_STATEMENTS
            if len(self._cache) >= 2048:
                self._cache.clear()
            self._cache[action] = hit
        return hit


NO_POLICIES = IdentityPolicies()


@dataclass(frozen=True, eq=False)
class Resource:
    """The target of a request: its ARN (`*` for actions without resource-level permissions), account
    (taken from the ARN when it names one), tags (None: not known) and resource-based policy.
    `requires_policy`: the resource policy must allow whatever identity policies say (role trust
    policies and KMS key policies); None lets the evaluator decide from the action and ARN."""
    arn: str
    account: str | None = None
    tags: Mapping[str, str] | None = None
    policy: CompiledPolicy | None = None
    requires_policy: bool | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, arn: str, policy: PolicyInput | None = None, **facts: Any) -> "Resource":
        compiled = _policy(policy, f"resource policy of {arn}", resource_policy=True) if policy is not None \
            else None
        return cls(arn, facts.pop("account", None) or account_of(arn), policy=compiled, **facts)

    @cached_property
    def _context(self) -> tuple[dict[str, Any], bool]:
        known: dict[str, Any] = {}
        if self.account:
            known["aws:resourceaccount"] = self.account
        for k, v in (self.tags or {}).items():
            known[f"aws:resourcetag/{k.lower()}"] = str(v)
        known.update(_lower_keys(self.context))
        return known, self.tags is not None

    @cached_property
    def kind(self) -> str:
        m = _ARN_PARTS.match(self.arn)
        if not m:
            return ""
        service, rest = m.group(2), m.group(4)
        if service == "iam" and rest.startswith("role/"):
            return "role"
        if service == "kms" and rest.startswith("key/"):
            return "kms-key"
        return service


def _levels(levels: Iterable[Any] | None, what: str, account: str) -> tuple[tuple[str, tuple[CompiledPolicy, ...]], ...]:
    out = []
    for n, level in enumerate(levels or ()):
        name = f"{what} level {n} of {account}"
        if isinstance(level, tuple) and len(level) == 2 and isinstance(level[0], str):
            name, level = level
        policies = tuple(_policy(p, f"{name} policy {i}", resource_policy=(what == "RCP"))
                         for i, p in enumerate(as_list(level)))
        out.append((name, policies))
    return tuple(out)


class Organization:
    """AWS Organizations policies: `scps` and `rcps` map an account to its levels, top down (root, OUs,
    the account), each level a list of policies (documents, (name, document) pairs, or compiled); a level
    may itself be a (name, policies) pair. Every level must allow. The management account is exempt."""

    def __init__(self, scps: Mapping[str, Iterable[Any]] | None = None, rcps: Mapping[str, Iterable[Any]] | None = None,
                 *, management_account: str | None = None, org_id: str | None = None,
                 paths: Mapping[str, Sequence[str]] | None = None, accounts: Iterable[str] = (),
                 rcp_services: Iterable[str] = RCP_SERVICES):
        self.management_account = management_account
        self.org_id = org_id
        self.scps = {a: _levels(levels, "SCP", a) for a, levels in (scps or {}).items()}
        self.rcps = {a: _levels(levels, "RCP", a) for a, levels in (rcps or {}).items()}
        self.paths = {a: tuple(p) for a, p in (paths or {}).items()}
        self.accounts = set(accounts) | set(self.scps) | set(self.rcps) | set(self.paths)
        if management_account:
            self.accounts.add(management_account)
        self.rcp_services = frozenset(s.lower() for s in rcp_services)

    def scp_levels(self, p: Principal) -> tuple[tuple[str, tuple[CompiledPolicy, ...]], ...] | None:
        if p.kind in ("service", "anonymous", "web-identity") or p.service_linked or not p.account:
            return None
        if p.account == self.management_account:
            return None
        return self.scps.get(p.account) or None

    def rcp_levels(self, p: Principal, account: str | None, service: str
                   ) -> tuple[tuple[str, tuple[CompiledPolicy, ...]], ...] | None:
        if not account or account == self.management_account or p.service_linked or p.kind == "service":
            return None
        if service not in self.rcp_services:
            return None
        return self.rcps.get(account) or None


# -- requests and decisions ------------------------------------------------------------------------------

class Request:
    """One request: `context` maps condition keys (any case) to values (str, bool, number, datetime,
    a list for multivalued keys); `absent` lists keys known not to be in the request; `closed` says every
    key neither given nor derivable is absent (a key given as None is absent too). `at` sets
    aws:CurrentTime and aws:EpochTime."""
    __slots__ = ("principal", "action", "resource", "context", "absent", "closed")

    def __init__(self, principal: Principal, action: str, resource: Resource | str = "*",
                 context: Mapping[str, Any] | None = None, *, absent: Iterable[str] = (), closed: bool = False,
                 at: datetime | None = None):
        self.principal = principal
        self.action = action.lower()
        self.resource = resource if isinstance(resource, Resource) else _resource_of(resource)
        ctx: dict[str, Any] = {}
        if context:
            ctx = _lower_keys({k: v for k, v in context.items() if v is not None})
            absent = [*absent, *(k for k, v in context.items() if v is None)]  # None: known absent
        if at is not None:
            moment = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
            ctx.setdefault("aws:currenttime", moment.isoformat())
            ctx.setdefault("aws:epochtime", str(int(moment.timestamp())))
        self.context = ctx
        self.absent = frozenset(k.lower() for k in absent) if absent else _NO_KEYS
        self.closed = closed

    def again(self, principal: Principal, action: str, resource: Resource | str = "*") -> "Request":
        """Another request with this one's context, absent keys and closedness, made without normalizing
        them again: for callers asking many questions in one context."""
        request = Request.__new__(Request)
        request.principal = principal
        request.action = action.lower()
        request.resource = resource if isinstance(resource, Resource) else _resource_of(resource)
        request.context = self.context
        request.absent = self.absent
        request.closed = self.closed
        return request


_NO_KEYS: frozenset[str] = frozenset()


@lru_cache(maxsize=16384)
def _resource_of(arn: str) -> Resource:
    return Resource(arn, account_of(arn))


class _Context:
    """The request context seen by the conditions: the request's own keys, then what the resource and
    the principal tell, then the organization's; what none of them knows is unknown (or absent)."""
    __slots__ = ("request", "org")

    def __init__(self, request: Request, org: Organization | None):
        self.request = request
        self.org = org

    def get(self, key: str) -> Any:
        """`key` lowercased; a str, a tuple of str, ABSENT or UNKNOWN."""
        request = self.request
        value = request.context.get(key)
        if value is not None:
            return value
        if key in request.absent:
            return ABSENT
        resource = request.resource
        known, tags_closed = resource._context
        value = known.get(key)
        if value is not None:
            return value
        if ":resourcetag/" in key:
            tag = key.split(":resourcetag/", 1)[1]
            value = known.get(f"aws:resourcetag/{tag}")
            if value is not None:
                return value
            if tags_closed:
                return ABSENT
        principal = request.principal
        known, absent, closed = principal._context
        value = known.get(key)
        if value is not None:
            return value
        if key in absent or any(key.startswith(prefix) for prefix in closed):
            return ABSENT
        org = self.org
        if org is not None and org.org_id:
            if key == "aws:principalorgid" and principal.account:
                return org.org_id if principal.account in org.accounts else ABSENT
            if key == "aws:principalorgpaths" and principal.account in org.paths:
                return org.paths[principal.account or ""]
            if key == "aws:resourceorgid" and resource.account:
                return org.org_id if resource.account in org.accounts else ABSENT
            if key == "aws:resourceorgpaths" and resource.account in org.paths:
                return org.paths[resource.account or ""]
        return ABSENT if request.closed else UNKNOWN


class Verdict(str, Enum):
    ALLOWED = "allowed"
    DENIED = "denied"              # an explicit Deny applies
    CONDITIONAL = "conditional"    # allowed only if conditions the evaluation cannot decide hold
    IMPLICIT_DENY = "implicit-deny"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    statements: tuple[str, ...] = ()       # labels ("origin (sid)") of the statements that decided it
    undecided: frozenset[str] = frozenset()  # condition keys the outcome depends on (conditional)
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOWED

    @property
    def denied(self) -> bool:
        """Explicitly denied."""
        return self.verdict is Verdict.DENIED

    @property
    def conditional(self) -> bool:
        return self.verdict is Verdict.CONDITIONAL

    @property
    def possible(self) -> bool:
        """Allowed, or allowed if undecided conditions hold."""
        return self.verdict in (Verdict.ALLOWED, Verdict.CONDITIONAL)

    def __str__(self) -> str:
        text = f"{self.verdict.value}: {self.reason}"
        if self.undecided:
            text += f" (depends on {', '.join(sorted(self.undecided))})"
        return text + (f" [{'; '.join(self.statements)}]" if self.statements else "")


def _scan(statements: Iterable[CompiledStatement], arn: str, ctx: _Context, undecided: list[str],
          hits: list[str], maybe: list[str]) -> Tri:
    """Whether any statement applies (True), may apply (None) or none does (False); the labels of those
    that do go to `hits`, of those that may to `maybe`."""
    result: Tri = False
    for s in statements:
        outcome = s.applies(arn, ctx, undecided)
        if outcome is True:
            result = True
            hits.append(s.label)
        elif outcome is None:
            if result is False:
                result = None
            maybe.append(s.label)
    return result


def _scan_named(statements: Iterable[CompiledStatement], p: Principal, bounded: bool, arn: str, ctx: _Context,
                undecided: list[str], hits: dict[str, list[str]], maybe: list[str]) -> dict[str, Tri]:
    """Resource-policy statements that name the requester, by how they name it (DIRECT, ROLE, ACCOUNT)."""
    results: dict[str, Tri] = {}
    for s in statements:
        named, sure = s.names(p, bounded)
        if named is None:
            continue
        outcome = s.applies(arn, ctx, undecided)
        if sure is not True:
            outcome = _and(sure, outcome)
        if outcome is True:
            results[named] = True
            hits.setdefault(named, []).append(s.label)
        elif outcome is None:
            if results.get(named, False) is False:
                results[named] = None
            maybe.append(s.label)
    return results


def _service_of(action: str) -> str:
    return action.split(":", 1)[0]


_IMPLICIT: dict[str, Decision] = {}


def _implicit(reason: str) -> Decision:
    decision = _IMPLICIT.get(reason)
    if decision is None:
        decision = _IMPLICIT[reason] = Decision(Verdict.IMPLICIT_DENY, (), frozenset(), reason)
    return decision


_NO_IDENTITY = ("service", "anonymous", "web-identity")  # principals without identity-based policies
_NOTHING_ALLOWS = _implicit("no identity-based Allow and no resource-based Allow")


def evaluate(request: Request, policies: IdentityPolicies | None = None,
             org: Organization | None = None) -> Decision:
    """Whether AWS would allow `request`, given the principal's `policies` (identity-based, boundary,
    session), the resource's policy (on `request.resource`) and the organization's SCPs and RCPs."""
    p = request.principal
    action = request.action
    resource = request.resource
    arn = resource.arn
    pol = policies if policies is not None else NO_POLICIES
    kind = p.kind
    boundary = pol.boundary
    bounded = boundary is not None

    id_allows, id_denies = pol.identity_for(action) if pol.identity else _NO_STATEMENTS
    b_allows, b_denies = boundary.for_action(action) if boundary is not None else _NO_STATEMENTS
    sessions = [s.for_action(action) for s in pol.session] if pol.session else None
    policy = resource.policy
    r_allows, r_denies = policy.for_action(action) if policy is not None else _NO_STATEMENTS
    r_account = resource.account or p.account
    scp_levels = rcp_levels = None
    if org is not None:
        scp_levels = org.scp_levels(p)
        rcp_levels = org.rcp_levels(p, r_account, _service_of(action))
    ctx = _Context(request, org)
    undecided: list[str] = []

    # 1. explicit Deny anywhere
    deny: Tri = False
    denied: list[str] = []
    maybe_denied: list[str] = []
    if id_denies or b_denies or sessions or r_denies or scp_levels or rcp_levels:
        deny = _scan(id_denies, arn, ctx, undecided, denied, maybe_denied)
        if b_denies:
            deny = _or(deny, _scan(b_denies, arn, ctx, undecided, denied, maybe_denied))
        for _, s_denies in sessions or ():
            deny = _or(deny, _scan(s_denies, arn, ctx, undecided, denied, maybe_denied))
        if r_denies:
            named_denies: dict[str, list[str]] = {}
            found = _scan_named(r_denies, p, bounded, arn, ctx, undecided, named_denies, maybe_denied)
            denied += [label for labels in named_denies.values() for label in labels]
            for outcome in found.values():
                deny = _or(deny, outcome)
        for _, level in scp_levels or ():
            for scp in level:
                deny = _or(deny, _scan(scp.for_action(action)[1], arn, ctx, undecided, denied, maybe_denied))
        for _, level in rcp_levels or ():
            for rcp in level:
                named_denies = {}
                found = _scan_named(rcp.for_action(action)[1], p, bounded, arn, ctx, undecided, named_denies,
                                    maybe_denied)
                denied += [label for labels in named_denies.values() for label in labels]
                for outcome in found.values():
                    deny = _or(deny, outcome)
        if deny is True:
            return Decision(Verdict.DENIED, tuple(dict.fromkeys(denied)), frozenset(), "explicit Deny")

    # nothing can allow: the common answer, given without further work
    if not id_allows and not r_allows and kind != "root":
        if kind in _NO_IDENTITY:
            return _implicit(f"{_POLICY_NAMES.get(resource.kind, 'the resource policy')} does not allow this "
                             "principal")
        if policy is None:
            return _NOTHING_ALLOWS

    hits: list[str] = []
    maybe: list[str] = list(maybe_denied)

    # 2. Organizations RCPs and SCPs: every level must allow
    guard: Tri = True
    for levels, resource_side in ((rcp_levels, True), (scp_levels, False)):
        for name, level in levels or ():
            result: Tri = False
            for guard_policy in level:
                allows = guard_policy.for_action(action)[0]
                if resource_side:
                    named_hits: dict[str, list[str]] = {}
                    for outcome in _scan_named(allows, p, bounded, arn, ctx, undecided, named_hits, maybe).values():
                        result = _or(result, outcome)
                    hits += [label for labels in named_hits.values() for label in labels]
                else:
                    result = _or(result, _scan(allows, arn, ctx, undecided, hits, maybe))
            if result is False:
                return _implicit(f"no Allow in {name}")
            guard = _and(guard, result)

    # 3. identity side: identity-based AND boundary AND session
    if kind == "root":
        identity: Tri = True
        hits.append("account root user")
    elif kind in _NO_IDENTITY:
        identity = False
    else:
        identity = _scan(id_allows, arn, ctx, undecided, hits, maybe) if id_allows else False
    bound: Tri = True
    if boundary is not None and kind != "root":
        bound = _scan(b_allows, arn, ctx, undecided, hits, maybe) if b_allows else False
    session: Tri = True
    if sessions:
        session = False
        for s_allows, _ in sessions:
            session = _or(session, _scan(s_allows, arn, ctx, undecided, hits, maybe))
    elif kind == "federated-user":
        session = False  # a federated user session without a session policy has no permissions
    identity_path = _and(_and(identity, bound), session)

    # 4. resource side: how the resource policy names the requester
    named: dict[str, Tri] = {}
    if r_allows:
        named_hits = {}
        named = _scan_named(r_allows, p, bounded, arn, ctx, undecided, named_hits, maybe)
        hits += [label for labels in named_hits.values() for label in labels]
    direct, role, account = named.get(DIRECT, False), named.get(ROLE, False), named.get(ACCOUNT, False)

    requires = resource.requires_policy
    if requires is None:
        requires = (action in TRUST_ACTIONS and resource.kind == "role") or (
            resource.kind == "kms-key" and action.startswith("kms:"))
    cross = kind not in _NO_IDENTITY and r_account is not None and p.account is not None \
        and r_account != p.account
    if kind in _NO_IDENTITY:
        allow = direct
    elif cross:
        allow = _and(identity_path, _or(_or(direct, role), account))
    else:
        # a grant naming the user or the session itself stands alone; one naming the role is cut by
        # the boundary and the session policy; one naming the account delegates to identity policies
        allow = _or(_or(direct, _and(_and(role, bound), session)), _and(account, identity_path))
        if not requires:
            allow = _or(allow, identity_path)
    allow = _and(allow, guard)

    if allow is False:
        return _implicit(_implicit_reason(kind, cross, requires, resource, identity, bound, session,
                                          _or(_or(direct, role), account)))
    if allow is True and deny is False:
        return Decision(Verdict.ALLOWED, tuple(dict.fromkeys(hits)), frozenset(), "allowed")
    reason = "an explicit Deny may apply" if deny is None else "allowed only if conditions hold"
    return Decision(Verdict.CONDITIONAL, tuple(dict.fromkeys(maybe)), frozenset(undecided), reason)


_POLICY_NAMES = {"role": "the role's trust policy", "kms-key": "the key policy"}


def _implicit_reason(kind: str, cross: bool, requires: bool, resource: Resource, identity: Tri, bound: Tri,
                     session: Tri, resource_side: Tri) -> str:
    what = _POLICY_NAMES.get(resource.kind, "the resource policy")
    if kind in _NO_IDENTITY:
        return f"{what} does not allow this principal"
    if cross and resource_side is False:
        return f"cross-account: {what} does not allow this principal"
    if requires and resource_side is False:
        return f"{what} does not allow this principal"
    if identity is False:
        return "no identity-based Allow" + ("" if cross or requires else " and no resource-based Allow")
    if bound is False:
        return "the permissions boundary does not allow it"
    if session is False:
        return "the session policy does not allow it"
    return f"{what} names only the account and the identity policies do not allow it"


# -- IAM exports ------------------------------------------------------------------------------------------

@dataclass
class Subject:
    """A principal of an IAM export with its policies (and, for a role, its trust policy as a Resource)."""
    principal: Principal
    policies: IdentityPolicies
    kind: str                      # user | role | group
    name: str
    resource: Resource | None = None


@dataclass
class Snapshot:
    """The principals of one `get-account-authorization-details` export, compiled."""
    subjects: dict[str, Subject] = field(default_factory=dict)   # by ARN
    managed: dict[str, CompiledPolicy] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def by_name(self, name: str, kind: str | None = None) -> Subject:
        """The user, role or group of that name (users first, then roles, when a group shares it)."""
        order = {"user": 0, "role": 1, "group": 2}
        found = sorted((s for s in self.subjects.values() if s.name == name and kind in (None, s.kind)),
                       key=lambda s: order[s.kind])
        if not found:
            raise KeyError(name)
        return found[0]


def name_of(entry: Mapping[str, Any], key: str) -> str:
    """An export entry's name (UserName, RoleName, GroupName), or its ARN's last part when it has none."""
    name = entry.get(key)
    return str(name) if name else str(entry.get("Arn", "")).rsplit("/", 1)[-1]


def _tags_of(entry: dict) -> dict[str, str]:
    tags = entry.get("Tags") or []
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t.get("Key")): str(t.get("Value")) for t in tags if isinstance(t, dict)}


def load_authorization_details(payload: Mapping[str, Any],
                               known_policies: Mapping[str, Any] | None = None) -> Snapshot:
    """Users, roles and groups (as hypothetical members) of an authorization-details export, each with
    its compiled identity policies, boundary, and (roles) trust policy. Managed policies are compiled once
    and shared; documents that cannot be read are listed in `problems` and left out. `known_policies`:
    documents by ARN for managed policies the export names without including them (AWS managed ones)."""
    snapshot = Snapshot()
    documents: dict[str, tuple[str, Any]] = {arn: (arn.rsplit("/", 1)[-1], document)
                                             for arn, document in (known_policies or {}).items()}
    for policy in payload.get("Policies") or []:
        versions = policy.get("PolicyVersionList") or []
        default = next((v for v in versions if v.get("IsDefaultVersion")), None) or next(
            (v for v in versions if v.get("VersionId") == policy.get("DefaultVersionId")), None)
        if default is not None and default.get("Document") is not None:
            documents[policy["Arn"]] = (policy.get("PolicyName") or policy["Arn"].rsplit("/", 1)[-1],
                                        default["Document"])
    compiled: dict[tuple[str, str], CompiledPolicy | None] = {}

    def managed(ref: dict, prefix: str = "") -> CompiledPolicy | None:
        """A managed policy, compiled once per holder kind: shared by every user or role attaching it,
        and once per group (so a decision names the group it came through)."""
        arn = ref.get("PolicyArn") or ref.get("PermissionsBoundaryArn") or ""
        if (prefix, arn) not in compiled:
            policy = None
            if arn not in documents:
                snapshot.problems.append(f"managed policy {arn}: document unavailable")
            else:
                name, document = documents[arn]
                try:
                    policy = compile_policy(document, f"{prefix}managed {name}")
                except PolicyError as exc:
                    snapshot.problems.append(f"managed {name}: {exc}")
            compiled[(prefix, arn)] = policy
            if policy is not None and not prefix:
                snapshot.managed[arn] = policy
        return compiled[(prefix, arn)]

    def own(entry: dict, inline_key: str, prefix: str) -> list[CompiledPolicy]:
        out: list[CompiledPolicy] = []
        for item in entry.get(inline_key) or []:
            origin = f"{prefix}inline {item.get('PolicyName', 'inline')}"
            try:
                out.append(compile_policy(item.get("PolicyDocument"), origin))
            except PolicyError as exc:
                snapshot.problems.append(f"{origin}: {exc}")
        refs = [ref for ref in entry.get("AttachedManagedPolicies") or [] if isinstance(ref, dict)]
        out += [m for m in (managed(ref, prefix) for ref in refs) if m is not None]
        return out

    def boundary(entry: dict) -> CompiledPolicy | None:
        ref = entry.get("PermissionsBoundary")
        return managed(ref) if isinstance(ref, dict) and ref.get("PermissionsBoundaryArn") else None

    groups: dict[str, list[CompiledPolicy]] = {}
    for group in payload.get("GroupDetailList") or []:
        group_name = name_of(group, "GroupName")
        policies = own(group, "GroupPolicyList", f"group {group_name} ")
        groups[group_name] = policies
        snapshot.subjects[group["Arn"]] = Subject(Principal.group_member(group["Arn"]), IdentityPolicies(policies),
                                                  "group", group_name)
    for user in payload.get("UserDetailList") or []:
        policies = own(user, "UserPolicyList", "")
        for name in user.get("GroupList") or []:
            if name not in groups:
                snapshot.problems.append(f"user {name_of(user, 'UserName')}: group {name} not in the export")
            policies += groups.get(name, [])
        principal = Principal.user(user["Arn"], unique_id=user.get("UserId"), tags=_tags_of(user))
        snapshot.subjects[user["Arn"]] = Subject(principal, IdentityPolicies(policies, boundary(user)), "user",
                                                 name_of(user, "UserName"))
    for role in payload.get("RoleDetailList") or []:
        principal = Principal.role(role["Arn"], unique_id=role.get("RoleId"), tags=_tags_of(role))
        trust = None
        if role.get("AssumeRolePolicyDocument") is not None:
            try:
                trust = compile_policy(role["AssumeRolePolicyDocument"], f"trust policy of {name_of(role, 'RoleName')}",
                                       resource_policy=True)
            except PolicyError as exc:
                snapshot.problems.append(f"trust policy of {name_of(role, 'RoleName')}: {exc}")
        snapshot.subjects[role["Arn"]] = Subject(
            principal, IdentityPolicies(own(role, "RolePolicyList", ""), boundary(role)), "role",
            name_of(role, "RoleName"), Resource(role["Arn"], account_of(role["Arn"]), tags=_tags_of(role), policy=trust))
    return snapshot
