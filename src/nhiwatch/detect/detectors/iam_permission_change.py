"""IAM writes judged by what they grant, from the first event: a policy that reaches admin or an
escalation method, a write on the caller itself, a trust opened to anyone or to an account nobody
knows, a key or a password for another user. None of this needs a history to be alarming; a scoped
write that a deploy pipeline makes through CloudFormation is routine."""

from __future__ import annotations

from typing import Iterable, NamedTuple

import orjson

from nhiwatch.detect import cases as c
from nhiwatch.detect.actor import Actor
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import account_of
from nhiwatch.inventory.policy import PermissionSet, PolicyError, load_document, statements_of
from nhiwatch.inventory.methods import granted_methods
from nhiwatch.knowledge.vendors import vendor_for_account

POLICY_WRITES = frozenset({"iam:PutUserPolicy", "iam:PutRolePolicy", "iam:PutGroupPolicy", "iam:CreatePolicyVersion"})
ATTACHES = frozenset({"iam:AttachUserPolicy", "iam:AttachRolePolicy", "iam:AttachGroupPolicy"})
TRUST_WRITES = frozenset({"iam:UpdateAssumeRolePolicy", "iam:CreateRole"})
CREDENTIALS = frozenset({"iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile"})
OTHER = frozenset({"iam:SetDefaultPolicyVersion", "iam:AddUserToGroup", "iam:CreateUser",
                   "iam:PutUserPermissionsBoundary", "iam:DeleteUserPermissionsBoundary",
                   "iam:DeleteRolePermissionsBoundary"})
APIS = POLICY_WRITES | ATTACHES | TRUST_WRITES | CREDENTIALS | OTHER
# New principals, credentials and trust are persistence; the rest changes what principals may do.
PERSISTENCE = CREDENTIALS | {"iam:CreateRole", "iam:CreateUser", "iam:UpdateAssumeRolePolicy"}
# AWS managed policies that give full or IAM-wide control (AWS documentation of job-function policies).
ADMIN_POLICIES = frozenset({"AdministratorAccess", "IAMFullAccess", "AdministratorAccess-Amplify",
                            "AdministratorAccess-AWSElasticBeanstalk", "AWSOrganizationsFullAccess",
                            "PowerUserAccess"})
MAX_PARAMS = 200_000  # characters of request parameters read; a bigger document is judged unknown


class Verdict(NamedTuple):
    dangerous: bool
    what: str           # what the write does, for people
    target: str | None  # the user, role or group written
    on_self: bool       # the caller wrote on itself


def _name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _principals(item: dict) -> list[str]:
    principal = item.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    aws = principal.get("AWS")
    return [str(p) for p in (aws if isinstance(aws, list) else [aws]) if p]


def _trust_verdict(document: object, own_account: str | None, known: frozenset[str]) -> tuple[bool, str]:
    try:
        raw = load_document(document).get("Statement")
    except PolicyError as exc:
        return False, f"an unreadable trust policy ({exc})"
    opened: list[str] = []
    for item in raw if isinstance(raw, list) else [raw]:
        if not isinstance(item, dict) or item.get("Effect") != "Allow":
            continue
        for principal in _principals(item):
            account = principal if principal.isdigit() else account_of(principal)
            if principal == "*" and not item.get("Condition"):
                opened.append("any AWS principal")
            elif account and account != own_account and account not in known and vendor_for_account(account) is None:
                opened.append(f"account {account}, which is neither the organisation's nor a known vendor's")
    if opened:
        return True, "a trust policy opened to " + ", ".join(dict.fromkeys(opened))
    return False, "a trust policy for known principals"


def assess(api: str, params_text: str | None, caller: str, own_account: str | None,
           known_accounts: frozenset[str]) -> Verdict:
    """What an IAM write does, read from its request parameters."""
    params: dict = {}
    if params_text and len(params_text) <= MAX_PARAMS:
        try:
            loaded = orjson.loads(params_text)
            params = loaded if isinstance(loaded, dict) else {}
        except orjson.JSONDecodeError:
            params = {}
    caller_kind = "user" if ":user/" in caller else "role" if ":role/" in caller else "other"
    caller_name = _name_of(caller)
    user, role, group = (str(params[k]) if params.get(k) else None for k in ("userName", "roleName", "groupName"))
    target = user or role or group
    on_self = (user is not None and caller_kind == "user" and user == caller_name) or \
              (role is not None and caller_kind == "role" and role == caller_name)
    if api in CREDENTIALS and user is None and caller_kind == "user":
        on_self, target = True, caller_name  # no userName: the caller's own
    self_note = " on itself" if on_self else (f" on {target}" if target else "")
    if api in POLICY_WRITES:
        try:
            permissions = PermissionSet(statements_of(params.get("policyDocument"), "written"))
        except PolicyError:
            return Verdict(on_self, f"an unreadable policy{self_note}", target, on_self)
        if permissions.is_admin():
            return Verdict(True, f"a policy granting full admin (*:*){self_note}", target, on_self)
        wild = permissions.service_wildcards()
        if "iam" in wild:
            return Verdict(True, f"a policy granting iam:* {self_note}".rstrip(), target, on_self)
        methods = [g.method.title for g in granted_methods(permissions)]
        if methods:
            return Verdict(True, f"a policy granting an escalation method ({methods[0]}){self_note}", target, on_self)
        return Verdict(on_self, f"a scoped policy{self_note}", target, on_self)
    if api in ATTACHES:
        policy = str(params.get("policyArn") or "")
        if policy.startswith("arn:aws:iam::aws:policy/") and _name_of(policy) in ADMIN_POLICIES:
            return Verdict(True, f"the AWS managed {_name_of(policy)}{self_note}", target, on_self)
        return Verdict(on_self, f"the policy {policy[-120:] or 'unnamed'}{self_note}", target, on_self)
    if api in TRUST_WRITES:
        document = params.get("policyDocument") or params.get("assumeRolePolicyDocument")
        if document is None:
            return Verdict(on_self, f"a role{self_note}", target, on_self)
        dangerous, what = _trust_verdict(document, own_account, known_accounts)
        return Verdict(dangerous or on_self, what + self_note, target, on_self)
    if api in CREDENTIALS:
        kind = "an access key" if api == "iam:CreateAccessKey" else "a console password"
        return Verdict(False, f"{kind} for {'itself' if on_self else target or 'a user'}", target, on_self)
    return Verdict(on_self, f"{api.split(':', 1)[1]}{self_note}", target, on_self)


