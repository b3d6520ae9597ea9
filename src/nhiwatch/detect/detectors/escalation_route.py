"""An escalation route being walked: the identity makes, successfully, the call that takes a hop of one of its
own routes to admin (the inventory's principal graph found them), or acts on a principal that is admin or
one route away from it (minting its credentials, rewriting its trust, handing it to compute, assuming it).
The finding names the route and its hops, so the analyst reads "iam-002 on admin-bob (admin)", not just
"a first CreateAccessKey". A first-time API is not needed: what the call reaches is the point."""

from __future__ import annotations

from typing import Iterable, NamedTuple

from nhiwatch.detect import cases as c
from nhiwatch.detect.actor import Actor
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.detectors.iam_permission_change import assess
from nhiwatch.detect.routes import (EXISTING_APIS, MINTS, PASS_APIS, TARGETING, TRAIL_NAMES, WALK_APIS, Hop, PrincipalIndex,
                                    Target, Walk, canonical_api, habit_key, hop_matches, route_text, targets_of)
from nhiwatch.inventory.methods import BY_ID

MAX_TEXT = 200                     # characters of an attacker-named principal kept in a finding
UNJUDGED_WRITES = frozenset({"iam:SetDefaultPolicyVersion"})  # the version's content is not in the event


class Taken(NamedTuple):
    """The hop a call takes: on which route, which hop, on what."""
    route: dict
    hop: int
    method: str
    target: Target
    completes: bool                # the identity's own hops of the route are all taken now
    own: bool                      # one of the identity's routes (else: a privileged principal acted on)


def _in_order(window: list, actions: Iterable[str], since: int) -> bool:
    """Each action succeeded in the short window, in this order."""
    position = 0
    wanted = list(actions)
    for t, api, denied, _read, _resource in window:
        if position == len(wanted):
            break
        if t >= since and not denied and canonical_api(api) == wanted[position]:
            position += 1
    return position == len(wanted)


def _took_a_hop(look: Look, since: int) -> bool:
    """This detector raised on the identity within the window: the earlier hop was taken, not just called
    (a scoped write on the same role is not the route's write)."""
    return any(t >= since and detector == EscalationRouteWalked.id for t, _tactic, detector, _h in look.profile.steps)


def _write_grants(look: Look, api: str) -> bool:
    """A write hop is taken only by a write that grants enough (admin, iam:*, an escalation method)."""
    if api in UNJUDGED_WRITES:
        return True
    ev = look.ev
    return assess(api, ev.params, look.info.arn, look.info.account_id, look.known_accounts).dangerous


def _own_route(look: Look, api: str, targets: list[Target]) -> Taken | None:
    window = look.profile.window
    since = look.ev.t - 15 * 60 * 1_000_000
    walk: Walk
    for walk in look.info.walks:
        hop: Hop
        for hop in walk.hops:
            target = next((t for t in targets if hop_matches(hop, api, t, look.info.arn)), None)
            if target is None or not _in_order(window, hop.before, since):
                continue
            earlier = [h.step.action for h in walk.hops[:hop.index]]
            if earlier and not (_in_order(window, earlier, since) and _took_a_hop(look, since)):
                continue  # a later hop alone (assuming a role not yet made admin) is not the route
            last = hop.index == len(walk.hops) - 1
            if hop.method.edge == "assume" and not (last and walk.whole):
                continue  # assuming a role on the way: that role's own hops are judged on it
            if hop.method.edge == "write" and not _write_grants(look, api):
                continue
            route = _on(walk.route, hop.to, target) if hop.loose else walk.route
            return Taken(route, hop.index, hop.method.id, target, last, True)
    return None


def _on(route: dict, stored: str, target: Target) -> dict:
    """The route with the principal the call acted on in place of the one the graph happened to keep."""
    actual = target.principal.arn if target.principal else target.ref
    hops = [dict(h, to=actual) if isinstance(h, dict) and h.get("to") == stored else h for h in route.get("hops") or []]
    return dict(route, hops=hops, admin=actual if route.get("admin") == stored else route.get("admin"))


