"""Live sources of CloudTrail for `nhiwatch watch`. Each runs on its own thread and hands `Item`s
(an S3 object's bytes, an HTTP body, a page of LookupEvents) to the watcher through a bounded queue:
when processing falls behind, the queue fills and the sources wait (back-pressure), so memory stays
bounded. An item is acknowledged (SQS message deleted, HTTP request answered, checkpoint moved)
only after its events are committed, so a crash loses nothing: the item comes again and its events
are recognised as already stored.

What a [[sources]] table configures is a `SourceConfig` of the table's kind, registered in `SOURCES`:
it reads and checks its table (`from_config`), reaches its service for `config check --connect`
(`reach`) and, in a watcher, builds the threads or servers it runs (`build`). A new kind is one such
class here with `@SOURCES.register`.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator
from urllib.parse import urlparse

import orjson

from nhiwatch.core.registry import Registry, Table

if TYPE_CHECKING:
    from nhiwatch.store.db import Store


class SourceFatal(RuntimeError):
    """A source that cannot work as configured (no such bucket, no permission, bad queue)."""


@dataclass
class Item:
    source: str
    key: str                       # the object key / request id / lookup window: what is recorded as done
    data: bytes
    display: str                   # the source_file of its events
    etag: str | None = None
    size: int = 0
    record_object: bool = True     # remember the key in watch_objects (S3 objects)
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    checkpoint: tuple[str, str] | None = None  # (source, value) committed with the events
    arrived: float = field(default_factory=time.monotonic)
    result: dict | None = None     # what ingesting it gave: events, duplicates, quarantined, reason


class Source(threading.Thread):
    """A thread that puts Items on the watcher's queue until stopped."""

    def __init__(self, name: str, put: Callable[[Item], bool], stop: threading.Event) -> None:
        super().__init__(name=f"nhiwatch-source-{name}", daemon=True)
        self.source_name = name
        self.put = put
        self.stopping = stop
        self.error: BaseException | None = None
        self.caught_up = False   # everything available when last asked has been handed over
        self.lag_seconds: float | None = None
        self.error_note: str | None = None  # the last problem it is retrying, for the health log

    def run(self) -> None:
        try:
            self.follow()
        except SourceFatal as exc:
            self.error = exc
        except Exception as exc:  # reported by the watcher, which stops with a clear message
            self.error = SourceFatal(f"{self.source_name}: {type(exc).__name__}: {exc}")

    def follow(self) -> None:
        raise NotImplementedError

    def sleep(self, seconds: float) -> bool:
        """Wait, unless stopping; False when stopping."""
        return not self.stopping.wait(seconds)


def aws_problem(exc: Exception) -> tuple[str, str]:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code", "")), str(error.get("Message", ""))
    return type(exc).__name__, str(exc)


FATAL_CODES = {"NoSuchBucket", "AccessDenied", "AccessDeniedException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
               "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue",
               "UnrecognizedClientException", "ExpiredToken", "InvalidClientTokenId", "NoCredentialsError",
               "PartialCredentialsError"}


# -- S3 --------------------------------------------------------------------------------------------

# A trail's partition: AWSLogs/[o-org/]account/CloudTrail/region/ (the date folders follow).
_PARTITION = re.compile(r"AWSLogs/(?:o-[a-z0-9]{10,32}/)?\d{12}/CloudTrail/[a-z0-9-]+/$")
_DAY = re.compile(r"(\d{4})/(\d{2})/(\d{2})/")
_WALK = re.compile(r"(AWSLogs|o-[a-z0-9]{10,32}|\d{12}|CloudTrail|[a-z]{2}(-[a-z]+)+-\d)/$")
# Security Lake's CloudTrail sources: aws/SOURCE/version/region=R/accountId=A/ (eventDay=YYYYMMDD folders
# follow). Its other sources (VPC flow logs, Route 53, findings ...) are not CloudTrail and are not walked.
_LAKE_SOURCES = "CLOUD_TRAIL_MGMT|S3_DATA|LAMBDA_EXECUTION"
_LAKE_PARTITION = re.compile(
    rf"(?:^|/)aws/(?:{_LAKE_SOURCES})/[0-9.]+/region=[a-z0-9-]+/accountId=[0-9A-Za-z_-]+/$")
