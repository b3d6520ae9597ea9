"""Response actions: each one plans exact IAM calls, records the state it will change, and knows how
to put that state back.

An action never deletes what it cannot restore: keys are deactivated, not deleted; policies it adds
carry an `nhiwatch-` name so they are easy to find; a trust policy or inline policy it replaces is
kept in the action record and written back by undo.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from nhiwatch.core.times import iso_z

QUARANTINE_POLICY = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3"
REVOKE_POLICY = "nhiwatch-revoke-older-sessions"
FENCE_POLICY = "nhiwatch-network-fence"
_POLICY_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


class ActionError(ValueError):
    """An action that cannot be planned for this identity (wrong kind, missing facts)."""


@dataclass(frozen=True)
class Target:
    """The identity an action works on, with the facts the plan needs."""

    arn: str
    kind: str  # role, user, root
    account_id: str
    name: str
    unique_id: str | None = None  # AROA... of a role, for per-session denies
    service_linked: bool = False

    @classmethod
    def from_arn(cls, arn: str, unique_id: str | None = None) -> "Target":
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "iam":
            raise ActionError(f"{arn} is not an IAM user or role ARN")
        resource = parts[5]
        kind = "root" if resource == "root" else resource.split("/", 1)[0]
        if kind not in ("role", "user", "root"):
            raise ActionError(f"{arn} is not an IAM user or role ARN")
        return cls(arn, kind, parts[4], resource.rsplit("/", 1)[-1], unique_id,
                   resource.startswith("role/aws-service-role/"))


@dataclass(frozen=True)
class Call:
    """One AWS API call, as boto3 makes it (client method and keyword arguments), in one account."""

    service: str
    method: str
    params: dict[str, Any]
    account: str | None = None  # IAM names are per account: a call means nothing without it

    def to_dict(self) -> dict:
        return {"service": self.service, "method": self.method, "params": self.params, "account": self.account}

    @classmethod
    def from_dict(cls, data: dict) -> "Call":
        return cls(data["service"], data["method"], data["params"], data.get("account"))

    def redacted(self) -> "Call":
        """The call as it may be shown and stored: a password it sets is never kept."""
        return Call(self.service, self.method, {k: ("<one-time password, shown once>" if k == "Password" else v)
                                                for k, v in self.params.items()}, self.account)

    def cli(self) -> str:
        """The same call as an AWS CLI command line, for people who read dry-runs. The CLI has no account
        flag: the trailing comment names the account whose credentials must run it."""
        args = []
        for key, value in self.params.items():
            flag = "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", key).lower()
            text = value if isinstance(value, str) else json.dumps(value)
            args.append(f"{flag} '{text}'" if any(c in text for c in " {}\"[]") else f"{flag} {text}")
        account = f"account {self.account}" if self.account else "account UNKNOWN: check before running"
        return f"aws {self.service} {self.method.replace('_', '-')} " + " ".join(args) + f"  # {account}"


@dataclass
class Plan:
    kind: str
    target: Target
    calls: list[Call]
    summary: str
    options: dict = field(default_factory=dict)


def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, separators=(",", ":"))


def _now_z() -> str:
    return iso_z(datetime.now(timezone.utc))


def _client_error_code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    return (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None


def _inline_get(iam: Any, target: Target, name: str) -> str | None:
    """The current document of an inline policy, or None when there is none."""
    try:
        if target.kind == "role":
            document = iam.get_role_policy(RoleName=target.name, PolicyName=name)["PolicyDocument"]
        else:
            document = iam.get_user_policy(UserName=target.name, PolicyName=name)["PolicyDocument"]
    except Exception as error:  # noqa: BLE001 - only "not there" is expected; anything else propagates
        if _client_error_code(error) == "NoSuchEntity":
            return None
        raise
    return document if isinstance(document, str) else json.dumps(document, separators=(",", ":"))


def _inline_put(target: Target, name: str, document: str) -> Call:
    who = {"RoleName": target.name} if target.kind == "role" else {"UserName": target.name}
    return Call("iam", f"put_{target.kind}_policy", {**who, "PolicyName": name, "PolicyDocument": document},
                target.account_id)


def _inline_restore(target: Target, name: str, before: str | None) -> list[Call]:
    if before is not None:
        return [_inline_put(target, name, before)]
    who = {"RoleName": target.name} if target.kind == "role" else {"UserName": target.name}
    return [Call("iam", f"delete_{target.kind}_policy", {**who, "PolicyName": name}, target.account_id)]


class Action:
    """One kind of response: what it applies to, its plan, the state it records, its undo."""

    kind: ClassVar[str]
    title: ClassVar[str]
    applies_to: ClassVar[tuple[str, ...]] = ("role", "user")
    changes_aws: ClassVar[bool] = True

    def check(self, target: Target, options: dict) -> None:
        if target.kind not in self.applies_to:
            raise ActionError(f"{self.kind} applies to {' and '.join(self.applies_to)}s, not to {target.kind} "
                              f"{target.arn}")

    def plan(self, target: Target, options: dict) -> Plan:
        raise NotImplementedError

    def snapshot(self, iam: Any, plan: Plan) -> dict:
        """The state the plan will change, read before any change is made."""
        return {}

    def undo(self, plan: Plan, before: dict, done: list[Call]) -> list[Call]:
        """Calls that put back what the done calls changed."""
        return []


class InlinePolicyAction(Action):
    """An action that writes one inline policy (named in the plan's options); undo deletes it, or writes
    back the policy of that name it replaced."""

    def snapshot(self, iam: Any, plan: Plan) -> dict:
        return {"policy": _inline_get(iam, plan.target, plan.options["policy_name"])}

    def undo(self, plan: Plan, before: dict, done: list[Call]) -> list[Call]:
        return _inline_restore(plan.target, plan.options["policy_name"], before.get("policy")) if done else []


class RevokeSessions(InlinePolicyAction):
    kind = "revoke-sessions"
    title = "Revoke every session issued before now (inline deny on aws:TokenIssueTime)"
    applies_to = ("role",)

    def plan(self, target: Target, options: dict) -> Plan:
        self.check(target, options)
        cutoff = options.get("issued_before") or _now_z()
        document = _policy({"Sid": "RevokeOlderSessions", "Effect": "Deny", "Action": "*", "Resource": "*",
                            "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}}})
        return Plan(self.kind, target, [_inline_put(target, REVOKE_POLICY, document)],
                    f"deny every action to sessions of {target.name} issued before {cutoff}; new sessions still "
                    "work, so fix how the role is assumed as well", {"issued_before": cutoff, "policy_name": REVOKE_POLICY})


class RevokeSession(InlinePolicyAction):
    kind = "revoke-session"
    title = "Deny one role session (inline deny on aws:userid)"
    applies_to = ("role",)

    def plan(self, target: Target, options: dict) -> Plan:
        self.check(target, options)
        session = options.get("session")
        if not session:
            raise ActionError("revoke-session needs the session name (--session)")
        role_id = target.unique_id or options.get("role_id")
        if not role_id:
            raise ActionError(f"the unique id (AROA...) of {target.arn} is unknown: load the inventory or pass "
                              "--role-id")
        name = _POLICY_NAME_UNSAFE.sub("-", f"nhiwatch-deny-session-{session}")[:128]
        document = _policy({"Sid": "DenyOneSession", "Effect": "Deny", "Action": "*", "Resource": "*",
                            "Condition": {"StringLike": {"aws:userid": f"{role_id}:{session}"}}})
        return Plan(self.kind, target, [_inline_put(target, name, document)],
                    f"deny every action to session {session} of {target.name} ({role_id}:{session})",
                    {"session": session, "role_id": role_id, "policy_name": name})


class DeactivateKey(Action):
    kind = "deactivate-key"
    title = "Deactivate an access key (never delete: it stays searchable and can be turned back on)"
    applies_to = ("user",)

    def plan(self, target: Target, options: dict) -> Plan:
        self.check(target, options)
        key = options.get("key")
        if not key or not key.startswith("AKIA"):
            raise ActionError("deactivate-key needs the user's long-term access key id (AKIA..., --key)")
        return Plan(self.kind, target, [Call("iam", "update_access_key",
                                             {"UserName": target.name, "AccessKeyId": key, "Status": "Inactive"},
                                             target.account_id)],
                    f"set access key {key} of {target.name} to Inactive", {"key": key})

    def snapshot(self, iam: Any, plan: Plan) -> dict:
        keys = iam.list_access_keys(UserName=plan.target.name)["AccessKeyMetadata"]
        status = next((k["Status"] for k in keys if k["AccessKeyId"] == plan.options["key"]), None)
        if status is None:
            raise ActionError(f"user {plan.target.name} has no access key {plan.options['key']}")
        return {"status": status}

    def undo(self, plan: Plan, before: dict, done: list[Call]) -> list[Call]:
        if not done:
            return []
        return [Call("iam", "update_access_key", {"UserName": plan.target.name, "AccessKeyId": plan.options["key"],
                                                  "Status": before["status"]}, plan.target.account_id)]


class DisableConsole(Action):
    kind = "disable-console"
    title = "Remove the console password of an NHI user (a machine never needs one)"
    applies_to = ("user",)

    def plan(self, target: Target, options: dict) -> Plan:
        self.check(target, options)
        return Plan(self.kind, target, [Call("iam", "delete_login_profile", {"UserName": target.name},
                                             target.account_id)],
                    f"delete the login profile of {target.name}; undo sets a new one-time password")

    def snapshot(self, iam: Any, plan: Plan) -> dict:
        try:
            profile = iam.get_login_profile(UserName=plan.target.name)["LoginProfile"]
        except Exception as error:  # noqa: BLE001
            if _client_error_code(error) == "NoSuchEntity":
                return {"login_profile": False}
            raise
        return {"login_profile": True, "password_reset_required": bool(profile.get("PasswordResetRequired"))}

    def undo(self, plan: Plan, before: dict, done: list[Call]) -> list[Call]:
        if not done or not before.get("login_profile"):
            return []
        # The old password cannot be restored; a random one that must be changed at first sign-in is.
        alphabet = string.ascii_letters + string.digits + "!@#%^*-_=+"
        password = "".join(secrets.choice(alphabet) for _ in range(20)) + "aA1!"
        return [Call("iam", "create_login_profile", {"UserName": plan.target.name, "Password": password,
                                                     "PasswordResetRequired": True}, plan.target.account_id)]


class Quarantine(Action):
    kind = "quarantine"
    title = "Attach AWS's compromised-key quarantine policy (AWSCompromisedKeyQuarantineV3)"

    def plan(self, target: Target, options: dict) -> Plan:
        self.check(target, options)
        who = {"RoleName": target.name} if target.kind == "role" else {"UserName": target.name}
        return Plan(self.kind, target, [Call("iam", f"attach_{target.kind}_policy",
                                             {**who, "PolicyArn": QUARANTINE_POLICY}, target.account_id)],
                    f"attach {QUARANTINE_POLICY.rsplit('/', 1)[-1]} to {target.name}: denies creating users, keys, "
                    "roles and instances, changing IAM, and reading or deleting data")

    def snapshot(self, iam: Any, plan: Plan) -> dict:
        target = plan.target
        if target.kind == "role":
            pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=target.name)
        else:
            pages = iam.get_paginator("list_attached_user_policies").paginate(UserName=target.name)
        attached = [p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]]
        return {"attached": QUARANTINE_POLICY in attached}

    def undo(self, plan: Plan, before: dict, done: list[Call]) -> list[Call]:
        if not done or before.get("attached"):
            return []  # it was there before us: leave it
        target = plan.target
        who = {"RoleName": target.name} if target.kind == "role" else {"UserName": target.name}
        return [Call("iam", f"detach_{target.kind}_policy", {**who, "PolicyArn": QUARANTINE_POLICY},
                     target.account_id)]


class NetworkFence(InlinePolicyAction):
    kind = "network-fence"
    title = "Deny calls from outside the identity's baseline networks (aws:SourceIp, aws:SourceVpce)"

    def plan(self, target: Target, options: dict) -> Plan:
        self.check(target, options)
        cidrs = sorted(set(options.get("cidrs") or []))
        endpoints = sorted(set(options.get("vpc_endpoints") or []))
        if not cidrs and not endpoints:
            raise ActionError(f"no baseline networks known for {target.arn}: nothing to fence it to")
        condition: dict = {"Bool": {"aws:ViaAWSService": "false"}}
        # aws:SourceIp is absent through a VPC endpoint, where aws:SourceVpce names the endpoint instead.
        condition["NotIpAddress"] = {"aws:SourceIp": cidrs or ["0.0.0.0/32"]}
        if endpoints:
            condition["StringNotEqualsIfExists"] = {"aws:SourceVpce": endpoints}
        document = _policy({"Sid": "DenyOutsideBaselineNetworks", "Effect": "Deny", "Action": "*", "Resource": "*",
                            "Condition": condition})
        where = ", ".join(cidrs + endpoints)
        return Plan(self.kind, target, [_inline_put(target, FENCE_POLICY, document)],
                    f"deny calls to {target.name} unless made from {where} or by an AWS service on its behalf",
                    {"cidrs": cidrs, "vpc_endpoints": endpoints, "policy_name": FENCE_POLICY})


class TightenOidcTrust(Action):
    kind = "tighten-oidc-trust"
    title = "Limit a CI/CD role's web-identity trust to the subjects in its baseline"
    applies_to = ("role",)

    def plan(self, target: Target, options: dict) -> Plan:
        self.check(target, options)
        subjects = sorted(set(options.get("subjects") or []))
        if not subjects:
            raise ActionError(f"no baseline web-identity subjects known for {target.arn}")
        trust = options.get("trust")
        if not trust:
            raise ActionError(f"the trust policy of {target.arn} is unknown: load the inventory first")
        document = json.loads(trust) if isinstance(trust, str) else trust
        changed = 0
        for statement in document.get("Statement", []):
            federated = (statement.get("Principal") or {}).get("Federated")
            providers = federated if isinstance(federated, list) else [federated]
            for provider in [p for p in providers if isinstance(p, str) and ":oidc-provider/" in p]:
                host = provider.split(":oidc-provider/", 1)[1]
                condition = statement.setdefault("Condition", {})
                for operator in ("StringLike", "StringEquals", "ForAnyValue:StringLike", "ForAllValues:StringLike"):
                    block = condition.get(operator)
                    if isinstance(block, dict):
                        block.pop(f"{host}:sub", None)
                        if not block:
                            condition.pop(operator)
                condition.setdefault("StringEquals", {})[f"{host}:sub"] = subjects if len(subjects) > 1 else subjects[0]
                changed += 1
        if not changed:
            raise ActionError(f"{target.arn} trusts no OIDC provider")
        return Plan(self.kind, target, [Call("iam", "update_assume_role_policy", {
            "RoleName": target.name, "PolicyDocument": json.dumps(document, separators=(",", ":"))},
            target.account_id)],
                    f"trust only the baseline subjects {', '.join(subjects)} in {target.name}'s web-identity trust",
                    {"subjects": subjects})

    def snapshot(self, iam: Any, plan: Plan) -> dict:
        document = iam.get_role(RoleName=plan.target.name)["Role"]["AssumeRolePolicyDocument"]
        return {"trust": document if isinstance(document, str) else json.dumps(document, separators=(",", ":"))}

    def undo(self, plan: Plan, before: dict, done: list[Call]) -> list[Call]:
        if not done:
            return []
        return [Call("iam", "update_assume_role_policy", {"RoleName": plan.target.name,
                                                          "PolicyDocument": before["trust"]}, plan.target.account_id)]


class Notify(Action):
    kind = "notify"
    title = "Tell a person; change nothing"
    applies_to = ("role", "user", "root")
    changes_aws = False

    def plan(self, target: Target, options: dict) -> Plan:
        return Plan(self.kind, target, [], f"notify only: {options.get('why') or 'review ' + target.arn}")


ACTIONS: dict[str, Action] = {a.kind: a for a in (RevokeSessions(), RevokeSession(), DeactivateKey(), DisableConsole(),
                                                  Quarantine(), NetworkFence(), TightenOidcTrust(), Notify())}
