"""Ingest files into the store: find the files, read them in worker processes, write in one.

Workers parse and normalize (the CPU-heavy part) and hand back Arrow tables; the parent is the
store's only writer. Results are consumed in file order, so which copy of a duplicated event is
kept does not depend on timing, and at most `window` files are in flight, which bounds memory.
"""

from __future__ import annotations

import glob
import os
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from nhiwatch.core.workers import worker_pool
from nhiwatch.ingest.formats import Bad, FileOutcome, FileScanner, clean_text, displayable, raw_text
from nhiwatch.ingest.normalize import BadRecord, EventBatch
from nhiwatch.store.db import Store, now_micros

CHUNK_ROWS = 50_000
# Below this much input, starting worker processes costs more than it saves.
_PARALLEL_MIN_BYTES = 16 << 20
# A file this large is read in the parent, chunk by chunk, instead of being shipped whole.
_LARGE_FILE_BYTES = 256 << 20


class InputError(ValueError):
    """A path given on the command line that matches nothing."""


@dataclass
class Chunk:
    """Normalized events and quarantined records from one or more files, and the files finished."""

    events: pa.Table | None
    bad: list[tuple[str, str, str, str]]  # (file, locator, reason, raw)
    finished: list[FileOutcome] = field(default_factory=list)  # files whose last records are in this chunk


@dataclass
class IngestSummary:
    run_id: int = 0
    files: int = 0
    records: int = 0
    accepted: int = 0
    duplicate: int = 0
    quarantined: int = 0
    files_skipped: int = 0
    files_with_errors: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    per_file: list[dict] = field(default_factory=list)
    # False: per_file keeps only the files with an error, a skip or quarantined records (the store's
    # ingest_files table has them all); a run over hundreds of thousands of files then stays small.
    keep_all_files: bool = True

    def add(self, outcome: FileOutcome) -> None:
        self.files += 1
        self.records += outcome.records
        self.accepted += outcome.accepted
        self.duplicate += outcome.duplicate
        self.quarantined += outcome.quarantined
        if outcome.skipped:
            self.files_skipped += 1
            reason = outcome.skipped.split(":", 1)[0]
            self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + 1
        if outcome.error:
            self.files_with_errors += 1
        if self.keep_all_files or outcome.error or outcome.skipped or outcome.quarantined:
            self.per_file.append(outcome.as_dict())

    def totals(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("per_file", "keep_all_files")}

    def as_dict(self) -> dict:
        return {**self.totals(), "files_detail": self.per_file}


def _walk(folder: Path) -> list[Path]:
    """Files below a folder, leaving out hidden files and folders (.git, .nhiwatch, .DS_Store).

    Symbolic links to folders are followed once: a folder already read (by its device and inode) is
    not entered again, and the link itself is listed instead, so that reading it reports the loop
    or the second way to the same folder; a broken link is listed too, and reading it says so."""
    found: list[Path] = []
    try:
        root = os.stat(folder)
    except OSError:
        return [folder]
    seen = {(root.st_dev, root.st_ino)}
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name, reverse=True)
        except OSError:
            found.append(current)  # unreadable folder: reading it reports why
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                is_dir = False
            if not is_dir:
                if entry.is_file() or entry.is_symlink():  # a broken link is listed to be reported
                    found.append(path)
                continue
            try:
                info = os.stat(entry.path)
            except OSError:
                found.append(path)
                continue
            key = (info.st_dev, info.st_ino)
            if key in seen:
                found.append(path)  # a link back into a folder read already: reported when read
                continue
            seen.add(key)
            stack.append(path)
    return found


def expand_paths(paths: Iterable[str], exclude: Path | None = None) -> list[Path]:
    """Files, folders (recursively) and glob patterns -> sorted unique files.

    Sorting by path keeps S3 key layouts in time order, which makes dedupe cheaper.
    `exclude` is a folder never read (the store's own home).
    """
    found: dict[str, Path] = {}
    skip = exclude.resolve() if exclude is not None else None
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            candidates = _walk(path)
        elif path.is_file() or path.is_symlink():  # a broken link is reported when read
            candidates = [path]
        elif glob.has_magic(raw):
            matches = [Path(p) for p in glob.glob(os.path.expanduser(raw), recursive=True)]
            candidates = []
            for match in matches:
                candidates += _walk(match) if match.is_dir() else [match]
            if not candidates:
                raise InputError(f"no files match {raw!r}")
        else:
            raise InputError(f"no such file or folder: {raw}")
        for candidate in candidates:
            if skip is not None and skip in candidate.resolve().parents:
                continue
            found.setdefault(str(candidate), candidate)
    return [found[k] for k in sorted(found)]


