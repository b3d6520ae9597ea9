"""AWS Organizations policies (SCPs and RCPs) for the evaluator: read from a file or from the live API,
kept in one plain JSON shape, and turned into an `evaluate.Organization`.

The file (what `nhiwatch inventory org-export` writes; `aws organizations` output pasted in works too):

    {"Organization": {"Id": "o-a1b2c3d4e5", "MasterAccountId": "111111111111"},
     "Policies": [{"Id": "p-FullAWSAccess", "Name": "FullAWSAccess", "Type": "SERVICE_CONTROL_POLICY",
                   "Content": "{...policy JSON...}"}, ...],
     "Targets": {"r-ab12": ["p-FullAWSAccess"], "ou-ab12-11111111": ["p-deny-iam"],
                 "222222222222": ["p-FullAWSAccess"]},
     "Accounts": {"222222222222": ["r-ab12", "ou-ab12-11111111"]}}

`Organization` is `describe-organization`'s object (`ManagementAccountId` is read too). A policy is a
flat object or `describe-policy`'s `Policy` (`PolicySummary` + `Content`); `Content` is JSON text or an
object; only SERVICE_CONTROL_POLICY and RESOURCE_CONTROL_POLICY are used. `Targets` maps a root, OU or
account id to the ids of the policies attached to it. `Accounts` maps each member account to the
targets above it, root first (a list, or a path "r-ab12/ou-ab12-11111111"). An account's levels are
then its root, its OUs and itself, each of which must allow (AWS's rule). A level with no policy of a
type listed is taken not to restrict (AWS keeps FullAWSAccess there unless replaced), and RCPFullAWSAccess
is taken to be at every level (AWS does not let it be detached), so a file that leaves out the
AWS-managed allow-all policies still reads right.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from nhiwatch.inventory.evaluate import Organization, compile_policy
from nhiwatch.inventory.policy import PolicyError, load_document

SCP, RCP = "SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"
GUARD_TYPES = (SCP, RCP)
TOP_LEVEL = {"Organization", "Policies", "Targets", "Accounts", "Roots", "ResponseMetadata"}
# AWS attaches it to every root, OU and account once RCPs are enabled, and it cannot be detached, so a
# file may leave it out; SCPs' FullAWSAccess, on the other hand, can be replaced by an allow-list.
RCP_FULL_ACCESS = {"Version": "2012-10-17",
                   "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_TARGET_ID = re.compile(r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|\d{12})$")
_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")


class OrganizationError(ValueError):
    """An organization file that cannot be used at all."""


def looks_like_organization(document: Any) -> bool:
    """A JSON object with this format's own keys (and none of an IAM export's)."""
    return isinstance(document, dict) and "Organization" in document and (
        "Targets" in document or "Accounts" in document) and "UserDetailList" not in document


def _policy_entry(raw: Any, index: int, where: str, problems: list[str]) -> dict | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: Policies[{index}] is a {type(raw).__name__}, not an object; left out")
        return None
    nested = raw.get("PolicySummary")
    described: dict = nested if isinstance(nested, dict) else raw
    policy_id, kind = described.get("Id"), described.get("Type")
    name = described.get("Name") or policy_id
    place = f"{where}: Policies[{index}] ({name or 'no Id'})"
    if not isinstance(policy_id, str) or not policy_id:
        problems.append(f"{place}: no Id; left out")
        return None
    if kind not in GUARD_TYPES:
        if not isinstance(kind, str):
            problems.append(f"{place}: no Type (SERVICE_CONTROL_POLICY or RESOURCE_CONTROL_POLICY); left out")
        return None  # tag, backup, AI opt-out policies do not authorize anything
    try:
        document = load_document(raw.get("Content"))
        compile_policy(document, place, resource_policy=kind == RCP)  # compiled here so a bad one is named
    except PolicyError as exc:
        problems.append(f"{place}: Content: {exc}; left out (a Deny it holds is not applied)")
        return None
    return {"Id": policy_id, "Name": str(name), "Type": kind, "Content": document}


def _path(value: Any) -> list[str] | None:
    if isinstance(value, str):
        parts = [p for p in value.strip("/").split("/") if p]
        return [p for p in parts if not _ORG_ID.match(p)]  # aws:PrincipalOrgPaths starts with the org id
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return list(value)
    return None


def read_organization(document: Any, where: str, problems: list[str]) -> dict:
    """The file's content checked and normalized (what the store keeps); damage becomes `problems`,
    a file that says nothing usable raises OrganizationError."""
    if not isinstance(document, dict):
        raise OrganizationError(f"{where}: an organization file must be a JSON object")
    for key in document:
        if key not in TOP_LEVEL:
            problems.append(f"{where}: unknown top-level field {key!r} ignored")
    org = document.get("Organization")
    if not isinstance(org, dict):
        raise OrganizationError(f"{where}: Organization must be an object with Id and MasterAccountId")
    management = org.get("MasterAccountId") or org.get("ManagementAccountId")
    if not isinstance(management, str) or not _ACCOUNT_ID.match(management):
        problems.append(f"{where}: Organization has no 12-digit MasterAccountId: the management account is "
                        "not known, so no account is treated as exempt")
        management = None
    org_id = org.get("Id") if isinstance(org.get("Id"), str) else None
    if org_id is not None and not _ORG_ID.match(org_id):
        problems.append(f"{where}: Organization Id {org_id!r} is not an o-... id; aws:PrincipalOrgID not known")
        org_id = None

    raw_policies = document.get("Policies")
    if not isinstance(raw_policies, list):
        problems.append(f"{where}: Policies is {'missing' if raw_policies is None else 'not a list'}; no SCP or "
                        "RCP is applied")
        raw_policies = []
    policies: dict[str, dict] = {}
    for index, raw in enumerate(raw_policies):
        entry = _policy_entry(raw, index, where, problems)
        if entry is not None:
            policies[entry["Id"]] = entry
    ignored = {p.get("Id") or (p.get("PolicySummary") or {}).get("Id") for p in raw_policies if isinstance(p, dict)}

    raw_targets = document.get("Targets")
    if not isinstance(raw_targets, dict):
        problems.append(f"{where}: Targets is {'missing' if raw_targets is None else 'not an object'}; no policy "
                        "is attached anywhere")
        raw_targets = {}
    targets: dict[str, list[str]] = {}
    for target, attached in raw_targets.items():
        if not _TARGET_ID.match(str(target)):
            problems.append(f"{where}: Targets key {target!r} is not a root, OU or account id; skipped")
            continue
        if not isinstance(attached, list) or not all(isinstance(p, str) for p in attached):
            problems.append(f"{where}: Targets[{target!r}] is not a list of policy ids; skipped")
            continue
        kept = []
        for policy_id in attached:
            if policy_id in policies:
                kept.append(policy_id)
            elif policy_id not in ignored:
                problems.append(f"{where}: Targets[{target!r}] names policy {policy_id!r}, which is not in Policies; "
                                "left out (a Deny it holds is not applied)")
        targets[str(target)] = kept

    raw_accounts = document.get("Accounts")
    if not isinstance(raw_accounts, dict):
        problems.append(f"{where}: Accounts is {'missing' if raw_accounts is None else 'not an object'}; only "
                        "policies attached to accounts directly apply")
        raw_accounts = {}
    accounts: dict[str, list[str]] = {}
    for account, parents in raw_accounts.items():
        if not _ACCOUNT_ID.match(str(account)):
            problems.append(f"{where}: Accounts key {account!r} is not a 12-digit account id; skipped")
            continue
        path = _path(parents)
        if path is None:
            problems.append(f"{where}: Accounts[{account!r}] is not a list of target ids (root first) nor a path; "
                            "only the account's own policies apply")
            path = []
        if path and not path[0].startswith("r-"):
            problems.append(f"{where}: Accounts[{account!r}] does not start at a root (r-...): the levels above "
                            f"{path[0]} are not known")
        accounts[str(account)] = [p for p in path if p != account]
    for target in targets:  # an account with policies of its own but no path: still an account of the org
        if _ACCOUNT_ID.match(target) and target not in accounts:
            accounts[target] = []
    if not policies and not accounts:
        found = [p.removeprefix(f"{where}: ") for p in problems[-3:]]
        raise OrganizationError(f"{where}: no usable policy or account in the organization file"
                                + (f" ({'; '.join(found)})" if found else ""))
    return {"Organization": {"Id": org_id, "MasterAccountId": management}, "Policies": list(policies.values()),
            "Targets": targets, "Accounts": accounts}


def merge_organizations(payloads: list[dict]) -> dict:
    """Several files of one organization as one (a later file's entries win)."""
    merged: dict[str, Any] = {"Organization": {}, "Policies": {}, "Targets": {}, "Accounts": {}}
    for payload in payloads:
        merged["Organization"].update({k: v for k, v in payload.get("Organization", {}).items() if v})
        merged["Policies"].update({p["Id"]: p for p in payload.get("Policies", [])})
        merged["Targets"].update(payload.get("Targets", {}))
        merged["Accounts"].update(payload.get("Accounts", {}))
    merged["Organization"].setdefault("Id", None)
    merged["Organization"].setdefault("MasterAccountId", None)
    merged["Policies"] = list(merged["Policies"].values())
    return merged


def organization_of(payload: Mapping[str, Any]) -> Organization:
    """The evaluator's view of a normalized organization: per account, its levels (root, OUs, itself) of
    SCPs and of RCPs, each level named by its target so a decision says which level failed."""
    org = payload.get("Organization") or {}
    policies = {p["Id"]: p for p in payload.get("Policies") or []}
    targets = payload.get("Targets") or {}
    scps: dict[str, list] = {}
    rcps: dict[str, list] = {}
    paths: dict[str, list[str]] = {}
    for account, parents in (payload.get("Accounts") or {}).items():
        for kind, out in ((SCP, scps), (RCP, rcps)):
            levels = []
            for target in [*parents, account]:
                attached = [(f"{kind_label(kind)} {policies[p]['Name']} ({p}) at {target}", policies[p]["Content"])
                            for p in targets.get(target, []) if p in policies and policies[p]["Type"] == kind]
                if attached:  # a level listing none of this type: AWS's allow-all is there
                    if kind == RCP:  # RCPFullAWSAccess cannot be detached: it is at every level
                        attached.append((f"RCP RCPFullAWSAccess at {target}", RCP_FULL_ACCESS))
                    levels.append((f"{kind_label(kind)}s at {target}", attached))
            if levels:
                out[account] = levels
        if org.get("Id") and parents:
            paths[account] = ["/".join([org["Id"], *parents]) + "/"]
    return Organization(scps, rcps, management_account=org.get("MasterAccountId"), org_id=org.get("Id"),
                        paths=paths, accounts=payload.get("Accounts") or {})


def kind_label(kind: str) -> str:
    return "SCP" if kind == SCP else "RCP"


def summary(payload: Mapping[str, Any]) -> dict:
    """What an organization holds, in numbers: for the load's report."""
    kinds = [p["Type"] for p in payload.get("Policies") or []]
    return {"organization": (payload.get("Organization") or {}).get("Id"),
            "management_account": (payload.get("Organization") or {}).get("MasterAccountId"),
            "accounts": len(payload.get("Accounts") or {}), "scps": kinds.count(SCP), "rcps": kinds.count(RCP)}


# -- live ------------------------------------------------------------------------------------------------

def fetch_organization(session: Any) -> tuple[dict | None, list[str], list[str]]:
    """(the organization in this file's shape, problems, notes) read through the Organizations API of the
    session (the management account or a delegated administrator). Not being in an organization is a
    note (no SCP or RCP applies: a complete answer); a failure is a problem, and the inventory is built
    without SCPs and RCPs (or without the type that failed)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from nhiwatch.inventory.live import AWS_CONFIG, problem

    client = session.client("organizations", config=AWS_CONFIG)
    problems: list[str] = []
    try:
        org = client.describe_organization()["Organization"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "AWSOrganizationsNotInUseException":
            return None, [], ["the account is not in an AWS Organization: no SCP or RCP applies"]
        return None, [problem("organizations:DescribeOrganization", error) + "; SCPs and RCPs not applied"], []
    except BotoCoreError as error:
        return None, [problem("organizations:DescribeOrganization", error) + "; SCPs and RCPs not applied"], []

    def pages(operation: str, key: str, **kwargs: Any) -> list:
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]

    accounts: dict[str, list[str]] = {}
    try:
        roots = [r["Id"] for r in pages("list_roots", "Roots")]
        # walked top down: one call per OU, rather than ListParents per account
        queue = [(root, [root]) for root in roots]
        while queue:
            parent, path = queue.pop(0)
            for account in pages("list_accounts_for_parent", "Accounts", ParentId=parent):
                accounts[account["Id"]] = path
            for ou in pages("list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent):
                queue.append((ou["Id"], [*path, ou["Id"]]))
    except (ClientError, BotoCoreError) as error:
        return None, [problem("organizations:ListRoots/ListOrganizationalUnitsForParent", error)
                      + "; SCPs and RCPs not applied"], []
    targets: dict[str, list[str]] = {}
    contents: dict[str, dict] = {}
    every_target = list(dict.fromkeys([p for path in accounts.values() for p in path] + list(accounts)))
    for kind in GUARD_TYPES:
        try:
            for target in every_target:
                for summary_ in pages("list_policies_for_target", "Policies", TargetId=target, Filter=kind):
                    targets.setdefault(target, []).append(summary_["Id"])
                    if summary_["Id"] not in contents:
                        contents[summary_["Id"]] = client.describe_policy(PolicyId=summary_["Id"])["Policy"]
        except (ClientError, BotoCoreError) as error:
            problems.append(problem(f"organizations:ListPoliciesForTarget ({kind})", error)
                            + f"; {kind_label(kind)}s not applied")
            for target in targets:  # drop the half-read type: all or nothing per type
                targets[target] = [p for p in targets[target] if p in contents and contents[p].get(
                    "PolicySummary", {}).get("Type") != kind]
            contents = {k: v for k, v in contents.items() if v.get("PolicySummary", {}).get("Type") != kind}
    document = {"Organization": {"Id": org.get("Id"), "MasterAccountId": org.get("MasterAccountId")},
                "Policies": list(contents.values()), "Targets": targets, "Accounts": accounts}
    return document, problems, []
