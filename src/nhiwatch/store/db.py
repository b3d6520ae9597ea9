"""The embedded store: one DuckDB file under the nhiwatch home.

One writer per store (DuckDB locks the file); a second process gets StoreBusy with a clear
message instead of a stack trace. Schema changes go through numbered migrations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from collections import Counter
import os
import time
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from nhiwatch.core.event import EVENT_MODEL_VERSION
from nhiwatch.store.migrations import MIGRATIONS

DEFAULT_HOME = ".nhiwatch"
DB_NAME = "nhiwatch.duckdb"


class StoreError(RuntimeError):
    pass


class StoreBusy(StoreError):
    pass


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """--home, else $NHIWATCH_HOME, else ./.nhiwatch"""
    chosen = home or os.environ.get("NHIWATCH_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser()


class Store:
    def __init__(self, home: str | os.PathLike | None = None, *, read_only: bool = False,
                 memory_limit: str = "512MB", threads: int | None = None) -> None:
        self.home = resolve_home(home)
        self.path = self.home / DB_NAME
        self.read_only = read_only
        self._batch: int | None = None
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}: run 'nhiwatch ingest' first")
        if not read_only:
            self.home.mkdir(parents=True, exist_ok=True)
        config = {"memory_limit": memory_limit}
        if threads:
            config["threads"] = threads
        self._config = config
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusy(f"the store {self.path} is in use by another nhiwatch process; "
                                "wait for it to finish (one writer per store)") from None
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        # Times are UTC everywhere; the session default would be the machine's zone.
        self.con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            self._migrate()
        else:
            self._check_version()

    def close(self) -> None:
        self.con.close()

    def view(self) -> "Store":
        """The same open database through another connection, for another thread: the dashboard reads
        (and records response actions) while the watcher writes, with no file lock between them."""
        other = object.__new__(Store)
        other.__dict__.update(self.__dict__)
        other.con = self.con.cursor()
        other.con.execute("SET TimeZone = 'UTC'")
        other._batch = None
        return other

    @contextmanager
    def memory_limit(self, limit: str) -> Iterator[None]:
        """DuckDB's cache capped at `limit` for a stage that needs little of it; the configured limit
        comes back afterwards."""
        self.con.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            self.con.execute(f"SET memory_limit = '{self._config['memory_limit']}'")

    def release_memory(self) -> None:
        """Give back the memory a finished stage held: DuckDB's cached blocks (by reopening the
        connection; the store stays locked to this process meanwhile only if nothing else takes it,
        which a single command never lets happen), Arrow's pool and the C heap's free pages. Between
        the stages of a big `analyze`, this keeps the peak to the largest stage, not their sum."""
        import ctypes
        import ctypes.util

        self.con.close()
        pa.default_memory_pool().release_unused()
        libc = ctypes.util.find_library("c")
        if libc:
            try:
                ctypes.CDLL(libc).malloc_trim(0)
            except (OSError, AttributeError):  # not glibc: nothing to trim
                pass
        self.con = duckdb.connect(str(self.path), read_only=self.read_only, config=self._config)
        self.con.execute("SET TimeZone = 'UTC'")

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------

    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'").fetchone()[0]
        if not exists:
            return 0
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def has_table(self, name: str) -> bool:
        """False for a table of a newer schema than a read-only, not yet migrated store has."""
        return bool(self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0])

    def _check_version(self) -> None:
        current = self.schema_version()
        if current > len(MIGRATIONS):
            raise StoreError(f"store {self.path} has schema version {current}, newer than this nhiwatch "
                             f"({len(MIGRATIONS)}); upgrade nhiwatch")

    def _migrate(self) -> None:
        self._check_version()
        current = self.schema_version()
        for version, steps in enumerate(MIGRATIONS[current:], start=current + 1):
            self.con.execute("BEGIN TRANSACTION")
            try:
                for step in steps:
                    self.con.execute(step)
                self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)])
                self.con.execute("INSERT OR REPLACE INTO meta VALUES ('event_model_version', ?)",
                                 [str(EVENT_MODEL_VERSION)])
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise

    # -- writing ----------------------------------------------------------------------------

    def begin_run(self, paths: list[str]) -> int:
        run_id = self.con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM ingest_runs").fetchone()[0]
        self.con.execute("INSERT INTO ingest_runs (run_id, started_at, paths) VALUES (?, now(), ?)",
                         [run_id, paths])
        return run_id

    def finish_run(self, run_id: int, summary: dict) -> None:
        self.con.execute("UPDATE ingest_runs SET finished_at = now(), summary = ? WHERE run_id = ?",
                         [orjson.dumps(summary).decode(), run_id])

    def record_files(self, run_id: int, outcomes: list[dict]) -> None:
        """The per-file report of a run, in one insert (row-at-a-time inserts are slow in DuckDB)."""
        if not outcomes:
            return
        columns = ("path", "format", "records", "accepted", "duplicate", "quarantined", "skipped", "error")
        table = pa.table({"run_id": pa.array([run_id] * len(outcomes), pa.int32()),
                          **{c: [o[c] for o in outcomes] for c in columns}})
        self.con.register("incoming_files", table)
        try:
            self.con.execute("INSERT INTO ingest_files SELECT * FROM incoming_files")
        finally:
            self.con.unregister("incoming_files")

    def newest_batch(self) -> int:
        """The number of the last insert of events (detection takes batches in order)."""
        if self._batch is None:
            self._batch = int(self.con.execute("SELECT coalesce(max(ingest_batch), 1) FROM events").fetchall()[0][0])
        return self._batch

    def next_batch(self) -> int:
        self._batch = self.newest_batch() + 1
        return self._batch

    def insert_events(self, table: pa.Table) -> dict[str, int]:
        """Insert the events not stored yet (same uid); returns how many were new per source file.

        Duplicates inside the batch count once: the copy from the first file (in path order) wins.
        """
        if table.num_rows == 0:
            return {}
        batch = self.next_batch()
        times = table.column("event_time")
        lo = pc.min(times).value - 1_000_000
        hi = pc.max(times).value + 1_000_000
        repeats_inside = pc.count_distinct(table.column("uid")).as_py() < table.num_rows
        # The time bounds, and the accounts when there are few, let DuckDB skip row groups by their
        # min/max instead of reading every stored uid (equal uids imply equal time and account).
        params: list = [lo, hi]
        accounts = pc.unique(table.column("account_id"))
        account_filter = ""
        if accounts.null_count == 0 and len(accounts) <= 16:
            account_filter = f"AND e.account_id IN ({', '.join('?' * len(accounts))})"
            params += accounts.to_pylist()
        qualify = ("QUALIFY row_number() OVER (PARTITION BY i.uid ORDER BY i.source_file, i.source_locator) = 1"
                   if repeats_inside else "")
        self.con.register("incoming_events", table)
        try:
            returned = self.con.execute(
                f"""
                INSERT INTO events
                SELECT i.*, {int(batch)} FROM incoming_events i
                WHERE NOT EXISTS (
                    SELECT 1 FROM events e
                    WHERE e.event_time BETWEEN make_timestamp(?::BIGINT)::TIMESTAMPTZ
                                           AND make_timestamp(?::BIGINT)::TIMESTAMPTZ
                      {account_filter}
                      AND e.uid = i.uid)
                {qualify}
                RETURNING source_file
                """,
                params,
            ).fetchall()
        finally:
            self.con.unregister("incoming_events")
        return Counter(row[0] for row in returned)

    def insert_quarantine(self, run_id: int, rows: list[tuple[str, str, str, str]]) -> int:
        """rows: (source_file, locator, reason, raw). The same bad record is kept once."""
        if not rows:
            return 0
        qids = [hashlib.blake2b(f"{f}\x1f{loc}\x1f{raw}".encode(), digest_size=16).digest()
                for f, loc, _reason, raw in rows]
        table = pa.table({
            "qid": pa.array(qids, pa.binary(16)),
            "source_file": [r[0] for r in rows],
            "locator": [r[1] for r in rows],
            "reason": [r[2] for r in rows],
            "raw": [r[3] for r in rows],
        })
        self.con.register("incoming_quarantine", table)
        try:
            added = self.con.execute(
                """
                INSERT INTO quarantine
                SELECT q.qid, now(), ?, q.source_file, q.locator, q.reason, q.raw FROM incoming_quarantine q
                WHERE q.qid NOT IN (SELECT qid FROM quarantine)
                QUALIFY row_number() OVER (PARTITION BY q.qid) = 1
                """,
                [run_id],
            ).fetchone()[0]
        finally:
            self.con.unregister("incoming_quarantine")
        return int(added)

    def checkpoint(self) -> None:
        self.con.execute("CHECKPOINT")

    # -- reading ----------------------------------------------------------------------------

    def stats(self) -> dict:
        q = self.con.execute
        total, first, last, accounts, regions, principals = q(
            """SELECT count(*), strftime(min(event_time), '%Y-%m-%dT%H:%M:%SZ'),
                      strftime(max(event_time), '%Y-%m-%dT%H:%M:%SZ'),
                      count(DISTINCT account_id), count(DISTINCT aws_region), count(DISTINCT principal)
               FROM events""").fetchone()
        by_type = {t: n for t, n in q(
            """SELECT principal_type, count(DISTINCT principal) FROM events WHERE principal IS NOT NULL
               GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()}
        events_by_type = {t or "unknown": n for t, n in q(
            "SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()}
        sources = [{"event_source": s, "events": n} for s, n in q(
            "SELECT event_source, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15").fetchall()]
        files = q("SELECT count(DISTINCT source_file) FROM events").fetchone()[0]
        quality = {f: n for f, n in q(
            "SELECT flag, count(*) FROM (SELECT unnest(quality) AS flag FROM events) GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()}
        q_total = q("SELECT count(*) FROM quarantine").fetchone()[0]
        q_reasons = [{"reason": r, "records": n} for r, n in q(
            """SELECT regexp_replace(reason, '\\s*[:(].*$', '') AS r, count(*) FROM quarantine
               GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15""").fetchall()]
        return {
            "store": str(self.path),
            "schema_version": self.schema_version(),
            "event_model_version": EVENT_MODEL_VERSION,
            "events": total,
            "first_event": first,
            "last_event": last,
            "accounts": accounts,
            "regions": regions,
            "identities": principals,
            "identities_by_type": by_type,
            "events_by_type": events_by_type,
            "top_event_sources": sources,
            "source_files": files,
            "quality_flags": quality,
            "quarantined": q_total,
            "quarantine_reasons": q_reasons,
        }

    def quarantine(self, limit: int = 50, reason: str | None = None) -> list[dict]:
        sql = """SELECT source_file, locator, reason, raw, strftime(first_seen, '%Y-%m-%dT%H:%M:%SZ')
                 FROM quarantine {where} ORDER BY source_file, locator LIMIT ?"""
        params: list = []
        where = ""
        if reason:
            where, params = "WHERE reason ILIKE ?", [f"%{reason}%"]
        rows = self.con.execute(sql.format(where=where), params + [limit]).fetchall()
        return [dict(zip(("source_file", "locator", "reason", "raw", "first_seen"), r)) for r in rows]


def now_micros() -> int:
    return time.time_ns() // 1000