_LAKE_DAY = re.compile(r"eventDay=(\d{4})(\d{2})(\d{2})/")
_LAKE_WALK = re.compile(rf"(aws|{_LAKE_SOURCES}|[0-9]+\.[0-9]+|region=[a-z0-9-]+|accountId=[0-9A-Za-z_-]+)/$")


def _day_folders(partition: str) -> tuple[re.Pattern, str] | None:
    """(the pattern of a partition's day folders, their strftime form) for a trail's or Security Lake's
    partition; None for a prefix in neither layout."""
    if _PARTITION.search(partition):
        return _DAY, "%Y/%m/%d/"
    if _LAKE_PARTITION.search(partition):
        return _LAKE_DAY, "eventDay=%Y%m%d/"
    return None


class Fetcher:
    """Reads S3 objects with a few threads, yielding (object, bytes or None if gone) in the given order,
    with at most `window` objects read ahead (bounded memory)."""

    def __init__(self, threads: int = 8, window: int = 32) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="nhiwatch-s3-get")
        self.window = window

    @staticmethod
    def _get(s3, bucket: str, key: str) -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            code, message = aws_problem(exc)
            if code in ("NoSuchKey", "404"):
                return None
            if code in FATAL_CODES:
                raise SourceFatal(f"s3://{bucket}/{key}: {code}: {message}") from None
            raise

    def fetch(self, s3, bucket: str, objects: list[dict]) -> Iterator[tuple[dict, bytes | None]]:
        return self.fetch_many(s3, [dict(obj, Bucket=bucket) for obj in objects])

    def fetch_many(self, s3, objects: list[dict]) -> Iterator[tuple[dict, bytes | None]]:
        """Objects given as dicts with Bucket and Key."""
        from collections import deque

        pending: deque = deque()
        for obj in objects:
            pending.append((obj, self.pool.submit(self._get, s3, obj["Bucket"], obj["Key"])))
            if len(pending) >= self.window:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()


TRANSIENT_RETRIES = 6  # consecutive failed passes over a bucket before the watch gives up (about 2 minutes)


