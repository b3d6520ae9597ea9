"""`nhiwatch config check --connect`: reach every AWS source and sink with read-only calls.

A sink that acts in several accounts (Security Hub) reports each one: the account nhiwatch runs in,
the accounts its configuration names, and the accounts its findings came from so far (read from the
store when there is one), each reachable or not and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nhiwatch.outputs.accounts import ACCOUNT_ID
from nhiwatch.watch.config import WatchConfig
from nhiwatch.watch.sources import aws_problem


@dataclass
class Reached:
    problems: list[str] = field(default_factory=list)
    accounts: dict[str, list[dict]] = field(default_factory=dict)  # sink name -> one entry per account
    notes: list[str] = field(default_factory=list)


def reach(config: WatchConfig) -> Reached:
    from nhiwatch.watch.watcher import aws_client

    reached = Reached()
    for source in config.sources:
        try:
            source.reach(aws_client)
        except Exception as exc:
            code, message = aws_problem(exc)
            reached.problems.append(f"source {source.name}: {code}: {message}")
    seen = _accounts_seen(config.home, [s.name for s in config.sinks], reached.notes)
    for sink in config.sinks:
        try:
            report = sink.reach(seen.get(sink.name, set()))
        except Exception as exc:
            reached.problems.append(f"sink {sink.name}: {exc}")
            continue
        if report:
            reached.accounts[sink.name] = report
        for entry in report:
            if not entry["reachable"]:
                reached.problems.append(f"sink {sink.name}: account {entry['account']}: {entry['reason']}")
    return reached


def _accounts_seen(home: Path | None, sinks: list[str], notes: list[str]) -> dict[str, set[str]]:
    """The accounts of the findings each sink has been given so far, from the store if there is one."""
    from nhiwatch.store.db import DB_NAME, Store, resolve_home

    if not (resolve_home(home) / DB_NAME).exists():
        return {}
    try:
        with Store(home, read_only=True) as store:
            rows = store.con.execute(
                """SELECT DISTINCT o.sink, f.account_id FROM outbox o JOIN findings f ON f.id = o.finding_id
                   WHERE o.sink IN (SELECT unnest(?)) AND f.account_id IS NOT NULL""", [sinks]).fetchall()
    except Exception as exc:  # busy, or older than the outbox: the check goes on without it
        notes.append(f"the accounts of earlier findings were not checked: {exc}")
        return {}
    seen: dict[str, set[str]] = {}
    for sink, account in rows:
        if ACCOUNT_ID.match(account):  # a malformed id is reported when its finding is sent
            seen.setdefault(sink, set()).add(account)
    return seen
