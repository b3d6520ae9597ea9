"""Time helpers every stage shares. The store and the finding contract write UTC times as ISO-8601
to the second with a Z (2026-03-08T00:00:00Z); the engine counts microseconds since the epoch."""

from __future__ import annotations

from datetime import datetime, timezone

US_PER_SECOND = 1_000_000
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"   # strftime's pattern for it, in Python and in DuckDB's SQL


def iso_z(when: datetime) -> str:
    """A datetime as the store writes it; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime(ISO_FORMAT)


def iso_from_us(us: int) -> str:
    """Microseconds since the epoch, to the second."""
    return datetime.fromtimestamp(us / US_PER_SECOND, timezone.utc).strftime(ISO_FORMAT)


def iso_from_seconds(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime(ISO_FORMAT)


def iso_from_us_exact(us: int) -> str:
    """Microseconds since the epoch with the fraction kept when there is one (ingest's event times)."""
    seconds, rest = divmod(us, US_PER_SECOND)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{rest:06d}Z" if rest else f"{text}Z"


def us_of(when: datetime) -> int:
    """A datetime as microseconds since the epoch; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * US_PER_SECOND)


# Values IAM's credential report writes where there is no date.
NO_DATE = frozenset({"", "N/A", "n/a", "no_information", "not_supported", "None", "null"})


def parse_time(value: object) -> datetime | None:
    """A time as people and IAM exports write it ('2022-08-07 12:55:43+00:00', ISO with Z, a datetime);
    naive times are UTC; None for no date or text that is not a time."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    if text in NO_DATE:
        return None
    text = text.replace("Z", "+00:00").replace(" ", "T", 1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