class S3Poller(Source):
    """Follows a bucket (an organization trail, a single account's, or Security Lake's) in key order.

    The partitions (account x region; in Security Lake, its CloudTrail sources' region=/accountId=
    folders) are discovered by listing with a delimiter; each partition is listed from its newest day
    folder minus `late_days`, so a file delivered late, or into yesterday's folder after midnight, is
    still picked up; keys already done are skipped. A prefix in neither layout is followed as one
    partition in key order."""

    def __init__(self, name: str, put: Callable[[Item], bool], stop: threading.Event, *, s3, bucket: str,
                 prefix: str, done: set[str], checkpoint: dict, interval: float = 30.0, late_days: int = 1,
                 rediscover_seconds: float = 600.0, once: bool = False, since: datetime | None = None) -> None:
        super().__init__(name, put, stop)
        self.since = since  # where a partition never followed before starts (default: its beginning)
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.done = done                  # keys already committed (loaded by the watcher)
        self.newest_day: dict[str, str] = dict(checkpoint.get("days", {}))
        self.interval, self.late_days, self.once = interval, late_days, once
        self.rediscover_seconds = rediscover_seconds
        self.partitions: list[str] = []
        self._discovered = -1.0e18
        self.handed: set[str] = set()     # handed over, maybe not committed yet
        self.fetcher = Fetcher()

    def _list(self, **kwargs) -> Iterator[dict]:
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, **kwargs):
                yield page
        except Exception as exc:
            code, message = aws_problem(exc)
            if code in FATAL_CODES or code == "NoSuchBucket":
                raise SourceFatal(f"s3://{self.bucket}/{self.prefix}: {code}: {message}") from None
            raise

    def discover(self) -> list[str]:
        found: list[str] = []

        def walk(prefix: str, depth: int) -> None:
            if _day_folders(prefix) is not None:
                found.append(prefix)
                return
            children = [p["Prefix"] for page in self._list(Prefix=prefix, Delimiter="/")
                        for p in page.get("CommonPrefixes", [])]
            steps = [c for c in children if _WALK.search(c[len(prefix):] if prefix else c)
                     or _LAKE_WALK.search(c[len(prefix):] if prefix else c)] if depth < 8 else []
            for child in steps:
                walk(child, depth + 1)

        walk(self.prefix, 0)
        return sorted(found) or [self.prefix]  # not a trail's layout: follow the prefix as it is

    def _start_after(self, partition: str) -> str | None:
        day = self.newest_day.get(partition)
        folders = _day_folders(partition)
        if day is None:
            if self.since is not None and folders is not None:
                return partition + self.since.strftime(folders[1].rstrip("/"))
            return None
        if folders is None:
            return day  # a plain prefix: the last key taken
        moment = datetime.strptime(day, "%Y/%m/%d") - timedelta(days=self.late_days)
        return partition + moment.strftime(folders[1])

    def follow(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - self._discovered > self.rediscover_seconds:
                    self.partitions = self.discover()
                    self._discovered = time.monotonic()
                handed = 0
                self.handed = {k for k in self.handed if k not in self.done}  # committed ones are in done now
                for partition in self.partitions:
                    handed += self._poll(partition)
                    if self.stopping.is_set():
                        return
            except SourceFatal:
                raise
            except Exception as exc:
                # A timeout or a 5xx that botocore's retries did not outlast: the pass is repeated (keys
                # handed over are not handed again), and only a problem that persists stops the watch.
                failures += 1
                code, message = aws_problem(exc)
                if failures > TRANSIENT_RETRIES:
                    raise SourceFatal(f"s3://{self.bucket}/{self.prefix}: {code}: {message} "
                                      f"({failures} attempts)") from None
                self.error_note = f"{code}: {message}"
                if not self.sleep(min(2.0 ** failures, 30.0)):
                    return
                continue
            failures, self.error_note = 0, None
            self.caught_up = True
            if self.once and not handed:
                return
            if handed == 0 and not self.sleep(self.interval):
                return

    def _poll(self, partition: str) -> int:
        kwargs = {"Prefix": partition}
        start_after = self._start_after(partition)
        if start_after:
            kwargs["StartAfter"] = start_after
        handed = 0
        for page in self._list(**kwargs):
            wanted = [obj for obj in page.get("Contents", [])
                      if obj["Key"] not in self.done and obj["Key"] not in self.handed
                      and not obj["Key"].endswith("/") and "/CloudTrail-Digest/" not in obj["Key"]]
            if wanted:
                self.caught_up = False
            # Objects are read in parallel (S3 latency, not bandwidth, bounds one reader) and handed
            # over in key order.
            for obj, data in self.fetcher.fetch(self.s3, self.bucket, wanted):
                if data is None:
                    continue  # deleted between listing and reading
                key = obj["Key"]
                self.handed.add(key)
                item = Item(self.source_name, key, data, f"s3://{self.bucket}/{key}",
                            etag=str(obj.get("ETag", "")).strip('"'), size=int(obj.get("Size", len(data))))
                item.checkpoint = self._advance(partition, key)
                if not self.put(item):
                    return handed
                handed += 1
        return handed

    def _advance(self, partition: str, key: str) -> tuple[str, str]:
        """The checkpoint after this key: the newest day folder (or last key) of each partition."""
        folders = _day_folders(partition)
        match = folders[0].search(key[len(partition):]) if folders is not None else None
        value = f"{match[1]}/{match[2]}/{match[3]}" if match else key
        if value > self.newest_day.get(partition, ""):
            self.newest_day[partition] = value
        return self.source_name, orjson.dumps({"days": self.newest_day}).decode()


# -- SQS (S3 event notifications, or EventBridge events sent to a queue) -----------------------------

def objects_in_message(body: str) -> tuple[list[tuple[str, str]], list[bytes], str | None]:
    """(bucket, key) pairs of S3 notifications, CloudTrail events carried directly, or why the message
    is neither. Handles S3 notifications, the same wrapped in SNS, EventBridge "Object Created",
    and EventBridge "AWS API Call via CloudTrail" events."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [], [], f"not JSON: {exc}"
    if isinstance(message, dict) and message.get("Type") == "Notification" and isinstance(message.get("Message"), str):
        return objects_in_message(message["Message"])  # SNS fan-out
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return [], [], None
    objects = []
    if isinstance(message, dict) and isinstance(message.get("Records"), list) and message["Records"] and \
            isinstance(message["Records"][0], dict) and "s3" in message["Records"][0]:
        for record in message["Records"]:
            if not str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
                continue
            s3 = record.get("s3", {})
            key = urllib.parse.unquote_plus(s3.get("object", {}).get("key", ""))
            objects.append((s3.get("bucket", {}).get("name", ""), key))
        return objects, [], None
    if isinstance(message, dict) and message.get("detail-type") == "Object Created":
        detail = message.get("detail", {})
        return [(detail.get("bucket", {}).get("name", ""), detail.get("object", {}).get("key", ""))], [], None
    if isinstance(message, dict) and "detail" in message and "detail-type" in message:
        return [], [body.encode()], None
    return [], [], "neither an S3 notification nor an EventBridge event"


class SqsListener(Source):
    """Receives S3 event notifications (the usual production set-up) and reads the objects they name;
    deletes a message once everything it named is committed."""

    def __init__(self, name: str, put: Callable[[Item], bool], stop: threading.Event, *, sqs, s3, queue_url: str,
                 done: set[str], wait_seconds: int = 10, once: bool = False) -> None:
        super().__init__(name, put, stop)
        self.sqs, self.s3, self.queue_url = sqs, s3, queue_url
        self.done = done
        self.wait_seconds, self.once = wait_seconds, once
        self.fetcher = Fetcher()

    def _delete(self, handle: str) -> Callable[[], None]:
        return lambda: self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=handle)

    def follow(self) -> None:
        try:
            self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except Exception as exc:
            code, message = aws_problem(exc)
            raise SourceFatal(f"SQS queue {self.queue_url}: {code}: {message}") from None
        while not self.stopping.is_set():
            try:
                answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=1 if self.once else self.wait_seconds)
            except Exception as exc:
                code, message = aws_problem(exc)
                if code in FATAL_CODES:
                    raise SourceFatal(f"SQS queue {self.queue_url}: {code}: {message}") from None
                if not self.sleep(2.0):
                    return
                continue
            messages = answer.get("Messages", [])
            if not messages:
                self.caught_up = True
                if self.once and self._empty():
                    return
                continue
            self.caught_up = False
            if not self._handle(messages):
                return

    def _empty(self) -> bool:
        """No message left, visible or in flight (a message a crashed run received comes back later)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                     "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) == 0 and \
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)) == 0

    def _handle(self, messages: list[dict]) -> bool:
        """Read every object the messages name (in parallel), hand them over in order; each message is
        deleted when its last object is committed."""
        plans: list[tuple[dict, list[tuple[str, str]], list[bytes]]] = []
        wanted: list[dict] = []
        for message in messages:
            objects, events, problem = objects_in_message(message.get("Body", ""))
            if problem is not None:
                # Quarantined with the reason, then deleted: kept, it would only come back forever.
                bad = Item(self.source_name, message.get("MessageId", ""), b"", f"sqs:{self.queue_url}",
                           record_object=False, result={"bad": f"SQS message {problem}",
                                                        "raw": message.get("Body", "")[:4096]})
                bad.on_commit.append(self._delete(message["ReceiptHandle"]))
                if not self.put(bad):
                    return False
                continue
            objects = [(b, k) for b, k in objects
                       if b and k and k not in self.done and "/CloudTrail-Digest/" not in k]
            plans.append((message, objects, events))
            wanted += [{"Bucket": b, "Key": k} for b, k in objects]
        fetched: dict[tuple[str, str], bytes | None] = {}
        try:
            for obj, data in self.fetcher.fetch_many(self.s3, wanted):
                fetched[(obj["Bucket"], obj["Key"])] = data
        except SourceFatal:
            raise
        except Exception as exc:
            code, message = aws_problem(exc)
            # Left in the queue: the messages come back after their visibility timeout.
            self.error_note = f"{code}: {message}"
            return self.sleep(1.0)
        for message, objects, events in plans:
            message_id = message.get("MessageId", "")
            items = [Item(self.source_name, k, fetched[(b, k)], f"s3://{b}/{k}", size=len(fetched[(b, k)] or b""))
                     for b, k in objects if fetched.get((b, k)) is not None]
            items += [Item(self.source_name, f"{message_id}#{n}", event, f"sqs:{message_id}", record_object=False)
                      for n, event in enumerate(events)]
            delete = self._delete(message["ReceiptHandle"])
            if not items:
                try:
                    delete()
                except Exception as exc:
                    # Typically an expired receipt handle: the message came back and is judged again,
                    # harmlessly (its objects are done). Never a reason to stop following the queue.
                    code, text = aws_problem(exc)
                    if code in FATAL_CODES:
                        raise SourceFatal(f"SQS queue {self.queue_url}: {code}: {text}") from None
                    self.error_note = f"{code}: {text}"
                continue
            items[-1].on_commit.append(delete)  # items commit in order: the last one closes the message
            for item in items:
                if not self.put(item):
                    return False
        return True


# -- LookupEvents -------------------------------------------------------------------------------------

class LookupEventsReader(Source):
    """Bootstraps up to 90 days of management events from cloudtrail:LookupEvents, a window at a time
    (oldest first, each window committed with its checkpoint), then follows the last minutes.
    LookupEvents allows two calls a second per region: throttling is waited out with backoff."""

    WINDOW = timedelta(hours=6)
    OVERLAP = timedelta(minutes=20)   # events reach LookupEvents minutes after they happen

    def __init__(self, name: str, put: Callable[[Item], bool], stop: threading.Event, *, client, region: str,
                 days: int, checkpoint: dict, interval: float = 60.0, once: bool = False,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        super().__init__(name, put, stop)
        self.client, self.region = client, region
        self.days = days
        self.done_until = (datetime.fromisoformat(checkpoint["done_until"]) if checkpoint.get("done_until")
                           else None)
        self.interval, self.once = interval, once
        self.now = now
        self.throttled = 0

    def _call(self, **kwargs) -> dict:
        delay = 0.5
        while True:
            try:
                return self.client.lookup_events(**kwargs)
            except Exception as exc:
                code, message = aws_problem(exc)
                if code in ("ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"):
                    self.throttled += 1
                    if not self.sleep(delay):
                        raise SourceFatal("stopping") from None
                    delay = min(delay * 2, 30.0)
                    continue
                if code in FATAL_CODES:
                    raise SourceFatal(f"LookupEvents in {self.region}: {code}: {message}") from None
                raise

    def follow(self) -> None:
        start = self.done_until - self.OVERLAP if self.done_until else self.now() - timedelta(days=self.days)
        while not self.stopping.is_set():
            now = self.now()
            if start >= now - timedelta(seconds=1):
                self.caught_up = True
                if self.once or not self.sleep(self.interval):
                    return
                start = self.done_until - self.OVERLAP if self.done_until else start
                continue
            self.caught_up = False
            end = min(start + self.WINDOW, now)
            events: list = []
            token = None
            while True:
                kwargs = {"StartTime": start, "EndTime": end, "MaxResults": 50}
                if token:
                    kwargs["NextToken"] = token
                page = self._call(**kwargs)
                events += [{"CloudTrailEvent": e["CloudTrailEvent"]} for e in page.get("Events", [])
                           if e.get("CloudTrailEvent")]
                token = page.get("NextToken")
                if not token or self.stopping.is_set():
                    break
            if self.stopping.is_set():
                return
            self.lag_seconds = (now - end).total_seconds()
            key = f"{self.region}:{start.isoformat()}/{end.isoformat()}"
            item = Item(self.source_name, key, orjson.dumps({"Events": events}), f"lookup-events:{self.region}",
                        record_object=False)
            item.checkpoint = (self.source_name, orjson.dumps({"done_until": end.isoformat()}).decode())

            def advance(end: datetime = end) -> None:
                self.done_until = end

            item.on_commit.append(advance)
            if not self.put(item):
                return
            start = end


DONE_MEMORY_DAYS = 2  # objects done earlier than this are below every listing's start: no need to remember


def load_done(store: Store, source: str, days: float = DONE_MEMORY_DAYS) -> set[str]:
    """The keys of a source committed in the last `days` (by when they were done, so a backlog being
    caught up is remembered whole)."""
    return {k for (k,) in store.con.execute(
        "SELECT key FROM watch_objects WHERE source = ? AND done_at > now() - to_days(?::INTEGER)",
        [source, max(1, int(days))]).fetchall()}


def load_checkpoint(store: Store, source: str) -> dict:
    row = store.con.execute("SELECT value FROM watch_checkpoints WHERE source = ?", [source]).fetchall()
    return orjson.loads(row[0][0]) if row else {}


# -- configured sources ---------------------------------------------------------------------------------

@dataclass
class SourceContext:
    """What configured sources need to run in a watcher, and what they leave there to be run."""

    store: Store
    put: Callable[..., bool]
    stopping: threading.Event
    aws: Callable[[str, str | None], Any]          # (service, region) -> a boto3 client
    once: bool = False
    sources: list[Source] = field(default_factory=list)   # threads following a service, until caught up in once
    intakes: list = field(default_factory=list)          # servers receiving events until the watch stops
    done_sets: dict[str, set[str]] = field(default_factory=dict)  # per source: the object keys committed

    def done(self, name: str) -> set[str]:
        """The keys a source committed lately, kept up to date by the watcher as more are committed."""
        done = self.done_sets[name] = load_done(self.store, name)
        return done

    def checkpoint(self, name: str) -> dict:
        return load_checkpoint(self.store, name)


SOURCES: Registry[SourceConfig] = Registry("source", "sources")


@dataclass(kw_only=True)
class SourceConfig:
    """One configured source. A kind declares `kind` (its `type`), `keys` (its table's other keys), reads
    its table in `from_config` (noting problems on the Table, returning None when nothing can be built)
    and starts its readers in `build`. Fields with `repr=False` (secrets) are left out of `describe`."""

    kind: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = frozenset()
    name: str

    @classmethod
    def from_config(cls, table: Table) -> SourceConfig | None:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"type": self.kind, "name": self.name,
                **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "name" and f.repr}}

    def reach(self, aws: Callable[[str, str | None], Any]) -> None:
        """`config check --connect`: one read-only call to the service; raises when it fails."""

    def build(self, context: SourceContext) -> None:
        """Create the source's threads (`context.sources`) or servers (`context.intakes`), not started."""
        raise NotImplementedError


