"""eventTime parsing: CloudTrail writes `YYYY-MM-DDTHH:MM:SSZ`, but exports and SIEMs
rewrite it (space separator, offsets, nanoseconds, epoch numbers)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MIN_YEAR = 1990  # before AWS existed: a parsing accident, not an event time
_MAX_YEAR = 2200


class BadTimestamp(ValueError):
    pass


def _micros(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # CloudTrail times are UTC; a bare time is read as UTC
    if not _MIN_YEAR <= dt.year <= _MAX_YEAR:
        raise BadTimestamp(f"year {dt.year} out of range")
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_number(value: float) -> int:
    # Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude.
    magnitude = abs(value)
    if magnitude < 1e11:
        micros = value * 1_000_000
    elif magnitude < 1e14:
        micros = value * 1_000
    elif magnitude < 1e17:
        micros = value
    else:
        micros = value / 1_000
    return _micros(_EPOCH + timedelta(microseconds=int(micros)))


def _trim_fraction(text: str) -> str:
    """Cut fractional seconds to 6 digits (Python reads at most microseconds)."""
    dot = text.find(".", 17)
    if dot < 0:
        return text
    end = dot + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    if end - dot - 1 <= 6:
        return text
    return text[: dot + 7] + text[end:]


_CACHE: dict[str, tuple[int, bool]] = {}


def parse_event_time(value: object) -> tuple[int, bool]:
    """Return (microseconds since epoch UTC, canonical) or raise BadTimestamp.

    canonical is True when the value was in CloudTrail's own `...Z` ISO form.
    Many events share a second, so parsed strings are cached.
    """
    if isinstance(value, str):
        hit = _CACHE.get(value)
        if hit is None:
            hit = _parse(value)
            if len(_CACHE) >= 100_000:
                _CACHE.clear()
            _CACHE[value] = hit
        return hit
    return _parse(value)


def _parse(value: object) -> tuple[int, bool]:
    if value is None:
        raise BadTimestamp("eventTime is missing")
    if isinstance(value, bool):
        raise BadTimestamp(f"eventTime is a boolean: {value!r}")
    if isinstance(value, (int, float)):
        try:
            return _from_number(float(value)), False
        except (OverflowError, ValueError, OSError) as exc:
            raise BadTimestamp(f"eventTime number out of range: {value!r}") from exc
    if not isinstance(value, str):
        raise BadTimestamp(f"eventTime is a {type(value).__name__}, not a string")
    text = value.strip()
    if not text:
        raise BadTimestamp("eventTime is empty")
    canonical = len(text) == 20 and text[10] == "T" and text[19] == "Z"
    if text.replace(".", "", 1).isdigit():
        return _from_number(float(text)), False
    try:
        dt = datetime.fromisoformat(_trim_fraction(text))
    except ValueError:
        raise BadTimestamp(f"eventTime not understood: {text[:60]!r}") from None
    return _micros(dt), canonical

