"""Time helpers every stage shares. The store and the finding contract write UTC times as ISO-8601
to the second with a Z (2026-03-08T00:00:00Z); the engine counts microseconds since the epoch."""

from __future__ import annotations

from datetime import datetime, timezone

US_PER_SECOND = 1_000_000


def iso_z(when: datetime) -> str:
    """A datetime as the store writes it; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_from_us(us: int) -> str:
    """Microseconds since the epoch, to the second."""
    return datetime.fromtimestamp(us / US_PER_SECOND, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_from_seconds(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
