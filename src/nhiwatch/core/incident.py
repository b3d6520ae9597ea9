"""The incident contract: findings on linked identities, told as one story. Correlation writes it; the
CLI, the dashboard, the response planner and the outputs read it. It stays a JSON object (stored as
one in DuckDB, served as one by the API); these types say which keys it has."""

from __future__ import annotations

from typing import Any, TypedDict


# An edge between two identities that joined them into one incident (kind: assumes, creates-key,
# passes-role, web-identity, key-lineage, shared-address ...). "from" is a keyword, hence this form.
Link = TypedDict("Link", {"kind": str, "from": str, "to": str, "time": str, "event_id": "str | None",
                          "detail": str})


# One line of an incident's story: a finding ("kind": "finding", its id, severity, tactic) or a link
# between identities ("kind": the link's kind, "from" the identity it came from, its event).
TimelineEntry = TypedDict("TimelineEntry", {
    "time": str, "kind": str, "identity": str, "title": str, "finding_id": str, "severity": str,
    "tactic": "str | None", "from": str, "event_id": "str | None"}, total=False)


class Incident(TypedDict, total=False):
    id: str                         # inc-<digest of the lead finding>
    title: str
    severity: str                   # core.severity scale
    score: int
    severity_reasons: list[str]
    first_seen: str                 # ISO-8601 UTC (core.times)
    last_seen: str
    identities: list[str]           # the identities with a finding of their own, lead first
    pivots: list[str]               # identities that only link others (no finding of their own)
    accounts: list[str]
    tactics: list[str]              # in kill-chain order
    finding_ids: list[str]
    links: list[Link]
    timeline: list[TimelineEntry]
    blast_radius: dict[str, Any]    # what the identities can reach, from the inventory
    addresses: list[str]
    status: str                     # open / resolved, from the store
    findings: list[dict[str, Any]]  # the full findings, when one incident is read
