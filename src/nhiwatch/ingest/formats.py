"""Find the CloudTrail records in a file, whatever shape it has.

The format is read from the bytes, never from the file name: gzip by its magic number, JSON
lines versus one JSON document by parsing, and each JSON value is unwrapped until CloudTrail
records appear — S3 objects ({"Records": [...]}), lookup-events output (the record as a JSON
string in CloudTrailEvent), EventBridge envelopes (the record in detail), collectors that keep
the record as a string in another record (_raw, message, event ...). Parquet (its magic number)
is Security Lake's CloudTrail in OCSF, each row turned back into its record (ingest/security_lake.py).
What cannot be read is reported with where it was and why; nothing is dropped without a count.
Input is hostile: size, nesting, key count and inflation are bounded (the MAX_* limits below), and a
record over a limit is quarantined while the rest of its file is read on.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Generator, Iterable, Iterator, NamedTuple

import orjson

from nhiwatch.core.compression import ZlibError, crc32, gzip_decompressor, raw_inflater
from nhiwatch.ingest import security_lake as lake
from nhiwatch.ingest.normalize import RecordContext, valid_region

STREAM_BYTES = 64 << 20  # files this large are read line by line when they are JSON lines
MAX_RAW_KEPT = 256 * 1024  # quarantined raw text is cut at this size (the cut is noted)
_MAX_DEPTH = 8
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"

# Limits on hostile input. Each is far above anything CloudTrail writes, and each is named in the
# reason when a record or a file goes over it; the rest of the file is read on.
MAX_RECORD_BYTES = 2 << 20   # CloudTrail's largest event is 256 KB: 8x that, for escaping and wrappers
MAX_RECORD_DEPTH = 64        # real records nest about 12 levels, envelope included
MAX_OBJECT_KEYS = 10_000     # the largest real objects (request parameters, tags) hold a few hundred keys
MAX_VALUE_DEPTH = 128        # the standard library's parser recurses: it never sees deeper nesting than this
MAX_LINE_BYTES = 128 << 20   # one JSON line; a whole CloudTrail object on one line is tens of MB at most
MAX_WHOLE_BYTES = 1 << 30    # held in memory for one file: a JSON document, or what a gzip inflates to
MAX_RATIO = 250              # inflated : compressed; CloudTrail's gzip objects are 4-20 : 1, a gzip bomb 1000 : 1
RATIO_FLOOR = 16 << 20       # the ratio applies once this much came out (small files may compress oddly well)

# Keys under which collectors and pipelines keep the original record, in the order tried.
_WRAPPER_KEYS = ("_raw", "event", "detail", "message", "Message", "body", "Body", "record", "log", "data", "json")

_S3_KEY = re.compile(
    r"AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})/(?P<kind>CloudTrail(?:-Digest|-Insight)?)/"
    r"(?P<region>[a-z0-9-]+)/\d{4}/\d{2}/\d{2}/")
_RESYNC = re.compile(r"\{\s*\"eventVersion\"")
_ARRAY_START = re.compile(r"\"(?:Records|Events)\"\s*:\s*\[")
_NAMED_JSON = re.compile(r"\.(?:json|jsonl|ndjson)(?:\.gz)?$", re.IGNORECASE)
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")

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
        return clean_text(text)
    return clean_text(text[:MAX_RAW_KEPT]) + f"... [cut: {len(text)} characters in all]"


def raw_text(value: object) -> str:
    if isinstance(value, str):
        return clip(value)
    try:
        return clip(orjson.dumps(value).decode())
    except TypeError:  # integers past 64 bits, NaN from the lax parser, nesting past orjson's 254 levels
        try:
            return clip(json.dumps(value, default=repr))
        except (RecursionError, ValueError) as exc:
            return f"[cannot be shown: {type(exc).__name__}]"


def _head_text(data: bytes, size: int | None = None) -> str:
    """The start of raw bytes as quarantine text, without decoding all of a huge line."""
    size = len(data) if size is None else size
    text = clean_text(data[:MAX_RAW_KEPT].decode("utf-8", "replace"))
    return text if size <= MAX_RAW_KEPT else text + f"... [cut: {size} bytes in all]"


def clean_text(text: str) -> str:
    """Text that can be stored: a lone UTF-16 surrogate (legal as a JSON escape, not in UTF-8) becomes U+FFFD."""
    return text if text.isascii() or not _SURROGATE.search(text) else _SURROGATE.sub("\ufffd", text)


def displayable(path: str) -> str:
    """A path as storable text: bytes that are not UTF-8 (kept by Python as surrogate escapes) are
    written as \\xNN, the same way every time, so a re-ingest finds the same file."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        try:
            return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _amount(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size:,} bytes"


