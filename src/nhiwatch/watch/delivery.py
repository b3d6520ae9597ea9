"""The outbox: every finding reaches every sink exactly once, across crashes.

Findings enter the outbox in the same transaction that stores them. Each sink has a thread that
only sends; the watcher's thread alone writes to the store (one writer). A batch is marked
in flight (with the file position to rewind to) before it is sent and delivered after, so after a
crash an in-flight batch is rewound and sent again: a file holds it once, remote sinks see the
finding id again with a redelivery flag. A sink that keeps failing is retried with exponential
backoff; after `max_attempts`, or at once on a permanent error, the findings go to a dead-letter
file with the reason, and the sink carries on with the next ones. A sink may deliver part of a batch
(PartialDelivery): the rest is then recorded finding by finding, delivered, retried or dead-lettered
each with its own reason, in one transaction as a whole batch is.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from nhiwatch.outputs.sinks import PartialDelivery, Sink, SinkError
from nhiwatch.store.db import Store


@dataclass
class _Result:
    sink: str
    batch: int
    ids: list[str]
    position: int | None
    error: SinkError | None


@dataclass
class SinkStatus:
    delivered: int = 0
    failed_attempts: int = 0
    dead: int = 0
    last_error: str | None = None
    next_attempt: float = 0.0
    busy: bool = False
    consecutive_failures: int = 0


class _Sender(threading.Thread):
    def __init__(self, sink: Sink, results: "queue.Queue[_Result]", wake: threading.Event) -> None:
        super().__init__(name=f"nhiwatch-sink-{sink.name}", daemon=True)
        self.sink = sink
        self.work: queue.Queue = queue.Queue(maxsize=1)
        self.results = results
        self.wake = wake

    def run(self) -> None:
        while True:
            item = self.work.get()
            if item is None:
                return
            batch, ids, findings, position, redelivery = item
            error = None
            try:
                self.sink.send(findings, redelivery)
            except SinkError as exc:
                error = exc
            except Exception as exc:  # a sink bug must not kill delivery to the others
                error = SinkError(f"{type(exc).__name__}: {exc}")
            self.results.put(_Result(self.sink.name, batch, ids, position, error))
            self.wake.set()


class Outbox:
    def __init__(self, store: Store, sinks: list[Sink], dead_letter_dir: Path, *, max_attempts: int = 8,
                 backoff_seconds: float = 1.0, max_backoff_seconds: float = 300.0,
                 wake: threading.Event | None = None) -> None:
        self.store = store
        self.sinks = {s.name: s for s in sinks}
        self.dead_letter_dir = dead_letter_dir
        self.max_attempts = max_attempts
        self.backoff = backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.wake = wake or threading.Event()
        self.results: queue.Queue[_Result] = queue.Queue()
        self.status = {name: SinkStatus() for name in self.sinks}
        self.senders = {name: _Sender(sink, self.results, self.wake) for name, sink in self.sinks.items()}
        self._batch = int(store.con.execute("SELECT coalesce(max(batch), 0) FROM outbox").fetchone()[0])
        self._seq = int(store.con.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0])

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Rewind what a crash left in flight, then start the senders."""
        con = self.store.con
        for name, sink in self.sinks.items():
            row = con.execute("SELECT batch, file_offset FROM sink_state WHERE sink = ?", [name]).fetchone()
            if row and row[0] is not None:
                sink.rewind(row[1])
                con.execute("UPDATE outbox SET state = 'pending' WHERE sink = ? AND state = 'inflight'", [name])
                con.execute("UPDATE sink_state SET batch = NULL, updated_at = now() WHERE sink = ?", [name])
        for sender in self.senders.values():
            sender.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let batches in flight finish (recording them), then stop the senders."""
        deadline = time.monotonic() + timeout
        while any(s.busy for s in self.status.values()) and time.monotonic() < deadline:
            self.collect(0.2)
        for sender in self.senders.values():
            sender.work.put(None)

    # -- in the detection transaction ---------------------------------------------------------

    def enqueue(self, findings: list) -> None:
        """Outbox rows for the new findings, for every sink that wants their severity. Runs inside the
        transaction that stores the findings; a finding already in the outbox is not added again."""
        rows = []
        for finding in findings:
            for name, sink in self.sinks.items():
                if sink.wants(finding.severity):
                    self._seq += 1
                    rows.append((name, finding.id, self._seq))
        if not rows:
            return
        import pyarrow as pa

        incoming = pa.table({"sink": [r[0] for r in rows], "finding_id": [r[1] for r in rows],  # noqa: F841
                          "seq": [r[2] for r in rows]})
        self.store.con.execute("""
            INSERT INTO outbox (sink, finding_id, seq, state, attempts, updated_at)
            SELECT t.sink, t.finding_id, t.seq, 'pending', 0, now() FROM incoming t
            WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.sink = t.sink AND o.finding_id = t.finding_id)""")

    # -- the watcher's loop -------------------------------------------------------------------------

    def dispatch(self) -> int:
        """Hand each idle sink its next batch; returns how many findings were handed out."""
        handed = 0
        con = self.store.con
        now = time.monotonic()
        for name, sink in self.sinks.items():
            status = self.status[name]
            if status.busy or status.next_attempt > now:
                continue
            rows = con.execute("""
                SELECT o.finding_id, o.attempts, f.finding, f.incident_id FROM outbox o JOIN findings f ON f.id = o.finding_id
                WHERE o.sink = ? AND o.state = 'pending' ORDER BY o.seq LIMIT ?""",
                               [name, sink.batch_size]).fetchall()
            if not rows:
                continue
            ids = [r[0] for r in rows]
            redelivery = any(r[1] > 0 for r in rows)
            # the incident known when it is sent: correlation runs after detection, on its own interval
            findings = [dict(orjson.loads(r[2]), incident_id=r[3]) for r in rows]
            position = sink.prepare()
            self._batch += 1
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("""UPDATE outbox SET state = 'inflight', batch = ?, attempts = attempts + 1,
                               updated_at = now() WHERE sink = ? AND finding_id IN (SELECT unnest(?))""",
                            [self._batch, name, ids])
                con.execute("INSERT OR REPLACE INTO sink_state VALUES (?, ?, ?, now())", [name, self._batch, position])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            status.busy = True
            self.senders[name].work.put((self._batch, ids, findings, position, redelivery))
            handed += len(ids)
        return handed

    def collect(self, timeout: float = 0.0) -> int:
        """Record the senders' results; returns how many findings were delivered."""
        delivered = 0
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = self.results.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return delivered
            delivered += self._record(result)
            timeout = 0.0
            deadline = time.monotonic()

    def _record(self, result: _Result) -> int:
        con = self.store.con
        status = self.status[result.sink]
        sink = self.sinks[result.sink]
        status.busy = False
        if result.error is None:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("UPDATE outbox SET state = 'delivered', last_error = NULL, updated_at = now() "
                            "WHERE sink = ? AND batch = ?", [result.sink, result.batch])
                con.execute("UPDATE sink_state SET batch = NULL, updated_at = now() WHERE sink = ?", [result.sink])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            status.delivered += len(result.ids)
            status.consecutive_failures = 0
            status.next_attempt = 0.0
            return len(result.ids)
        if isinstance(result.error, PartialDelivery):
            return self._record_partial(result, result.error)
        sink.rewind(result.position)
        status.failed_attempts += 1
        status.consecutive_failures += 1
        status.last_error = str(result.error)
        attempts = con.execute("SELECT max(attempts) FROM outbox WHERE sink = ? AND batch = ?",
                               [result.sink, result.batch]).fetchone()[0] or 0
        dead = result.error.permanent or attempts >= self.max_attempts
        if dead:
            self._dead_letter(result, attempts)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("UPDATE outbox SET state = ?, last_error = ?, updated_at = now() WHERE sink = ? AND batch = ?",
                        ["dead" if dead else "pending", str(result.error)[:2000], result.sink, result.batch])
            con.execute("UPDATE sink_state SET batch = NULL, updated_at = now() WHERE sink = ?", [result.sink])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        if dead:
            status.dead += len(result.ids)
        if result.error.permanent:
            # These findings can never be delivered; the next ones may be: no reason to wait for them.
            status.next_attempt = 0.0
            return 0
        delay = min(self.max_backoff, self.backoff * 2 ** (status.consecutive_failures - 1))
        status.next_attempt = time.monotonic() + delay * random.uniform(0.8, 1.2)
        return 0

    def _record_partial(self, result: _Result, error: PartialDelivery) -> int:
        """A batch the sink delivered in part: the findings it did not deliver fail one by one (each
        retried or dead-lettered on its own attempts and error), the others are delivered. Nothing is
        rewound: what was delivered stays delivered."""
        con = self.store.con
        status = self.status[result.sink]
        in_batch = set(result.ids)
        failed = {i: e for i, e in error.failed.items() if i in in_batch}
        attempts = dict(con.execute("SELECT finding_id, attempts FROM outbox WHERE sink = ? AND batch = ?",
                                    [result.sink, result.batch]).fetchall())
        dead = {i: e for i, e in failed.items() if e.permanent or attempts.get(i, 0) >= self.max_attempts}
        retried = {i: e for i, e in failed.items() if i not in dead}
        if dead:
            self._write_dead_letters(result.sink, {i: (e, attempts.get(i, 0)) for i, e in dead.items()})
        delivered = [i for i in result.ids if i not in failed]
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("UPDATE outbox SET state = 'delivered', last_error = NULL, updated_at = now() "
                        "WHERE sink = ? AND batch = ? AND finding_id IN (SELECT unnest(?))",
                        [result.sink, result.batch, delivered])
            for state, errors in (("dead", dead), ("pending", retried)):
                if errors:
                    con.executemany("UPDATE outbox SET state = ?, last_error = ?, updated_at = now() "
                                    "WHERE sink = ? AND batch = ? AND finding_id = ?",
                                    [[state, str(e)[:2000], result.sink, result.batch, i] for i, e in errors.items()])
            con.execute("UPDATE sink_state SET batch = NULL, updated_at = now() WHERE sink = ?", [result.sink])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        status.delivered += len(delivered)
        status.dead += len(dead)
        if failed:
            status.last_error = str(error)
            status.consecutive_failures += 1
        if retried:
            # Those findings wait out a backoff as a failed batch would; the delivered ones are done.
            status.failed_attempts += 1
            delay = min(self.max_backoff, self.backoff * 2 ** (status.consecutive_failures - 1))
            status.next_attempt = time.monotonic() + delay * random.uniform(0.8, 1.2)
        else:
            status.next_attempt = 0.0  # only findings that can never go: no reason to wait for the next ones
        return len(delivered)

    def _dead_letter(self, result: _Result, attempts: int) -> None:
        assert result.error is not None
        self._write_dead_letters(result.sink, {i: (result.error, attempts) for i in result.ids})

    def _write_dead_letters(self, sink: str, failures: dict[str, tuple[SinkError, int]]) -> None:
        """Append each finding with its reason and attempts to <dead_letter_dir>/<sink>.jsonl (synced)."""
        self.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        path = self.dead_letter_dir / f"{sink}.jsonl"
        findings = dict(self.store.con.execute("SELECT id, finding FROM findings WHERE id IN (SELECT unnest(?))",
                                               [list(failures)]).fetchall())
        with open(path, "ab") as fh:
            for finding_id, (error, attempts) in failures.items():
                fh.write(orjson.dumps({"sink": sink, "error": str(error), "attempts": attempts,
                                       "finding": orjson.loads(findings[finding_id])
                                       if finding_id in findings else {"id": finding_id}}) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    # -- health ---------------------------------------------------------------------------------

    def backlog(self) -> dict[str, dict]:
        counts: dict[str, dict] = {name: {"pending": 0, "inflight": 0, "delivered": 0, "dead": 0} for name in self.sinks}
        for sink, state, n in self.store.con.execute(
                "SELECT sink, state, count(*) FROM outbox GROUP BY ALL").fetchall():
            if sink in counts:
                counts[sink][state] = n
        for name, status in self.status.items():
            counts[name]["last_error"] = status.last_error if status.consecutive_failures else None
        return counts

    def idle(self) -> bool:
        """Nothing pending or in flight for any sink (dead letters aside)."""
        busy = any(s.busy for s in self.status.values())
        left = self.store.con.execute("SELECT count(*) FROM outbox WHERE state IN ('pending', 'inflight') "
                                      "AND sink IN (SELECT unnest(?))", [list(self.sinks)]).fetchone()[0]
        return not busy and not left
