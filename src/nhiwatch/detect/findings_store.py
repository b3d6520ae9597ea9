"""Findings in the store: listing, one finding, suppressions, and resolving a finding as benign
(which teaches the identity's baseline what the finding saw)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson

from nhiwatch.core.finding import Finding
from nhiwatch.core.severity import SEVERITIES, severity_rank
from nhiwatch.core.times import iso_z
from nhiwatch.detect.engine import learn_values
from nhiwatch.detect.profile import Profile
from nhiwatch.store.db import Store


class SuppressionError(ValueError):
    """A suppression file that cannot be used."""


@dataclass(frozen=True)
class Suppression:
    reason: str
    identity: str | None = None
    detector: str | None = None
    api: str | None = None
    network: str | None = None
    expires: datetime | None = None

    def matches(self, finding: dict, now: datetime) -> bool:
        if self.expires and now > self.expires:
            return False
        evidence = finding.get("evidence", {})
        return ((self.identity is None or self.identity == finding["identity"]["arn"])
                and (self.detector is None or self.detector == finding["detector"])
                and (self.api is None or self.api == evidence.get("api"))
                and (self.network is None or self.network == evidence.get("network")))


def load_suppressions(path: Path) -> list[Suppression]:
    """A TOML file of [[suppress]] tables: identity, detector, api, network (any subset), reason, expires."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SuppressionError(f"{path}: {exc}") from None
    rules = []
    for n, item in enumerate(data.get("suppress", []), 1):
        unknown = set(item) - {"identity", "detector", "api", "network", "expires", "reason"}
        if unknown:
            raise SuppressionError(f"{path}: suppress #{n}: unknown field(s) {', '.join(sorted(unknown))}")
        if not item.get("reason"):
            raise SuppressionError(f"{path}: suppress #{n}: a reason is required")
        if not any(item.get(k) for k in ("identity", "detector", "api", "network")):
            raise SuppressionError(f"{path}: suppress #{n}: give at least one of identity, detector, api, network")
        expires = item.get("expires")
        if isinstance(expires, str):
            try:
                expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
            except ValueError:
                raise SuppressionError(f"{path}: suppress #{n}: expires {expires!r} is not a date") from None
        if isinstance(expires, datetime) and expires.tzinfo is None:
            expires = expires.replace(tzinfo=timezone.utc)
        elif expires is not None and not isinstance(expires, datetime):  # a TOML date
            expires = datetime(expires.year, expires.month, expires.day, tzinfo=timezone.utc)
        rules.append(Suppression(item["reason"], item.get("identity"), item.get("detector"), item.get("api"),
                                 item.get("network"), expires))
    return rules


def apply_suppressions(store: Store, rules: list[Suppression], ids: list[str]) -> int:
    """Mark the given findings suppressed where a rule matches; returns how many."""
    if not rules or not ids:
        return 0
    now = datetime.now(timezone.utc)
    rows = store.con.execute("SELECT id, finding FROM findings WHERE id IN (SELECT unnest(?))", [ids]).fetchall()
    hit = [fid for fid, text in rows if any(rule.matches(orjson.loads(text), now) for rule in rules)]
    if hit:
        store.con.execute("UPDATE findings SET status = 'suppressed' WHERE id IN (SELECT unnest(?))", [hit])
    return len(hit)


def list_findings(store: Store, *, min_severity: str = "low", detector: str | None = None,
                  identity: str | None = None, status: str | None = "open", since: str | None = None,
                  limit: int | None = None, offset: int = 0) -> tuple[int, list[dict]]:
    if not store.has_table("findings"):
        return 0, []
    clauses = ["list_position(?, severity) >= ?"]
    params: list = [list(SEVERITIES), severity_rank(min_severity) + 1]
    for column, value in (("detector", detector), ("status", status)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if identity:
        clauses.append("identity ILIKE ?")
        params.append(f"%{identity}%")
    if since:
        clauses.append("first_seen >= ?")
        params.append(since)
    where = " AND ".join(clauses)
    counted = store.con.execute(f"SELECT count(*) FROM findings WHERE {where}", params).fetchone()
    total = counted[0] if counted else 0
    page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit else ""
    rows = store.con.execute(f"SELECT finding, status, incident_id FROM findings WHERE {where} "
                             f"ORDER BY list_position(?, severity) DESC, first_seen, id{page}",
                             params + [list(SEVERITIES)]).fetchall()
    return total, [dict(orjson.loads(text), status=state, incident_id=incident) for text, state, incident in rows]


def get_finding(store: Store, finding_id: str) -> Finding | None:
    """The finding with its status and incident as the store has them now; None when there is none."""
    if not store.has_table("findings"):
        return None
    row = store.con.execute("SELECT finding, status, incident_id FROM findings WHERE id = ?", [finding_id]).fetchone()
    if row is None:
        return None
    finding = Finding.from_dict(orjson.loads(row[0]))
    finding.status, finding.incident_id = row[1], row[2]
    return finding


def resolve(store: Store, finding_id: str, *, benign: bool, reason: str | None) -> dict:
    """Close a finding; when benign, fold what it saw into the identity's baseline so it stays quiet."""
    finding = get_finding(store, finding_id)
    if finding is None:
        raise LookupError(f"no finding {finding_id}")
    taught = 0
    if benign:
        identity = finding.identity["arn"]
        row = store.con.execute("SELECT state FROM profiles WHERE identity = ?", [identity]).fetchone()
        profile = Profile.from_state(orjson.loads(row[0])) if row else Profile()
        events = store.con.execute(
            """SELECT epoch_us(event_time), api, source_ip, source_ip_kind, user_agent, aws_region,
                      federation_subject, assumed_role_arn, vpc_endpoint_id
               FROM events WHERE event_id IN (SELECT unnest(?))""", [finding.event_ids]).fetchall()
        for values in events:
            learn_values(profile, *values)
            taught += 1
        store.con.execute("INSERT OR REPLACE INTO profiles SELECT ?, now(), ?, ?, ?, ?",
                          [identity, profile.last, profile.n, profile.mature, orjson.dumps(profile.to_state()).decode()])
    status = "benign" if benign else "resolved"
    finding.evidence["resolution"] = {"status": status, "reason": reason, "events_taught": taught,
                                      "at": iso_z(datetime.now(timezone.utc))}
    # The status and the incident live in their columns, not in the stored contract.
    stored = {k: v for k, v in finding.to_dict().items() if k not in ("status", "incident_id")}
    store.con.execute("UPDATE findings SET status = ?, finding = ? WHERE id = ?",
                      [status, orjson.dumps(stored).decode(), finding_id])
    return {"id": finding_id, "status": status, "events_taught": taught}