def looks_like_event(obj: dict) -> bool:
    return ("eventSource" in obj or "eventName" in obj or "insightDetails" in obj
            or ("eventTime" in obj and ("eventID" in obj or "userIdentity" in obj)))


def is_digest(obj: object) -> bool:
    return isinstance(obj, dict) and "digestStartTime" in obj and ("logFiles" in obj or "digestEndTime" in obj)


# -- parsing with bounds ------------------------------------------------------------------------

class OverLimit(ValueError):
    """A value refused for its size or shape (instead of being parsed); the message names the limit."""


class _NonFinite:
    """NaN or Infinity as the lax parser reads them: not JSON, replaced by null before a record is used."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NaN"


_NON_FINITE = _NonFinite()


def _float(text: str) -> object:
    value = float(text)
    return value if math.isfinite(value) else _NON_FINITE  # 1e400 is infinity to Python


# NaN, Infinity and overflowing numbers become a marker that the record check turns into null.
_LAX = json.JSONDecoder(parse_constant=lambda _name: _NON_FINITE, parse_float=_float)
_DEEP_VALUE = f"nested deeper than {MAX_VALUE_DEPTH} levels (the limit for one JSON value)"


def _too_deep(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit`; counted without recursion."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for char in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _parse(data: bytes | str) -> tuple[object, bool]:
    """(value, lax). orjson first (its depth limit is 1,024, without recursion); else the standard
    parser, which takes NaN, Infinity, lone surrogates and 64-bit+ integers but recurses, so only
    after the nesting was counted. A lax value is repaired record by record (see _inspect)."""
    try:
        return orjson.loads(data), False
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc):
            raise OverLimit(_DEEP_VALUE) from None
    text = data.decode("utf-8", "surrogatepass") if isinstance(data, (bytes, bytearray)) else data
    if _too_deep(text, MAX_VALUE_DEPTH):
        raise OverLimit(_DEEP_VALUE)
    try:
        return _LAX.decode(text), True
    except RecursionError:  # cannot happen after the count; kept so that it never escapes
        raise OverLimit(_DEEP_VALUE) from None


def _loads(data: bytes | str) -> object:
    return _parse(data)[0]


def _within_limits(raw: bytes) -> bool:
    """True when the raw text alone proves no record in it is over a limit, so none needs walking:
    nesting needs a bracket per level, and distinct keys take at least 5 bytes each ("k":0,)."""
    return len(raw) <= 5 * MAX_OBJECT_KEYS and raw.count(b"{") + raw.count(b"[") <= MAX_RECORD_DEPTH


def _inspect(record: dict, repair: bool) -> tuple[str | None, bool]:
    """(why the record is over a limit, or None; whether values were repaired). Iterative, as the
    shapes it refuses are the ones that would break a recursive walk."""
    repaired = False
    stack: list[tuple[object, int]] = [(record, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_RECORD_DEPTH:
            return f"nested deeper than {MAX_RECORD_DEPTH} levels (the limit for one record)", repaired
        if isinstance(value, dict):
            if len(value) > MAX_OBJECT_KEYS:
                return (f"an object with {len(value):,} keys, over the limit of {MAX_OBJECT_KEYS:,} keys "
                        "in one object"), repaired
            if repair:
                repaired = _repair_object(value) or repaired
            children: Iterable = value.values()
        else:
            if repair:
                repaired = _repair_list(value) or repaired  # type: ignore[arg-type]
            children = value  # type: ignore[assignment]
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return None, repaired


def _repaired(value: object) -> object:
    if value is _NON_FINITE:
        return None
    if isinstance(value, str):
        return clean_text(value)
    return value


def _repair_object(obj: dict) -> bool:
    changed = False
    for key, value in obj.items():
        if value is _NON_FINITE or (isinstance(value, str) and not value.isascii() and _SURROGATE.search(value)):
            obj[key] = _repaired(value)  # an existing key: the dict's size does not change
            changed = True
    if any(not key.isascii() and _SURROGATE.search(key) for key in obj):
        items = list(obj.items())
        obj.clear()
        obj.update((clean_text(key), value) for key, value in items)
        changed = True
    return changed


def _repair_list(items: list) -> bool:
    changed = False
    for i, value in enumerate(items):
        if value is _NON_FINITE or (isinstance(value, str) and not value.isascii() and _SURROGATE.search(value)):
            items[i] = _repaired(value)
            changed = True
    return changed


def _size_problem(record: dict) -> str | None:
    try:
        size = len(orjson.dumps(record))
    except TypeError:  # integers past 64 bits (the depth was checked before)
        size = len(json.dumps(record, separators=(",", ":"), default=repr))
    if size > MAX_RECORD_BYTES:
        return f"a record of {size:,} bytes, over the {_amount(MAX_RECORD_BYTES)} limit for one record"
    return None


# -- gzip with bounds -----------------------------------------------------------------------------

class _Inflater:
    """The output of every gzip member of a stream, drawn in bounded steps, never all at once.

    Stops at `limit` bytes out or at an inflation ratio over MAX_RATIO (a gzip bomb). A damaged member
    is read again as bare deflate to give out what still decompresses. `problem` says what happened.
    """

    IN_STEP = 64 << 10
    OUT_STEP = 1 << 20

    def __init__(self, source: BinaryIO, limit: int | None = None) -> None:
        self.source = source
        self.limit = limit
        self.problem: str | None = None
        self.out = 0
        self.start = self.pos = source.tell()  # pos: the next compressed byte not consumed yet
        self.done = False

    def _stop(self, problem: str) -> None:
        self.problem = problem if self.problem is None else f"{self.problem}; {problem}"
        self.done = True

    def _allow(self, out: bytes) -> bytes:
        before = self.out
        self.out += len(out)
        if self.limit is not None and self.out > self.limit:
            self._stop(f"inflates to more than {_amount(self.limit)}, the limit for one file held in memory: "
                       "read up to there")
            self.out = self.limit
            return out[: self.limit - before]
        consumed = max(self.pos - self.start, 1)
        if self.out > RATIO_FLOOR and self.out > MAX_RATIO * consumed:
            self._stop(f"gzip bomb: {self.out:,} bytes inflated from {consumed:,}, over the {MAX_RATIO}:1 limit "
                       "on the inflation ratio: read up to there")
        return out

    def __iter__(self) -> Iterator[bytes]:
        buf = b""
        while not self.done:
            while len(buf) < 2:
                more = self.source.read(self.IN_STEP)
                if not more:
                    break
                buf += more
            if not buf:
                return
            if not buf.startswith(_GZIP_MAGIC):
                self._trailing(buf)
                return
            rest = yield from self._member(buf)
            if rest is None:
                return
            buf = rest

    def _trailing(self, buf: bytes) -> None:
        while buf:
            if buf.strip(b"\0"):  # zero padding after the last member is common and harmless
                self._stop("unexpected bytes after the gzip stream")
                return
            buf = self.source.read(self.IN_STEP)

    def _member(self, data: bytes) -> Generator[bytes, None, bytes | None]:
        """Give out one member; returns the input after it, or None when reading ends."""
        start, emitted = self.pos, 0
        inflater = gzip_decompressor()
        while True:
            try:
                out = inflater.decompress(data, self.OUT_STEP)
            except ZlibError as exc:
                return (yield from self._salvage(start, emitted, str(exc).split(": ", 1)[-1]))
            rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if not out and rest and len(rest) == len(data) and not inflater.eof:  # never seen; never loop on it
                self._stop("corrupt gzip data: the inflater makes no progress")
                return None
            self.pos += len(data) - len(rest)
            full = len(out) == self.OUT_STEP  # the inflater may hold more output for the same input
            if out:
                emitted += len(out)
                out = self._allow(out)
                if out:
                    yield out
                if self.done:
                    return None
            if inflater.eof:
                return rest
            if rest or full:
                data = rest
                continue
            data = self.source.read(self.IN_STEP)
            if not data:
                self._stop("truncated gzip: the file ends before the compressed stream does")
                return None

    def _salvage(self, start: int, emitted: int, why: str) -> Generator[bytes, None, bytes | None]:
        """The member is damaged (header, data or check): read it again as bare deflate from its start
        and give out what comes after the `emitted` bytes already given, up to the damage."""
        self.source.seek(start)
        offset = _header_length(self.source.read(1 << 16))
        self.source.seek(start + offset)
        self.pos = start + offset
        skip, check, total = emitted, 0, 0
        for piece in self._bare():
            check, total = crc32(piece, check), total + len(piece)
            if skip >= len(piece):
                skip -= len(piece)
                continue
            piece, skip = piece[skip:], 0
            piece = self._allow(piece)
            if piece:
                yield piece
            if self.done:
                return None
        rest = self._bare_rest
        if rest is None:
            self._stop(f"corrupt gzip data ({why}): kept the {total:,} bytes that decompressed before the damage")
            return None
        while len(rest) < 8:
            more = self.source.read(self.IN_STEP)
            if not more:
                break
            rest += more
        self.pos += min(8, len(rest))
        if rest[:8] == (check.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little")):
            note = f"damaged gzip header ({why}): the data after it is whole (its check matches)"
        else:
            note = (f"corrupt gzip data ({why}): all {total:,} bytes decompressed but fail the check, "
                    "so some may be wrong")
        self.problem = note if self.problem is None else f"{self.problem}; {note}"
        return rest[8:]

    def _bare(self) -> Iterator[bytes]:
        """Bare deflate from the current position until its end (then _bare_rest is the input after it)
        or its damage (_bare_rest None), giving out everything before the damaged byte."""
        self._bare_rest: bytes | None = None
        inflater = raw_inflater()
        data = self.source.read(self.IN_STEP)
        while data or not inflater.eof:
            saved = inflater.copy()
            try:
                out = inflater.decompress(data, self.OUT_STEP)
            except ZlibError:
                yield from self._up_to_damage(saved, data)
                return
            rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if not out and rest and len(rest) == len(data) and not inflater.eof:
                return
            self.pos += len(data) - len(rest)
            if out:
                yield out
            if inflater.eof:
                self._bare_rest = rest
                return
            if rest or len(out) == self.OUT_STEP:
                data = rest
                continue
            data = self.source.read(self.IN_STEP)
            if not data:
                return  # truncated as well: what came out is all there is

    def _up_to_damage(self, inflater, data: bytes) -> Iterator[bytes]:
        """The same input a byte at a time, from the state before it, up to the byte that fails."""
        pieces: list[bytes] = []
        held = 0
        for i in range(len(data)):
            try:
                piece = inflater.decompress(data[i:i + 1])  # one byte inflates to a few KB at most
            except ZlibError:
                break
            self.pos += 1
            pieces.append(piece)
            held += len(piece)
            if held >= self.OUT_STEP:
                yield b"".join(pieces)
                pieces, held = [], 0
        if pieces:
            yield b"".join(pieces)


def _header_length(head: bytes) -> int:
    """Length of a gzip member's header; 10 (no optional fields, the usual case) when it is unreadable."""
    if len(head) < 10 or head[2] != 8 or head[3] & 0xE0:
        return 10
    flags, pos = head[3], 10
    if flags & 4:
        if len(head) < pos + 2:
            return 10
        pos += 2 + int.from_bytes(head[pos:pos + 2], "little")
    for bit in (8, 16):  # file name, comment: zero-terminated
        if flags & bit:
            end = head.find(b"\0", pos)
            if end < 0:
                return 10
            pos = end + 1
    if flags & 2:
        pos += 2
    return pos if pos <= len(head) else 10


