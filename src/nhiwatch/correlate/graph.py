"""The identity graph: the real links between identities, read from CloudTrail.

Edges (src -> dst), each from one event:
- ``assumes``: sts:AssumeRole by an identity of the same account; ``cross-account`` when the role is in
  another account; ``web-identity`` / ``saml`` when a federated subject assumed the role;
- ``external-account``: a caller from an account outside the organisation;
- ``creates-key``: iam:CreateAccessKey for another user; ``modifies``: creating or changing another
  identity (user, role, login profile, trust policy, attached or inline policies, group membership);
- ``passes-role``: a role handed to a function, task, instance, stack or project (iam:PassRole is not
  logged; the call that used it is).
Key lineage maps an access key id handed out by STS, CreateAccessKey or a sign-in to the identity
and event that received it, so every later call made with the key traces back to its origin.
Only the neighbourhood of the identities asked about is read, so the graph costs nothing until
there are findings to explain.
"""

from __future__ import annotations

from dataclasses import dataclass

from nhiwatch.correlate.evidence import placeholder_key
from nhiwatch.store.db import Store

MODIFYING_APIS = {
    "iam:CreateUser": "user", "iam:CreateLoginProfile": "user", "iam:UpdateLoginProfile": "user",
    "iam:AttachUserPolicy": "user", "iam:PutUserPolicy": "user", "iam:AddUserToGroup": "user",
    "iam:CreateRole": "role", "iam:UpdateAssumeRolePolicy": "role", "iam:AttachRolePolicy": "role",
    "iam:PutRolePolicy": "role", "iam:PutRolePermissionsBoundary": "role", "iam:DeleteRolePermissionsBoundary": "role",
}
# Request fields that name the role a service will run as (the call implies iam:PassRole).
PASS_ROLE_FIELDS = ("role", "roleArn", "roleARN", "Role", "RoleArn", "taskRoleArn", "executionRoleArn", "serviceRole",
                    "ServiceRoleArn")
STS_APIS = ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML")


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    kind: str
    t: int  # event time, microseconds since the epoch
    event_id: str
    detail: str = ""  # the session name, key id, or the API behind the edge


def _in_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def edges_touching(store: Store, identities: list[str], lower_us: int, upper_us: int) -> list[Edge]:
    """Every edge with one end among the identities, from events in [lower, upper]."""
    if not identities:
        return []
    idents = _in_list(sorted(set(identities)))
    window = f"epoch_us(event_time) BETWEEN {int(lower_us)} AND {int(upper_us)}"
    fields = ", ".join(f"json_extract_string(request_parameters, '$.{f}')" for f in PASS_ROLE_FIELDS)
    rows = store.con.execute(f"""
        WITH candidates AS (
          SELECT * FROM events WHERE {window} AND error_code IS NULL AND (
            (assumed_role_arn IS NOT NULL AND principal_type IS DISTINCT FROM 'service'
             AND (list_contains({idents}, assumed_role_arn) OR list_contains({idents}, principal)))
            OR (list_contains({idents}, principal) AND event_source = 'iam.amazonaws.com'
                AND api IN (SELECT unnest({_in_list(list(MODIFYING_APIS) + ['iam:CreateAccessKey'])})))
            OR (list_contains({idents}, principal) AND request_parameters IS NOT NULL
                AND read_only IS NOT true AND coalesce({fields}) LIKE 'arn:aws:iam::%:role/%')))
        SELECT principal, principal_type, principal_account, api, event_name, epoch_us(event_time), event_id,
               assumed_role_arn, assumed_session_name, issued_access_key_id, account_id,
               json_extract_string(request_parameters, '$.userName'),
               json_extract_string(request_parameters, '$.roleName'),
               coalesce({fields})
        FROM candidates ORDER BY event_time""").fetchall()
    edges = []
    for (caller, caller_type, caller_account, api, name, t, event_id, role, session, key, account, user_name,
         role_name, passed) in rows:
        if role and api in STS_APIS:
            role_account = role.split(":")[4] if role.count(":") >= 5 else None
            if name == "AssumeRoleWithWebIdentity":
                kind = "web-identity"
            elif name == "AssumeRoleWithSAML":
                kind = "saml"
            elif caller_type == "aws_account":
                kind = "external-account"
            elif caller_account and role_account and caller_account != role_account:
                kind = "cross-account"
            else:
                kind = "assumes"
            if caller and caller_type != "service":
                edges.append(Edge(caller, role, kind, t, event_id, session or ""))
        elif api in MODIFYING_APIS or api == "iam:CreateAccessKey":
            target_kind = MODIFYING_APIS.get(api, "user")
            target_name = user_name if target_kind == "user" else role_name
            if not target_name:
                continue
            target = resolve_name(store, account or caller_account, target_kind, target_name)
            if target != caller:
                edges.append(Edge(caller, target, "creates-key" if api == "iam:CreateAccessKey" else "modifies",
                                  t, event_id, api))
        elif passed and passed != caller:
            edges.append(Edge(caller, passed, "passes-role", t, event_id, api))
    return edges


def resolve_name(store: Store, account: str | None, kind: str, name: str) -> str:
    """The ARN of a user or role named in a request: from the inventory, else from CloudTrail, else built
    with the default path."""
    if store.has_table("identities"):
        row = store.con.execute("SELECT arn FROM identities WHERE account_id = ? AND kind = ? AND name = ? LIMIT 1",
                                [account, kind, name]).fetchone()
        if row:
            return row[0]
    row = store.con.execute("""SELECT principal FROM events WHERE principal_type = ? AND principal_name = ?
                               AND principal_account = ? LIMIT 1""", [kind, name, account]).fetchone()
    return row[0] if row else f"arn:aws:iam::{account}:{kind}/{name}"


@dataclass(frozen=True)
class KeyOrigin:
    key: str
    issuer: str  # the identity that received the key (the caller of AssumeRole, CreateAccessKey ...)
    api: str
    t: int
    event_id: str
    holder: str  # who the key acts as: the assumed role, or the user the key belongs to


def key_origins(store: Store, keys: list[str]) -> dict[str, KeyOrigin]:
    """Where each access key id came from, for the keys that were handed out in the recorded history."""
    keys = sorted({k for k in keys if placeholder_key(k) is None})  # a sample key id traces to nobody
    if not keys:
        return {}
    rows = store.con.execute(f"""
        SELECT issued_access_key_id, principal, api, epoch_us(event_time), event_id,
               coalesce(assumed_role_arn, principal), account_id, principal_account,
               json_extract_string(request_parameters, '$.userName')
        FROM events WHERE issued_access_key_id IS NOT NULL AND error_code IS NULL
          AND principal_type IS DISTINCT FROM 'service'  -- a service fetching its own role is no pivot
          AND list_contains({_in_list(keys)}, issued_access_key_id)
        ORDER BY event_time""").fetchall()
    origins: dict[str, KeyOrigin] = {}
    for key, issuer, api, t, event_id, holder, account, caller_account, user_name in rows:
        if api == "iam:CreateAccessKey" and user_name:
            holder = resolve_name(store, account or caller_account, "user", user_name)
        origins.setdefault(key, KeyOrigin(key, issuer, api, t, event_id, holder))
    return origins
