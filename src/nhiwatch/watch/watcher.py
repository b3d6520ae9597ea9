"""`nhiwatch watch`: follow live sources, detect as events arrive, deliver findings to sinks.

One thread writes to the store (this one); sources and sinks run on their own threads and talk to
it through bounded queues. Each cycle:

1. take what the sources queued (bounded: back-pressure when input outruns processing);
2. commit its events, quarantined records, the objects done and the sources' checkpoints in one
   transaction, then acknowledge the items (delete SQS messages, answer HTTP requests);
3. judge the new events; findings, profiles and outbox rows commit in one transaction;
4. hand the outbox to the sinks and record what they delivered.

A crash at any point repeats at most the step it interrupted, and every step is idempotent: the
events of an item that comes again are recognised by their uid, a batch judged again is not judged
(the judged batch moved with its findings), and an in-flight delivery is rewound and re-sent.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from nhiwatch.core.severity import is_alert
from nhiwatch.detect.runner import DetectSession
from nhiwatch.ingest.pipeline import parse_items
from nhiwatch.store.db import Store, now_micros
from nhiwatch.watch.config import WatchConfig
from nhiwatch.watch.delivery import Outbox
from nhiwatch.watch.sources import Item, Source, SourceContext, load_done

MAX_ITEMS_PER_CYCLE = 256
MAX_BYTES_PER_CYCLE = 256 << 20


CHECKPOINT_THRESHOLD = "256MB"
PARALLEL_MIN_BYTES = 512 << 10  # below this, handing over to other processes costs more than it saves


class WatchFatal(RuntimeError):
    """The watcher cannot go on (a source misconfigured, the store unusable)."""


@dataclass
class WatchStats:
    started: float = field(default_factory=time.monotonic)
    items: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    findings: int = 0
    delivered: int = 0
    cycles: int = 0
    newest_event_us: int | None = None
    window_events: int = 0
    window_started: float = field(default_factory=time.monotonic)
    # seconds the writer thread spent in each stage: where a slow watch loses its time
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("parse", "store", "detect",
                                                                                   "deliver", "correlate"), 0.0))

    def timed(self, stage: str, started: float) -> None:
        self.stage_seconds[stage] += time.monotonic() - started


def log_line(level: str, event: str, **fields: object) -> None:
    """Structured progress on stderr: one JSON object per line."""
    record = {"time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z", "level": level,
              "event": event, **fields}
    sys.stderr.write(orjson.dumps(record, default=str).decode() + "\n")
    sys.stderr.flush()


class Watcher:
    def __init__(self, store: Store, config: WatchConfig, *, once: bool = False,
                 log: Callable[..., None] = log_line, aws: Callable[[str, str | None], object] | None = None) -> None:
        self.store = store
        self.config = config
        self.once = once
        self.log = log
        self.aws = aws or aws_client
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=config.queue_items)
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.stats = WatchStats()
        self.session = DetectSession(store)
        self.outbox = Outbox(store, config.sinks, config.dead_letter_dir or store.home / "dead-letter",
                             max_attempts=config.max_attempts, backoff_seconds=config.backoff_seconds, wake=self.wake)
        self.sources: list[Source] = []
        self.intakes: list = []
        self.done_sets: dict[str, set[str]] = {}
        self.run_id = 0
        self._last_correlate = time.monotonic()
        self._uncorrelated = 0
        self.workers = min(2, os.cpu_count() or 1)
        self._notes: dict[str, str | None] = {}
        self._pool = None
        self._ahead: tuple[list[Item], Callable[[], tuple]] | None = None  # items being parsed, and their result
        self._done_loaded = time.monotonic()

    # -- set-up ---------------------------------------------------------------------------------------

    def put(self, item: Item, timeout: float | None = None) -> bool:
        """A source hands over an item; waits while the queue is full (back-pressure)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.25)
            except queue.Full:
                if deadline is not None and time.monotonic() > deadline:
                    return False
                continue
            self.wake.set()
            return True
        return False

    def _build_sources(self) -> None:
        """Each configured source builds its readers (threads) or intakes (servers) for this watcher."""
        context = SourceContext(self.store, self.put, self.stopping, self.aws, self.once, done_sets=self.done_sets)
        for source in self.config.sources:
            source.build(context)
        self.sources, self.intakes = context.sources, context.intakes

    # -- the loop -------------------------------------------------------------------------------------

    def run(self, max_seconds: float | None = None, drain_seconds: float = 60.0) -> WatchStats:
        """Run until stopped (SIGTERM, SIGINT), until `max_seconds`, or with `once` until every source
        has handed over what it had and the sinks have delivered it (or `drain_seconds` passed)."""
        for sink in self.config.sinks:
            sink.open()
        self._build_sources()
        # A watch commits every few seconds; at DuckDB's default (16 MB of log) nearly every commit would
        # checkpoint and rewrite the events table's open row group. 256 MB halves the commit time.
        self.store.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        self.run_id = self.store.begin_run([f"watch: {s.name}" for s in self.config.sources])
        self.outbox.start()
        for source in self.sources:
            source.start()
        for intake in self.intakes:
            intake.start()
            self.log("info", "intake-listening", source=intake.name, address=intake.address)
        self.log("info", "started", sources=[s.name for s in self.config.sources],
                 sinks=[s.name for s in self.config.sinks], once=self.once)
        ended = time.monotonic() + max_seconds if max_seconds else None
        last_health = time.monotonic()
        draining_since: float | None = None
        try:
            while not self.stopping.is_set():
                self._raise_source_error()
                worked = self.cycle()
                now = time.monotonic()
                if now - last_health >= self.config.health_interval:
                    self.health()
                    last_health = now
                if ended is not None and now >= ended:
                    break
                if self.once and not any(s.is_alive() for s in self.sources) and self.queue.empty() and \
                        self._ahead is None and self._judged_all():
                    # A source that died since the check above ended with an error, not with its work done.
                    self._raise_source_error()
                    draining_since = draining_since or now
                    if self.outbox.idle() or now - draining_since > drain_seconds:
                        break
                if not worked:
                    self.wake.wait(0.2)
                    self.wake.clear()
        finally:
            self.stopping.set()
            for intake in self.intakes:
                intake.stop()
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            self.outbox.stop()
            self.store.finish_run(self.run_id, {"events": self.stats.events, "duplicates": self.stats.duplicates,
                                                "quarantined": self.stats.quarantined, "items": self.stats.items,
                                                "findings": self.stats.findings})
            self.health()
        return self.stats

    def _raise_source_error(self) -> None:
        for source in self.sources:
            if source.error is not None:
                raise WatchFatal(str(source.error))
            note = source.error_note
            if note != self._notes.get(source.source_name):
                self._notes[source.source_name] = note
                if note:  # a problem the source is outlasting, said once when it appears
                    self.log("warning", "source-retrying", source=source.source_name, error=note)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def cycle(self) -> bool:
        worked = False
        if self._ahead is None:
            items = self._take()
            if items:
                self._ahead = (items, self._start_parse(items))
        if self._ahead is not None:
            items, parsing = self._ahead
            started = time.monotonic()
            parsed = parsing()
            self.stats.timed("parse", started)
            # Hand the next items to the parsers before storing and judging these: the workers parse
            # while this thread writes, so the stages overlap instead of taking turns.
            following = self._take()
            self._ahead = (following, self._start_parse(following)) if following else None
            self._ingest(items, parsed)
            worked = True
        if not self._judged_all():
            started = time.monotonic()
            self._detect()
            self.stats.timed("detect", started)
            worked = True
        # Correlate (when due) before sending, so findings go out naming their incident.
        if self._uncorrelated and time.monotonic() - self._last_correlate >= self.config.correlate_interval:
            started = time.monotonic()
            self._correlate()
            self.stats.timed("correlate", started)
        started = time.monotonic()
        worked = bool(self.outbox.collect(0)) or worked
        worked = bool(self.outbox.dispatch()) or worked
        self.stats.timed("deliver", started)
        if time.monotonic() - self._done_loaded > 3600:
            # Forget objects done long ago (no listing reaches back to them), so memory stays bounded
            # over weeks of watching; a key forgotten too early would only be read again and skipped.
            for name, done in self.done_sets.items():
                recent = load_done(self.store, name)
                done.intersection_update(recent)
                done.update(recent)
            self._done_loaded = time.monotonic()
        return worked

    def _take(self) -> list[Item]:
        items: list[Item] = []
        size = 0
        while len(items) < MAX_ITEMS_PER_CYCLE and size < MAX_BYTES_PER_CYCLE:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            size += len(item.data)
        return items

    def _judged_all(self) -> bool:
        return self.session.judged_batch() >= self.store.newest_batch()

    # -- ingest ---------------------------------------------------------------------------------------

    def _start_parse(self, items: list[Item]) -> Callable[[], tuple[pa.Table | None, list, list]]:
        """Start normalizing the items' events; returns the call that waits for the result. With much to
        read, worker processes do it (the CPU-heavy part), the items split into contiguous groups so the
        order is kept; a little (an intake POST, a single object) is parsed here at once, for latency."""
        entries = [(i.display, i.key, i.data, i.result) for i in items]
        now = now_micros()
        size = sum(len(i.data) for i in items)
        if size < PARALLEL_MIN_BYTES or len(items) < 2 or self.workers < 2:
            result = parse_items(entries, now)
            return lambda: result
        if self._pool is None:
            from nhiwatch.core.workers import worker_pool

            self._pool = worker_pool(self.workers)
        step = -(-len(entries) // self.workers)
        parts = [self._pool.submit(parse_items, entries[i:i + step], now) for i in range(0, len(entries), step)]

        def gather() -> tuple[pa.Table | None, list, list]:
            tables, bad, infos = [], [], []
            for part in parts:
                table, part_bad, part_infos = part.result()
                if table is not None:
                    tables.append(table)
                bad += part_bad
                infos += part_infos
            return (pa.concat_tables(tables) if tables else None), bad, infos

        return gather

    def _ingest(self, items: list[Item], parsed: tuple[pa.Table | None, list, list]) -> None:
        started = time.monotonic()
        table, bad, infos = parsed
        outcomes = []
        for item, info in zip(items, infos):
            if info is None:
                continue
            outcome, quarantined, reason, rows = info
            item.result = {"events": rows}
            outcomes.append((item, outcome, quarantined, reason))
        con = self.store.con
        con.execute("BEGIN TRANSACTION")
        try:
            new = self.store.insert_events(table) if table is not None else {}
            self.store.insert_quarantine(self.run_id, bad)
            objects = [(i.source, i.key, i.etag, i.size, new.get(i.display, 0), q)
                       for i, _o, q, _r in outcomes if i.record_object]
            if objects:
                rows = pa.table({"source": [o[0] for o in objects], "key": [o[1] for o in objects],  # noqa: F841
                                 "etag": [o[2] for o in objects], "size": [o[3] for o in objects],
                                 "events": [o[4] for o in objects], "quarantined": [o[5] for o in objects]})
                con.execute("""INSERT OR REPLACE INTO watch_objects
                               SELECT source, key, etag, size, now(), events, quarantined, NULL FROM rows""")
            checkpoints = {i.checkpoint[0]: i.checkpoint[1] for i in items if i.checkpoint}
            for source, value in checkpoints.items():
                con.execute("INSERT OR REPLACE INTO watch_checkpoints VALUES (?, ?, now())", [source, value])
            reports = []
            for item, outcome, _q, _r in outcomes:
                outcome.accepted = new.get(item.display, 0)
                report = outcome.as_dict()
                report["path"] = item.display if item.record_object else f"{item.display}#{item.key}"
                reports.append(report)
            self.store.record_files(self.run_id, reports)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        accepted = sum(new.values())
        read = table.num_rows if table is not None else 0
        self.stats.items += len(items)
        self.stats.events += accepted
        self.stats.window_events += accepted
        self.stats.duplicates += read - accepted
        self.stats.quarantined += len(bad)
        if table is not None:
            newest = pc.max(table.column("event_time")).value
            self.stats.newest_event_us = max(self.stats.newest_event_us or 0, newest)
        for item, outcome, quarantined, reason in outcomes:
            # events: the item's CloudTrail events (new or already stored); new: those stored now
            item.result = {"events": item.result["events"] if item.result else 0,
                           "new": new.get(item.display, 0) if item.record_object else None,
                           "quarantined": quarantined, "reason": reason}
            if item.record_object and item.source in self.done_sets:
                self.done_sets[item.source].add(item.key)
        for item in items:
            for callback in item.on_commit:
                try:
                    callback()
                except Exception as exc:  # e.g. an SQS delete that failed: the message comes back, harmlessly
                    self.log("warning", "acknowledge-failed", source=item.source, key=item.key, error=str(exc))
        self.stats.timed("store", started)

    # -- detect, correlate ------------------------------------------------------------------------------

    def _detect(self) -> None:
        summary, findings = self.session.process(learn_until=self.config.learn_until, also=self.outbox.enqueue)
        self.stats.findings += len(findings)
        self._uncorrelated += len(findings)
        for finding in findings:
            if is_alert(finding.severity):
                self.log("info", "finding", id=finding.id, severity=finding.severity, detector=finding.detector,
                         identity=finding.identity["arn"])

    def _correlate(self) -> None:
        from nhiwatch.correlate.incidents import correlate

        result = correlate(self.store)
        self._uncorrelated = 0
        self._last_correlate = time.monotonic()
        self.log("info", "correlated", **{k: v for k, v in result.items() if isinstance(v, (int, str))})

    # -- health ---------------------------------------------------------------------------------------

    def health(self) -> None:
        stats = self.stats
        now = time.monotonic()
        rate = stats.window_events / max(1e-6, now - stats.window_started)
        stats.window_events, stats.window_started = 0, now
        lag = None
        if stats.newest_event_us:
            lag = round(time.time() - stats.newest_event_us / 1e6, 1)
        self.log("info", "progress", events=stats.events, events_per_second=round(rate, 1), items=stats.items,
                 duplicates=stats.duplicates, quarantined=stats.quarantined, findings=stats.findings,
                 lag_seconds=lag, queued=self.queue.qsize(),
                 sources={s.source_name: {"caught_up": s.caught_up, "alive": s.is_alive(), "retrying": s.error_note}
                          for s in self.sources},
                 sinks=self.outbox.backlog(),
                 stage_seconds={k: round(v, 1) for k, v in stats.stage_seconds.items()})


def aws_client(service: str, region: str | None):
    """A boto3 client; AWS_ENDPOINT_URL and the usual credential chain apply. Throttling is retried by
    botocore's adaptive mode before a source sees it."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(service, region_name=region,
                                          config=Config(retries={"mode": "adaptive", "max_attempts": 8}))