def take_record(item, batch: EventBatch, bad: list[tuple[str, str, str, str]], scanner: FileScanner) -> str | None:
    """Add one scanned item to the batch, or to `bad` with its reason (returned)."""
    if isinstance(item, Bad):
        bad.append((scanner.display, item.locator, item.reason, item.raw))
        return item.reason
    record, ctx = item
    try:
        batch.add(record, ctx)
    except BadRecord as exc:
        scanner.outcome.quarantined += 1
        bad.append((scanner.display, ctx.locator, str(exc), raw_text(record)))
        return str(exc)
    return None


def _failed(scanner: FileScanner, exc: Exception) -> str:
    """Record an unexpected failure while reading a file as the file's error; the records before it stay."""
    problem = clean_text(f"reading stopped by an internal error: {type(exc).__name__}: {exc}"[:500])
    scanner.outcome.error = problem if scanner.outcome.error is None else f"{scanner.outcome.error}; {problem}"
    return problem


def scan_files(paths: Iterable[Path], now: int, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Read files into chunks of normalized events and quarantined records.

    Small files share a chunk: per-chunk costs (Arrow conversion, hand-over, insert) would
    otherwise dominate when a trail writes a few hundred events per file.
    """
    batch = EventBatch(now)
    bad: list[tuple[str, str, str, str]] = []
    finished: list[FileOutcome] = []
    for path in paths:
        scanner = FileScanner(path)
        outcome = scanner.outcome
        records = scanner.records()
        while True:
            try:
                item = next(records, None)
            except Exception as exc:  # a reader bug must cost this file, not the run
                _failed(scanner, exc)
                break
            if item is None:
                break
            take_record(item, batch, bad, scanner)
            if batch.rows >= chunk_rows:
                yield Chunk(batch.to_table(), bad, finished)
                batch.reset()
                bad, finished = [], []
        finished.append(outcome)
    yield Chunk(batch.to_table() if batch.rows else None, bad, finished)


def scan_group(paths: list[str], now: int) -> list[Chunk]:
    """Worker entry point: all chunks of a group of (small) files at once."""
    return list(scan_files([Path(p) for p in paths], now))


ProgressFn = Callable[[Path, FileOutcome], None]
INGEST_MEMORY = "384MB"
FLUSH_ROWS = 50_000  # one INSERT per this many events: per-statement cost dominates small inserts


class _Writer:
    """Buffers chunks from many files and writes them to the store in large batches.

    Writing happens on a background thread (DuckDB releases the GIL), so reading and parsing go
    on while a batch is inserted; the queue holds one batch, which bounds memory. A file's outcome
    is recorded after all its chunks are written, so its accepted / duplicate counts are final.
    """

    def __init__(self, store: Store, summary: IngestSummary, flush_rows: int) -> None:
        self.store = store
        self.summary = summary
        self.flush_rows = flush_rows
        self.tables: list[pa.Table] = []
        self.rows = 0
        self.bad: list[tuple[str, str, str, str]] = []
        self.done: list[FileOutcome] = []
        self.read: dict[str, int] = {}
        self.new: dict[str, int] = {}
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._drain, name="nhiwatch-writer", daemon=True)
        self.thread.start()

    def add(self, chunk: Chunk) -> None:
        if self.failure is not None:
            raise self.failure
        if chunk.events is not None and chunk.events.num_rows:
            self.tables.append(chunk.events)
            self.rows += chunk.events.num_rows
        self.bad.extend(chunk.bad)
        self.done.extend(chunk.finished)
        if self.rows >= self.flush_rows or len(self.bad) >= 10_000:
            self._hand_over()

    def _hand_over(self) -> None:
        self.queue.put((self.tables, self.bad, self.done))
        self.tables, self.rows, self.bad, self.done = [], 0, [], []

    def close(self) -> None:
        """Write what is left and wait for the writer; re-raise its failure if it had one."""
        if self.thread.is_alive():
            self._hand_over()
            self.queue.put(None)
            self.thread.join()
        if self.failure is not None:
            raise self.failure

    def _drain(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.failure is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # handed to the reading thread, which raises it
                    self.failure = exc

    def _write(self, tables: list[pa.Table], bad: list, done: list[FileOutcome]) -> None:
        if tables:
            table = pa.concat_tables(tables)
            for path, count in self.store.insert_events(table).items():
                self.new[path] = self.new.get(path, 0) + count
            for item in pc.value_counts(table.column("source_file")):
                path = item["values"].as_py()
                self.read[path] = self.read.get(path, 0) + item["counts"].as_py()
        if bad:
            self.store.insert_quarantine(self.summary.run_id, bad)
        for outcome in done:
            outcome.accepted = self.new.pop(outcome.path, 0)
            outcome.duplicate = self.read.pop(outcome.path, 0) - outcome.accepted
            self.summary.add(outcome)
        self.store.record_files(self.summary.run_id, [o.as_dict() for o in done])


class Ingestor:
    def __init__(self, store: Store, *, workers: int | None = None, chunk_rows: int = CHUNK_ROWS,
                 flush_rows: int = FLUSH_ROWS, keep_all_files: bool = True) -> None:
        self.store = store
        self.keep_all_files = keep_all_files
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self.chunk_rows = chunk_rows
        self.flush_rows = flush_rows

    def run(self, paths: list[str], on_file: ProgressFn | None = None,
            files: list[Path] | None = None) -> IngestSummary:
        """Ingest; on_file is called as each file has been read (for progress)."""
        files = files if files is not None else expand_paths(paths, exclude=self.store.home)
        now = now_micros()
        summary = IngestSummary(run_id=self.store.begin_run([displayable(str(p)) for p in paths]),
                                keep_all_files=self.keep_all_files)
        writer = _Writer(self.store, summary, self.flush_rows)

        def take(chunks: Iterable[Chunk]) -> None:
            for chunk in chunks:
                writer.add(chunk)
                if on_file:
                    for outcome in chunk.finished:
                        on_file(Path(outcome.path), outcome)

        total_bytes = sum(_size(p) for p in files)
        # Inserting needs little of DuckDB's cache (each batch is checked against its own time range);
        # a smaller limit leaves the memory to the parsed batches in flight.
        with self.store.memory_limit(INGEST_MEMORY):
            try:
                self._read_all(files, now, take, total_bytes)
            except BaseException:
                writer.close()  # what was read is written (and counted) before the error propagates
                raise
            writer.close()
        self.store.finish_run(summary.run_id, summary.totals())
        self.store.checkpoint()
        return summary

    def _read_all(self, files: list[Path], now: int, take: Callable[[Iterable[Chunk]], None],
                  total_bytes: int) -> None:
        if self.workers > 1 and total_bytes >= _PARALLEL_MIN_BYTES and len(files) > 1:
            self._run_parallel(files, now, take)
        else:
            take(scan_files(files, now, self.chunk_rows))

    def _run_parallel(self, files: list[Path], now: int, take: Callable[[Iterable[Chunk]], None]) -> None:
        window = self.workers * 2
        with worker_pool(self.workers) as pool:
            queue: deque = deque()
            groups = iter(_groups(files))

            def refill() -> None:
                while len(queue) < window:
                    group = next(groups, None)
                    if group is None:
                        return
                    if len(group) == 1 and _size(group[0]) >= _LARGE_FILE_BYTES:
                        queue.append((group, None))  # read in the parent, chunk by chunk
                    else:
                        queue.append((group, pool.submit(scan_group, [str(p) for p in group], now)))

            refill()
            while queue:
                group, future = queue.popleft()
                chunks = scan_files(group, now, self.chunk_rows) if future is None else future.result()
                refill()
                take(chunks)


def _groups(files: list[Path], max_bytes: int = 2 << 20, max_files: int = 256) -> Iterator[list[Path]]:
    """Consecutive files in groups of about max_bytes, so that tiny files travel together."""
    group: list[Path] = []
    size = 0
    for path in files:
        length = _size(path)
        if group and (size + length > max_bytes or len(group) >= max_files):
            yield group
            group, size = [], 0
        group.append(path)
        size += length
    if group:
        yield group


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def parse_items(entries: list[tuple[str, str, bytes, dict | None]], now: int
                ) -> tuple[pa.Table | None, list[tuple[str, str, str, str]], list[tuple | None]]:
    """(events as Arrow, quarantined records, per item (outcome, quarantined, first reason, events) or None
    for an item that was only a quarantine note). Runs in the watcher, in a worker process, or in a Spark task."""
    batch = EventBatch(now)
    bad: list[tuple[str, str, str, str]] = []
    infos: list[tuple | None] = []
    for display, key, data, preset in entries:
        if preset and "bad" in preset:
            bad.append((display, key, preset["bad"], preset.get("raw", "")))
            infos.append(None)
            continue
        scanner = FileScanner(Path(display), display, data=data)
        quarantined_before, rows_before = len(bad), batch.rows
        reason = None
        records = scanner.records()
        while True:
            try:
                record = next(records, None)
            except Exception as exc:  # a reader bug must cost this item, not the watcher
                reason = reason or _failed(scanner, exc)
                break
            if record is None:
                break
            problem = take_record(record, batch, bad, scanner)
            reason = reason or problem
        if scanner.outcome.skipped and scanner.outcome.records == 0:
            # Nothing in it was CloudTrail (or it was empty): say so in quarantine, do not drop it.
            bad.append((display, "$", f"no CloudTrail events: {scanner.outcome.skipped}",
                        raw_text(data[:4096].decode("utf-8", "replace"))))
            reason = reason or scanner.outcome.skipped
        infos.append((scanner.outcome, len(bad) - quarantined_before, reason, batch.rows - rows_before))
    return (batch.to_table() if batch.rows else None), bad, infos