@SOURCES.register
@dataclass(kw_only=True)
class S3Config(SourceConfig):
    """A trail's bucket, followed in key order (S3Poller)."""

    kind: ClassVar[str] = "s3"
    keys: ClassVar[frozenset[str]] = frozenset({"bucket", "prefix", "region", "late_days", "interval", "since"})
    bucket: str
    prefix: str = ""
    region: str | None = None
    since: datetime | None = None
    late_days: int = 1
    interval: float = 30.0

    @classmethod
    def from_config(cls, table: Table) -> S3Config:
        bucket = table.get("bucket")
        if not isinstance(bucket, str) or not bucket:
            table.problem("bucket", "required (the trail's bucket name)")
        elif bucket.startswith("s3://") or "/" in bucket:
            table.problem("bucket", f"a bucket name, not a URL or path ({bucket!r}); put the rest in prefix")
        prefix = table.get("prefix", "")
        if not isinstance(prefix, str):
            table.problem("prefix", "must be a string")
            prefix = ""
        prefix = prefix.lstrip("/")
        return cls(name=str(table.get("name") or f"s3://{bucket}/{prefix}"), bucket=bucket, prefix=prefix,
                   region=table.get("region"), since=table.time("since"),
                   late_days=int(table.number("late_days", 1)), interval=table.number("interval", 30, 0.1))

    @staticmethod
    def table_from_url(url: str) -> dict:
        """--s3 s3://BUCKET/PREFIX as a [[sources]] table."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            return {"type": "s3", "bucket": url}  # reported by the check: a bucket name, not a URL
        return {"type": "s3", "bucket": parsed.netloc, "prefix": parsed.path.lstrip("/")}

    def reach(self, aws: Callable[[str, str | None], Any]) -> None:
        aws("s3", self.region).list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)

    def build(self, context: SourceContext) -> None:
        context.sources.append(S3Poller(
            self.name, context.put, context.stopping, s3=context.aws("s3", self.region), bucket=self.bucket,
            prefix=self.prefix, done=context.done(self.name), checkpoint=context.checkpoint(self.name),
            interval=self.interval, late_days=self.late_days, once=context.once, since=self.since))


@SOURCES.register
@dataclass(kw_only=True)
class SqsConfig(SourceConfig):
    """A queue of the bucket's event notifications (SqsListener)."""

    kind: ClassVar[str] = "sqs"
    keys: ClassVar[frozenset[str]] = frozenset({"queue_url", "region", "wait_seconds"})
    queue_url: str
    region: str | None = None
    wait_seconds: int = 10

    @classmethod
    def from_config(cls, table: Table) -> SqsConfig:
        url = table.get("queue_url")
        if not isinstance(url, str) or not urlparse(url).scheme.startswith("http"):
            table.problem("queue_url", f"required, the queue's https URL (not its name or ARN), got {url!r}")
        return cls(name=str(table.get("name") or f"sqs:{url}"), queue_url=url, region=table.get("region"),
                   wait_seconds=int(table.number("wait_seconds", 10)))

    def reach(self, aws: Callable[[str, str | None], Any]) -> None:
        aws("sqs", self.region).get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])

    def build(self, context: SourceContext) -> None:
        context.sources.append(SqsListener(
            self.name, context.put, context.stopping, sqs=context.aws("sqs", self.region),
            s3=context.aws("s3", self.region), queue_url=self.queue_url, done=context.done(self.name),
            wait_seconds=self.wait_seconds, once=context.once))