def inflate(source: BinaryIO, limit: int | None) -> tuple[bytes, str | None]:
    inflater = _Inflater(source, limit)
    data = b"".join(inflater)
    return data, inflater.problem


def gunzip(data: bytes) -> tuple[bytes, str | None]:
    """Decompress every gzip member, within the limits; on damage keep what came out and say what went wrong."""
    return inflate(io.BytesIO(data), MAX_WHOLE_BYTES)


class _LongLine(NamedTuple):
    size: int
    head: bytes


class _ChunkReader(io.RawIOBase):
    """A raw stream over an iterator of byte chunks (the inflater's output), for a buffered readline."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._chunk:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk = memoryview(chunk)
        size = min(len(buffer), len(self._chunk))
        buffer[:size] = self._chunk[:size]
        self._chunk = self._chunk[size:]
        return size


def _read_lines(reader: BinaryIO, limit: int) -> Iterator[bytes | _LongLine]:
    """The lines of a stream; a line over `limit` bytes comes as a _LongLine, never held whole."""
    while True:
        line = reader.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or (len(line) == limit + 1 and line.endswith(b"\n")):
            yield line
            continue
        size, head = len(line), line[:4096]
        while not line.endswith(b"\n"):
            line = reader.readline(1 << 20)
            if not line:
                break
            size += len(line)
        yield _LongLine(size - line.endswith(b"\n"), head)


_SAMPLE_LINE = 8 << 20  # a line longer than this is not parsed only to tell the format


def _is_json_lines(data: bytes) -> bool:
    """JSON lines when one of the first non-empty lines is a whole object or array by itself. A line too
    long to sample is passed over, not held against the file: a huge first record (quarantined later,
    by the record limit) must not turn the file into one damaged document and lose every record after it."""
    tried = start = 0
    for _ in range(50):
        if start >= len(data):
            break
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line, start = (data[start:end].strip() if end - start <= _SAMPLE_LINE else b""), end + 1
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
    """Yields (record, context) pairs and Bad items for one file; fills `outcome`.

    Internally values travel as (value, locator, within_limits, lax): within_limits when the raw
    text proves no record in it is over a limit; lax when the standard parser read it (see _parse).
    """

    def __init__(self, path: Path, display: str | None = None, data: bytes | None = None) -> None:
        self.path = path
        self.data = data  # the content, when it was fetched already (an S3 object)
        # Absolute, so the same file read from another folder is still the same file; storable text.
        self.display = displayable(display or os.path.abspath(path))
        self.outcome = FileOutcome(self.display)
        self._envelopes: set[str] = set()
        match = _S3_KEY.search(path.as_posix())
        self.base_ctx = RecordContext(self.display, "")
        if match:
            self.outcome.s3_key = {k: v for k, v in match.groupdict().items() if v}
            self.base_ctx = RecordContext(self.display, "", match["account"], match["region"])

    # -- reading ----------------------------------------------------------------------------

    def _unreadable(self, exc: OSError) -> str:
        path = os.fspath(self.path)
        if os.path.islink(path) and not os.path.exists(path):
            return f"broken symbolic link ({exc.strerror or exc}): it points to {displayable(os.readlink(path))}"
        return f"cannot read file: {exc.strerror or exc}"

    def _folder_link(self) -> str | None:
        """Why a folder is in the list of files: the folder walk reached it a second time (by a link)."""
        if self.data is not None or not os.path.isdir(self.path):
            return None
        path = os.path.abspath(self.path)
        real = os.path.realpath(path)
        parent = os.path.realpath(os.path.dirname(path))
        if parent == real or parent.startswith(real.rstrip(os.sep) + os.sep):
            return f"symbolic link loop: it points back to {displayable(real)}, a folder it is in"
        return f"folder read already by another way (a symbolic link): {displayable(real)}"

    def _load(self) -> tuple[bytes, str, str | None]:
        """(content, container, problem): inflated when gzip (twice when gzip holds gzip), within limits."""
        if self.data is not None:
            if not self.data.startswith(_GZIP_MAGIC):
                return self.data, "json", None
            return self._gunzip(io.BytesIO(self.data))
        with open(self.path, "rb") as fh:
            if fh.read(2) == _GZIP_MAGIC:
                fh.seek(0)
                return self._gunzip(fh)
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_WHOLE_BYTES:
                return b"", "json", (f"too large to read whole: {size:,} bytes, over the {_amount(MAX_WHOLE_BYTES)} "
                                     "limit for a file that is not JSON lines")
            fh.seek(0)
            return fh.read(), "json", None

    @staticmethod
    def _gunzip(fh: BinaryIO) -> tuple[bytes, str, str | None]:
        data, problem = inflate(fh, MAX_WHOLE_BYTES)
        if problem is None and data.startswith(_GZIP_MAGIC):  # compressed twice: the limits hold again
            data, problem = inflate(io.BytesIO(data), MAX_WHOLE_BYTES)
        return data, "gzip", problem

    def _read(self) -> bytes | None:
        try:
            data, container, problem = self._load()
        except OSError as exc:
            self.outcome.error = self._unreadable(exc)
            return None
        self.outcome.format = container
        if problem:
            self.outcome.error = problem
        if data.startswith(_BOM):
            data = data[len(_BOM):]
        if not data.strip():
            if self.outcome.error is None:
                self.outcome.skipped = "empty file"
            return None
        return data

    def records(self) -> Iterator[tuple[dict, RecordContext] | Bad]:
        link = self._folder_link()
        if link is not None:
            self.outcome.skipped = link
            return
        if self._is_parquet():
            yield from self._lake_rows()
            return
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

    # -- Parquet (Security Lake) ------------------------------------------------------------

    def _is_parquet(self) -> bool:
        if self.data is not None:
            return self.data[:4] == lake.PARQUET_MAGIC
        try:
            with open(self.path, "rb") as fh:
                return fh.read(4) == lake.PARQUET_MAGIC
        except OSError:
            return False  # the JSON path reports why the file cannot be read

    def _lake_rows(self) -> Iterator[tuple[dict, RecordContext] | Bad]:
        """Security Lake's CloudTrail: each OCSF row back to its CloudTrail record, read a batch at a time.
        A Parquet file of another kind is skipped, as a JSON file without CloudTrail is."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        outcome = self.outcome
        outcome.format = "parquet"
        region, account = lake.partition_of(self.display)
        ctx = RecordContext(self.display, "",
                            account if account and account.isdigit() and len(account) == 12 else self.base_ctx.account,
                            region if region and valid_region(region) else self.base_ctx.region)
        try:
            parquet = pq.ParquetFile(pa.BufferReader(self.data) if self.data is not None else str(self.path))
        except (pa.ArrowException, OSError) as exc:
            outcome.error = clean_text(f"unreadable Parquet: {exc}"[:500])
            outcome.records += 1
            outcome.quarantined += 1
            yield Bad("$", outcome.error, "[Parquet file]")
            return
        try:
            columns, missing = lake.lake_columns(parquet.schema_arrow.names)
            if missing:
                outcome.skipped = f"Parquet, not Security Lake CloudTrail: no {', '.join(missing)} column"
                return
            yield from self._lake_items(parquet, columns, ctx)
        finally:
            parquet.close()

    def _lake_items(self, parquet: Any, columns: list[str], ctx: RecordContext
                    ) -> Iterator[tuple[dict, RecordContext] | Bad]:
        """The rows a batch at a time. A file whose first batch holds no CloudTrail row is not CloudTrail
        (skipped, as a JSON file is); after that, a row that is not is quarantined."""
        import pyarrow as pa

        outcome = self.outcome
        versions: set[int] = set()
        number = 0
        try:
            for batch in lake.batches(parquet, columns):
                items = [self._lake_item(row, number + i + 1, ctx) for i, row in enumerate(batch)]
                refused = [item for item in items if isinstance(item, Bad)]
                if number == 0 and refused and len(refused) == len(items):
                    more = f" (and {len(refused) - 1} more rows like it)" if len(refused) > 1 else ""
                    outcome.skipped = clean_text(f"Parquet, not Security Lake CloudTrail: {refused[0].reason}{more}")
                    return
                number += len(batch)
                for item, row in zip(items, batch):
                    outcome.records += 1
                    if isinstance(item, Bad):
                        outcome.quarantined += 1
                    else:
                        versions.add(lake.source_version(row))
                    yield item
        except (pa.ArrowException, OSError) as exc:
            outcome.error = clean_text(f"unreadable Parquet after {number} rows: {exc}"[:500])
            outcome.records += 1
            outcome.quarantined += 1
            yield Bad(f"rows after {number}", outcome.error, "[Parquet file]")
        if versions:
            outcome.format += ":security-lake-v" + "+".join(str(v) for v in sorted(versions))

    @staticmethod
    def _lake_item(row: dict, number: int, ctx: RecordContext) -> tuple[dict, RecordContext] | Bad:
        locator = f"row {number}"
        try:
            record = lake.cloudtrail_record(row)
        except lake.LakeRowError as exc:
            return Bad(locator, clean_text(str(exc)), raw_text(row))
        # the limits JSON records have: unmapped's dotted keys can nest a record as deep as they like
        problem = _inspect(record, False)[0] or _size_problem(record)
        if problem is not None:
            return Bad(locator, problem, raw_text(row))
        return record, ctx._replace(locator=locator)

    @staticmethod
    def _reader(fh: BinaryIO, gzipped: bool) -> tuple[BinaryIO, _Inflater | None]:
        if not gzipped:
            return fh, None
        inflater = _Inflater(fh)  # no limit on the total (nothing is held whole); the ratio still applies
        return io.BufferedReader(_ChunkReader(inflater), 1 << 20), inflater

    def _stream_lines(self) -> Iterator[tuple[object, str, bool, bool] | Bad] | None:
        """A large JSON-lines file is read line by line, never whole; None if it is not JSON lines."""
        try:
            with open(self.path, "rb") as fh:
                gzipped = fh.read(2) == _GZIP_MAGIC
                fh.seek(0)
                head = self._reader(fh, gzipped)[0].read(1 << 20)
        except OSError:
            return None  # the whole-file path reports what is wrong
        head = head[len(_BOM):] if head.startswith(_BOM) else head
        if head.lstrip()[:1] not in (b"{", b"[") or not _is_json_lines(head):
            return None
        self.outcome.format = ("gzip" if gzipped else "json") + "-lines"

        def lines() -> Iterator[bytes | _LongLine]:
            try:
                with open(self.path, "rb") as fh:
                    reader, inflater = self._reader(fh, gzipped)
                    lines = _read_lines(reader, MAX_LINE_BYTES)
                    first = next(lines, None)
                    if first is not None:
                        yield first[len(_BOM):] if isinstance(first, bytes) and first.startswith(_BOM) else first
                        yield from lines
                    if inflater is not None and inflater.problem:
                        self.outcome.error = inflater.problem
            except OSError as exc:
                self.outcome.error = f"unreadable part: {exc.strerror or exc}"

        return self._lines(lines())

    def _not_json(self, data: bytes) -> str | None:
        """Why content that is not JSON is an error: the file's name says it is JSON (or gzip)."""
        kind = "binary data" if b"\0" in data[:4096] or not _looks_textual(data[:4096]) else "text that is not JSON"
        name = self.path.name
        named = _NAMED_JSON.search(name)
        if named:
            inside = " inside the gzip" if self.outcome.format == "gzip" else ""
            return f"not JSON: the name ends {named.group(0)} but the content{inside} is {kind}"
        if name.lower().endswith(".gz") and self.outcome.format != "gzip":
            return f"not gzip: the name ends .gz but the content is {kind.split(' that')[0]}"
        return None

    def _values_in_memory(self) -> Iterator[tuple[object, str, bool, bool] | Bad]:
        data = self._read()
        if data is None:
            return
        first = data.lstrip()[:1]
        if first not in (b"{", b"["):
            if self.outcome.error:  # a damaged gzip whose readable part is not JSON
                yield Bad("$", f"{self.outcome.error}; no JSON in the readable part", _head_text(data[:4096]))
                return
            scalar = self._scalar(data)
            if scalar is not None:
                self.outcome.skipped = f"not CloudTrail: a JSON {scalar}, not an object or array"
                return
            mismatch = self._not_json(data)
            if mismatch:
                self.outcome.error = mismatch
                yield Bad("$", mismatch, _head_text(data[:4096]))
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

    @staticmethod
    def _scalar(data: bytes) -> str | None:
        """The type of a small file that is a lone JSON string, number or literal."""
        if len(data) > 1 << 20 or data.lstrip()[:1] not in tuple(b'"-0123456789tfn'[i:i + 1] for i in range(15)):
            return None
        try:
            value = _loads(data)
        except ValueError:
            return None
        return {str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")

    def _lines(self, lines: Iterable[bytes | _LongLine]) -> Iterator[tuple[object, str, bool, bool] | Bad]:
        for number, line in enumerate(lines, 1):
            locator = f"line {number}"
            if isinstance(line, _LongLine) or (len(line) > MAX_LINE_BYTES and len(line.strip()) > MAX_LINE_BYTES):
                size, head = (line.size, line.head) if isinstance(line, _LongLine) else (len(line), line[:4096])
                yield Bad(locator, f"a line of {size:,} bytes, over the {_amount(MAX_LINE_BYTES)} limit for one line",
                          _head_text(head, size))
                continue
            line = line.strip()
            if not line:
                continue
            try:
                value, lax = _parse(line)
            except OverLimit as exc:
                yield Bad(locator, str(exc), _head_text(line))
            except ValueError as exc:  # UnicodeDecodeError included
                yield Bad(locator, f"malformed JSON: {exc}", _head_text(line))
            else:
                yield value, locator, _within_limits(line), lax

    def _document(self, data: bytes) -> Iterator[tuple[object, str, bool, bool] | Bad]:
        try:
            value, lax = _parse(data)
        except OverLimit as exc:
            # Refused whole (not damaged): its records are read one by one, the one over the limit quarantined.
            yield from self._salvage(data.decode("utf-8", "replace"), str(exc))
            return
        except ValueError as exc:
            if self.outcome.error is None:
                self.outcome.error = f"malformed JSON: {exc}"
            yield from self._salvage(data.decode("utf-8", "replace"), self.outcome.error)
            return
        if is_digest(value):
            self.outcome.skipped = "CloudTrail digest file"
            return
        yield value, "$", _within_limits(data), lax

    def _salvage(self, text: str, why: str) -> Iterator[tuple[object, str, bool, bool] | Bad]:
        """Recover the whole records of a damaged document; quarantine the damaged stretches."""
        self._envelopes.add("salvaged")
        match = _ARRAY_START.search(text)
        if match:
            pos, prefix = match.end(), "$.Records"
        elif text.lstrip().startswith("["):
            pos, prefix = text.index("[") + 1, "$"
        else:
            yield Bad("$", why, raw_text(text))
            return
        index, end = 0, len(text)
        while pos < end:
            while pos < end and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= end or text[pos] == "]":
                return
            try:
                value, stop = _LAX.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                again = _RESYNC.search(text, pos + 1)
                stop = again.start() if again else end
                yield Bad(f"{prefix}[{index}]", f"damaged record: {exc.msg} (character {exc.pos})",
                          raw_text(text[pos:stop]))
            except RecursionError:  # the recursive parser met nesting far past every limit: caught here, per value
                again = _RESYNC.search(text, pos + 1)
                stop = again.start() if again else end
                yield Bad(f"{prefix}[{index}]", _DEEP_VALUE, raw_text(text[pos:stop]))
            else:
                yield value, f"{prefix}[{index}]", False, True
            index += 1
            pos = stop

    # -- unwrapping -------------------------------------------------------------------------

    def _settle(self, values: Iterator[tuple[object, str, bool, bool] | Bad]
                ) -> Iterator[tuple[dict, RecordContext] | Bad]:
        """Unwrap values; hold non-CloudTrail values until the file shows it holds CloudTrail at all.
        Every record is checked against the limits (unless its raw text proves it within them) and,
        when the lax parser read it, repaired: NaN / Infinity become null, lone surrogates U+FFFD."""
        held: list[Bad] = []
        seen_event = False
        outcome = self.outcome
        for item in values:
            if isinstance(item, Bad):
                outcome.records += 1
                outcome.quarantined += 1
                yield _clean_bad(item)
                continue
            value, locator, within, lax = item
            for found in self._unwrap(value, locator, self.base_ctx, 0, lax):
                if isinstance(found, Bad):
                    if seen_event:
                        outcome.records += 1
                        outcome.quarantined += 1
                        yield _clean_bad(found)
                    else:
                        held.append(found)
                    continue
                record, ctx, record_lax = found
                result: tuple[dict, RecordContext] | Bad = (record, ctx)
                if record_lax or not within:
                    problem, repaired = _inspect(record, record_lax)
                    if problem is None and not within:
                        problem = _size_problem(record)
                    if problem is not None:
                        result = Bad(ctx.locator, problem, raw_text(record))
                        outcome.quarantined += 1
                    elif repaired:
                        result = (record, ctx._replace(quality=("repaired_values",)))
                if not seen_event:
                    seen_event = True
                    for bad in held:
                        outcome.records += 1
                        outcome.quarantined += 1
                        yield _clean_bad(bad)
                    held.clear()
                outcome.records += 1
                yield result
        if not seen_event and held and outcome.skipped is None:
            outcome.skipped = clean_text(f"not CloudTrail: {held[0].reason}" + (
                f" (and {len(held) - 1} more values like it)" if len(held) > 1 else ""))

    def _unwrap(self, value: object, locator: str, ctx: RecordContext, depth: int, lax: bool
                ) -> Iterator[tuple[dict, RecordContext, bool] | Bad]:
        if depth > _MAX_DEPTH:
            yield Bad(locator, "nested too deep to be a CloudTrail record", raw_text(value))
            return
        if isinstance(value, dict):
            if looks_like_event(value):
                yield value, RecordContext(ctx.source_file, locator, ctx.account, ctx.region), lax
                return
            # S3 objects hold records in Records; a lookup-events page holds them in Events.
            for key, envelope in (("Records", "s3-object"), ("Events", "lookup-events")):
                items = value.get(key)
                if isinstance(items, list):
                    self._envelopes.add(envelope)
                    for i, item in enumerate(items):
                        yield from self._unwrap(item, f"{locator}.{key}[{i}]", ctx, depth + 1, lax)
                    return
            if "CloudTrailEvent" in value:
                self._envelopes.add("lookup-events")
                yield from self._unwrap(value["CloudTrailEvent"], f"{locator}.CloudTrailEvent", ctx, depth + 1, lax)
                return
            if "detail-type" in value and "detail" in value:
                self._envelopes.add("eventbridge")
                account = value.get("account")
                region = value.get("region")
                inner = RecordContext(ctx.source_file, locator,
                                      clean_text(account) if isinstance(account, str) and account else ctx.account,
                                      clean_text(region) if isinstance(region, str) and region else ctx.region)
                yield from self._unwrap(value["detail"], f"{locator}.detail", inner, depth + 1, lax)
                return
            if is_digest(value):
                yield Bad(locator, "CloudTrail digest record, not an event", raw_text(value))
                return
            for key in _WRAPPER_KEYS:
                inner_value = value.get(key)
                if isinstance(inner_value, (dict, list, str)) and inner_value:
                    self._envelopes.add(f"wrapped:{key}")
                    yield from self._unwrap(inner_value, f"{locator}.{key}", ctx, depth + 1, lax)
                    return
            keys = ", ".join(str(k) for k in list(value)[:8])
            yield Bad(locator, f"JSON object without a CloudTrail record (keys: {keys})", raw_text(value))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from self._unwrap(item, f"{locator}[{i}]", ctx, depth + 1, lax)
        elif isinstance(value, str):
            text = value.strip()
            if text[:1] in ("{", "["):
                try:
                    inner_value, inner_lax = _parse(text)
                except OverLimit as exc:
                    yield Bad(locator, f"JSON inside a string: {exc}", clip(value))
                    return
                except ValueError as exc:
                    yield Bad(locator, f"malformed JSON inside a string: {exc}", clip(value))
                    return
                self._envelopes.add("json-string")
                yield from self._unwrap(inner_value, locator, ctx, depth + 1, lax or inner_lax)
            else:
                yield Bad(locator, "a string that is not JSON where a record was expected", clip(value))
        elif value is _NON_FINITE:
            yield Bad(locator, "NaN or Infinity where a record was expected", "NaN")
        else:
            yield Bad(locator, f"a {type(value).__name__} where a record was expected", raw_text(value))


def _clean_bad(bad: Bad) -> Bad:
    """Reasons can quote keys of the input: stored text must not hold lone surrogates."""
    bad.reason = clean_text(bad.reason)
    return bad


def _looks_textual(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # more than a character cut at the end of the sample
            return False
    return sum(b < 32 and b not in (9, 10, 13) for b in head) <= len(head) // 100