class IamPermissionChange(Detector):
    id = "iam-permission-change"
    title = "IAM write that grants, trusts or hands out credentials"
    tactic = "privilege-escalation"
    mitre = ("T1098", "T1098.001", "T1098.003", "T1136.003")
    stratus = ("aws.persistence.iam-backdoor-role", "aws.persistence.iam-backdoor-user",
               "aws.persistence.iam-create-admin-user", "aws.persistence.iam-create-backdoor-role",
               "aws.persistence.iam-create-user-login-profile", "aws.privilege-escalation.iam-update-user-login-profile")
    guardduty = ("PrivilegeEscalation:IAMUser/AnomalousBehavior", "Persistence:IAMUser/AnomalousBehavior")
    description = ("Reads what an IAM write does. High from the first event, without history: a policy reaching "
                   "admin, iam:* or an escalation method, any write on the caller itself, a trust opened to any "
                   "principal or to an account that is neither the organisation's nor a known vendor's, a key or "
                   "password for a user from a network and client the caller never used. Through an AWS service "
                   "(CloudFormation): medium when dangerous, low when scoped and new, nothing when routine. A key "
                   "made by a workload's own code from its usual place (rotation): low. Other scoped writes: medium "
                   "when new and from a new place, low when new, nothing when routine.")
    routine = True
    judges_service_calls = True
    reads_params = APIS

    cases = (
        c.positive("stolen-ci-key-grants-itself-admin",
                   "the CI key used from outside attaches AdministratorAccess to its own user",
                   [c.CI_THIEF.call(c.at(0), "iam:AttachUserPolicy", {
                       "userName": "ci-deploy", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})],
                   [c.CI_HABIT], severity="high"),
        c.positive("stolen-key-rolls-back-a-policy-version",
                   "the CI key used from outside makes an older, broader version of a managed policy the default "
                   "(SetDefaultPolicyVersion, a known escalation path)",
                   [c.CI_THIEF.call(c.at(0), "iam:SetDefaultPolicyVersion", {
                       "policyArn": f"arn:aws:iam::{c.ACCOUNT}:policy/ci-deploy", "versionId": "v1"})],
                   [c.CI_HABIT]),
        c.negative("cloudformation-adds-a-scoped-role-policy",
                   "a stack update: CloudFormation, with the deploy role, writes a scoped inline policy on a service's "
                   "role as every deploy does",
                   [c.CFN_DEPLOY.call(c.at(0), "iam:PutRolePolicy", {
                       "roleName": "orders-api", "policyName": "queue",
                       "policyDocument": c.scoped_policy("sqs:SendMessage")})],
                   [c.CFN_HABIT], severity="medium"),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev = look.ev
        if ev.inbound or ev.api not in APIS or ev.error:
            return
        verdict = assess(ev.api, ev.params, look.info.arn, look.info.account_id, look.known_accounts)
        new_api, usual = look.new.get("api", False), look.usual_context
        # With no history and no peers every place is "new": only what the write does can alarm.
        cold = not look.profile.mature and look.peers is None
        if look.actor == Actor.SERVICE:
            severity = "medium" if verdict.dangerous else "low" if new_api else None
        elif verdict.dangerous:
            severity = "high"
        elif ev.api in CREDENTIALS:
            if cold:
                severity = "high" if verdict.on_self else "medium"  # a stolen key minting its own spare is classic
            elif not usual:
                severity = "high"
            elif look.actor == Actor.CODE:
                severity = "low"  # a workload's own code from its usual place: key rotation
            else:
                severity = "medium" if new_api and ev.api != "iam:CreateAccessKey" else "low"
        else:
            severity = "medium" if new_api and not usual and not cold else "low" if new_api else None
        if severity is None:
            return
        by = f" through {ev.invoked_by or 'an AWS service'}" if look.actor == Actor.SERVICE else ""
        yield Hit(severity, 0.95 if verdict.dangerous else 0.5,
                  f"{look.info.arn} wrote {verdict.what} with {ev.api}{by}: {look.what()}. {look.normally()}",
                  {"api": ev.api, "grants": verdict.what, "target": verdict.target, "dangerous": verdict.dangerous,
                   "actor": str(look.actor), "hostile": verdict.dangerous and look.actor != Actor.SERVICE
                   or (severity == "high" and ev.api in CREDENTIALS)},
                  key=f"{ev.api}|{verdict.target}",
                  tactic="persistence" if ev.api in PERSISTENCE else "privilege-escalation")