@SOURCES.register
@dataclass(kw_only=True)
class IntakeConfig(SourceConfig):
    """An HTTP endpoint for an EventBridge API destination (watch/intake.py)."""

    kind: ClassVar[str] = "intake"
    keys: ClassVar[frozenset[str]] = frozenset({"listen", "secret_env", "header", "max_body_bytes"})
    listen: str = "127.0.0.1:8787"
    secret_env: str | None = None
    secret: str | None = field(default=None, repr=False)  # read from secret_env, never shown
    header: str = "X-Nhiwatch-Secret"
    max_body_bytes: int = 8 << 20

    @classmethod
    def from_config(cls, table: Table) -> IntakeConfig:
        listen = str(table.get("listen", "127.0.0.1:8787"))
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            table.problem("listen", f"must be HOST:PORT, not {listen!r}")
        secret = table.env(table.get("secret_env"), "secret_env")
        if secret is not None and len(secret) < 16:
            table.problem("secret_env", f"the secret in {table.get('secret_env')} is shorter than 16 characters")
        return cls(name=str(table.get("name") or f"intake:{listen}"), listen=listen,
                   secret_env=table.get("secret_env"), secret=secret,
                   header=str(table.get("header", "X-Nhiwatch-Secret")),
                   max_body_bytes=int(table.number("max_body_bytes", 8 << 20, 1024)))

    def build(self, context: SourceContext) -> None:
        from nhiwatch.watch.intake import Intake

        if not self.secret:  # an empty secret would let any request in
            raise SourceFatal(f"intake {self.name}: no shared secret (secret_env)")
        try:
            intake = Intake(self.name, self.listen, self.secret, self.header, self.max_body_bytes, context.put)
        except OSError as exc:
            raise SourceFatal(f"intake cannot listen on {self.listen}: {exc.strerror or exc}") from None
        context.intakes.append(intake)


