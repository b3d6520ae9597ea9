"""Find the CloudTrail records in a file, whatever shape it has.

The format is read from the bytes, never from the file name: gzip by its magic number, JSON
lines versus one JSON document by parsing, and each JSON value is unwrapped until CloudTrail
records appear — S3 objects ({"Records": [...]}), lookup-events output (the record as a JSON
string in CloudTrailEvent), EventBridge envelopes (the record in detail), collectors that keep
the record as a string in another record (_raw, message, event ...). What cannot be read is
reported with where it was and why; nothing is dropped without a count.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from nhiwatch.core.compression import ZlibError, gzip_decompressor
from nhiwatch.ingest.normalize import RecordContext

STREAM_BYTES = 64 << 20  # files this large are read line by line when they are JSON lines
MAX_RAW_KEPT = 256 * 1024  # quarantined raw text is cut at this size (the cut is noted)
_MAX_DEPTH = 8
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"

# Keys under which collectors and pipelines keep the original record, in the order tried.
_WRAPPER_KEYS = ("_raw", "event", "detail", "message", "Message", "body", "Body", "record", "log", "data", "json")

_S3_KEY = re.compile(
    r"AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/(?P<kind>CloudTrail(?:-Digest|-Insight)?)/"
    r"(?P<region>[a-z0-9-]+)/\d{4}/\d{2}/\d{2}/")
_RESYNC = re.compile(r"\{\s*\"eventVersion\"")
_ARRAY_START = re.compile(r"\"(?:Records|Events)\"\s*:\s*\[")


@dataclass
class Bad:
    """A record that could not be used, with where it was and why."""

    locator: str
    reason: str
    raw: str


@dataclass
class FileOutcome:
    """What happened to one input file. The writer fills accepted and duplicate."""

    path: str
    format: str = ""
    records: int = 0
    accepted: int = 0
    duplicate: int = 0
    quarantined: int = 0
    skipped: str | None = None
    error: str | None = None
    s3_key: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "s3_key"}
        if self.s3_key:
            out["s3_key"] = self.s3_key
        return out


def clip(text: str) -> str:
    if len(text) <= MAX_RAW_KEPT:
        return text
    return text[:MAX_RAW_KEPT] + f"... [cut: {len(text)} characters in all]"


def raw_text(value: object) -> str:
    if isinstance(value, str):
        return clip(value)
    try:
        return clip(orjson.dumps(value).decode())
    except TypeError:
        return clip(json.dumps(value, default=str))


def looks_like_event(obj: dict) -> bool:
    return ("eventSource" in obj or "eventName" in obj or "insightDetails" in obj
            or ("eventTime" in obj and ("eventID" in obj or "userIdentity" in obj)))


def is_digest(obj: object) -> bool:
    return isinstance(obj, dict) and "digestStartTime" in obj and ("logFiles" in obj or "digestEndTime" in obj)


def gunzip(data: bytes) -> tuple[bytes, str | None]:
    """Decompress every gzip member; on damage keep what came out and say what went wrong."""
    out: list[bytes] = []
    while data:
        inflater = gzip_decompressor()
        step = 1 << 20
        try:
            for start in range(0, len(data), step):
                out.append(inflater.decompress(data[start:start + step]))
                if inflater.eof:
                    break
        except ZlibError as exc:
            return b"".join(out), f"corrupt gzip data ({exc})"
        if not inflater.eof:
            out.append(inflater.flush())
            return b"".join(out), "truncated gzip: the file ends before the compressed stream does"
        data = inflater.unused_data
        if data and not data.startswith(_GZIP_MAGIC):
            if data.strip(b"\0"):
                return b"".join(out), "unexpected bytes after the gzip stream"
            break
    return b"".join(out), None


def _loads(data: bytes | str) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # The standard parser is laxer (NaN, Infinity): a second opinion before calling it malformed.
        return json.loads(data)


def _is_json_lines(data: bytes) -> bool:
    """JSON lines when one of the first non-empty lines is a whole object or array by itself."""
    tried = 0
    for line in data[: 8 << 20].split(b"\n", 50):
        line = line.strip()
        if not line:
            continue
        tried += 1
        if line[:1] in (b"{", b"[") and line[-1:] in (b"}", b"]"):
            try:
                value = _loads(line)
            except ValueError:
                pass
            else:
                if isinstance(value, (dict, list)):
                    return True
        if tried >= 3:
            break
    return False


class FileScanner:
    """Yields (record, context) pairs and Bad items for one file; fills `outcome`."""

    def __init__(self, path: Path, display: str | None = None, data: bytes | None = None) -> None:
        self.path = path
        self.data = data  # the content, when it was fetched already (an S3 object)
        # Absolute, so the same file read from another folder is still the same file.
        self.display = display or os.path.abspath(path)
        self.outcome = FileOutcome(self.display)
        self._envelopes: set[str] = set()
        match = _S3_KEY.search(path.as_posix())
        self.base_ctx = RecordContext(self.display, "")
        if match:
            self.outcome.s3_key = {k: v for k, v in match.groupdict().items() if v}
            self.base_ctx = RecordContext(self.display, "", match["account"], match["region"])

    # -- reading ----------------------------------------------------------------------------

    def _read(self) -> bytes | None:
        try:
            data = self.data if self.data is not None else self.path.read_bytes()
        except OSError as exc:
            self.outcome.error = f"cannot read file: {exc.strerror or exc}"
            return None
        container = "json"
        if data.startswith(_GZIP_MAGIC):
            container = "gzip"
            data, problem = gunzip(data)
            if problem:
                self.outcome.error = problem
        self.outcome.format = container
        if data.startswith(_BOM):
            data = data[len(_BOM):]
        if not data.strip():
            if self.outcome.error is None:
                self.outcome.skipped = "empty file"
            return None
        return data

    def records(self) -> Iterator[tuple[dict, RecordContext] | Bad]:
        try:
            large = self.data is None and self.path.stat().st_size >= STREAM_BYTES
        except OSError:
            large = False
        streamed = self._stream_lines() if large else None
        if streamed is not None:
            yield from self._settle(streamed)
        else:
            yield from self._settle(self._values_in_memory())
        if self._envelopes:
            self.outcome.format += ":" + "+".join(sorted(self._envelopes))

    def _stream_lines(self) -> Iterator[tuple[object, str] | Bad] | None:
        """A large JSON-lines file is read line by line, never whole; None if it is not JSON lines."""
        try:
            with open(self.path, "rb") as fh:
                gzipped = fh.read(2) == _GZIP_MAGIC
            opener = gzip.open if gzipped else open
            with opener(self.path, "rb") as fh:
                head = fh.read(1 << 20)
        except (OSError, EOFError, zlib.error):
            return None  # the whole-file path reports what is wrong
        head = head[len(_BOM):] if head.startswith(_BOM) else head
        if head.lstrip()[:1] not in (b"{", b"[") or not _is_json_lines(head):
            return None
        self.outcome.format = ("gzip" if gzipped else "json") + "-lines"

        def lines() -> Iterator[bytes]:
            try:
                with opener(self.path, "rb") as fh:
                    yield from fh
            except EOFError:
                self.outcome.error = "truncated gzip: the file ends before the compressed stream does"
            except (OSError, zlib.error) as exc:
                self.outcome.error = f"unreadable part: {exc}"

        return self._lines(lines())

    def _values_in_memory(self) -> Iterator[tuple[object, str] | Bad]:
        data = self._read()
        if data is None:
            return
        first = data.lstrip()[:1]
        if first not in (b"{", b"["):
            if self.outcome.error:  # a damaged gzip whose readable part is not JSON
                yield Bad("$", f"{self.outcome.error}; no JSON in the readable part",
                          raw_text(data[:4096].decode("utf-8", "replace")))
                return
            self.outcome.skipped = "binary, not JSON" if b"\0" in data[:4096] else "not JSON"
            return
        # One line holding everything is one document: no need to try it as JSON lines first.
        if b"\n" in data.strip() and _is_json_lines(data):
            self.outcome.format += "-lines"
            yield from self._lines(data.split(b"\n"))
        else:
            self.outcome.format += "-document"
            yield from self._document(data)

    def _lines(self, lines: Iterable[bytes]) -> Iterator[tuple[object, str] | Bad]:
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield _loads(line), f"line {number}"
            except (ValueError, UnicodeDecodeError) as exc:
                yield Bad(f"line {number}", f"malformed JSON: {exc}", raw_text(line.decode("utf-8", "replace")))

    def _document(self, data: bytes) -> Iterator[tuple[object, str] | Bad]:
        try:
            value = _loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            if self.outcome.error is None:
                self.outcome.error = f"malformed JSON: {exc}"
            yield from self._salvage(data.decode("utf-8", "replace"))
            return
        if is_digest(value):
            self.outcome.skipped = "CloudTrail digest file"
            return
        yield value, "$"

    def _salvage(self, text: str) -> Iterator[tuple[object, str] | Bad]:
        """Recover the whole records of a damaged document; quarantine the damaged stretches."""
        self._envelopes.add("salvaged")
        match = _ARRAY_START.search(text)
        if match:
            pos, prefix = match.end(), "$.Records"
        elif text.lstrip().startswith("["):
            pos, prefix = text.index("[") + 1, "$"
        else:
            yield Bad("$", self.outcome.error or "malformed JSON", raw_text(text))
            return
        decoder = json.JSONDecoder()
        index, end = 0, len(text)
        while pos < end:
            while pos < end and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= end or text[pos] == "]":
                return
            try:
                value, stop = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                again = _RESYNC.search(text, pos + 1)
                stop = again.start() if again else end
                yield Bad(f"{prefix}[{index}]", f"damaged record: {exc.msg} (character {exc.pos})",
                          raw_text(text[pos:stop]))
            else:
                yield value, f"{prefix}[{index}]"
            index += 1
            pos = stop

    # -- unwrapping -------------------------------------------------------------------------

    def _settle(self, values: Iterator[tuple[object, str] | Bad]) -> Iterator[tuple[dict, RecordContext] | Bad]:
        """Unwrap values; hold non-CloudTrail values until the file shows it holds CloudTrail at all."""
        held: list[Bad] = []
        seen_event = False
        outcome = self.outcome
        for item in values:
            if isinstance(item, Bad):
                outcome.records += 1
                outcome.quarantined += 1
                yield item
                continue
            value, locator = item
            for found in self._unwrap(value, locator, self.base_ctx, 0):
                if isinstance(found, Bad):
                    if seen_event:
                        outcome.records += 1
                        outcome.quarantined += 1
                        yield found
                    else:
                        held.append(found)
                    continue
                if not seen_event:
                    seen_event = True
                    for bad in held:
                        outcome.records += 1
                        outcome.quarantined += 1
                        yield bad
                    held.clear()
                outcome.records += 1
                yield found
        if not seen_event and held and outcome.skipped is None:
            outcome.skipped = f"not CloudTrail: {held[0].reason}" + (
                f" (and {len(held) - 1} more values like it)" if len(held) > 1 else "")

    def _unwrap(self, value: object, locator: str, ctx: RecordContext, depth: int
                ) -> Iterator[tuple[dict, RecordContext] | Bad]:
        if depth > _MAX_DEPTH:
            yield Bad(locator, "nested too deep to be a CloudTrail record", raw_text(value))
            return
        if isinstance(value, dict):
            if looks_like_event(value):
                yield value, RecordContext(ctx.source_file, locator, ctx.account, ctx.region)
                return
            # S3 objects hold records in Records; a lookup-events page holds them in Events.
            for key, envelope in (("Records", "s3-object"), ("Events", "lookup-events")):
                items = value.get(key)
                if isinstance(items, list):
                    self._envelopes.add(envelope)
                    for i, item in enumerate(items):
                        yield from self._unwrap(item, f"{locator}.{key}[{i}]", ctx, depth + 1)
                    return
            if "CloudTrailEvent" in value:
                self._envelopes.add("lookup-events")
                yield from self._unwrap(value["CloudTrailEvent"], f"{locator}.CloudTrailEvent", ctx, depth + 1)
                return
            if "detail-type" in value and "detail" in value:
                self._envelopes.add("eventbridge")
                account = value.get("account")
                region = value.get("region")
                inner = RecordContext(ctx.source_file, locator,
                                      account if isinstance(account, str) and account else ctx.account,
                                      region if isinstance(region, str) and region else ctx.region)
                yield from self._unwrap(value["detail"], f"{locator}.detail", inner, depth + 1)
                return
            if is_digest(value):
                yield Bad(locator, "CloudTrail digest record, not an event", raw_text(value))
                return
            for key in _WRAPPER_KEYS:
                inner_value = value.get(key)
                if isinstance(inner_value, (dict, list, str)) and inner_value:
                    self._envelopes.add(f"wrapped:{key}")
                    yield from self._unwrap(inner_value, f"{locator}.{key}", ctx, depth + 1)
                    return
            keys = ", ".join(list(value)[:8])
            yield Bad(locator, f"JSON object without a CloudTrail record (keys: {keys})", raw_text(value))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from self._unwrap(item, f"{locator}[{i}]", ctx, depth + 1)
        elif isinstance(value, str):
            text = value.strip()
            if text[:1] in ("{", "["):
                try:
                    inner_value = _loads(text)
                except ValueError as exc:
                    yield Bad(locator, f"malformed JSON inside a string: {exc}", clip(value))
                    return
                self._envelopes.add("json-string")
                yield from self._unwrap(inner_value, locator, ctx, depth + 1)
            else:
                yield Bad(locator, "a string that is not JSON where a record was expected", clip(value))
        else:
            yield Bad(locator, f"a {type(value).__name__} where a record was expected", raw_text(value))