def _privileged_target(look: Look, api: str, targets: list[Target]) -> Taken | None:
    """A call that acts as (or hands out) a principal that is admin or has a sure route to it."""
    caller = look.info.arn
    for target in targets:
        principal = target.principal
        if principal is None or principal.arn == caller or not principal.valuable:
            continue
        if api == "sts:AssumeRole" and not principal.admin:
            continue  # its own hops are judged on it
        if api not in MINTS and api not in PASS_APIS and api not in EXISTING_APIS \
                and api not in ("sts:AssumeRole", "iam:UpdateAssumeRolePolicy"):
            continue  # writes on others are judged by what they grant (iam-permission-change)
        method = TARGETING[api][0]
        hops = [{"from": caller, "to": principal.arn, "method": method.id}]
        admin = principal.arn
        if not principal.admin and principal.route:
            hops += [h for h in principal.route.get("hops") or [] if isinstance(h, dict)]
            admin = principal.route.get("admin", admin)
        route = {"methods": [method.id], "admin": admin, "conditional": False, "hops": hops}
        return Taken(route, 0, method.id, target, True, False)
    return None


# The cases' account: the CI user may mint keys for break-glass (admin) and pass fn-admin (admin) to Lambda.
_ADMIN = {"admin": [c.statement("*")]}
_LAMBDA = {"Service": "lambda.amazonaws.com"}
_CI = {"AWS": f"arn:aws:iam::{c.ACCOUNT}:user/ci-deploy"}
ROUTES_IAM = c.iam_export(
    c.export_user("ci-deploy", {"deploy": [
        c.statement(["s3:PutObject", "ecs:UpdateService", "ecs:DescribeServices", "lambda:CreateFunction",
                     "lambda:InvokeFunction"]),
        c.statement("iam:CreateAccessKey", f"arn:aws:iam::{c.ACCOUNT}:user/break-glass"),
        c.statement("iam:PassRole", [f"arn:aws:iam::{c.ACCOUNT}:role/fn-admin", f"arn:aws:iam::{c.ACCOUNT}:role/fn-basic"]),
        c.statement("sts:AssumeRole", f"arn:aws:iam::{c.ACCOUNT}:role/deploy-role"),
    ]}),
    c.export_role("deploy-role", _CI, {"self": [c.statement("iam:PutRolePolicy", f"arn:aws:iam::{c.ACCOUNT}:role/deploy-role"),
                                                c.statement(["cloudformation:*"])]}),
    c.export_user("break-glass", _ADMIN),
    c.export_role("fn-admin", _LAMBDA, _ADMIN),
    c.export_role("fn-basic", _LAMBDA, {"logs": [c.statement(["logs:CreateLogStream", "logs:PutLogEvents"])]}),
)


# The Lambda service runs the function billing as fn-admin (its cold starts assume the role).
_BILLING_RUNS = c.Repeat(lambda t: c.service_assumes("lambda.amazonaws.com", t, f"arn:aws:iam::{c.ACCOUNT}:role/fn-admin",
                                                     "billing"), every=6 * 3600)