@SOURCES.register
@dataclass(kw_only=True)
class LookupEventsConfig(SourceConfig):
    """cloudtrail:LookupEvents in some regions, one reader each (LookupEventsReader)."""

    kind: ClassVar[str] = "lookup-events"
    keys: ClassVar[frozenset[str]] = frozenset({"regions", "days", "interval"})
    regions: list[str] = field(default_factory=list)
    days: float = 90
    interval: float = 60.0

    @classmethod
    def from_config(cls, table: Table) -> LookupEventsConfig:
        regions = table.get("regions")
        if not isinstance(regions, list) or not regions or not all(isinstance(r, str) and r for r in regions):
            table.problem("regions", "required, a list of region names such as [\"us-east-1\"]")
            regions = []
        days = table.number("days", 90, 0)
        if days > 90:
            table.problem("days", f"LookupEvents keeps 90 days of events, not {days}")
        return cls(name=str(table.get("name") or "lookup-events"), regions=regions, days=days,
                   interval=table.number("interval", 60, 1))

    def reach(self, aws: Callable[[str, str | None], Any]) -> None:
        for region in self.regions:
            aws("cloudtrail", region).lookup_events(MaxResults=1)

    def build(self, context: SourceContext) -> None:
        for region in self.regions:
            name = f"{self.name}:{region}"
            context.sources.append(LookupEventsReader(
                name, context.put, context.stopping, client=context.aws("cloudtrail", region), region=region,
                days=self.days, checkpoint=context.checkpoint(name), interval=self.interval, once=context.once))
