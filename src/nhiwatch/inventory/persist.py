"""The inventory in the store: raw IAM exports per account, and the identities and posture findings
rebuilt from them (and from the events, when there are any)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import orjson
import pyarrow as pa

from nhiwatch.core.severity import SEVERITIES, severity_rank
from nhiwatch.core.times import iso_z
from nhiwatch.inventory.build import build_inventory
from nhiwatch.core.times import parse_time
from nhiwatch.inventory.model import Identity, days_between
from nhiwatch.inventory.organization import merge_organizations
from nhiwatch.inventory.sources import ORGANIZATION, RESOURCE_POLICIES, SourceFile, merge_authz
from nhiwatch.store.db import Store

# sort key -> (column, its natural direction, where its NULLs go then, tie-breakers)
SORT_COLUMNS = {"risk": ("risk_score", "DESC", "LAST", "arn"), "name": ("name", "ASC", "LAST", "arn"),
                "account": ("account_id", "ASC", "LAST", "risk_score DESC, arn"),
                "type": ("nhi_type", "ASC", "LAST", "risk_score DESC, arn"),
                "last-active": ("last_active", "ASC", "FIRST", "arn"),
                "key-age": ("oldest_key_days", "DESC", "LAST", "arn"), "findings": ("findings", "DESC", "LAST", "arn")}


def _order_by(sort: str, order: str | None) -> str:
    """ORDER BY for a sort key; `order` (asc, desc) reverses the natural direction, NULLs with it."""
    column, natural, nulls, ties = SORT_COLUMNS[sort]
    direction = order.upper() if order else natural
    if direction != natural:
        nulls = "FIRST" if nulls == "LAST" else "LAST"
    return f"{column} {direction} NULLS {nulls}, {ties}"


class InventoryMissing(LookupError):
    """No inventory has been loaded into this store."""


def save_sources(store: Store, files: list[SourceFile], origin: str) -> dict[str, list[str]]:
    """Store the exports of one load. Each account's export replaces the one stored before (a snapshot
    replaces a snapshot); several files of one account in the same load are pages, merged.
    Returns kind -> accounts stored."""
    pages: dict[tuple[str, str], list] = {}
    for source in files:
        for account, payload in source.accounts.items():
            pages.setdefault((account, source.kind), []).append(payload)
    stored: dict[str, list[str]] = {}
    store.con.execute("BEGIN TRANSACTION")
    try:
        for (account, kind), items in sorted(pages.items()):
            if kind == ORGANIZATION:  # one organization per store: the new file replaces the old
                payload = merge_organizations(items)
            elif kind == RESOURCE_POLICIES:  # an account's resource policies: a snapshot, pages merged
                payload = {arn: entry for page in items for arn, entry in page.items()}
            elif kind == "authorization-details":
                if account == "aws":  # AWS managed policies accumulate: each export carries the ones it uses
                    previous = store.con.execute(
                        "SELECT payload FROM iam_sources WHERE account_id = 'aws' AND kind = ?", [kind]).fetchone()
                    items = ([orjson.loads(previous[0])] if previous else []) + items
                payload = merge_authz(items)
            else:
                merged = {row["arn"]: row for rows in items for row in rows}
                payload = list(merged.values())
            store.con.execute("INSERT OR REPLACE INTO iam_sources VALUES (?, ?, ?, now(), ?)",
                              [account, kind, origin, orjson.dumps(payload).decode()])
            if account not in ("aws", ORGANIZATION):
                stored.setdefault(kind, []).append(account)
            elif account == ORGANIZATION:
                stored.setdefault(kind, []).append(payload["Organization"].get("Id") or "organization")
        store.con.execute("COMMIT")
    except Exception:
        store.con.execute("ROLLBACK")
        raise
    return stored


def load_sources(store: Store) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    authz: dict[str, dict] = {}
    reports: dict[str, list[dict]] = {}
    for account, kind, payload in store.con.execute(
            "SELECT account_id, kind, payload FROM iam_sources WHERE kind IN ('authorization-details', "
            "'credential-report')").fetchall():
        (authz if kind == "authorization-details" else reports)[account] = orjson.loads(payload)
    return authz, reports


def load_policy_feeds(store: Store) -> tuple[dict | None, dict[str, dict]]:
    """(the stored organization or None, account -> ARN -> resource policy entry)."""
    organization = None
    resources: dict[str, dict] = {}
    for account, kind, payload in store.con.execute(
            "SELECT account_id, kind, payload FROM iam_sources WHERE kind IN (?, ?)",
            [ORGANIZATION, RESOURCE_POLICIES]).fetchall():
        if kind == ORGANIZATION:
            organization = orjson.loads(payload)
        else:
            resources[account] = orjson.loads(payload)
    return organization, resources


def _finding_id(arn: str, check: str, evidence: dict) -> str:
    key = orjson.dumps([arn, check, evidence], option=orjson.OPT_SORT_KEYS)
    return "pf-" + hashlib.blake2b(key, digest_size=8).hexdigest()


def rebuild(store: Store, as_of: datetime | None = None) -> list[Identity]:
    """Recompute every identity from the stored exports and events, and replace the derived tables."""
    if as_of is None:
        row = store.con.execute("SELECT value FROM meta WHERE key = 'inventory_as_of'").fetchone()
        as_of = parse_time(row[0]) if row else None
    as_of = as_of or datetime.now(timezone.utc)
    authz, reports = load_sources(store)
    organization, resources = load_policy_feeds(store)
    has_events = store.con.execute("SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1)").fetchone()[0] > 0
    identities = build_inventory(authz, reports, as_of, store.con if has_events else None,
                                 organization=organization, resource_policies=resources)
    identity_rows, finding_rows = [], []
    for identity in identities:
        ages = [days_between(parse_time(k.created), as_of) for k in identity.active_keys()]
        ages = [a for a in ages if a is not None]
        top = max((severity_rank(f.severity) for f in identity.findings), default=None)
        identity_rows.append((identity.arn, identity.account_id, identity.kind, identity.name, identity.category,
                              identity.nhi_type, identity.type_detail, identity.owner, identity.team, identity.created,
                              identity.last_active, max(ages) if ages else None, identity.risk_score,
                              identity.risk_level, len(identity.findings),
                              SEVERITIES[top] if top is not None else None,
                              orjson.dumps(identity).decode()))  # orjson writes dataclasses itself
        for finding in identity.findings:
            finding_rows.append((_finding_id(identity.arn, finding.check, finding.evidence), identity.arn,
                                 identity.account_id, finding.check, finding.title, finding.severity, finding.owasp,
                                 finding.nist, finding.detail, orjson.dumps(finding.evidence).decode()))
    store.con.execute("BEGIN TRANSACTION")
    try:
        store.con.execute("DELETE FROM identities")
        store.con.execute("DELETE FROM posture_findings")
        # Through Arrow: DuckDB's executemany inserts row by row, about 100 times slower.
        for table, rows in (("identities", identity_rows), ("posture_findings", finding_rows)):
            if rows:
                columns = [c[0] for c in store.con.execute(f"SELECT * FROM {table} LIMIT 0").description]
                batch = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})  # noqa: F841
                store.con.execute(f"INSERT OR REPLACE INTO {table} SELECT * FROM batch")
        store.con.execute("INSERT OR REPLACE INTO meta VALUES ('inventory_as_of', ?)",
                          [iso_z(as_of)])
        store.con.execute("COMMIT")
    except Exception:
        store.con.execute("ROLLBACK")
        raise
    return identities


def _require(store: Store) -> None:
    if not store.has_table("identities") or not store.con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM identities LIMIT 1)").fetchone()[0]:
        raise InventoryMissing("no inventory in this store: run 'nhiwatch inventory load FILE...' or "
                               "'nhiwatch inventory load --live' first")


def list_identities(store: Store, *, types: list[str] | None = None, accounts: list[str] | None = None,
                    categories: list[str] | None = None, min_risk: int | None = None, level: str | None = None,
                    search: str | None = None, sort: str = "risk", order: str | None = None,
                    limit: int | None = None, offset: int = 0) -> tuple[int, list[dict]]:
    """(matching count, one page of rows) of the identity table."""
    _require(store)
    clauses, params = [], []
    for column, values in (("nhi_type", types), ("account_id", accounts), ("category", categories)):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += values
    if min_risk is not None:
        clauses.append("risk_score >= ?")
        params.append(min_risk)
    if level:
        clauses.append("risk_level = ?")
        params.append(level)
    if search:
        clauses.append("(arn ILIKE ? OR coalesce(owner, '') ILIKE ? OR coalesce(team, '') ILIKE ?)")
        params += [f"%{search}%"] * 3
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    total = store.con.execute(f"SELECT count(*) FROM identities {where}", params).fetchone()[0]
    page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit else ""
    cursor = store.con.execute(
        f"SELECT * EXCLUDE (record) FROM identities {where} ORDER BY {_order_by(sort, order)}{page}", params)
    columns = [d[0] for d in cursor.description]
    return total, [dict(zip(columns, row)) for row in cursor.fetchall()]


def get_identity(store: Store, reference: str) -> Identity | None:
    """By ARN, or by a unique name or unique id."""
    _require(store)
    rows = store.con.execute(
        "SELECT record FROM identities WHERE arn = ? OR name = ? OR json_extract_string(record, '$.unique_id') = ?",
        [reference, reference, reference]).fetchall()
    if len(rows) > 1:
        raise LookupError(f"{reference!r} names {len(rows)} identities; give the full ARN")
    return Identity.from_dict(orjson.loads(rows[0][0])) if rows else None


def posture_findings(store: Store, *, min_severity: str = "info", checks: list[str] | None = None,
                     accounts: list[str] | None = None, owasp: str | None = None) -> list[dict]:
    _require(store)
    clauses = ["list_position(?, severity) >= ?"]
    params: list = [list(SEVERITIES), severity_rank(min_severity) + 1]
    if checks:
        clauses.append(f"check_id IN ({', '.join('?' * len(checks))})")
        params += checks
    if accounts:
        clauses.append(f"f.account_id IN ({', '.join('?' * len(accounts))})")
        params += accounts
    if owasp:
        clauses.append("list_contains(owasp, ?)")
        params.append(owasp.upper())
    cursor = store.con.execute(
        f"""SELECT f.finding_id, f.arn, f.account_id, i.nhi_type, i.category, f.check_id, f.title, f.severity,
                   f.owasp, f.nist, f.detail, f.evidence, i.risk_score
            FROM posture_findings f JOIN identities i USING (arn)
            WHERE {' AND '.join(clauses)}
            ORDER BY list_position(?, f.severity) DESC, i.risk_score DESC, f.arn, f.check_id""",
        params + [list(SEVERITIES)])
    columns = [d[0] for d in cursor.description]
    rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    for row in rows:
        row["evidence"] = orjson.loads(row["evidence"])
    return rows


def _riskiest(store: Store, accounts: list[str] | None, path: str) -> list[tuple]:
    """Identities riskiest first (of some accounts): who they are and one part of their record."""
    _require(store)
    clause, params = "", []
    if accounts:
        clause = f"WHERE account_id IN ({', '.join('?' * len(accounts))})"
        params = list(accounts)
    return store.con.execute(
        f"""SELECT arn, name, account_id, kind, nhi_type, risk_score, risk_level,
                   json_extract(record, ?) FROM identities {clause}
            ORDER BY risk_score DESC, arn""", [path, *params]).fetchall()


def escalation_paths(store: Store, *, accounts: list[str] | None = None, conditional: bool = False) -> list[dict]:
    """Every identity with a route to admin (with `conditional`, also those whose routes all rest on a
    condition), riskiest first: its methods, its routes (compact) and the shortest one with each hop's
    evidence."""
    out = []
    for arn, name, account, kind, nhi_type, score, level, caps_text in _riskiest(store, accounts, "$.capabilities"):
        caps = orjson.loads(caps_text) if caps_text else {}
        if not caps.get("privesc") and not (conditional and caps.get("privesc_conditional")):
            continue
        out.append({"arn": arn, "name": name, "account_id": account, "kind": kind, "nhi_type": nhi_type,
                    "risk_score": score, "risk_level": level, "methods": caps.get("privesc") or [],
                    "conditional": caps.get("privesc_conditional") or [], "routes": caps.get("privesc_routes") or [],
                    "route": caps.get("privesc_route")})
    return out


def capability_paths(store: Store, capability: str, *, accounts: list[str] | None = None,
                     conditional: bool = False) -> list[dict]:
    """Every identity with a route to the capability (secrets, data, kms), holders included (zero hops),
    riskiest first, each with its shortest route and the grant at its end; with `conditional`, also
    routes resting on a condition."""
    out = []
    for arn, name, account, kind, nhi_type, score, level, routes_text in _riskiest(
            store, accounts, "$.capabilities.capability_routes"):
        route = (orjson.loads(routes_text) or {}).get(capability) if routes_text else None
        if route is None or (route.get("conditional") and not conditional):
            continue
        out.append({"arn": arn, "name": name, "account_id": account, "kind": kind, "nhi_type": nhi_type,
                    "risk_score": score, "risk_level": level, "capability": capability, "route": route})
    return out