class EscalationRouteWalked(Detector):
    id = "escalation-route-walked"
    title = "A route to admin being walked"
    tactic = "privilege-escalation"
    mitre = ("T1098", "T1098.001", "T1098.003", "T1548")
    guardduty = ("PrivilegeEscalation:IAMUser/AnomalousBehavior",)
    description = ("A successful call that takes a hop of one of the identity's own routes to admin (the principal "
                   "graph's, `nhiwatch posture paths`): its targeting step on the hop's principal, after the method's "
                   "earlier steps within 15 minutes (a write must grant admin, iam:* or an escalation method; "
                   "assuming a role counts when it completes the route); or minting credentials of, rewriting the "
                   "trust of, handing to compute, taking over a function or instance that runs as (its code, commands, "
                   "user data, SSH keys; which role runs it is learnt from the events) or assuming a principal that "
                   "is admin or one sure route from it. "
                   "Needs an inventory. High; medium for minting, handing a role over or taking over a resource "
                   "with no history, or by "
                   "the workload's own code from its usual place, and for a first assumption of an admin role "
                   "from the usual place; not raised for young identities assuming roles, for calls an AWS service "
                   "makes, or for a hop the identity already took on the same principal without a finding.")
    routine = True  # an insider or a hijacked workload walks from its usual place with its usual client
    reads_params = TRAIL_NAMES
    cases = (
        c.positive("stolen-ci-key-mints-a-key-for-the-admin-user",
                   "the CI key used from outside creates an access key for break-glass, the admin user its policy "
                   "lets it mint keys for: the route iam-002 -> break-glass, taken in one call",
                   [c.CI_THIEF.call(c.at(0), "iam:CreateAccessKey", {"userName": "break-glass"})],
                   [c.CI_HABIT], severity="high", iam=ROUTES_IAM),
        c.positive("hijacked-pipeline-hands-the-admin-role-to-a-new-function",
                   "someone running code in the CI pipeline itself (its usual runner network and client) creates a "
                   "Lambda function with fn-admin, the admin role the pipeline may pass: route lambda-001",
                   [c.CI_USER.call(c.at(0), "lambda:CreateFunction20150331", {
                       "functionName": "helper", "runtime": "python3.12", "handler": "index.handler",
                       "role": f"arn:aws:iam::{c.ACCOUNT}:role/fn-admin"})],
                   [c.CI_HABIT], severity="high", iam=ROUTES_IAM),
        c.positive("a-role-reached-through-the-pipeline-writes-itself-admin",
                   "the CI key assumes deploy-role (as it may), and deploy-role's session writes an admin policy on "
                   "deploy-role: the second hop of ci-deploy's route, taken by the role (iam-005 on itself)",
                   [c.assume_role(c.CI_USER, c.at(0), f"arn:aws:iam::{c.ACCOUNT}:role/deploy-role", "ci"),
                    c.Caller(c.role_session("deploy-role", "ci"), c.GITHUB_RUNNER, c.CLI).call(
                        c.at(30), "iam:PutRolePolicy", {"roleName": "deploy-role", "policyName": "x",
                                                         "policyDocument": c.admin_policy()})],
                   [c.CI_HABIT], severity="high", iam=ROUTES_IAM,
                   identity=f"arn:aws:iam::{c.ACCOUNT}:role/deploy-role"),
        c.positive("stolen-ci-key-replaces-the-code-of-a-function-that-runs-as-admin",
                   "the CI key used from outside replaces the code of billing, a function the Lambda service runs "
                   "as fn-admin (lambda-003): the new code runs with admin's credentials",
                   [c.CI_THIEF.call(c.at(0), "lambda:UpdateFunctionCode20150331v2", {
                       "functionName": "billing", "zipFile": "<sensitiveDataRemoved>"})],
                   [c.CI_HABIT, _BILLING_RUNS], severity="high", iam=ROUTES_IAM),
        c.negative("pipeline-deploys-the-admin-function-as-every-release",
                   "the pipeline ships billing's new code from its runners, as every release has done",
                   [c.CI_USER.call(c.at(0), "lambda:UpdateFunctionCode20150331v2", {"functionName": "billing"})],
                   [c.CI_HABIT, _BILLING_RUNS, c.habit(c.CI_USER, c.Call("lambda:UpdateFunctionCode20150331v2", {
                       "functionName": "billing"}), every=24 * 3600)], iam=ROUTES_IAM),
        c.negative("pipeline-rotates-the-admin-users-key-as-every-month",
                   "the pipeline rotates break-glass's access key, as it has done before, from its usual runners",
                   [c.CI_USER.call(c.at(0), "iam:CreateAccessKey", {"userName": "break-glass"})],
                   [c.CI_HABIT, c.habit(c.CI_USER, c.Call("iam:CreateAccessKey", {"userName": "break-glass"}),
                                        every=36 * 3600)], iam=ROUTES_IAM),
        c.negative("pipeline-creates-a-function-with-a-plain-role",
                   "the pipeline creates a function whose role may only write logs: no route, nothing to say",
                   [c.CI_USER.call(c.at(0), "lambda:CreateFunction20150331", {
                       "functionName": "thumbnails", "runtime": "python3.12", "handler": "index.handler",
                       "role": f"arn:aws:iam::{c.ACCOUNT}:role/fn-basic"})],
                   [c.CI_HABIT], iam=ROUTES_IAM),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, info = look.ev, look.info
        if ev.inbound or ev.error or look.actor == Actor.SERVICE:
            return
        api = canonical_api(ev.api)
        index = look.principals if isinstance(look.principals, PrincipalIndex) else PrincipalIndex()
        if api not in WALK_APIS or not (info.walks or index):
            return
        targets = [t for t in targets_of(api, ev.params, ev.assumed_role, info.arn, ev.account or info.account_id,
                                         index) if not look.profile.knows("walked", habit_key(api, t))]
        if not targets:
            return
        taken = _own_route(look, api, targets) or _privileged_target(look, api, targets)
        if taken is None:
            return
        severity = self._severity(look, api, taken)
        if severity is None:
            return
        route = taken.route
        hops = route.get("hops") or []
        name = taken.target.ref[-MAX_TEXT:]
        method = f"{taken.method} ({BY_ID[taken.method].title}) on {name.rsplit('/', 1)[-1]}"
        if taken.own:
            what = (f"took hop {taken.hop + 1} of {len(hops)} of its route to admin: {method}"
                    + (" (its own hops are all taken now)" if taken.completes and len(hops) > 1 else ""))
        else:
            principal = taken.target.principal
            what = (f"acted on a privileged principal: {method}, which "
                    + ("is admin" if principal is not None and principal.admin else "has a route to admin"))
        yield Hit(severity, 0.95,
                  f"{info.arn} {what} ({route_text(route)}): {look.what()}. {look.normally()}",
                  {"method": taken.method, "route": _bounded(route), "hop": taken.hop, "hops": len(hops),
                   "target": name, "completes": taken.completes,
                   "source": "own-route" if taken.own else "privileged-target",
                   "hostile": not look.usual_context},
                  key=f"route|{str(route.get('admin', ''))[-MAX_TEXT:]}|{taken.hop}")

    @staticmethod
    def _severity(look: Look, api: str, taken: Taken) -> str | None:
        profile = look.profile
        edge = next((m.edge for m in TARGETING[api] if m.id == taken.method), "pass")
        unusual = not look.usual_context
        if edge == "assume":
            if taken.hop > 0:
                return "high"      # the act that completes a write on the same role: the route is done
            if not profile.mature:
                return None        # a young identity assumes its roles for the first time
            return "high" if unusual else "medium"
        if edge in ("write", "trust", "join"):
            return "high"
        cold = not profile.mature and look.peers is None
        if cold or (look.actor == Actor.CODE and not unusual):
            return "medium"        # a first deploy or key rotation looks like this; someone else's hands do not
        return "high"


def _bounded(route: dict) -> dict:
    hops = [{k: str(v)[-MAX_TEXT:] for k, v in h.items() if k in ("from", "to", "method", "subject")}
            for h in (route.get("hops") or [])[:10] if isinstance(h, dict)]
    return {"methods": [str(m)[:64] for m in (route.get("methods") or [])[:10]],
            "admin": str(route.get("admin", ""))[-MAX_TEXT:], "conditional": bool(route.get("conditional")),
            "hops": hops}
